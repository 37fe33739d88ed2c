//! How the engine behaves: the settings the runner builds from its options.

use crate::key::KeyTemplate;
use crate::rules::RuleSet;
use crate::time::Duration;

/// Whether keys missing from the Data-Service are registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterMode {
    /// Never register; report missing keys (their writes would be dropped).
    Off,
    /// Register missing keys with a data type inferred from the value.
    Missing,
}

/// What is kept of changes the Data-Service has not acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BacklogPolicy {
    /// One pending value per tag (the newest); never full.
    Latest,
    /// Every change, in order, in a bounded ring; when full the oldest is
    /// dropped and counted.
    History,
}

/// How values go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// `bulk_write_by_id` for tags with ids, `write` for the others.
    Bulk,
    /// One `write` by key per tag (what the Python service does).
    Write,
}

impl RegisterMode {
    /// Every mode.
    pub const ALL: [Self; 2] = [RegisterMode::Off, RegisterMode::Missing];

    /// The mode's name, as options and reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            RegisterMode::Off => "off",
            RegisterMode::Missing => "missing",
        }
    }
}

impl BacklogPolicy {
    /// Every policy.
    pub const ALL: [Self; 2] = [BacklogPolicy::Latest, BacklogPolicy::History];

    /// The policy's name, as options and reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            BacklogPolicy::Latest => "latest",
            BacklogPolicy::History => "history",
        }
    }
}

impl DeliveryMode {
    /// Every mode.
    pub const ALL: [Self; 2] = [DeliveryMode::Bulk, DeliveryMode::Write];

    /// The mode's name, as options and reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            DeliveryMode::Bulk => "bulk",
            DeliveryMode::Write => "write",
        }
    }
}

/// How the engine behaves; the runner builds it from the command line.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The sync interval.
    pub interval: Duration,
    /// How keys are built.
    pub key_template: KeyTemplate,
    /// Pause after the Data-Service's backlog turned a connection away.
    pub busy_pause: Duration,
    /// Backlog refusals in a row after which the Data-Service counts as down.
    pub busy_limit: u32,
    /// First retry delay after a failure; it doubles up to half the interval.
    pub backoff_initial: Duration,
    /// Re-send a value the Data-Service already has after this long.
    pub heartbeat: Duration,
    /// Whether missing keys are registered.
    pub register: RegisterMode,
    /// Bulk or one write per tag.
    pub delivery: DeliveryMode,
    /// Largest `bulk_write_by_id` line, and largest `/register/bulk` body.
    pub bulk_max_bytes: usize,
    /// Most `bulk_write_by_id` lines in flight at once (at least 1).
    pub bulk_in_flight: usize,
    /// Whether the Data-Service's HTTP API is used at all.
    pub registry_checks: bool,
    /// How long to wait before asking an unavailable HTTP API again.
    pub api_retry: Duration,
    /// What is kept of undelivered changes.
    pub backlog: BacklogPolicy,
    /// `history`: most changes from before the running cycle sent per
    /// second, so that a long backlog does not crowd out live values.
    pub replay_rate: u32,
    /// `history`: undelivered changes are handed out for a spool
    /// ([`Engine::poll_spool`](super::Engine::poll_spool)).
    pub spool: bool,
    /// Filters, mapping rules and validation.
    pub rules: RuleSet,
    /// A reading whose source timestamp has not advanced for this long (in
    /// the sync's own clock) is stale: neither heartbeated nor rewritten.
    /// `None`: never.
    pub max_age: Option<Duration>,
    /// `history`: the longest the waiting changes may take the Data-Service
    /// before those that newer ones of their tag follow are dropped
    /// (`None`: one and a half intervals, so that a value read now still
    /// arrives within two).
    pub max_drain: Option<Duration>,
    /// Each good reading's decision is an event ([`Event::Decision`](crate::event::Event::Decision)),
    /// while the event queue has room; the rest are counted.
    pub trace_decisions: bool,
}

/// The default `max_age`: a frozen source timestamp is stale after this.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(120);

impl EngineConfig {
    /// Defaults for `interval`.
    pub fn new(interval: Duration) -> Self {
        EngineConfig {
            interval,
            key_template: KeyTemplate::default(),
            busy_pause: Duration::from_millis(5),
            busy_limit: 200,
            backoff_initial: Duration::from_millis(100),
            heartbeat: Duration::from_secs(60),
            register: RegisterMode::Off,
            delivery: DeliveryMode::Bulk,
            bulk_max_bytes: 64 * 1024,
            bulk_in_flight: 2,
            registry_checks: true,
            api_retry: Duration::from_secs(30),
            backlog: BacklogPolicy::Latest,
            replay_rate: 5_000,
            spool: false,
            rules: RuleSet::default(),
            max_age: Some(DEFAULT_MAX_AGE),
            trace_decisions: false,
            max_drain: None,
        }
    }

    /// The replay budget of one cycle: `replay_rate` over one interval,
    /// at least one change.
    pub(super) fn replay_per_cycle(&self) -> u32 {
        let per_cycle = u64::from(self.replay_rate) * self.interval.total_millis() / 1000;
        u32::try_from(per_cycle).unwrap_or(u32::MAX).max(1)
    }

    pub(super) fn backoff_cap(&self) -> Duration {
        let half = Duration::from_millis(self.interval.total_millis() / 2);
        half.max(self.backoff_initial).min(Duration::from_secs(5))
    }
}
