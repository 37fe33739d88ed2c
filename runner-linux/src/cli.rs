//! The command line: the Python service's flags, same names and defaults,
//! plus this service's own.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use dataservice_sync_core::rules::RuleSet;

use crate::config_file;
use crate::option_table::{self, OPTIONS, OptionSpec, seconds, seconds_or_zero};
use crate::options::{DEFAULT_DATASERVICE_URL, DEFAULT_SOCKET_PATH, SyncOptions};

/// The version, with the commit, target and build date (`--version`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DSS_COMMIT"),
    ", ",
    env!("DSS_TARGET"),
    ", built ",
    env!("DSS_BUILD_DATE"),
    ")"
);

/// Syncs IO tag values from the gateway's polling service into the local Data-Service.
#[derive(Debug, Parser)]
#[command(
    name = "dataservice-sync",
    version = VERSION,
    about,
    args_conflicts_with_subcommands = true,
    args_override_self = true
)]
pub struct Cli {
    /// Run the sync (the default when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
    /// Something other than running the sync.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start simulated peers on temporary sockets and sync between them.
    // A gateway build has no simulated peers: the command stays, so that
    // it can say so, but out of the help.
    #[cfg_attr(not(feature = "demo"), command(hide = true))]
    Demo(DemoArgs),
    /// Print the figures of a running service (from its status server).
    Stats(StatsArgs),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check a peer by hand: the Data-Service socket, the polling service,
    /// the Data-Service HTTP API.
    #[command(subcommand)]
    Check(CheckCommand),
}

/// `config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a file and print the effective configuration (exit 0, or 2
    /// with the file, line and field of the first error).
    Check {
        /// The TOML file.
        path: PathBuf,
        /// Print nothing when the file is fine (for systemd's ExecStartPre).
        #[arg(long, short)]
        quiet: bool,
    },
}

/// `check …`. Exit codes: 0 fine, 1 the peer answered something wrong,
/// 3 the peer could not be reached.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Probe the IPC socket (nothing written; --write writes a test value) and print the reply.
    Ipc {
        /// Data-Service IPC socket.
        #[arg(long, value_name = "PATH", env = "IPC_SOCKET_PATH", default_value = DEFAULT_SOCKET_PATH)]
        socket_path: PathBuf,
        /// Write a test value (by default nothing is written: the probe is a
        /// request the Data-Service answers without touching its store).
        #[arg(long)]
        write: bool,
        /// With --write: the key written.
        #[arg(long, default_value = "dataservice_sync.check", requires = "write")]
        key: String,
        /// With --write: the value written, as JSON.
        #[arg(long, default_value = "1", value_parser = json_value, requires = "write")]
        value: serde_json::Value,
    },
    /// Fetch the polling service once and count devices, tags, good and
    /// failed reads.
    Source {
        /// Polling service URL (default: the configuration file's, else
        /// the service's default).
        #[arg(long, value_name = "URL")]
        source: Option<String>,
        /// Show, tag by tag, what this configuration file would write:
        /// key, value, type, rule, decision.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Ask the Data-Service HTTP API for its health and its keys.
    Dataservice {
        /// Data-Service HTTP API.
        #[arg(long, value_name = "URL", default_value = DEFAULT_DATASERVICE_URL)]
        dataservice_url: String,
    },
}

/// `stats` settings.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The service's status server (default: the configuration file's
    /// status-listen, else 127.0.0.1:9108).
    #[arg(long, value_name = "ADDR")]
    pub status_address: Option<SocketAddr>,
    /// The service's configuration file, to find its status server.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print the raw /api/stats JSON.
    #[arg(long)]
    pub json: bool,
}

/// The sync's settings: `--config` and every option of the
/// [option table](crate::option_table).
#[derive(Clone, Debug)]
pub struct RunArgs {
    /// The configuration file.
    pub config: Option<PathBuf>,
    options: SyncOptions,
}

