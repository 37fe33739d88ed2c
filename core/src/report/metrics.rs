//! The Prometheus text exposition format (version 0.0.4): every series
//! with its HELP and TYPE, names as in the logs with a `dataservice_sync_`
//! prefix.

use core::fmt::{self, Write};

use crate::engine::Engine;
use crate::peer::{Health, SinkError, SourceError};
use crate::reject::RejectReason;
use crate::stats::DURATION_BUCKETS_MS;
use crate::table::{Registration, TableStorage};

use super::ReportContext;

const PREFIX: &str = "dataservice_sync_";

/// Writes every metric of `engine`.
pub fn write_metrics<S: TableStorage, W: Write>(
    out: &mut W,
    engine: &Engine<S>,
    ctx: &ReportContext<'_>,
) -> fmt::Result {
    let stats = engine.stats();
    family(
        out,
        "build_info",
        "gauge",
        "The running build: version, commit and target (value 1).",
    )?;
    writeln!(
        out,
        "{PREFIX}build_info{{version=\"{}\",commit=\"{}\",target=\"{}\"}} 1",
        ctx.version, ctx.commit, ctx.target
    )?;
    write_metric(
        out,
        "start_time_seconds",
        "gauge",
        "When the service started, in seconds since the Unix epoch.",
        Seconds(ctx.unix_millis_of(ctx.started_at)),
    )?;
    for counter in stats.counters() {
        // `dataservice_sync_cycles_total`, not `…_sync_sync_cycles_total`.
        let name = counter.name.strip_prefix("sync_").unwrap_or(counter.name);
        write_metric(out, name, "counter", counter.help, counter.value)?;
    }
    family(
        out,
        "tags_rejected_total",
        "counter",
        "Readings rejected, by reason (never written).",
    )?;
    for reason in RejectReason::ALL {
        writeln!(
            out,
            "{PREFIX}tags_rejected_total{{reason=\"{reason}\"}} {}",
            stats.rejected(reason)
        )?;
    }
    write_metric(
        out,
        "rejected_tags_untracked_total",
        "counter",
        "Rejections of tags beyond the list kept for /api/tags.",
        engine.rejected_tags().untracked(),
    )?;
    family(
        out,
        "source_fetch_errors_total",
        "counter",
        "Failed fetches of the polling service, by kind.",
    )?;
    for (kind, count) in SourceError::KINDS.iter().zip(stats.source_errors_by_kind) {
        writeln!(
            out,
            "{PREFIX}source_fetch_errors_total{{kind=\"{kind}\"}} {count}"
        )?;
    }
    family(
        out,
        "sink_errors_total",
        "counter",
        "Failed requests to the Data-Service socket, by kind (busy ones are retried).",
    )?;
    for (kind, count) in SinkError::KINDS.iter().zip(stats.sink_errors_by_kind) {
        writeln!(out, "{PREFIX}sink_errors_total{{kind=\"{kind}\"}} {count}")?;
    }

    let table = engine.table();
    write_metric(out, "tags", "gauge", "Tags in the tag table.", table.len())?;
    write_metric(
        out,
        "tag_capacity",
        "gauge",
        "Most tags the tag table holds.",
        table.capacity(),
    )?;
    write_metric(
        out,
        "pending_tags",
        "gauge",
        "Values the Data-Service has not acknowledged yet: tags (latest) or changes (history).",
        engine.pending(),
    )?;
    write_metric(
        out,
        "tags_over_capacity",
        "gauge",
        "Good reads of the last document left out: the tag table was full (--max-tags).",
        engine.tags_over_capacity(),
    )?;
    write_metric(
        out,
        "stale_tags",
        "gauge",
        "Tags whose source timestamp stands still past max-age: not rewritten.",
        table.slots().iter().filter(|s| s.is_stale()).count(),
    )?;
    write_metric(
        out,
        "type_mismatch_tags",
        "gauge",
        "Tags whose registered data type in the Data-Service would change their values.",
        table
            .slots()
            .iter()
            .filter(|s| s.has_type_mismatch())
            .count(),
    )?;
    let (used, capacity) = engine.backlog_bytes();
    write_metric(
        out,
        "backlog_entries",
        "gauge",
        "Undelivered changes waiting (history) or tags with a pending value (latest).",
        engine.pending(),
    )?;
    write_metric(
        out,
        "backlog_bytes",
        "gauge",
        "Memory the history backlog uses now.",
        used,
    )?;
    write_metric(
        out,
        "backlog_capacity_bytes",
        "gauge",
        "Memory reserved for the history backlog (0 with latest).",
        capacity,
    )?;
    write_metric(
        out,
        "backlog_drain_seconds",
        "gauge",
        "History: time the backlog would take to drain at the rate the Data-Service took changes, when it last could not keep up (0: it could).",
        Seconds(engine.backlog_drain_estimate().total_millis()),
    )?;
    write_metric(
        out,
        "in_flight_requests",
        "gauge",
        "IPC requests awaiting their answer.",
        engine.in_flight(),
    )?;
    family(
        out,
        "tags_by_registration",
        "gauge",
        "Tags by their state in the Data-Service registry.",
    )?;
    let mut by_state = [0usize; Registration::ALL.len()];
    for slot in table.slots() {
        by_state[slot.registration() as usize] += 1;
    }
    for (state, count) in Registration::ALL.iter().zip(by_state) {
        writeln!(
            out,
            "{PREFIX}tags_by_registration{{state=\"{}\"}} {count}",
            state.as_str()
        )?;
    }
    family(
        out,
        "peer_up",
        "gauge",
        "1 when the last exchange with the peer worked, 0 when it failed or none was tried.",
    )?;
    let peers = [
        ("source", up(&engine.source_health())),
        ("dataservice", up(&engine.sink_health())),
        ("dataservice_api", up(&engine.api_health())),
    ];
    for (peer, up) in peers {
        writeln!(out, "{PREFIX}peer_up{{peer=\"{peer}\"}} {up}")?;
    }
    write_metric(
        out,
        "last_sync_timestamp_seconds",
        "gauge",
        "End of the last cycle whose fetch succeeded, in seconds since the Unix epoch (0: never).",
        Seconds(stats.last_sync_at.map_or(0, |at| ctx.unix_millis_of(at))),
    )?;
    write_metric(
        out,
        "last_cycle_duration_seconds",
        "gauge",
        "How long the last cycle took, fetch to last acknowledgement.",
        Seconds(stats.last_cycle_duration.total_millis()),
    )?;
    write_metric(
        out,
        "last_fetch_duration_seconds",
        "gauge",
        "How long the last cycle's fetch took, request to body end (the rest of the cycle was delivery).",
        Seconds(stats.last_fetch_duration.total_millis()),
    )?;
    write_metric(
        out,
        "fetch_duration_seconds_total",
        "counter",
        "Time the cycles spent fetching; the rest of cycle_duration_seconds_sum went to delivery.",
        Seconds(stats.fetch_duration_total_ms),
    )?;
    write_metric(
        out,
        "last_registry_check_duration_seconds",
        "gauge",
        "How long the last registry check took (it runs beside the cycles).",
        Seconds(stats.last_registry_check_duration.total_millis()),
    )?;
    let counted = |buckets: &[u64]| buckets.iter().sum::<u64>();
    histogram(
        out,
        "cycle_duration_seconds",
        "Cycle durations, fetch to last acknowledgement.",
        &stats.cycle_duration_buckets,
        stats.cycle_duration_total_ms,
        stats
            .sync_cycles_total
            .max(counted(&stats.cycle_duration_buckets)),
    )?;
    histogram(
        out,
        "fetch_duration_seconds",
        "The cycles' fetches, request to body end.",
        &stats.fetch_duration_buckets,
        stats.fetch_duration_total_ms,
        stats
            .sync_cycles_total
            .max(counted(&stats.fetch_duration_buckets)),
    )?;
    if let Some(process) = ctx.process {
        // Prometheus' standard process series, without the prefix.
        writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes."
        )?;
        writeln!(out, "# TYPE process_resident_memory_bytes gauge")?;
        writeln!(
            out,
            "process_resident_memory_bytes {}",
            process.resident_memory_bytes
        )?;
        writeln!(
            out,
            "# HELP process_open_fds Number of open file descriptors."
        )?;
        writeln!(out, "# TYPE process_open_fds gauge")?;
        writeln!(out, "process_open_fds {}", process.open_fds)?;
        writeln!(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds."
        )?;
        writeln!(out, "# TYPE process_cpu_seconds_total counter")?;
        writeln!(
            out,
            "process_cpu_seconds_total {}",
            Seconds(process.cpu_millis)
        )?;
    }
    Ok(())
}

