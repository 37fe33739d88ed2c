//! The service's settings, as the library takes them and as the command
//! line fills them in, validated once at start.

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use dataservice_sync_core::rules::RuleSet;
use dataservice_sync_core::{
    BacklogPolicy, DeliveryMode, Duration as CoreDuration, KeyTemplate, RegisterMode,
};

use crate::endpoint::HttpUrl;
use crate::log::Severity;
use crate::spool::SpoolSync;

/// The default Data-Service socket (the seed's).
pub const DEFAULT_SOCKET_PATH: &str = "/tmp/dataservice.sock";
/// The default polling service endpoint.
pub const DEFAULT_SOURCE: &str = "http://127.0.0.1:8000/deploy/api/io/polled-values";
/// The default Data-Service HTTP API.
pub const DEFAULT_DATASERVICE_URL: &str = "http://127.0.0.1:8080";

/// The default `--max-tags`: twice the largest gateway configurations seen.
pub const DEFAULT_MAX_TAGS: usize = 32_768;
/// The largest `--max-tags`.
pub const MAX_MAX_TAGS: usize = 1_000_000;

/// The status server's default address: loopback only.
pub const DEFAULT_STATUS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9108));

/// Everything a [`SyncService`](crate::SyncService) is built from.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncOptions {
    /// The Data-Service IPC socket.
    pub socket_path: PathBuf,
    /// Time between cycles.
    pub interval: Duration,
    /// Keep only fatal errors in the log.
    pub no_logging: bool,
    /// The quietest lines logged (`--no-logging` wins: fatal only).
    pub log_level: Severity,
    /// Time between statistics lines (zero: none).
    pub stats_interval: Duration,
    /// The polling service URL (`http://…` or `http+unix://…`).
    pub source: String,
    /// How keys are built, e.g. `{device}.{tag}` or `{device}:{tag}`.
    pub key_template: String,
    /// How long a write may wait for its answer.
    pub write_timeout: Duration,
    /// How long a fetch of the polling service may take.
    pub source_timeout: Duration,
    /// Largest polling service body accepted.
    pub max_body_bytes: usize,
    /// Data-Service connections open at once (its listen backlog is 5).
    pub max_connections: usize,
    /// How long SIGTERM/SIGINT waits for in-flight writes.
    pub shutdown_timeout: Duration,
    /// The Data-Service HTTP API (registry checks), or `None` for none:
    /// then every value is written by key.
    pub dataservice_url: Option<String>,
    /// Whether keys missing from the Data-Service are registered.
    pub register: RegisterMode,
    /// `bulk_write_by_id` where ids are known, or one `write` per tag.
    pub delivery: DeliveryMode,
    /// Largest `bulk_write_by_id` line (and `/register/bulk` body), in bytes.
    pub bulk_max_bytes: usize,
    /// Most `bulk_write_by_id` lines in flight at once.
    pub bulk_in_flight: usize,
    /// Re-send a value the Data-Service already has after this long.
    pub heartbeat: Duration,
    /// A tag whose source timestamp stood still this long is stale
    /// (`None`: never).
    pub max_age: Option<Duration>,
    /// Most tags in the tag table.
    pub max_tags: usize,
    /// Where the status HTTP server listens (`None`: no server).
    pub status_listen: Option<SocketAddr>,
    /// `/health` is 200 when both peers worked within this many intervals.
    pub health_cycles: u32,
    /// What is kept of undelivered changes.
    pub backlog: BacklogPolicy,
    /// Memory for the `history` backlog.
    pub backlog_bytes: usize,
    /// `history`: changes from earlier cycles sent per second at most.
    pub replay_rate: u32,
    /// `history`: how long the waiting changes may take to drain before
    /// superseded ones are dropped (`None`: 1.5 intervals).
    pub max_drain: Option<Duration>,
    /// Where undelivered `history` changes are kept across restarts.
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool's files may take.
    pub spool_max_bytes: u64,
    /// When spooled changes are forced to the disk.
    pub spool_sync: SpoolSync,
    /// Filters, mapping rules and validation (boxed: 16 KB, and options
    /// pass by value through start-up, whose stack pages stay resident).
    pub rules: Box<RuleSet>,
    /// The `--config` file, reloaded on SIGHUP.
    pub config_file: Option<PathBuf>,
    /// The command line it was merged with (program name first), for the
    /// reload.
    pub command_line: Vec<OsString>,
}