impl RunArgs {
    /// The library's options for these arguments, with the configuration
    /// file's `rules` and the whole `command_line` (read again on SIGHUP).
    pub fn to_options(&self, rules: Box<RuleSet>, command_line: Vec<OsString>) -> SyncOptions {
        SyncOptions {
            rules,
            config_file: self.config.clone(),
            command_line,
            ..self.options.clone()
        }
    }
}

impl Args for RunArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        let config = Arg::new("config")
            .long("config")
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .help(
                "A TOML file with any of these options (by flag name) and the rules; the \
                 command line overrides it; SIGHUP reloads it",
            );
        OPTIONS.iter().fold(command.arg(config), |command, spec| {
            command.arg(argument(spec))
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for RunArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        // clap gives every option with a default its value.
        let mut options = SyncOptions::unset();
        for spec in OPTIONS {
            let text = match spec.value_name {
                None => matches
                    .try_get_one::<bool>(spec.name)
                    .map(|given| given.map(bool::to_string)),
                Some(_) => matches
                    .try_get_one::<String>(spec.name)
                    .map(|given| given.cloned()),
            }
            .map_err(|e| clap::Error::raw(ErrorKind::ArgumentConflict, format!("{e}\n")))?;
            if let Some(text) = text {
                (spec.set)(&mut options, &text).map_err(|e| {
                    clap::Error::raw(
                        ErrorKind::ValueValidation,
                        format!("--{}: {e}\n", spec.name),
                    )
                })?;
            }
        }
        let config = matches
            .try_get_one::<PathBuf>("config")
            .map_err(|e| clap::Error::raw(ErrorKind::ArgumentConflict, format!("{e}\n")))?
            .cloned();
        Ok(RunArgs { config, options })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The command-line argument of one option, its value checked by the
/// table's own reader so that clap's error names the flag.
fn argument(spec: &OptionSpec) -> Arg {
    let arg = Arg::new(spec.name).long(spec.name).help(spec.help);
    let Some(value_name) = spec.value_name else {
        return arg.action(ArgAction::SetTrue);
    };
    let mut arg = arg.value_name(value_name).action(ArgAction::Set);
    arg = if spec.choices.is_empty() {
        let set = spec.set;
        arg.value_parser(move |text: &str| {
            set(&mut SyncOptions::unset(), text).map(|()| text.to_owned())
        })
    } else {
        arg.value_parser(PossibleValuesParser::new(
            spec.choices
                .iter()
                .map(|&(word, help)| PossibleValue::new(word).help(help)),
        ))
    };
    if let Some(default) = spec.default_text() {
        arg = arg.default_value(default);
    }
    if let Some(env) = spec.env {
        arg = arg.env(env);
    }
    arg
}

fn json_value(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))
}

/// The demo's `--status-listen`: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddress(pub Option<SocketAddr>);

fn listen_address(text: &str) -> Result<ListenAddress, String> {
    option_table::listen_address(text).map(ListenAddress)
}

/// The demo's settings.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated devices.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub devices: u32,
    /// Tags per device.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub tags: u32,
    /// Seconds to run (0: until Ctrl-C).
    #[arg(long, value_name = "SECONDS", default_value = "6", value_parser = seconds_or_zero)]
    pub duration: Duration,
    /// Seconds between sync cycles.
    #[arg(long, value_name = "SECONDS", default_value = "1.0", value_parser = seconds)]
    pub interval: Duration,
    /// The sync's status server (web page at http://ADDR/): ADDRESS:PORT or 'off'.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9108", value_parser = listen_address)]
    pub status_listen: ListenAddress,
}

/// A command line that cannot be used: the message, and whether it came
/// from the configuration file.
#[derive(Debug)]
pub enum CliError {
    /// clap's own error (help and version included).
    Clap(clap::Error),
    /// The configuration file, with file, line and field.
    File(String),
}

