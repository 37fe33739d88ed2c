//! Statistics in fixed memory: counters named as operators read them (the
//! same names in logs, metrics and pages) and the last 100 errors.

use core::fmt::{self, Write};

use crate::config::{ERROR_MESSAGE_LEN, RECENT_ERRORS};
use crate::peer::{SinkError, SourceError};
use crate::reject::RejectReason;
use crate::text::Truncating;
use crate::time::{Duration, Instant};

/// One recent error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRecord {
    /// When it happened.
    pub at: Instant,
    /// What happened (cut at 120 bytes).
    pub message: heapless::String<ERROR_MESSAGE_LEN>,
}

/// Every counter the engine keeps.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Completed sync cycles.
    pub sync_cycles_total: u64,
    /// Completed registry checks: `/detailed` read, keys registered or ids
    /// fetched (at start, for new tags, and after the Data-Service
    /// restarted). They run beside the cycles.
    pub registry_checks_total: u64,
    /// Interval ticks that found the previous cycle still running.
    pub cycles_overrun_total: u64,
    /// Interval ticks that fetched nothing: a registry check that every tag
    /// waited for was running (at start, after a Data-Service restart),
    /// with `--backlog latest`. A cycle follows the check at once.
    pub cycles_skipped_total: u64,
    /// Writes the Data-Service acknowledged.
    pub writes_ok_total: u64,
    /// Write attempts that failed (refused, timed out, answered with an error).
    pub writes_failed_total: u64,
    /// Connections the Data-Service's backlog turned away (`EAGAIN`); retried.
    pub sink_busy_total: u64,
    /// Fetches of the polling service that failed.
    pub source_errors_total: u64,
    /// Bodies rejected whole (truncated, malformed, too deep).
    pub documents_rejected_total: u64,
    /// Good reads accepted.
    pub reads_good_total: u64,
    /// Reads the polling service marked as failed.
    pub reads_failed_total: u64,
    /// Entries rejected, by [`RejectReason`] (indexed by `RejectReason::index`).
    pub tags_rejected_total: [u64; RejectReason::ALL.len()],
    /// Good reads dropped because the tag table was full.
    pub tags_over_capacity_total: u64,
    /// Good reads not written: the Data-Service already had the value.
    pub writes_suppressed_total: u64,
    /// Values a newer reading replaced before they were written (`latest`
    /// keeps only the newest: while the Data-Service failed, or while a
    /// registry check held the tag).
    pub writes_superseded_total: u64,
    /// Unchanged values re-sent because their heartbeat was due.
    pub heartbeats_total: u64,
    /// `bulk_write_by_id` requests sent.
    pub bulk_requests_total: u64,
    /// Bulk updates answered `id not found`.
    pub ids_not_found_total: u64,
    /// Keys registered, or whose ids were fetched.
    pub registrations_total: u64,
    /// Keys whose registration failed.
    pub registrations_failed_total: u64,
    /// Failed requests to the Data-Service's HTTP API.
    pub api_errors_total: u64,
    /// Data-Service restarts detected.
    pub dataservice_restarts_total: u64,
    /// Events about single tags that did not fit in the event queue, summed
    /// up in an "and N more" line instead (their counters still count).
    pub events_dropped_total: u64,
    /// Undelivered changes dropped from a full `history` backlog.
    pub backlog_dropped_total: u64,
    /// Changes read back from the spool at start.
    pub replayed_total: u64,
    /// Entries the filters left out.
    pub tags_filtered_total: u64,
    /// Changes within a rule's deadband, not written.
    pub writes_deadband_total: u64,
    /// Changes held back by a rule's minimum interval.
    pub writes_deferred_total: u64,
    /// Tags whose registered data type would change their values (each
    /// reported once).
    pub type_mismatches_total: u64,
    /// Tags that went stale: their source timestamp stood still for
    /// `max_age`.
    pub tags_stale_total: u64,
    /// Good reads of stale tags, not written.
    pub writes_stale_total: u64,
    /// Configuration reloads applied (SIGHUP).
    pub config_reloads_total: u64,
    /// Configuration reloads refused (the old rules stayed).
    pub config_reload_failures_total: u64,
    /// Failed fetches by kind (indexed by `SourceError::kind_index`).
    pub source_errors_by_kind: [u64; SourceError::KINDS.len()],
    /// Failed IPC requests by kind (indexed by `SinkError::kind_index`),
    /// counting each request once, whatever number of updates it carried.
    pub sink_errors_by_kind: [u64; SinkError::KINDS.len()],
    /// Sum of every cycle's duration, in milliseconds.
    pub cycle_duration_total_ms: u64,
    /// Sum of every cycle's fetch, from the request to the body's end or
    /// the fetch's failure, in milliseconds: the rest of the cycles'
    /// time ([`Stats::cycle_duration_total_ms`]) went to delivery.
    pub fetch_duration_total_ms: u64,
    /// End of the last cycle whose fetch succeeded.
    pub last_sync_at: Option<Instant>,
    /// The last document the polling service delivered and that was applied.
    pub last_source_ok_at: Option<Instant>,
    /// The last answer from the Data-Service's socket.
    pub last_sink_ok_at: Option<Instant>,
    /// How long the last cycle took, fetch to last acknowledgement.
    pub last_cycle_duration: Duration,
    /// How long the last cycle's fetch took (the rest of it was delivery).
    pub last_fetch_duration: Duration,
    /// How long the last completed registry check took, from its start
    /// (when the cycle that wanted it had delivered) to its last answer.
    pub last_registry_check_duration: Duration,
    /// The last 100 errors, oldest first through `recent_errors.oldest_ordered()`.
    pub recent_errors: heapless::HistoryBuf<ErrorRecord, RECENT_ERRORS>,
    /// Durations of the last cycles, in milliseconds.
    pub cycle_durations: heapless::HistoryBuf<u32, CYCLE_HISTORY>,
    /// Every cycle's duration, counted by [`DURATION_BUCKETS_MS`] (a
    /// histogram: it adds up across gateways).
    pub cycle_duration_buckets: [u64; DURATION_BUCKETS_MS.len()],
    /// Every cycle's fetch duration, likewise.
    pub fetch_duration_buckets: [u64; DURATION_BUCKETS_MS.len()],
}

