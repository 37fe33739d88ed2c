//! The command line: the Python service's flags, same names and defaults,
//! plus this service's own.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use dataservice_sync_core::rules::RuleSet;
use dataservice_sync_core::{BacklogPolicy, DeliveryMode, RegisterMode};

use crate::config_file;
use crate::log::Severity;
use crate::options::{
    DEFAULT_DATASERVICE_URL, DEFAULT_MAX_TAGS, DEFAULT_SOCKET_PATH, DEFAULT_SOURCE,
    MAX_CONNECTIONS, SyncOptions,
};
use crate::spool::SpoolSync;

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

/// The sync's settings.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A TOML file with any of these options (by flag name) and the rules;
    /// the command line overrides it; SIGHUP reloads it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data-Service IPC socket.
    #[arg(long, value_name = "PATH", env = "IPC_SOCKET_PATH", default_value = DEFAULT_SOCKET_PATH)]
    pub socket_path: PathBuf,
    /// Seconds between sync cycles.
    #[arg(long, value_name = "SECONDS", default_value = "1.0", value_parser = seconds)]
    pub interval: Duration,
    /// Log only fatal errors.
    #[arg(long)]
    pub no_logging: bool,
    /// The quietest lines logged: 'debug' adds each tag's decision.
    #[arg(long, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Seconds between statistics lines in the log (0: none).
    #[arg(long, value_name = "SEC", default_value = "60", value_parser = seconds_or_zero)]
    pub stats_interval: Duration,
    /// Polling service URL: http://HOST:PORT/PATH or http+unix://%2Fpath%2Fto.sock/PATH.
    #[arg(long, value_name = "URL", default_value = DEFAULT_SOURCE)]
    pub source: String,
    /// Data-Service key format; placeholders {device}, {tag}, {tag_id}.
    /// Older deployments use '{device}:{tag}'.
    #[arg(long, value_name = "TEMPLATE", default_value = dataservice_sync_core::DEFAULT_KEY_TEMPLATE)]
    pub key_template: String,
    /// Seconds a write may wait for the Data-Service's answer.
    #[arg(long, value_name = "SECONDS", default_value = "2.0", value_parser = seconds)]
    pub write_timeout: Duration,
    /// Seconds a fetch of the polling service may take.
    #[arg(long, value_name = "SECONDS", default_value = "5.0", value_parser = seconds)]
    pub source_timeout: Duration,
    /// Largest polling service body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Data-Service connections open at once (its listen backlog is 5).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=MAX_CONNECTIONS as i64))]
    pub max_connections: u8,
    /// Seconds SIGTERM/SIGINT waits for in-flight writes before exiting.
    #[arg(long, value_name = "SECONDS", default_value = "5.0", value_parser = seconds_or_zero)]
    pub shutdown_timeout: Duration,
    /// Data-Service HTTP API, for registry checks and ids; 'off': write every value by key.
    #[arg(long, value_name = "URL", default_value = DEFAULT_DATASERVICE_URL)]
    pub dataservice_url: String,
    /// Keys missing from the Data-Service: 'off' reports them (their writes
    /// are dropped there), 'missing' registers them (numbers as float, or a rule's data-type).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Register::Off)]
    pub register: Register,
    /// 'bulk': bulk_write_by_id for tags with ids, write for the others;
    /// 'write': one write by key per tag.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Delivery::Bulk)]
    pub delivery: Delivery,
    /// Largest bulk_write_by_id line, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub bulk_max_bytes: usize,
    /// Most bulk_write_by_id lines in flight at once (1-16).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub bulk_in_flight: usize,
    /// Seconds after which a value the Data-Service already has is sent again.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = seconds)]
    pub heartbeat: Duration,
    /// Seconds a reading's source timestamp may stand still before the tag
    /// is stale (not heartbeated or rewritten until it advances); 'off': never.
    #[arg(long, value_name = "SECONDS", default_value = "120", value_parser = max_age)]
    pub max_age: MaxAge,
    /// Most tags synced; the table is sized once at start (memory is used
    /// only as tags come: about 200 bytes each).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TAGS)]
    pub max_tags: usize,
    /// Status HTTP server (metrics, health, API, web page): ADDRESS:PORT or 'off'.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9108", value_parser = listen_address)]
    pub status_listen: ListenAddress,
    /// /health answers 200 while both peers worked within this many intervals.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub health_cycles: u32,
    /// Undelivered changes: 'latest' keeps the newest value of each tag;
    /// 'history' keeps every change, in order, in --backlog-bytes of memory.
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = Backlog::Latest)]
    pub backlog: Backlog,
    /// Memory for the history backlog (a numeric change takes 37 bytes).
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub backlog_bytes: usize,
    /// History: changes from earlier cycles sent per second at most, so
    /// that a long backlog does not hold up live values.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub replay_rate: u32,
    /// History: the longest the waiting changes may take to reach the
    /// Data-Service, at the rate it takes them, before those that newer
    /// ones of their tag follow are dropped (default: 1.5 intervals, so
    /// that live values arrive within two).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub max_drain: Option<Duration>,
    /// History: keep undelivered changes in this directory across restarts
    /// (e.g. /var/lib/dataservice-sync, systemd's StateDirectory).
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool may take; past it the oldest segment goes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub spool_max_bytes: u64,
    /// When spooled changes are forced to disk: 'always', 'never' (the
    /// kernel's write-back), or every MILLISECONDS.
    #[arg(long, value_name = "WHEN", default_value = "1000", value_parser = spool_sync)]
    pub spool_sync: SpoolSync,
}

