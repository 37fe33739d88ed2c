//! The `dataservice-sync` binary.

use std::process::ExitCode;

use clap::Parser;
use dataservice_sync::cli::{Cli, Command};
use dataservice_sync::log::{Logger, Severity};
use dataservice_sync::{SyncService, demo, stats_command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, not clap's usage block: it lands in a journal.
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("{first} (see --help)");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::Stats(args)) => stats_command::run(args.status_address, args.json),
        None => run(&cli),
    }
}

fn run(cli: &Cli) -> ExitCode {
    let options = cli.run.to_options();
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
