//! Every option of the sync, once: its name (the flag and the file's key),
//! value, default, help, whether a reload applies it, how its text becomes
//! a [`SyncOptions`] field and back, and the engine setting it makes. The
//! command line, the configuration file, `config check`, the reload and
//! [`EngineConfig`] all follow this table.

use std::path::PathBuf;

use dataservice_sync_core::{
    BacklogPolicy, DeliveryMode, Duration as CoreDuration, EngineConfig, KeyTemplate, RegisterMode,
};

use crate::SyncOptions;
use crate::log::Severity;
use crate::options::{
    DEFAULT_DATASERVICE_URL, DEFAULT_MAX_TAGS, DEFAULT_SOCKET_PATH, DEFAULT_SOURCE,
    DEFAULT_STATUS_LISTEN, MAX_CONNECTIONS, core_duration,
};
use crate::spool::SpoolSync;

#[cfg(test)]
mod tests;
mod text;

use self::text::{
    boolean, core_secs, integer, integer_in, not_one_of, one_of, quoted, secs, spool_sync,
};
pub use self::text::{listen_address, seconds, seconds_or_zero};

/// Whether a SIGHUP reload applies an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// From the next document on.
    Applies,
    /// At the next start: a reload names it in the log when it changed.
    AtRestart,
}

/// An option's value when it is not given.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// As written.
    Text(&'static str),
    /// Rendered from the engine's defaults or a constant, so that the
    /// value is written only there.
    Computed(fn(&EngineConfig) -> String),
    /// Unset; the text says what that means.
    Unset(&'static str),
}

/// One option.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// The flag without its dashes, and the configuration file's key.
    pub name: &'static str,
    /// The value's placeholder in the help, or `None` for a flag without
    /// a value (given: `true`).
    pub value_name: Option<&'static str>,
    /// Its default.
    pub default: DefaultValue,
    /// The help line.
    pub help: &'static str,
    /// The accepted words, with their help, for an option that takes one
    /// of a few.
    pub choices: &'static [(&'static str, &'static str)],
    /// An environment variable that beats the file.
    pub env: Option<&'static str>,
    /// Whether a reload applies it.
    pub reload: Reload,
    /// Reads the text into its field; the error says why it is refused.
    pub set: fn(&mut SyncOptions, &str) -> Result<(), String>,
    /// The field as a TOML value that `set` reads back (`None`: unset).
    pub show: fn(&SyncOptions) -> Option<String>,
    /// The engine setting it makes, if any.
    pub engine: Option<fn(&SyncOptions, &mut EngineConfig)>,
}

impl OptionSpec {
    /// The default as the command line would be given it.
    pub fn default_text(&self) -> Option<String> {
        match self.default {
            DefaultValue::Text(text) => Some(text.to_owned()),
            DefaultValue::Computed(render) => Some(render(&engine_defaults())),
            DefaultValue::Unset(_) => None,
        }
    }
}

/// The engine's own defaults, where the table's computed ones come from.
fn engine_defaults() -> EngineConfig {
    EngineConfig::new(CoreDuration::from_secs(1))
}