impl SyncOptions {
    /// The fields before any option is applied: what a table entry without
    /// a default leaves.
    pub(crate) fn unset() -> Self {
        SyncOptions {
            socket_path: PathBuf::new(),
            interval: Duration::ZERO,
            no_logging: false,
            log_level: Severity::Info,
            stats_interval: Duration::ZERO,
            source: String::new(),
            key_template: String::new(),
            write_timeout: Duration::ZERO,
            source_timeout: Duration::ZERO,
            max_body_bytes: 0,
            max_connections: 0,
            shutdown_timeout: Duration::ZERO,
            dataservice_url: None,
            register: RegisterMode::Off,
            delivery: DeliveryMode::Bulk,
            bulk_max_bytes: 0,
            bulk_in_flight: 0,
            heartbeat: Duration::ZERO,
            max_age: None,
            max_tags: 0,
            status_listen: None,
            health_cycles: 0,
            backlog: BacklogPolicy::Latest,
            backlog_bytes: 0,
            replay_rate: 0,
            max_drain: None,
            spool_dir: None,
            spool_max_bytes: 0,
            spool_sync: SpoolSync::Never,
            rules: Box::default(),
            config_file: None,
            command_line: Vec::new(),
        }
    }
}

/// A setting that cannot be used; the message names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Settings after validation.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub options: SyncOptions,
    pub source: HttpUrl,
    pub api: Option<HttpUrl>,
    pub template: KeyTemplate,
}

/// Largest number of connections: the engine's in-flight limit.
pub const MAX_CONNECTIONS: usize = dataservice_sync_core::config::MAX_IN_FLIGHT;

impl SyncOptions {
    /// The quietest lines the log keeps.
    pub fn log_severity(&self) -> Severity {
        if self.no_logging {
            Severity::Fatal
        } else {
            self.log_level
        }
    }

    pub(crate) fn resolve(&self) -> Result<Resolved, ConfigError> {
        let positive = |name: &str, value: Duration, min: Duration| {
            if value < min {
                Err(ConfigError(format!(
                    "{name} must be at least {} s",
                    min.as_secs_f64()
                )))
            } else {
                Ok(())
            }
        };
        positive("--interval", self.interval, Duration::from_millis(10))?;
        positive(
            "--write-timeout",
            self.write_timeout,
            Duration::from_millis(10),
        )?;
        positive(
            "--source-timeout",
            self.source_timeout,
            Duration::from_millis(10),
        )?;
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(ConfigError(format!(
                "--max-connections must be between 1 and {MAX_CONNECTIONS}"
            )));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError("--max-body-bytes must be at least 1024".into()));
        }
        if self.socket_path.as_os_str().is_empty() {
            return Err(ConfigError("--socket-path must not be empty".into()));
        }
        positive("--heartbeat", self.heartbeat, Duration::from_millis(10))?;
        if self.bulk_max_bytes < 4096 {
            return Err(ConfigError("--bulk-max-bytes must be at least 4096".into()));
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.bulk_in_flight) {
            return Err(ConfigError(format!(
                "--bulk-in-flight must be between 1 and {MAX_CONNECTIONS}"
            )));
        }
        if self.spool_dir.is_some() && self.backlog != BacklogPolicy::History {
            return Err(ConfigError(
                "--spool-dir needs --backlog history (with 'latest' only the newest value of a tag \
                 matters, and the polling service has it again after a restart)"
                    .into(),
            ));
        }
        if !(4096..=1 << 30).contains(&self.backlog_bytes) {
            return Err(ConfigError(
                "--backlog-bytes must be between 4096 and 1073741824".into(),
            ));
        }
        if self
            .max_age
            .is_some_and(|age| age > Duration::from_secs(86_400))
        {
            return Err(ConfigError(
                "--max-age must be at most 86400 s (one day) or 'off'".into(),
            ));
        }
        if !(1..=MAX_MAX_TAGS).contains(&self.max_tags) {
            return Err(ConfigError(format!(
                "--max-tags must be between 1 and {MAX_MAX_TAGS}"
            )));
        }
        if self.replay_rate == 0 {
            return Err(ConfigError("--replay-rate must be at least 1".into()));
        }
        if self.spool_max_bytes < 64 * 1024 {
            return Err(ConfigError(
                "--spool-max-bytes must be at least 65536".into(),
            ));
        }
        if !(1..=1000).contains(&self.health_cycles) {
            return Err(ConfigError(
                "--health-cycles must be between 1 and 1000".into(),
            ));
        }
        let source =
            HttpUrl::parse(&self.source).map_err(|e| ConfigError(format!("--source: {e}")))?;
        let api = match &self.dataservice_url {
            Some(url) => Some(
                HttpUrl::parse(url).map_err(|e| ConfigError(format!("--dataservice-url: {e}")))?,
            ),
            None => None,
        };
        let template = KeyTemplate::parse(&self.key_template)
            .map_err(|e| ConfigError(format!("--key-template {:?}: {e}", self.key_template)))?;
        Ok(Resolved {
            options: self.clone(),
            source,
            api,
            template,
        })
    }
}

/// A `std` duration as the core's milliseconds.
pub(crate) fn core_duration(d: Duration) -> CoreDuration {
    CoreDuration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)
}
