//! The `dataservice-sync` binary.

use std::process::ExitCode;

use dataservice_sync::cli::{CheckCommand, CliError, Command, ConfigCommand};
use dataservice_sync::log::{Logger, Severity};
use dataservice_sync::{SyncOptions, SyncService, check, cli, demo, effective, stats_command};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, rules) = match cli::parse(&args) {
        Ok(parsed) => parsed,
        Err(CliError::Clap(e)) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
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
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::Stats(args)) => stats_command::run(args.status_address, args.json),
        Some(Command::Config(ConfigCommand::Check { path, quiet })) => {
            config_check(&args[0], &path, quiet)
        }
        Some(Command::Check(CheckCommand::Ipc {
            socket_path,
            key,
            value,
        })) => check::report(check::ipc(&socket_path, &key, &value)),
        Some(Command::Check(CheckCommand::Source { source })) => {
            check::report(check::source(&source))
        }
        Some(Command::Check(CheckCommand::Dataservice { dataservice_url })) => {
            check::report(check::dataservice(&dataservice_url))
        }
        None => run(cli.run.to_options(rules, args)),
    }
}

/// `config check PATH`: the file merged over the defaults, validated and
/// printed as the effective configuration.
fn config_check(program: &std::ffi::OsString, path: &std::path::Path, quiet: bool) -> ExitCode {
    let args = [program.clone(), "--config".into(), path.into()];
    match cli::parse(&args) {
        Ok((cli, rules)) => {
            let options = cli.run.to_options(rules, Vec::new());
            if let Err(e) = SyncService::new(options.clone()) {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
            if !quiet {
                print!("{}", effective::to_toml(&options));
            }
            ExitCode::SUCCESS
        }
        Err(e @ CliError::Clap(_)) => {
            eprintln!("{}", e.first_line());
            ExitCode::from(2)
        }
        Err(CliError::File(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(options: SyncOptions) -> ExitCode {
    let log = Logger::new(options.no_logging);
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