/// The histograms' upper bounds, in milliseconds (`+Inf` follows).
pub const DURATION_BUCKETS_MS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

fn count_in_bucket(buckets: &mut [u64; DURATION_BUCKETS_MS.len()], millis: u64) {
    if let Some(i) = DURATION_BUCKETS_MS
        .iter()
        .position(|&bound| millis <= bound)
    {
        buckets[i] += 1;
    }
}

/// How many cycle durations are kept for percentiles.
pub const CYCLE_HISTORY: usize = 1024;

impl Default for Stats {
    fn default() -> Self {
        Stats {
            sync_cycles_total: 0,
            registry_checks_total: 0,
            cycles_overrun_total: 0,
            cycles_skipped_total: 0,
            writes_ok_total: 0,
            writes_failed_total: 0,
            sink_busy_total: 0,
            source_errors_total: 0,
            documents_rejected_total: 0,
            reads_good_total: 0,
            reads_failed_total: 0,
            tags_rejected_total: [0; RejectReason::ALL.len()],
            tags_over_capacity_total: 0,
            writes_suppressed_total: 0,
            writes_superseded_total: 0,
            heartbeats_total: 0,
            bulk_requests_total: 0,
            ids_not_found_total: 0,
            registrations_total: 0,
            registrations_failed_total: 0,
            api_errors_total: 0,
            dataservice_restarts_total: 0,
            events_dropped_total: 0,
            backlog_dropped_total: 0,
            replayed_total: 0,
            tags_filtered_total: 0,
            writes_deadband_total: 0,
            writes_deferred_total: 0,
            type_mismatches_total: 0,
            tags_stale_total: 0,
            writes_stale_total: 0,
            config_reloads_total: 0,
            config_reload_failures_total: 0,
            source_errors_by_kind: [0; SourceError::KINDS.len()],
            sink_errors_by_kind: [0; SinkError::KINDS.len()],
            cycle_duration_total_ms: 0,
            fetch_duration_total_ms: 0,
            last_sync_at: None,
            last_source_ok_at: None,
            last_sink_ok_at: None,
            last_cycle_duration: Duration::ZERO,
            last_fetch_duration: Duration::ZERO,
            last_registry_check_duration: Duration::ZERO,
            recent_errors: heapless::HistoryBuf::new(),
            cycle_durations: heapless::HistoryBuf::new(),
            cycle_duration_buckets: [0; DURATION_BUCKETS_MS.len()],
            fetch_duration_buckets: [0; DURATION_BUCKETS_MS.len()],
        }
    }
}