/// A histogram of millisecond durations over `DURATION_BUCKETS_MS`, in
/// seconds; `count` covers the cycles longer than the last bound too.
fn histogram<W: Write>(
    out: &mut W,
    name: &str,
    help: &str,
    buckets: &[u64],
    sum_millis: u64,
    count: u64,
) -> fmt::Result {
    family(out, name, "histogram", help)?;
    let mut cumulative = 0;
    for (bound, n) in DURATION_BUCKETS_MS.iter().zip(buckets) {
        cumulative += n;
        writeln!(
            out,
            "{PREFIX}{name}_bucket{{le=\"{}\"}} {cumulative}",
            Seconds(*bound)
        )?;
    }
    writeln!(out, "{PREFIX}{name}_bucket{{le=\"+Inf\"}} {count}")?;
    writeln!(out, "{PREFIX}{name}_sum {}", Seconds(sum_millis))?;
    writeln!(out, "{PREFIX}{name}_count {count}")
}

fn up<P>(health: &Health<P>) -> u8 {
    u8::from(matches!(health, Health::Up))
}

fn family<W: Write>(out: &mut W, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {PREFIX}{name} {help}")?;
    writeln!(out, "# TYPE {PREFIX}{name} {kind}")
}

/// One series without labels, with its `HELP` and `TYPE` lines; also for
/// the runner's own figures, so every metric is spelled the same way.
pub fn write_metric<W: Write>(
    out: &mut W,
    name: &str,
    kind: &str,
    help: &str,
    value: impl fmt::Display,
) -> fmt::Result {
    family(out, name, kind, help)?;
    writeln!(out, "{PREFIX}{name} {value}")
}

/// Milliseconds shown as seconds with three decimals, exactly.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}
