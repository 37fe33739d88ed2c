//! The JSON documents of `/api/stats` (the seed's statistics and every
//! counter) and `/api/tags` (every tag, a page at a time).

use core::fmt::{self, Write};

use crate::engine::Engine;
use crate::peer::{Health, SinkError, SourceError};
use crate::reject::RejectReason;
use crate::table::{TableStorage, TagSlot};
use crate::time::Instant;

use super::ReportContext;
use super::health::assess;
use super::json::{JsonString, Rfc3339, ValueJson};

/// Which tags `/api/tags` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagQuery<'a> {
    /// Only keys containing this text (ASCII case ignored); empty for all.
    pub contains: &'a str,
    /// Matching tags to skip.
    pub offset: usize,
    /// Most tags to return.
    pub limit: usize,
}

/// Writes the `/api/stats` document.
pub fn write_stats<S: TableStorage, W: Write>(
    out: &mut W,
    engine: &Engine<S>,
    ctx: &ReportContext<'_>,
    health_cycles: u32,
) -> fmt::Result {
    let stats = engine.stats();
    let health = assess(engine, ctx, health_cycles);
    write!(
        out,
        "{{\"running\":{},\"version\":{},\"started_at\":\"{}\",\"now\":\"{}\",\
         \"uptime_seconds\":{},\"health\":\"{}\",",
        !ctx.stopping,
        JsonString(ctx.version),
        Rfc3339(ctx.unix_millis_of(ctx.started_at)),
        Rfc3339(ctx.unix_millis),
        (ctx.now - ctx.started_at).total_millis() / 1000,
        health.status(),
    )?;
    write!(
        out,
        "\"total_syncs\":{},\"successful_writes\":{},\"failed_writes\":{},\"last_sync_time\":{},",
        stats.sync_cycles_total,
        stats.writes_ok_total,
        stats.writes_failed_total,
        OptionalTime(ctx, stats.last_sync_at),
    )?;
    write!(
        out,
        "\"interval_ms\":{},\"tags\":{},\"tag_capacity\":{},\"pending\":{},\"unregistered\":{},\
         \"in_flight\":{},",
        engine.config().interval.total_millis(),
        engine.table().len(),
        engine.table().capacity(),
        engine.pending(),
        engine.unregistered(),
        engine.in_flight(),
    )?;
    let (used, capacity) = engine.backlog_bytes();
    write!(
        out,
        "\"backlog\":{{\"policy\":\"{}\",\"entries\":{},\"bytes\":{used},\"capacity_bytes\":{capacity}}},",
        engine.config().backlog.name(),
        engine.pending(),
    )?;
    write!(
        out,
        "\"peers\":{{\"source\":{},\"dataservice\":{},\"dataservice_api\":{}}},",
        PeerJson(ctx, &engine.source_health()),
        PeerJson(ctx, &engine.sink_health()),
        PeerJson(ctx, &engine.api_health()),
    )?;
    write!(
        out,
        "\"cycle_ms\":{{\"last\":{},\"last_fetch\":{},\"p50\":{},\"p99\":{},\"max\":{}}},\"registry_check_ms\":{{\"last\":{}}},\"counters\":{{",
        stats.last_cycle_duration.total_millis(),
        stats.last_fetch_duration.total_millis(),
        OrNull(stats.cycle_percentile(50)),
        OrNull(stats.cycle_percentile(99)),
        OrNull(stats.cycle_percentile(100)),
        stats.last_registry_check_duration.total_millis(),
    )?;
    for (i, counter) in stats.counters().iter().enumerate() {
        write!(out, "{}\"{}\":{}", comma(i), counter.name, counter.value)?;
    }
    out.write_str("},\"tags_rejected_total\":{")?;
    for (i, reason) in RejectReason::ALL.iter().enumerate() {
        write!(out, "{}\"{reason}\":{}", comma(i), stats.rejected(*reason))?;
    }
    out.write_str("},\"source_fetch_errors_total\":{")?;
    for (i, (kind, n)) in SourceError::KINDS
        .iter()
        .zip(stats.source_errors_by_kind)
        .enumerate()
    {
        write!(out, "{}\"{kind}\":{n}", comma(i))?;
    }
    out.write_str("},\"sink_errors_total\":{")?;
    for (i, (kind, n)) in SinkError::KINDS
        .iter()
        .zip(stats.sink_errors_by_kind)
        .enumerate()
    {
        write!(out, "{}\"{kind}\":{n}", comma(i))?;
    }
    out.write_str("},\"recent_errors\":[")?;
    for (i, error) in stats.recent_errors.oldest_ordered().enumerate() {
        write!(
            out,
            "{}{{\"time\":\"{}\",\"message\":{}}}",
            comma(i),
            Rfc3339(ctx.unix_millis_of(error.at)),
            JsonString(&error.message),
        )?;
    }
    out.write_str("]}")
}