/// `--backlog`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backlog {
    /// The newest value of each tag.
    Latest,
    /// Every change, in order.
    History,
}

fn spool_sync(text: &str) -> Result<SpoolSync, String> {
    match text {
        "always" => Ok(SpoolSync::Always),
        "never" => Ok(SpoolSync::Never),
        ms => match ms.parse::<u64>() {
            Ok(ms) if (1..=3_600_000).contains(&ms) => {
                Ok(SpoolSync::Every(Duration::from_millis(ms)))
            }
            _ => Err(format!(
                "{text:?} is not 'always', 'never' or 1..3600000 milliseconds"
            )),
        },
    }
}

fn json_value(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))
}

/// `--max-age`: seconds, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxAge(pub Option<Duration>);

fn max_age(text: &str) -> Result<MaxAge, String> {
    if text == "off" {
        return Ok(MaxAge(None));
    }
    seconds(text)
        .map(|d| MaxAge(Some(d)))
        .map_err(|e| format!("{e} (or 'off')"))
}

/// `--status-listen`: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddress(pub Option<SocketAddr>);

fn listen_address(text: &str) -> Result<ListenAddress, String> {
    if text == "off" {
        return Ok(ListenAddress(None));
    }
    text.parse::<SocketAddr>()
        .map(|a| ListenAddress(Some(a)))
        .map_err(|_| format!("{text:?} is not ADDRESS:PORT (e.g. 127.0.0.1:9108) or 'off'"))
}

/// `--log-level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Only what stops data.
    Error,
    /// And what degrades it.
    Warn,
    /// And every change of state.
    Info,
    /// And each tag's decision (as many per document as the log keeps up with).
    Debug,
}

/// `--register`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Register {
    /// Report unregistered keys; register nothing.
    Off,
    /// Register missing keys.
    Missing,
}

/// `--delivery`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Delivery {
    /// bulk_write_by_id where ids are known.
    Bulk,
    /// One write by key per tag.
    Write,
}

impl RunArgs {
    /// The library's options for these arguments, with the configuration
    /// file's `rules` and the whole `command_line` (read again on SIGHUP).
    pub fn to_options(&self, rules: Box<RuleSet>, command_line: Vec<OsString>) -> SyncOptions {
        SyncOptions {
            socket_path: self.socket_path.clone(),
            interval: self.interval,
            no_logging: self.no_logging,
            log_level: match self.log_level {
                LogLevel::Error => Severity::Error,
                LogLevel::Warn => Severity::Warn,
                LogLevel::Info => Severity::Info,
                LogLevel::Debug => Severity::Debug,
            },
            stats_interval: self.stats_interval,
            source: self.source.clone(),
            key_template: self.key_template.clone(),
            write_timeout: self.write_timeout,
            source_timeout: self.source_timeout,
            max_body_bytes: self.max_body_bytes,
            max_connections: usize::from(self.max_connections),
            shutdown_timeout: self.shutdown_timeout,
            dataservice_url: (self.dataservice_url != "off").then(|| self.dataservice_url.clone()),
            register: match self.register {
                Register::Off => RegisterMode::Off,
                Register::Missing => RegisterMode::Missing,
            },
            delivery: match self.delivery {
                Delivery::Bulk => DeliveryMode::Bulk,
                Delivery::Write => DeliveryMode::Write,
            },
            bulk_max_bytes: self.bulk_max_bytes,
            bulk_in_flight: self.bulk_in_flight,
            heartbeat: self.heartbeat,
            max_age: self.max_age.0,
            max_tags: self.max_tags,
            status_listen: self.status_listen.0,
            health_cycles: self.health_cycles,
            backlog: match self.backlog {
                Backlog::Latest => BacklogPolicy::Latest,
                Backlog::History => BacklogPolicy::History,
            },
            backlog_bytes: self.backlog_bytes,
            replay_rate: self.replay_rate,
            max_drain: self.max_drain,
            spool_dir: self.spool_dir.clone(),
            spool_max_bytes: self.spool_max_bytes,
            spool_sync: self.spool_sync,
            rules,
            config_file: self.config.clone(),
            command_line,
        }
    }
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

fn seconds_or_zero(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !value.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&value) {
        return Err(format!("{text:?} is not between 0 and one year of seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value = seconds_or_zero(text)?;
    if value < Duration::from_millis(10) {
        return Err(format!("{text:?} is less than 0.01 seconds"));
    }
    Ok(value)
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
        assert_eq!(cli.run.interval, Duration::from_millis(250));
    }
}