/// The options, in the order `config check` prints them.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "socket-path",
        value_name: Some("PATH"),
        default: DefaultValue::Text(DEFAULT_SOCKET_PATH),
        help: "Data-Service IPC socket",
        choices: &[],
        env: Some("IPC_SOCKET_PATH"),
        reload: Reload::AtRestart,
        set: |o, v| {
            if v.is_empty() {
                return Err("the path is empty".into());
            }
            o.socket_path = PathBuf::from(v);
            Ok(())
        },
        show: |o| Some(quoted(&o.socket_path.display().to_string())),
        engine: None,
    },
    OptionSpec {
        name: "interval",
        value_name: Some("SECONDS"),
        default: DefaultValue::Text("1.0"),
        help: "Seconds between sync cycles",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.interval = seconds(v)?;
            Ok(())
        },
        show: |o| Some(secs(o.interval)),
        engine: Some(|o, c| c.interval = core_duration(o.interval)),
    },
    OptionSpec {
        name: "no-logging",
        value_name: None,
        default: DefaultValue::Text("false"),
        help: "Log only fatal errors",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.no_logging = boolean(v)?;
            Ok(())
        },
        show: |o| Some(o.no_logging.to_string()),
        // Decisions are traced by `log-level`'s setting, which counts this.
        engine: None,
    },
    OptionSpec {
        name: "log-level",
        value_name: Some("LEVEL"),
        default: DefaultValue::Text("info"),
        help: "The quietest lines logged: 'debug' adds each tag's decision",
        choices: &[
            ("error", "Only what stops data"),
            ("warn", "And what degrades it"),
            ("info", "And every change of state"),
            (
                "debug",
                "And each tag's decision (as many per document as the log keeps up with)",
            ),
        ],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.log_level = match v {
                "error" => Severity::Error,
                "warn" => Severity::Warn,
                "info" => Severity::Info,
                "debug" => Severity::Debug,
                _ => return Err(not_one_of(v, &["error", "warn", "info", "debug"])),
            };
            Ok(())
        },
        show: |o| {
            Some(quoted(match o.log_level {
                Severity::Fatal | Severity::Error => "error",
                Severity::Warn => "warn",
                Severity::Info => "info",
                Severity::Debug => "debug",
            }))
        },
        engine: Some(|o, c| c.trace_decisions = o.log_severity() >= Severity::Debug),
    },
    OptionSpec {
        name: "stats-interval",
        value_name: Some("SEC"),
        default: DefaultValue::Text("60"),
        help: "Seconds between statistics lines in the log (0: none)",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.stats_interval = seconds_or_zero(v)?;
            Ok(())
        },
        show: |o| Some(secs(o.stats_interval)),
        engine: None,
    },
    OptionSpec {
        name: "source",
        value_name: Some("URL"),
        default: DefaultValue::Text(DEFAULT_SOURCE),
        help: "Polling service URL: http://HOST:PORT/PATH or http+unix://%2Fpath%2Fto.sock/PATH",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.source = v.to_owned();
            Ok(())
        },
        show: |o| Some(quoted(&o.source)),
        engine: None,
    },
    OptionSpec {
        name: "key-template",
        value_name: Some("TEMPLATE"),
        default: DefaultValue::Computed(|c| c.key_template.as_str().to_owned()),
        help: "Data-Service key format; placeholders {device}, {tag}, {tag_id}. Older \
               deployments use '{device}:{tag}'",
        choices: &[],
        env: None,
        reload: Reload::Applies,
        set: |o, v| {
            o.key_template = v.to_owned();
            Ok(())
        },
        show: |o| Some(quoted(&o.key_template)),
        engine: Some(|o, c| {
            // Validated by `SyncOptions::resolve` before any engine is built.
            if let Ok(template) = KeyTemplate::parse(&o.key_template) {
                c.key_template = template;
            }
        }),
    },
    OptionSpec {
        name: "write-timeout",
        value_name: Some("SECONDS"),
        default: DefaultValue::Text("2.0"),
        help: "Seconds a write may wait for the Data-Service's answer",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.write_timeout = seconds(v)?;
            Ok(())
        },
        show: |o| Some(secs(o.write_timeout)),
        engine: None,
    },
    OptionSpec {
        name: "source-timeout",
        value_name: Some("SECONDS"),
        default: DefaultValue::Text("5.0"),
        help: "Seconds a fetch of the polling service may take",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.source_timeout = seconds(v)?;
            Ok(())
        },
        show: |o| Some(secs(o.source_timeout)),
        engine: None,
    },
    OptionSpec {
        name: "max-body-bytes",
        value_name: Some("BYTES"),
        default: DefaultValue::Text("16777216"),
        help: "Largest polling service body accepted, in bytes",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.max_body_bytes = integer(v)?;
            Ok(())
        },
        show: |o| Some(o.max_body_bytes.to_string()),
        engine: None,
    },
    OptionSpec {
        name: "max-connections",
        value_name: Some("N"),
        default: DefaultValue::Text("4"),
        help: "Data-Service connections open at once (its listen backlog is 5)",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.max_connections = integer_in(v, 1, MAX_CONNECTIONS)?;
            Ok(())
        },
        show: |o| Some(o.max_connections.to_string()),
        engine: None,
    },
    OptionSpec {
        name: "shutdown-timeout",
        value_name: Some("SECONDS"),
        default: DefaultValue::Text("5.0"),
        help: "Seconds SIGTERM/SIGINT waits for in-flight writes before exiting",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.shutdown_timeout = seconds_or_zero(v)?;
            Ok(())
        },
        show: |o| Some(secs(o.shutdown_timeout)),
        engine: None,
    },
    OptionSpec {
        name: "dataservice-url",
        value_name: Some("URL"),
        default: DefaultValue::Text(DEFAULT_DATASERVICE_URL),
        help: "Data-Service HTTP API, for registry checks and ids; 'off': write every value \
               by key",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.dataservice_url = (v != "off").then(|| v.to_owned());
            Ok(())
        },
        show: |o| Some(quoted(o.dataservice_url.as_deref().unwrap_or("off"))),
        engine: Some(|o, c| c.registry_checks = o.dataservice_url.is_some()),
    },
    OptionSpec {
        name: "register",
        value_name: Some("MODE"),
        default: DefaultValue::Computed(|c| c.register.name().to_owned()),
        help: "Keys missing from the Data-Service: 'off' reports them (their writes are \
               dropped there), 'missing' registers them (numbers as float, or a rule's \
               data-type)",
        choices: &[
            ("off", "Report unregistered keys; register nothing"),
            ("missing", "Register missing keys"),
        ],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.register = one_of(v, &RegisterMode::ALL, RegisterMode::name)?;
            Ok(())
        },
        show: |o| Some(quoted(o.register.name())),
        engine: Some(|o, c| c.register = o.register),
    },
    OptionSpec {
        name: "delivery",
        value_name: Some("MODE"),
        default: DefaultValue::Computed(|c| c.delivery.name().to_owned()),
        help: "'bulk': bulk_write_by_id for tags with ids, write for the others; 'write': \
               one write by key per tag",
        choices: &[
            ("bulk", "bulk_write_by_id where ids are known"),
            ("write", "One write by key per tag"),
        ],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.delivery = one_of(v, &DeliveryMode::ALL, DeliveryMode::name)?;
            Ok(())
        },
        show: |o| Some(quoted(o.delivery.name())),
        engine: Some(|o, c| c.delivery = o.delivery),
    },
    OptionSpec {
        name: "bulk-max-bytes",
        value_name: Some("BYTES"),
        default: DefaultValue::Computed(|c| c.bulk_max_bytes.to_string()),
        help: "Largest bulk_write_by_id line, in bytes",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.bulk_max_bytes = integer(v)?;
            Ok(())
        },
        show: |o| Some(o.bulk_max_bytes.to_string()),
        engine: Some(|o, c| c.bulk_max_bytes = o.bulk_max_bytes),
    },
    OptionSpec {
        name: "bulk-in-flight",
        value_name: Some("N"),
        default: DefaultValue::Computed(|c| c.bulk_in_flight.to_string()),
        help: "Most bulk_write_by_id lines in flight at once (1-16)",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.bulk_in_flight = integer(v)?;
            Ok(())
        },
        show: |o| Some(o.bulk_in_flight.to_string()),
        engine: Some(|o, c| c.bulk_in_flight = o.bulk_in_flight),
    },
    OptionSpec {
        name: "heartbeat",
        value_name: Some("SECONDS"),
        default: DefaultValue::Computed(|c| core_secs(c.heartbeat)),
        help: "Seconds after which a value the Data-Service already has is sent again",
        choices: &[],
        env: None,
        reload: Reload::Applies,
        set: |o, v| {
            o.heartbeat = seconds(v)?;
            Ok(())
        },
        show: |o| Some(secs(o.heartbeat)),
        engine: Some(|o, c| c.heartbeat = core_duration(o.heartbeat)),
    },
    OptionSpec {
        name: "max-age",
        value_name: Some("SECONDS"),
        default: DefaultValue::Computed(|c| c.max_age.map_or_else(|| "off".into(), core_secs)),
        help: "Seconds a reading's source timestamp may stand still before the tag is stale \
               (not heartbeated or rewritten until it advances); 'off': never",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.max_age = if v == "off" {
                None
            } else {
                Some(seconds(v).map_err(|e| format!("{e} (or 'off')"))?)
            };
            Ok(())
        },
        show: |o| Some(o.max_age.map_or_else(|| quoted("off"), secs)),
        engine: Some(|o, c| c.max_age = o.max_age.map(core_duration)),
    },
    OptionSpec {
        name: "max-tags",
        value_name: Some("N"),
        default: DefaultValue::Computed(|_| DEFAULT_MAX_TAGS.to_string()),
        help: "Most tags synced; the table is sized once at start (memory is used only as \
               tags come: about 200 bytes each)",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.max_tags = integer(v)?;
            Ok(())
        },
        show: |o| Some(o.max_tags.to_string()),
        engine: None,
    },
    OptionSpec {
        name: "status-listen",
        value_name: Some("ADDR"),
        default: DefaultValue::Computed(|_| DEFAULT_STATUS_LISTEN.to_string()),
        help: "Status HTTP server (metrics, health, API, web page): ADDRESS:PORT or 'off'",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.status_listen = listen_address(v)?;
            Ok(())
        },
        show: |o| {
            Some(quoted(
                &o.status_listen.map_or("off".into(), |a| a.to_string()),
            ))
        },
        engine: None,
    },
    OptionSpec {
        name: "health-cycles",
        value_name: Some("N"),
        default: DefaultValue::Text("3"),
        help: "/health answers 200 while both peers worked within this many intervals",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.health_cycles = integer_in(v, 1, 1000)?;
            Ok(())
        },
        show: |o| Some(o.health_cycles.to_string()),
        engine: None,
    },
    OptionSpec {
        name: "backlog",
        value_name: Some("POLICY"),
        default: DefaultValue::Computed(|c| c.backlog.name().to_owned()),
        help: "Undelivered changes: 'latest' keeps the newest value of each tag; 'history' \
               keeps every change, in order, in --backlog-bytes of memory",
        choices: &[
            ("latest", "The newest value of each tag"),
            ("history", "Every change, in order"),
        ],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.backlog = one_of(v, &BacklogPolicy::ALL, BacklogPolicy::name)?;
            Ok(())
        },
        show: |o| Some(quoted(o.backlog.name())),
        engine: Some(|o, c| c.backlog = o.backlog),
    },
    OptionSpec {
        name: "backlog-bytes",
        value_name: Some("BYTES"),
        default: DefaultValue::Text("4194304"),
        help: "Memory for the history backlog (a numeric change takes 37 bytes)",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.backlog_bytes = integer(v)?;
            Ok(())
        },
        show: |o| Some(o.backlog_bytes.to_string()),
        engine: None,
    },
    OptionSpec {
        name: "replay-rate",
        value_name: Some("N"),
        default: DefaultValue::Computed(|c| c.replay_rate.to_string()),
        help: "History: changes from earlier cycles sent per second at most, so that a long \
               backlog does not hold up live values",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.replay_rate = integer(v)?;
            Ok(())
        },
        show: |o| Some(o.replay_rate.to_string()),
        engine: Some(|o, c| c.replay_rate = o.replay_rate),
    },
    OptionSpec {
        name: "max-drain",
        value_name: Some("SECONDS"),
        default: DefaultValue::Unset("1.5 intervals"),
        help: "History: the longest the waiting changes may take to reach the Data-Service, \
               at the rate it takes them, before those that newer ones of their tag follow \
               are dropped (default: 1.5 intervals, so that live values arrive within two)",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.max_drain = Some(seconds(v)?);
            Ok(())
        },
        show: |o| o.max_drain.map(secs),
        engine: Some(|o, c| c.max_drain = o.max_drain.map(core_duration)),
    },
    OptionSpec {
        name: "spool-dir",
        value_name: Some("DIR"),
        default: DefaultValue::Unset("off"),
        help: "History: keep undelivered changes in this directory across restarts (e.g. \
               /var/lib/dataservice-sync, systemd's StateDirectory)",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            if v.is_empty() {
                return Err("the path is empty".into());
            }
            o.spool_dir = Some(PathBuf::from(v));
            Ok(())
        },
        show: |o| {
            o.spool_dir
                .as_ref()
                .map(|dir| quoted(&dir.display().to_string()))
        },
        engine: Some(|o, c| c.spool = o.spool_dir.is_some()),
    },
    OptionSpec {
        name: "spool-max-bytes",
        value_name: Some("BYTES"),
        default: DefaultValue::Text("67108864"),
        help: "Most bytes the spool may take; past it the oldest segment goes",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.spool_max_bytes = integer(v)?;
            Ok(())
        },
        show: |o| Some(o.spool_max_bytes.to_string()),
        engine: None,
    },
    OptionSpec {
        name: "spool-sync",
        value_name: Some("WHEN"),
        default: DefaultValue::Text("1000"),
        help: "When spooled changes are forced to disk: 'always', 'never' (the kernel's \
               write-back), or every MILLISECONDS",
        choices: &[],
        env: None,
        reload: Reload::AtRestart,
        set: |o, v| {
            o.spool_sync = spool_sync(v)?;
            Ok(())
        },
        show: |o| {
            Some(quoted(&match o.spool_sync {
                SpoolSync::Always => "always".to_owned(),
                SpoolSync::Never => "never".to_owned(),
                SpoolSync::Every(d) => d.as_millis().to_string(),
            }))
        },
        engine: None,
    },
];

impl Default for SyncOptions {
    /// Every option's default from the table.
    fn default() -> Self {
        let mut options = SyncOptions::unset();
        for spec in OPTIONS {
            if let Some(text) = spec.default_text() {
                // A default the table cannot read would fail its tests.
                let _ = (spec.set)(&mut options, &text);
            }
        }
        options
    }
}

/// The engine's settings for `options`: its defaults, then every option's.
pub fn engine_config(options: &SyncOptions) -> EngineConfig {
    let mut config = engine_defaults();
    for spec in OPTIONS {
        if let Some(apply) = spec.engine {
            apply(options, &mut config);
        }
    }
    config.rules = (*options.rules).clone();
    config
}

/// The options whose value differs between `old` and `new` and that a
/// reload does not apply.
pub fn changed_at_restart(old: &SyncOptions, new: &SyncOptions) -> Vec<&'static str> {
    OPTIONS
        .iter()
        .filter(|spec| spec.reload == Reload::AtRestart && (spec.show)(old) != (spec.show)(new))
        .map(|spec| spec.name)
        .collect()
}