impl Stats {
    /// Keeps `message` among the recent errors.
    pub fn record_error(&mut self, at: Instant, message: fmt::Arguments<'_>) {
        let mut text = heapless::String::new();
        Truncating::new(&mut text).write_fmt(message).ok();
        self.recent_errors.write(ErrorRecord { at, message: text });
    }

    /// Counts a completed cycle, kept for the percentiles, and the part
    /// of it its fetch took.
    pub fn record_cycle(&mut self, duration: Duration, fetch: Duration) {
        self.sync_cycles_total += 1;
        self.last_cycle_duration = duration;
        self.last_fetch_duration = fetch;
        self.cycle_duration_total_ms = self
            .cycle_duration_total_ms
            .saturating_add(duration.total_millis());
        self.fetch_duration_total_ms = self
            .fetch_duration_total_ms
            .saturating_add(fetch.total_millis());
        count_in_bucket(&mut self.cycle_duration_buckets, duration.total_millis());
        count_in_bucket(&mut self.fetch_duration_buckets, fetch.total_millis());
        let millis = u32::try_from(duration.total_millis()).unwrap_or(u32::MAX);
        self.cycle_durations.write(millis);
    }

    /// Counts a completed registry check.
    pub fn record_registry_check(&mut self, duration: Duration) {
        self.registry_checks_total += 1;
        self.last_registry_check_duration = duration;
    }

    /// The `percent` percentile (nearest rank) of the recent cycle
    /// durations, in milliseconds.
    pub fn cycle_percentile(&self, percent: u32) -> Option<u32> {
        let mut sorted: heapless::Vec<u32, CYCLE_HISTORY> = heapless::Vec::new();
        for &d in self.cycle_durations.as_slice() {
            sorted.push(d).ok();
        }
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        let rank = (sorted.len() * percent.min(100) as usize).div_ceil(100);
        sorted.get(rank.saturating_sub(1)).copied()
    }

    /// Entries rejected for any reason.
    pub fn tags_rejected_sum(&self) -> u64 {
        self.tags_rejected_total.iter().sum()
    }

    /// The count for one reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.tags_rejected_total[reason.index()]
    }
}

/// One counter: its name (the same in logs, metrics and `/api/stats`), what
/// it counts, and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// The name, ending in `_total`.
    pub name: &'static str,
    /// One line on what it counts (the metric's HELP).
    pub help: &'static str,
    /// Its value.
    pub value: u64,
}