impl CliError {
    /// The error in one line, as a journal wants it: clap's message with
    /// its context (the argument missing, a similar argument, the possible
    /// values), without its usage block; or the file's message.
    pub fn first_line(&self) -> String {
        match self {
            CliError::Clap(e) => {
                let rendered = e.render().to_string();
                let mut line = String::new();
                for part in rendered
                    .lines()
                    .take_while(|l| !l.starts_with("Usage:"))
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                {
                    if !line.is_empty() {
                        line.push_str(if line.ends_with(':') { " " } else { "; " });
                    }
                    line.push_str(part);
                }
                if line.is_empty() {
                    line.push_str("error: invalid arguments");
                }
                line
            }
            CliError::File(e) => e.clone(),
        }
    }
}

/// Parses `args` (program name first), merging the `--config` file under
/// the command line: the file's options come first, so the command line's
/// win; `IPC_SOCKET_PATH` in the environment also beats the file.
pub fn parse(args: &[OsString]) -> Result<(Cli, Box<RuleSet>), CliError> {
    if std::env::var_os("IPC_SOCKET_PATH").is_some_and(|v| v.is_empty()) {
        return Err(CliError::File(
            "the environment variable IPC_SOCKET_PATH is set but empty: unset it, or set it to \
             the Data-Service's socket"
                .into(),
        ));
    }
    let cli = Cli::try_parse_from(args).map_err(CliError::Clap)?;
    let Some(path) = cli.run.config.clone().filter(|_| cli.command.is_none()) else {
        return Ok((cli, Box::default()));
    };
    let file = file_arguments(&path, args.first())?;
    let mut merged: Vec<OsString> = args.first().cloned().into_iter().collect();
    merged.extend(file.0);
    merged.extend(args.iter().skip(1).cloned());
    let cli = Cli::try_parse_from(&merged).map_err(CliError::Clap)?;
    Ok((cli, file.1))
}

/// The file's options as arguments, each checked alone so that an error
/// names its line; and its rules.
fn file_arguments(
    path: &Path,
    program: Option<&OsString>,
) -> Result<(Vec<OsString>, Box<RuleSet>), CliError> {
    let command = Cli::command();
    let flags: Vec<(String, bool)> = command
        .get_arguments()
        .filter_map(|a| Some((a.get_long()?.to_string(), a.get_action().takes_values())))
        .collect();
    let settings = config_file::load(path, &flags).map_err(|e| CliError::File(e.to_string()))?;
    let program = program
        .cloned()
        .unwrap_or_else(|| "dataservice-sync".into());
    let mut out = Vec::new();
    for (name, value, line) in settings.args {
        if name == "socket-path" && std::env::var_os("IPC_SOCKET_PATH").is_some() {
            continue;
        }
        let mut one = vec![program.clone(), format!("--{name}").into()];
        one.extend(value.map(OsString::from));
        if let Err(e) = Cli::try_parse_from(&one) {
            let first = CliError::Clap(e).first_line();
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            return Err(CliError::File(format!(
                "{}:{line}: {name}: {first}",
                path.display()
            )));
        }
        out.extend(one.into_iter().skip(1));
    }
    Ok((out, settings.rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_python_service() {
        let cli = Cli::try_parse_from(["dataservice-sync"]).unwrap();
        let options = cli.run.to_options(Box::default(), Vec::new());
        let expected = SyncOptions::default();
        if std::env::var_os("IPC_SOCKET_PATH").is_none() {
            assert_eq!(options, expected);
        }
        assert_eq!(options.interval, Duration::from_secs(1));
        assert_eq!(options.stats_interval, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["x", "--interval", "abc"][..],
            &["x", "--interval", "0"],
            &["x", "--interval", "NaN"],
            &["x", "--stats-interval", "-1"],
            &["x", "--max-connections", "17"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from([
            "x",
            "--interval",
            "0.25",
            "--key-template",
            "{device}:{tag}",
        ])
        .unwrap();
        assert_eq!(cli.run.options.interval, Duration::from_millis(250));
    }
}
