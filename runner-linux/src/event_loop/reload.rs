//! SIGHUP: the configuration file read again.

use dataservice_sync_core::Instant;

use crate::option_table;
use crate::options::core_duration;

use super::Runner;

impl Runner {
    /// SIGHUP: reads the `--config` file again (under the same command
    /// line). A valid file's rules, filters, validation, key template and
    /// heartbeat apply at once, keeping the tag table, the backlog and the
    /// statistics; other changed settings are named and wait for a restart.
    /// An invalid file is refused and the rules in force stay.
    pub(super) fn reload(&mut self, now: Instant) {
        let old = &self.settings.options;
        let Some(path) = old.config_file.clone() else {
            self.log.info(format_args!(
                "SIGHUP received: no --config file, nothing to reload"
            ));
            return;
        };
        let command_line = if old.command_line.is_empty() {
            vec![
                "dataservice-sync".into(),
                "--config".into(),
                path.clone().into(),
            ]
        } else {
            old.command_line.clone()
        };
        let new = crate::cli::parse(&command_line)
            .map_err(|e| e.first_line())
            .and_then(|(cli, rules)| {
                cli.run
                    .to_options(rules, command_line.clone())
                    .resolve()
                    .map_err(|e| e.to_string())
            });
        let resolved = match new {
            Ok(resolved) => resolved,
            Err(why) => {
                self.log.warn(format_args!(
                    "configuration reload refused, the rules in force stay: {why}"
                ));
                self.engine
                    .reload_refused(now, format_args!("configuration reload refused: {why}"));
                return;
            }
        };
        let new = &resolved.options;
        let restart_only = option_table::changed_at_restart(old, new);
        self.engine.reload(
            (*new.rules).clone(),
            resolved.template.clone(),
            core_duration(new.heartbeat),
        );
        self.log.info(format_args!(
            "configuration reloaded from {}: {} rules, key template {}{}",
            path.display(),
            new.rules.rules.len(),
            resolved.template.as_str(),
            if restart_only.is_empty() {
                String::new()
            } else {
                format!(
                    "; changed but applied only at the next start: {}",
                    restart_only.join(", ")
                )
            }
        ));
        let options = &mut self.settings.options;
        options.rules = resolved.options.rules.clone();
        options.key_template = resolved.options.key_template.clone();
        options.heartbeat = resolved.options.heartbeat;
        self.settings.template = resolved.template;
    }
}