impl Stats {
    /// Every unlabelled counter, in log order. The per-reason, per-kind
    /// counters are separate arrays.
    pub fn counters(&self) -> [Counter; 32] {
        let c = |name, help, value| Counter { name, help, value };
        [
            c(
                "sync_cycles_total",
                "Completed sync cycles.",
                self.sync_cycles_total,
            ),
            c(
                "registry_checks_total",
                "Registry checks completed: /detailed read, keys registered or ids fetched (beside the cycles).",
                self.registry_checks_total,
            ),
            c(
                "cycles_overrun_total",
                "Interval ticks that found the previous cycle still running.",
                self.cycles_overrun_total,
            ),
            c(
                "cycles_skipped_total",
                "Interval ticks that fetched nothing while a registry check every tag waited for ran.",
                self.cycles_skipped_total,
            ),
            c(
                "writes_ok_total",
                "Tag values the Data-Service acknowledged.",
                self.writes_ok_total,
            ),
            c(
                "writes_failed_total",
                "Tag value writes that failed (refused, timed out, answered with an error).",
                self.writes_failed_total,
            ),
            c(
                "sink_busy_total",
                "IPC connections turned away by a full listen backlog (retried).",
                self.sink_busy_total,
            ),
            c(
                "source_errors_total",
                "Fetches of the polling service that failed.",
                self.source_errors_total,
            ),
            c(
                "documents_rejected_total",
                "Polled documents rejected whole (nothing applied).",
                self.documents_rejected_total,
            ),
            c(
                "reads_good_total",
                "Good readings accepted.",
                self.reads_good_total,
            ),
            c(
                "reads_failed_total",
                "Readings the polling service marked as failed.",
                self.reads_failed_total,
            ),
            c(
                "tags_over_capacity_total",
                "Good readings dropped because the tag table was full.",
                self.tags_over_capacity_total,
            ),
            c(
                "writes_suppressed_total",
                "Good readings not written because the Data-Service already had the value.",
                self.writes_suppressed_total,
            ),
            c(
                "writes_superseded_total",
                "Values a newer reading replaced before they were written (backlog latest).",
                self.writes_superseded_total,
            ),
            c(
                "heartbeats_total",
                "Unchanged values re-sent because their heartbeat was due.",
                self.heartbeats_total,
            ),
            c(
                "bulk_requests_total",
                "bulk_write_by_id requests sent.",
                self.bulk_requests_total,
            ),
            c(
                "ids_not_found_total",
                "Bulk updates answered id not found.",
                self.ids_not_found_total,
            ),
            c(
                "registrations_total",
                "Keys registered, or whose ids were fetched.",
                self.registrations_total,
            ),
            c(
                "registrations_failed_total",
                "Keys whose registration failed.",
                self.registrations_failed_total,
            ),
            c(
                "api_errors_total",
                "Failed requests to the Data-Service HTTP API.",
                self.api_errors_total,
            ),
            c(
                "dataservice_restarts_total",
                "Data-Service restarts detected.",
                self.dataservice_restarts_total,
            ),
            c(
                "events_dropped_total",
                "Log events about single tags summed up in an 'and N more' line instead (counters still count).",
                self.events_dropped_total,
            ),
            c(
                "backlog_dropped_total",
                "Undelivered changes dropped because the history backlog was full.",
                self.backlog_dropped_total,
            ),
            c(
                "replayed_total",
                "Changes read back from the spool at start.",
                self.replayed_total,
            ),
            c(
                "tags_filtered_total",
                "Entries the configured filters left out.",
                self.tags_filtered_total,
            ),
            c(
                "writes_deadband_total",
                "Changes within a rule's deadband, not written.",
                self.writes_deadband_total,
            ),
            c(
                "writes_deferred_total",
                "Changes held back by a rule's minimum interval.",
                self.writes_deferred_total,
            ),
            c(
                "type_mismatches_total",
                "Tags whose registered data type in the Data-Service would change their values.",
                self.type_mismatches_total,
            ),
            c(
                "tags_stale_total",
                "Tags that went stale: their source timestamp stood still for max-age.",
                self.tags_stale_total,
            ),
            c(
                "writes_stale_total",
                "Good reads of stale tags, not written.",
                self.writes_stale_total,
            ),
            c(
                "config_reloads_total",
                "Configuration reloads applied (SIGHUP).",
                self.config_reloads_total,
            ),
            c(
                "config_reload_failures_total",
                "Configuration reloads refused; the old rules stayed.",
                self.config_reload_failures_total,
            ),
        ]
    }
}

impl fmt::Display for Stats {
    /// One log line: `name=value` pairs, rejection reasons that occurred.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for counter in self.counters() {
            write!(f, "{}={} ", counter.name, counter.value)?;
        }
        write!(
            f,
            "tags_rejected_total={} last_cycle_duration={} last_fetch_duration={} last_registry_check_duration={} cycle_duration_total_ms={} fetch_duration_total_ms={}",
            self.tags_rejected_sum(),
            self.last_cycle_duration,
            self.last_fetch_duration,
            self.last_registry_check_duration,
            self.cycle_duration_total_ms,
            self.fetch_duration_total_ms
        )?;
        if let (Some(p50), Some(p99), Some(max)) = (
            self.cycle_percentile(50),
            self.cycle_percentile(99),
            self.cycle_percentile(100),
        ) {
            write!(
                f,
                " cycle_p50_ms={p50} cycle_p99_ms={p99} cycle_max_ms={max}"
            )?;
        }
        for reason in RejectReason::ALL {
            let count = self.rejected(reason);
            if count > 0 {
                write!(f, " rejected.{reason}={count}")?;
            }
        }
        Ok(())
    }
}
