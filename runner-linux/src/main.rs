//! The `dataservice-sync` binary.

use std::process::ExitCode;

use dataservice_sync::cli::{CheckCommand, CliError, Command, ConfigCommand};
use dataservice_sync::log::{Logger, Severity};
use dataservice_sync::{SyncOptions, SyncService, check, cli, effective, stats_command};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, rules) = match cli::parse(&args) {
        Ok(parsed) => parsed,
        Err(CliError::Clap(e)) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(CliError::Clap(e))
            if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            // `check` alone: its usage, as a usage error.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e @ CliError::Clap(_)) => {
            eprintln!("{} (see --help)", e.first_line());
            return ExitCode::from(2);
        }
        Err(CliError::File(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        #[cfg(feature = "demo")]
        Some(Command::Demo(args)) => dataservice_sync::demo::run(&args),
        #[cfg(not(feature = "demo"))]
        Some(Command::Demo(_)) => {
            eprintln!(
                "error: this build carries no simulated peers (a gateway build, without the `demo` feature). \
                 Run the demo from a source checkout (`cargo run -- demo`); on the gateway, \
                 `dataservice-sync check source` and `check ipc` try the real peers"
            );
            ExitCode::from(2)
        }
        Some(Command::Stats(stats)) => {
            let address = match (stats.status_address, &stats.config) {
                (Some(address), _) => address,
                (None, None) => dataservice_sync::options::DEFAULT_STATUS_LISTEN,
                (None, Some(path)) => match configured(&args[0], path) {
                    Ok((options, _)) => match options.status_listen {
                        Some(listen) => stats_command::reachable(listen),
                        None => {
                            eprintln!("error: {}: the status server is off", path.display());
                            return ExitCode::from(2);
                        }
                    },
                    Err(code) => return code,
                },
            };
            stats_command::run(address, stats.json)
        }
        Some(Command::Config(ConfigCommand::Check { path, quiet })) => {
            config_check(&args[0], &path, quiet)
        }
        Some(Command::Check(CheckCommand::Ipc {
            socket_path,
            write,
            key,
            value,
        })) => {
            let probe = if write {
                check::IpcProbe::Write { key, value }
            } else {
                check::IpcProbe::ReadOnly
            };
            check::report(check::ipc(&socket_path, &probe))
        }
        Some(Command::Check(CheckCommand::Source { source, config })) => match config {
            None => check::report(check::source(
                source
                    .as_deref()
                    .unwrap_or(dataservice_sync::options::DEFAULT_SOURCE),
            )),
            Some(path) => match configured(&args[0], &path) {
                Ok((options, template)) => check::report(check::source_decisions(
                    source.as_deref().unwrap_or(&options.source),
                    &template,
                    &options.rules,
                )),
                Err(code) => code,
            },
        },
        Some(Command::Check(CheckCommand::Dataservice { dataservice_url })) => {
            check::report(check::dataservice(&dataservice_url))
        }
        None => run(cli.run.to_options(rules, args)),
    }
}

/// The options of configuration file `path`, validated, and its key
/// template; an error is printed, and its exit code returned.
fn configured(
    program: &std::ffi::OsString,
    path: &std::path::Path,
) -> Result<(SyncOptions, dataservice_sync_core::KeyTemplate), ExitCode> {
    let args = [program.clone(), "--config".into(), path.into()];
    match cli::parse(&args) {
        Ok((cli, rules)) => {
            let options = cli.run.to_options(rules, Vec::new());
            if let Err(e) = SyncService::new(options.clone()) {
                eprintln!("error: {}: {e}", path.display());
                return Err(ExitCode::from(2));
            }
            // Checked by SyncService::new.
            let template = dataservice_sync_core::KeyTemplate::parse(&options.key_template)
                .unwrap_or_default();
            Ok((options, template))
        }
        Err(e @ CliError::Clap(_)) => {
            eprintln!("{}", e.first_line());
            Err(ExitCode::from(2))
        }
        Err(CliError::File(e)) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// `config check PATH`: the file merged over the defaults, validated and
/// printed as the effective configuration.
fn config_check(program: &std::ffi::OsString, path: &std::path::Path, quiet: bool) -> ExitCode {
    let options = match configured(program, path) {
        Ok((options, _)) => options,
        Err(code) => return code,
    };
    if !quiet {
        dataservice_sync::print_stdout(&effective::to_toml(&options));
    }
    ExitCode::SUCCESS
}

fn run(options: SyncOptions) -> ExitCode {
    let log = Logger::new(options.log_severity());
    let service = match SyncService::new(options) {
        Ok(service) => service,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match service.run_until_signal() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log.line(Severity::Fatal, format_args!("event loop failed: {e}"));
            ExitCode::from(1)
        }
    }
}