/// Writes the `/api/tags` document: the matching tags (key, value, type,
/// delivery state, registry state, last acknowledged write) and the
/// rejected tags that match, with their reason.
pub fn write_tags<S: TableStorage, W: Write>(
    out: &mut W,
    engine: &Engine<S>,
    ctx: &ReportContext<'_>,
    query: &TagQuery<'_>,
) -> fmt::Result {
    let table = engine.table();
    let matches = |key: &str| contains_ignore_ascii_case(key, query.contains);
    let matched = table
        .slots()
        .iter()
        .filter(|s| matches(table.key_of(s)))
        .count();
    write!(
        out,
        "{{\"total\":{},\"matched\":{matched},\"offset\":{},\"tags\":[",
        table.len(),
        query.offset
    )?;
    let page = table
        .slots()
        .iter()
        .filter(|s| matches(table.key_of(s)))
        .skip(query.offset)
        .take(query.limit);
    for (i, slot) in page.enumerate() {
        let value = table.value_of(slot);
        write!(
            out,
            "{}{{\"key\":{},\"value\":{},\"type\":\"{}\",\"registered_type\":{},\
             \"type_mismatch\":{},\"stale\":{},\"state\":\"{}\",\"registration\":\"{}\",\
             \"last_written\":{}}}",
            comma(i),
            JsonString(table.key_of(slot)),
            ValueJson(&value),
            value.data_type(),
            OrNull(slot.registered_type().map(JsonString)),
            slot.has_type_mismatch(),
            slot.is_stale(),
            delivery_state(slot),
            slot.registration().as_str(),
            OptionalTime(ctx, slot.last_written_at()),
        )?;
    }
    out.write_str("],\"rejected\":[")?;
    let rejected = engine
        .rejected_tags()
        .iter()
        .filter(|r| matches(&r.tag.text));
    for (i, entry) in rejected.enumerate() {
        write!(
            out,
            "{}{{\"tag\":{},\"reason\":\"{}\",\"count\":{},\"last_seen\":\"{}\"}}",
            comma(i),
            JsonString(&entry.tag.text),
            entry.reason,
            entry.count,
            Rfc3339(ctx.unix_millis_of(entry.last_at)),
        )?;
    }
    write!(
        out,
        "],\"rejected_untracked\":{}}}",
        engine.rejected_tags().untracked()
    )
}

/// `delivered` (the Data-Service has the latest value), `in_flight`,
/// `pending`, or `stale` (its source timestamp stands still: not rewritten).
fn delivery_state(slot: &TagSlot) -> &'static str {
    if slot.is_in_flight() {
        "in_flight"
    } else if slot.is_pending() {
        "pending"
    } else if slot.is_stale() {
        "stale"
    } else {
        "delivered"
    }
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn comma(i: usize) -> &'static str {
    if i == 0 { "" } else { "," }
}

struct OrNull<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrNull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("null"),
        }
    }
}

struct OptionalTime<'c, 'v>(&'c ReportContext<'v>, Option<Instant>);

impl fmt::Display for OptionalTime<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(at) => write!(f, "\"{}\"", Rfc3339(self.0.unix_millis_of(at))),
            None => f.write_str("null"),
        }
    }
}

struct PeerJson<'c, 'v, 'h, P>(&'c ReportContext<'v>, &'h Health<P>);

impl<P: fmt::Display> fmt::Display for PeerJson<'_, '_, '_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PeerJson(ctx, health) = self;
        match health {
            Health::Down {
                problem,
                since,
                failures,
            } => {
                let mut reason: heapless::String<160> = heapless::String::new();
                crate::text::Truncating::new(&mut reason)
                    .write_fmt(format_args!("{problem}"))
                    .ok();
                write!(
                    f,
                    "{{\"state\":\"down\",\"since\":\"{}\",\"failures\":{failures},\"problem\":{}}}",
                    Rfc3339(ctx.unix_millis_of(*since)),
                    JsonString(&reason),
                )
            }
            other => write!(f, "{{\"state\":\"{}\"}}", other.as_str()),
        }
    }
}
