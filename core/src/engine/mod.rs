//! The sync engine: a sans-IO state machine in the style of quinn-proto.
//!
//! The runner feeds it inputs (`handle_*`, each with `now`) and drains its
//! outputs in this order after every input:
//! 1. [`Engine::poll_action`]: start a fetch of the polling service;
//! 2. [`Engine::poll_api_request`]: the next request to the Data-Service's
//!    HTTP API (registry checks), one at a time;
//! 3. [`Engine::poll_transmit`]: the next request line for the Data-Service
//!    IPC, written into the runner's buffer, one per free connection;
//! 4. [`Engine::poll_event`]: what to log;
//! 5. [`Engine::poll_timeout`]: when to call again if nothing else happens.
//!
//! A cycle is: interval tick, fetch, apply the document to the tag table,
//! check new tags against the Data-Service's registry, deliver every value
//! that changed (report by exception) or whose heartbeat is due, done.
//! Cycles never overlap: a tick during a cycle is counted as an overrun and
//! the next cycle starts as soon as the current one ends.

use crate::event_queue::EventQueue;
use heapless::index_set::FnvIndexSet;

use crate::backlog::{
    Backlog, BacklogEntry, EntryState, EntryTooLarge, is_on_disk, mark_on_disk, read_entry, seq_of,
    slot_of, state_of,
};
use crate::config::{MAX_IN_FLIGHT, REJECTED_KEYS_LOGGED};
use crate::event::{Decision, Event};
use crate::key::KeyTemplate;
use crate::peer::{ApiError, Change, Health, SinkError, SourceError, SourceProblem};
use crate::reading::classify;
use crate::reject::{KeyPreview, RejectReason};
use crate::rejections::RejectedTags;
use crate::rules::{RuleSet, number, within_deadband};
use crate::staging::{
    Staged, StagedTag, Staging, StagingFull, staged_key, staged_preview, staged_text, unstage,
};
use crate::stats::Stats;
use crate::table::{
    DATA_TYPES, NO_RULE, PointMeta, Registration, RegistryData, TableStorage, TagSlot, TagTable,
    UNKNOWN_TYPE, data_type_index,
};
use crate::text::Truncating;
use crate::time::{Duration, Instant};
use crate::value::{Value, value_hash};
use crate::wire::id::{id_hex, parse_id};
use crate::wire::ipc::{BulkEncoder, Response, encode_write};
use crate::wire::json::JsonError;
use crate::wire::polled::DocumentError;
use crate::wire::polled::DocumentStream;
use crate::wire::registry::{
    Address, DetailedStream, PointSpec, RegisterEncoder, parse_register_bulk,
};
use crate::wire::spool;

mod config;
mod output;
#[cfg(test)]
pub(crate) mod tests;

pub use config::{BacklogPolicy, DEFAULT_MAX_AGE, DeliveryMode, EngineConfig, RegisterMode};
pub use output::{Action, ApiRequest, RequestId, SpoolFrame, Transmit, min_transmit_buffer};

/// `history`: a delivery pass of at least this many changes measures the
/// Data-Service's rate.
const RATE_SAMPLE: u64 = 100;

/// Decisions are traced while fewer events than this wait.
const TRACE_QUEUE_ROOM: usize = 24;

/// How far a `/detailed` answer got.
#[derive(Clone, Debug)]
enum DetailedRead {
    /// Points are taken as they arrive.
    Reading(DetailedStream),
    /// It broke here; the rest is read and dropped.
    Failed(DocumentError),
}

/// How far the polled document got.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per engine, in place: there is no heap to box it on"
)]
enum DocumentRead {
    /// Entries are read as they arrive, their readings held back.
    Reading {
        stream: DocumentStream,
        staging: Staging,
    },
    /// It broke here (or its readings overflowed the staging room); the
    /// rest is read and dropped.
    Failed(DocumentError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    FetchDue,
    Fetching,
    Delivering,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ApiStep {
    None,
    DetailedDue,
    Detailed,
    RegisterDue,
    Register { first: usize },
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    request: RequestId,
    /// First slot of the request; a bulk's slots follow in table order.
    first: usize,
    count: usize,
    bulk: bool,
    /// Carries `history` backlog entries; `first` is a ring offset.
    backlog: bool,
    /// The registry epoch it was sent in: an `id not found` for ids of an
    /// earlier one tells nothing new.
    epoch: u32,
}

/// The engine, over a tag table kept in `S`.
pub struct Engine<S: TableStorage> {
    config: EngineConfig,
    table: TagTable<S>,
    stats: Stats,
    events: EventQueue<32>,
    phase: Phase,
    cycle_started: Instant,
    /// When this cycle's fetch ended (its body read, or its failure).
    cycle_fetch_ended: Instant,
    cycle_fetch_ok: bool,
    /// This delivery pass is no cycle: it sends what a registry check
    /// made deliverable between cycles.
    catching_up: bool,
    /// A registry check made tags deliverable during a cycle's pass: a
    /// catch-up pass follows it (the cycle is not drawn out by them).
    catch_up_due: bool,
    tick_missed: bool,
    shutting_down: bool,
    bulk_cursor: usize,
    single_cursor: usize,
    in_flight: heapless::Vec<InFlight, MAX_IN_FLIGHT>,
    next_request: u32,
    pause_until: Option<Instant>,
    consecutive_busy: u32,
    backoff: Duration,
    retry_at: Instant,
    source: Health<SourceProblem>,
    sink: Health<SinkError>,
    api: Health<ApiError>,
    /// The registry check, which runs beside the cycles.
    api_step: ApiStep,
    /// Every tag waits for the running check (at start, after a restart).
    check_holds_every_tag: bool,
    /// A tick skipped its fetch during such a check.
    skipped_tick: bool,
    registry_check_started: Instant,
    /// Tags in the table when `/detailed` began: only they can be missing.
    detailed_covers: usize,
    api_retry_at: Instant,
    registry_dirty: bool,
    register_cursor: usize,
    /// The `/detailed` answer being read.
    detailed: Option<DetailedRead>,
    /// The polled document being read (while `Fetching`).
    document: Option<DocumentRead>,
    logged_keys: FnvIndexSet<u32, REJECTED_KEYS_LOGGED>,
    rejected: RejectedTags,
    /// Good reads of the last document that found no room in the table.
    over_capacity: u32,
    overrunning: bool,
    overruns_in_episode: u64,
    /// Bumped whenever every registration is taken as lost, and its value
    /// when each peer went down.
    registry_epoch: u32,
    sink_down_epoch: u32,
    api_down_epoch: u32,
    /// Cycles started, for `TagSlot::changed_in_cycle`.
    cycle_id: u32,
    /// `history`: changes acknowledged in this cycle; the estimated time to
    /// drain the backlog when it last could not; whether that was said in
    /// this overrun episode.
    acked_in_cycle: u64,
    backlog_drain_ms: u64,
    drain_reported: bool,
    /// Decisions of the running document not traced.
    decisions_not_shown: u32,
    /// `history`: the running delivery pass's start and acknowledged
    /// changes, and the rate (changes/s) the last pass of
    /// `RATE_SAMPLE` or more measured (0: not yet).
    pass_started: Instant,
    acked_in_pass: u64,
    known_rate: u64,
    backlog: Backlog,
    next_seq: u64,
    cycle_first_seq: u64,
    walk_done: bool,
    walk_id: u32,
    replayed_in_cycle: u32,
    backlog_full_reported: bool,
    mirror_due: bool,
    mirror_next_seq: u64,
    mirror_hint: Option<(usize, u64)>,
}

impl<S: TableStorage> Engine<S> {
    /// An idle engine; the first tick starts the first cycle.
    pub fn new(config: EngineConfig, storage: S) -> Self {
        let backoff = config.backoff_initial;
        Engine {
            config,
            table: TagTable::new(storage),
            stats: Stats::default(),
            events: EventQueue::new(),
            phase: Phase::Idle,
            cycle_started: Instant::default(),
            cycle_fetch_ended: Instant::default(),
            cycle_fetch_ok: false,
            catching_up: false,
            catch_up_due: false,
            tick_missed: false,
            shutting_down: false,
            bulk_cursor: 0,
            single_cursor: 0,
            in_flight: heapless::Vec::new(),
            next_request: 0,
            pause_until: None,
            consecutive_busy: 0,
            backoff,
            retry_at: Instant::default(),
            source: Health::Unknown,
            sink: Health::Unknown,
            api: Health::Unknown,
            api_step: ApiStep::None,
            check_holds_every_tag: false,
            skipped_tick: false,
            registry_check_started: Instant::default(),
            detailed_covers: 0,
            api_retry_at: Instant::default(),
            registry_dirty: false,
            register_cursor: 0,
            detailed: None,
            document: None,
            logged_keys: FnvIndexSet::new(),
            rejected: RejectedTags::default(),
            backlog: Backlog::default(),
            next_seq: 1,
            cycle_first_seq: 1,
            walk_done: true,
            walk_id: 0,
            replayed_in_cycle: 0,
            backlog_full_reported: false,
            mirror_due: false,
            mirror_next_seq: 0,
            mirror_hint: None,
            over_capacity: 0,
            overrunning: false,
            overruns_in_episode: 0,
            registry_epoch: 0,
            sink_down_epoch: 0,
            api_down_epoch: 0,
            cycle_id: 0,
            acked_in_cycle: 0,
            backlog_drain_ms: 0,
            drain_reported: false,
            decisions_not_shown: 0,
            pass_started: Instant::default(),
            acked_in_pass: 0,
            known_rate: 0,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The tag table.
    pub fn table(&self) -> &TagTable<S> {
        &self.table
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The tags whose readings were rejected, with the reason.
    pub fn rejected_tags(&self) -> &RejectedTags {
        &self.rejected
    }

    /// Applies reloaded rules, key template and heartbeat; the tag table,
    /// the backlog and the statistics stay.
    pub fn reload(&mut self, rules: RuleSet, key_template: KeyTemplate, heartbeat: Duration) {
        self.config.rules = rules;
        self.config.key_template = key_template;
        self.config.heartbeat = heartbeat;
        self.stats.config_reloads_total += 1;
    }

    /// A reload was refused: counted; the rules in force stay.
    pub fn reload_refused(&mut self, now: Instant, why: core::fmt::Arguments<'_>) {
        self.stats.config_reload_failures_total += 1;
        self.stats.record_error(now, why);
    }

    /// The polling service's health.
    pub fn source_health(&self) -> Health<SourceProblem> {
        self.source
    }

    /// The Data-Service IPC's health.
    pub fn sink_health(&self) -> Health<SinkError> {
        self.sink
    }

    /// The Data-Service HTTP API's health.
    pub fn api_health(&self) -> Health<ApiError> {
        self.api
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Tags whose latest value still has to be written (`history`: changes
    /// in the backlog not yet acknowledged).
    pub fn pending(&self) -> usize {
        match self.config.backlog {
            BacklogPolicy::Latest => self.table.slots().iter().filter(|s| s.pending).count(),
            BacklogPolicy::History => self.backlog.unacked(),
        }
    }

    /// Tags with a value the Data-Service has not acknowledged (with
    /// `history`, tags with changes in the backlog).
    pub fn pending_tags(&self) -> usize {
        self.table.slots().iter().filter(|s| s.is_pending()).count()
    }

    /// Bytes of the `history` backlog in use, and its size.
    pub fn backlog_bytes(&self) -> (usize, usize) {
        let capacity = self.table.backlog_bytes().len();
        (self.backlog.used_bytes(capacity), capacity)
    }

    /// `history`: how long the backlog would take to drain at the rate the
    /// Data-Service took changes, when it last could not keep up (zero
    /// before that, and once a tick finds the cycle done again).
    pub fn backlog_drain_estimate(&self) -> Duration {
        Duration::from_millis(self.backlog_drain_ms.min(u64::MAX / 2))
    }

    /// Good reads of the last document that found no room in the tag
    /// table (its capacity, or its key arena, was full).
    pub fn tags_over_capacity(&self) -> u32 {
        self.over_capacity
    }

    /// Tags whose keys the Data-Service does not have (`--register off`).
    pub fn unregistered(&self) -> usize {
        self.table
            .slots()
            .iter()
            .filter(|s| s.registration == Registration::NotRegistered)
            .count()
    }

    /// A registry check runs (API requests to come); cycles go on meanwhile.
    pub fn is_registering(&self) -> bool {
        self.api_step != ApiStep::None
    }

    /// A cycle is due: [`Engine::poll_action`] starts it.
    pub fn is_fetch_due(&self) -> bool {
        self.phase == Phase::FetchDue
    }

    /// Between cycles, waiting for the next tick.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// After [`Engine::handle_shutdown`]: the last cycle is over.
    pub fn is_drained(&self) -> bool {
        self.shutting_down && self.phase == Phase::Idle
    }

    // ---- inputs ----

    /// The interval timer fired.
    pub fn handle_tick(&mut self, now: Instant) {
        if self.shutting_down {
            return;
        }
        match self.phase {
            Phase::Idle if self.fetch_waits_for_check() => {
                self.skipped_tick = true;
                self.stats.cycles_skipped_total += 1;
            }
            Phase::Idle => {
                self.phase = Phase::FetchDue;
                self.drain_reported = false;
                self.backlog_drain_ms = 0;
                if core::mem::take(&mut self.overrunning) {
                    let overruns = core::mem::take(&mut self.overruns_in_episode);
                    self.push_event(Event::CycleOverrunsEnded { overruns });
                }
            }
            Phase::FetchDue => {}
            Phase::Delivering if self.catching_up => {
                // The cycle comes first: the catch-up pass sends nothing
                // more, and what it leaves goes with the cycle.
                let rate = self.cycle_rate(now);
                self.drop_superseded_changes(now, rate);
                self.tick_missed = true;
                self.end_delivery_pass();
                self.try_finish_cycle(now);
            }
            Phase::Fetching | Phase::Delivering => {
                self.stats.cycles_overrun_total += 1;
                self.overruns_in_episode += 1;
                self.tick_missed = true;
                if self.phase == Phase::Delivering {
                    let rate = self.cycle_rate(now);
                    self.drop_superseded_changes(now, rate);
                }
                // One line when overruns start, one when a tick finds the
                // cycle done again.
                if !core::mem::replace(&mut self.overrunning, true) {
                    self.push_event(Event::CycleOverrun {
                        running_for: now - self.cycle_started,
                    });
                }
            }
        }
    }

    /// Part of the fetch's 200 body arrived: the entries complete at the
    /// start of `part` (the body's bytes not used yet) are read and their
    /// readings held back until the document is known whole. Returns how
    /// many bytes were used; the rest must come again, with what follows.
    pub fn handle_source_body_part(&mut self, part: &[u8]) -> usize {
        if self.phase != Phase::Fetching {
            return part.len();
        }
        self.feed_document(part)
    }

    /// The fetch answered 200 and its body ended with `rest` (the bytes
    /// [`Engine::handle_source_body_part`] did not use, or the whole body):
    /// a whole document's readings are applied; a broken one applies
    /// nothing and is counted.
    pub fn handle_source_body(&mut self, now: Instant, rest: &[u8]) {
        if self.phase != Phase::Fetching {
            return;
        }
        let used = self.feed_document(rest);
        let staging = match self.document.take() {
            Some(DocumentRead::Reading { stream, staging }) if used == rest.len() => {
                stream.finish().map(|()| staging)
            }
            Some(DocumentRead::Failed(error)) => Err(error),
            // Bytes left that do not make a tag: the body was cut off.
            _ => Err(DocumentError::Json(JsonError::UnexpectedEnd)),
        };
        match staging {
            Ok(staging) => {
                let left_out = self.apply_document(now, &staging);
                let not_shown = core::mem::take(&mut self.decisions_not_shown);
                if not_shown > 0 {
                    self.push_event(Event::DecisionsNotShown { count: not_shown });
                }
                self.cycle_fetch_ok = true;
                self.stats.last_source_ok_at = Some(now);
                self.note_table_room(staging.left_out + left_out);
                if let Change::CameUp { failures, .. } = self.source.record_success(now) {
                    self.push_event(Event::SourceUp {
                        good_reads: staging.good_reads,
                        after_failures: failures,
                    });
                }
            }
            Err(error) => {
                self.stats.documents_rejected_total += 1;
                self.source_failed(now, SourceProblem::Document(error));
            }
        }
        // A registry check this cycle wants starts once it has delivered
        // (see `try_finish_cycle`); only the tags it is about wait for it.
        self.end_fetch(now);
    }

    /// Reads the entries complete at the start of `part`; returns how many
    /// bytes were used. After an error, takes everything (the rest is
    /// useless).
    fn feed_document(&mut self, part: &[u8]) -> usize {
        let Some(DocumentRead::Reading { stream, staging }) = self.document.as_mut() else {
            return part.len();
        };
        let (template, rules) = (&self.config.key_template, &self.config.rules);
        let table = &mut self.table;
        let mut overflow = None;
        let fed = stream.feed(part, |entry| {
            if overflow.is_none()
                && let Err(StagingFull) = staging.stage(table, classify(&entry, template, rules))
            {
                overflow = Some(table.staging().len());
            }
        });
        let error = match (fed, overflow) {
            (_, Some(room)) => DocumentError::ReadingsOverflow { room },
            (Ok(used), None) => return used,
            (Err(error), None) => error,
        };
        self.document = Some(DocumentRead::Failed(error));
        part.len()
    }

    /// Applies a whole document's held-back readings, in document order.
    /// Applies a whole document's readings; returns how many good reads
    /// found no room in the table.
    fn apply_document(&mut self, now: Instant, staging: &Staging) -> u32 {
        // Out of the config while the readings are applied (they borrow self).
        let rules = core::mem::take(&mut self.config.rules);
        let mut at = 0;
        let mut left_out = 0u32;
        while at < staging.len {
            let Some((record, next)) = unstage(self.table.staging(), at) else {
                break;
            };
            at = next;
            match record {
                Staged::Good {
                    tag,
                    value,
                    source_time_ms,
                    rule,
                } => {
                    let stored = match tag {
                        StagedTag::Held(position) => {
                            let position = position as usize;
                            self.table.update(position, value).map(|()| position)
                        }
                        StagedTag::New(at) => {
                            let Some(key) = staged_key(self.table.staging(), at) else {
                                break;
                            };
                            self.table.upsert(&key, value)
                        }
                    };
                    let Ok(position) = stored else {
                        left_out += 1;
                        continue;
                    };
                    if let Some(slot) = self.table.slot_mut(position) {
                        slot.rule = rule.unwrap_or(NO_RULE);
                    }
                    self.decide_write(now, position, source_time_ms, &rules);
                }
                Staged::FailedRead(tag) => {
                    let position = match tag {
                        StagedTag::Held(position) => Some(position as usize),
                        StagedTag::New(at) => {
                            self.table.find(staged_text(self.table.staging(), at))
                        }
                    };
                    if let Some(slot) = position.and_then(|p| self.table.slot_mut(p)) {
                        slot.after_failed_read = true;
                    }
                }
                Staged::Rejected {
                    reason,
                    shown,
                    full_len,
                } => {
                    let tag = staged_preview(self.table.staging(), shown, full_len);
                    self.reject_tag(now, reason, tag);
                }
            }
        }
        self.config.rules = rules;
        self.stats.reads_good_total += u64::from(staging.good_reads);
        self.stats.reads_failed_total += u64::from(staging.failed_reads);
        self.stats.tags_filtered_total += u64::from(staging.filtered);
        for (total, unnamed) in self
            .stats
            .tags_rejected_total
            .iter_mut()
            .zip(staging.unnamed_rejections)
        {
            *total += u64::from(unnamed);
        }
        left_out
    }

    fn reject_tag(&mut self, now: Instant, reason: RejectReason, tag: KeyPreview) {
        self.stats.tags_rejected_total[reason.index()] += 1;
        self.rejected.record(&tag, reason, now);
        if self.first_report_of(&tag) {
            self.stats
                .record_error(now, format_args!("tag rejected ({reason}): {tag}"));
            self.push_event(Event::TagRejected { reason, tag });
        }
    }

    /// The fetch failed.
    pub fn handle_source_error(&mut self, now: Instant, error: SourceError) {
        if self.phase != Phase::Fetching {
            return;
        }
        self.document = None;
        self.stats.source_errors_total += 1;
        self.stats.source_errors_by_kind[error.kind_index()] += 1;
        self.source_failed(now, SourceProblem::Fetch(error));
        // Values still pending from earlier cycles are retried all the same.
        self.end_fetch(now);
    }

    /// The HTTP API answered the request from [`Engine::poll_api_request`].
    pub fn handle_api_response(&mut self, now: Instant, status: u16, body: &mut [u8]) {
        let step = self.api_step;
        if !matches!(step, ApiStep::Detailed | ApiStep::Register { .. }) {
            return;
        }
        if status != 200 {
            self.api_failed(now, ApiError::HttpStatus(status));
            return;
        }
        let parsed = match step {
            ApiStep::Detailed => {
                self.begin_detailed(now);
                self.finish_detailed(now, body)
            }
            ApiStep::Register { first } => self.apply_registrations(now, first, body),
            _ => Ok(()),
        };
        if parsed.is_err() {
            self.api_failed(now, ApiError::BadBody);
            return;
        }
        if let Change::CameUp { failures, .. } = self.api.record_success(now) {
            self.push_event(Event::ApiUp {
                after_failures: failures,
            });
        }
        self.api_step = ApiStep::RegisterDue;
        if matches!(step, ApiStep::Register { .. }) && !self.fetch_waits_for_check() {
            // These tags have ids now: they go out while the next are registered.
            self.deliver_what_became_ready(now);
        }
    }

    /// Part of the answer to the running HTTP API request, `status` known,
    /// more to come: a `/detailed` answer is used as it arrives, so it never
    /// has to be held whole (2 MB at 10,000 keys). Returns how many bytes
    /// of `part` were used; the caller keeps the rest and adds to it.
    pub fn handle_api_body_part(&mut self, now: Instant, status: u16, part: &mut [u8]) -> usize {
        match self.api_step {
            ApiStep::Detailed if status == 200 => {
                self.begin_detailed(now);
                self.feed_detailed(part)
            }
            ApiStep::Detailed | ApiStep::Register { .. } => 0,
            // The answer to an abandoned check: dropped as it comes.
            ApiStep::None | ApiStep::DetailedDue | ApiStep::RegisterDue => part.len(),
        }
    }

    /// The HTTP API request failed.
    pub fn handle_api_error(&mut self, now: Instant, error: ApiError) {
        if matches!(self.api_step, ApiStep::Detailed | ApiStep::Register { .. }) {
            self.api_failed(now, error);
        }
    }

    /// The Data-Service answered `request` with `line`.
    pub fn handle_sink_response(&mut self, now: Instant, request: RequestId, line: &[u8]) {
        let Some(flight) = self.take_in_flight(request) else {
            return;
        };
        let decoded = if flight.bulk {
            Response::decode_bulk(line)
        } else {
            Response::decode(line)
        };
        match decoded {
            Ok(response)
                if flight.backlog && flight.bulk && response.ok && response.has_results() =>
            {
                self.sink_answered(now);
                self.settle_backlog(now, flight, Some(&response));
            }
            Ok(response) if flight.backlog && !flight.bulk && response.ok => {
                self.sink_answered(now);
                self.settle_backlog(now, flight, None);
            }
            Ok(response) if flight.bulk && response.ok && response.has_results() => {
                self.sink_answered(now);
                self.apply_bulk_results(now, flight, &response);
            }
            Ok(response) if !flight.bulk && response.ok => {
                self.sink_answered(now);
                self.acknowledge(now, flight.first);
            }
            Ok(response) => {
                // The server is there and refused the request; the values
                // stay pending and go again next cycle.
                self.sink_answered(now);
                let mut error = heapless::String::<64>::new();
                if let Some(text) = response.error {
                    text.write_unescaped(&mut Truncating::new(&mut error)).ok();
                } else {
                    error.push_str("no results").ok();
                }
                let key = self.flight_preview(flight);
                self.release_flight(flight);
                self.stats.writes_failed_total += flight.count as u64;
                self.stats
                    .record_error(now, format_args!("write rejected: {key}: {error}"));
                if self.first_report_of(&key) {
                    self.push_event(Event::WriteRejected { key, error });
                }
            }
            Err(_) => self.sink_failed(now, flight, SinkError::BadResponse),
        }
        self.try_finish_cycle(now);
    }

    /// The request `request` failed without an answer.
    pub fn handle_sink_error(&mut self, now: Instant, request: RequestId, error: SinkError) {
        let Some(flight) = self.take_in_flight(request) else {
            return;
        };
        if error == SinkError::Busy && self.consecutive_busy < self.config.busy_limit {
            // The backlog was full: not a failed write. Go back and retry
            // these tags after a short pause.
            self.consecutive_busy += 1;
            self.stats.sink_busy_total += 1;
            self.stats.sink_errors_by_kind[error.kind_index()] += 1;
            self.release_flight(flight);
            if flight.backlog {
                self.walk_done = false;
            } else if flight.bulk {
                self.bulk_cursor = self.bulk_cursor.min(flight.first);
            } else {
                self.single_cursor = self.single_cursor.min(flight.first);
            }
            self.pause_until = Some(now + self.config.busy_pause);
            return;
        }
        self.sink_failed(now, flight, error);
        self.try_finish_cycle(now);
    }

    /// Stop: no new cycle; the running one delivers what it can.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        // The runner drops the fetch and any API request; pending values
        // still go out (by key where no id is known yet).
        let checking = self.api_step != ApiStep::None;
        if checking {
            self.abandon_registration();
        }
        // Between cycles, values may still wait: the backlog past the
        // replay budget, or values a check held. They go out within the
        // shutdown timeout unless the Data-Service is down (then they are
        // spooled at once).
        let waiting = self.pending() > 0 && !matches!(self.sink, Health::Down { .. });
        match self.phase {
            Phase::FetchDue => {
                self.phase = Phase::Idle;
                if waiting {
                    self.start_catch_up(now);
                }
            }
            Phase::Fetching => self.end_fetch(now),
            Phase::Idle if waiting || checking => self.deliver_what_became_ready(now),
            Phase::Idle => {}
            Phase::Delivering => {
                if self.config.backlog == BacklogPolicy::History {
                    // Walk again, past the replay budget.
                    self.walk_done = false;
                }
                if checking {
                    self.deliver_what_became_ready(now);
                }
            }
        }
    }

    // ---- outputs ----

    /// What the runner must start now.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if self.phase != Phase::FetchDue {
            return None;
        }
        self.phase = Phase::Fetching;
        self.cycle_started = now;
        self.cycle_fetch_ok = false;
        self.cycle_first_seq = self.next_seq;
        self.replayed_in_cycle = 0;
        self.cycle_id = self.cycle_id.wrapping_add(1);
        self.acked_in_cycle = 0;
        self.decisions_not_shown = 0;
        self.document = Some(DocumentRead::Reading {
            stream: DocumentStream::new(),
            staging: Staging::default(),
        });
        Some(Action::FetchSource)
    }

    /// The next HTTP API request, its body (if any) written into `buf`.
    pub fn poll_api_request(&mut self, now: Instant, buf: &mut [u8]) -> Option<ApiRequest> {
        match self.api_step {
            ApiStep::DetailedDue => {
                self.api_step = ApiStep::Detailed;
                Some(ApiRequest {
                    method: "GET",
                    path: "/detailed",
                    body_len: 0,
                })
            }
            ApiStep::RegisterDue => {
                let limit = buf.len().min(self.config.bulk_max_bytes);
                match self.encode_registrations(&mut buf[..limit]) {
                    Some((first, body_len)) => {
                        self.api_step = ApiStep::Register { first };
                        Some(ApiRequest {
                            method: "POST",
                            path: "/register/bulk",
                            body_len,
                        })
                    }
                    None => {
                        self.api_step = ApiStep::None;
                        self.stats
                            .record_registry_check(now - self.registry_check_started);
                        self.registry_check_ended(now);
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// The next request line, written into `buf` (at least
    /// [`min_transmit_buffer`] bytes; bulk lines use up to `bulk_max_bytes`).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.phase != Phase::Delivering || self.in_flight.is_full() {
            return None;
        }
        if let Some(until) = self.pause_until {
            if now < until {
                return None;
            }
            self.pause_until = None;
        }
        if self.sink.is_down() {
            self.mirror_due = true;
            // While down: one probe at a time, and only once the backoff ran
            // out; otherwise this cycle's delivery ends here.
            if !self.in_flight.is_empty() {
                return None;
            }
            if now < self.retry_at {
                self.end_delivery_pass();
                self.try_finish_cycle(now);
                return None;
            }
        }
        // Each bulk line in flight holds its answer (1.2 times the line) in
        // memory; a Data-Service answers one connection at a time, so more
        // than a couple in flight only queue there.
        let bulks = self.in_flight.iter().filter(|f| f.bulk).count();
        let bulk_room = bulks < self.config.bulk_in_flight.max(1);
        let transmit = match (self.config.backlog, self.config.delivery) {
            (BacklogPolicy::History, DeliveryMode::Bulk) if !bulk_room => None,
            (BacklogPolicy::History, _) => self.next_from_backlog(buf),
            (_, DeliveryMode::Bulk) if !bulk_room => self.next_single(buf),
            (_, DeliveryMode::Bulk) => self.next_bulk(buf).or_else(|| self.next_single(buf)),
            (_, DeliveryMode::Write) => self.next_single(buf),
        };
        if transmit.is_none() {
            let catching_up = self.catching_up;
            self.try_finish_cycle(now);
            if self.catching_up && !catching_up {
                // The cycle ended and a catch-up pass followed: its requests.
                return self.poll_transmit(now, buf);
            }
        }
        transmit
    }

    /// The next spool frame to append, written into `buf` (at least
    /// [`spool::MAX_FRAME_LEN`] bytes): with `spool` on, `history` changes
    /// that are not acknowledged when their cycle ends, while the
    /// Data-Service is failing, or at shutdown ([`Engine::flush_to_spool`]),
    /// in the order they were accepted, each once.
    pub fn poll_spool(&mut self, buf: &mut [u8]) -> Option<SpoolFrame> {
        if !self.config.spool || !self.mirror_due {
            return None;
        }
        let ring = self.table.backlog_bytes();
        let mut at = match self.mirror_hint {
            Some((offset, seq)) if self.backlog.is_live(offset) && seq_of(ring, offset) == seq => {
                Some(offset)
            }
            _ => self.backlog.head(),
        };
        while let Some(offset) = at {
            let ring = self.table.backlog_bytes();
            let seq = seq_of(ring, offset);
            at = self.backlog.next(ring, offset);
            self.mirror_hint = Some((offset, seq));
            if seq < self.mirror_next_seq {
                continue;
            }
            self.mirror_next_seq = seq + 1;
            if state_of(ring, offset) == EntryState::Acked || is_on_disk(ring, offset) {
                continue;
            }
            let entry = read_entry(ring, offset);
            let change = spool::Change {
                seq,
                source_time_ms: entry.source_time_ms,
                key: self.table.key(entry.slot as usize),
                value: entry.value,
            };
            let Some(len) = spool::encode_change(&change, buf) else {
                continue;
            };
            let (_, ring) = self.table.slots_and_backlog_mut();
            mark_on_disk(ring, offset);
            return Some(SpoolFrame { len, seq });
        }
        self.mirror_due = false;
        None
    }

    /// Every change numbered up to this was acknowledged (or dropped): what
    /// the spool may forget.
    pub fn spool_acked_through(&self) -> u64 {
        match self.backlog.head() {
            Some(head) => seq_of(self.table.backlog_bytes(), head).saturating_sub(1),
            None => self.next_seq.saturating_sub(1),
        }
    }

    /// Hands every unacknowledged change to [`Engine::poll_spool`] (at exit).
    pub fn flush_to_spool(&mut self) {
        self.mirror_due = true;
    }

    /// Continues change numbers after those found in the spool.
    pub fn resume_numbering(&mut self, next_seq: u64) {
        self.next_seq = self.next_seq.max(next_seq);
        self.cycle_first_seq = self.next_seq;
        self.mirror_next_seq = self.mirror_next_seq.max(next_seq);
    }

    /// A change read back from the spool at start: it joins the backlog
    /// (already on disk) ahead of every live value. `false` when the tag
    /// table has no room for its key.
    pub fn handle_replayed(&mut self, now: Instant, change: &spool::Change<'_>) -> bool {
        let Ok(key) = crate::key::Key::try_from(change.key) else {
            return false;
        };
        let Ok(position) = self.table.upsert(&key, change.value.clone()) else {
            self.stats.tags_over_capacity_total += 1;
            return false;
        };
        if let Some(slot) = self.table.slot_mut(position) {
            slot.pending = false;
        }
        self.registry_dirty = true;
        self.stats.replayed_total += 1;
        let entry = BacklogEntry {
            slot: position as u32,
            seq: change.seq,
            source_time_ms: change.source_time_ms,
            value: change.value.clone(),
            on_disk: true,
        };
        self.queue_entry(now, &entry);
        self.resume_numbering(change.seq + 1);
        true
    }

    /// The next thing to log.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// When the engine wants to be called again (besides ticks and answers).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Delivering => self.pause_until,
            _ => None,
        }
    }

    // ---- report by exception ----

    /// Whether the value just stored at `position` must be written: it
    /// differs from what the Data-Service acknowledged (`history`: from the
    /// newest change queued) beyond the rule's deadband and the rule's
    /// minimum interval has passed, or the heartbeat is due.
    fn decide_write(
        &mut self,
        now: Instant,
        position: usize,
        source_time_ms: u64,
        rules: &RuleSet,
    ) {
        let history = self.config.backlog == BacklogPolicy::History;
        self.check_type(now, position);
        if self.note_source_time(now, position, source_time_ms) {
            // Frozen at the source: what the Data-Service holds must not
            // look fresh, so nothing new goes out (an undelivered value
            // from before still does).
            self.stats.writes_stale_total += 1;
            self.trace(position, Decision::Stale);
            return;
        }
        let Some(value) = self.table.value(position) else {
            return;
        };
        let Some(slot) = self.table.slot_mut(position) else {
            return;
        };
        if !history && slot.pending && !slot.in_flight {
            // The value before this one was never sent.
            self.stats.writes_superseded_total += 1;
        }
        let rule = rules.rules.get(usize::from(slot.rule));
        let heartbeat = rule
            .and_then(|r| r.heartbeat)
            .unwrap_or(self.config.heartbeat);
        let hash = value_hash(&value);
        let queued = history && slot.queued > 0;
        let (reference, reference_number) = if queued {
            (Some(slot.queued_hash), slot.queued_number)
        } else {
            (slot.acked_hash, slot.acked_number)
        };
        let mut changed = reference != Some(hash);
        let mut decision = Decision::Unchanged;
        let after_failed_read = core::mem::take(&mut slot.after_failed_read);
        if changed
            && !after_failed_read
            && let (Some(band), Some(now_number)) = (rule.and_then(|r| r.deadband), number(&value))
            && !reference_number.is_nan()
            && within_deadband(band, reference_number, now_number)
        {
            changed = false;
            self.stats.writes_deadband_total += 1;
            decision = Decision::WithinDeadband;
        }
        if changed
            && let Some(min) = rule.and_then(|r| r.min_interval)
            && slot.acked_hash.is_some()
            && (queued || now - slot.acked_at < min)
        {
            // Held back: the value is looked at again next cycle.
            slot.pending = false;
            self.stats.writes_deferred_total += 1;
            self.trace(position, Decision::HeldBack);
            return;
        }
        let heartbeat_due = !changed && !queued && now - slot.acked_at >= heartbeat;
        let covered = match self.api_step {
            ApiStep::DetailedDue => true,
            ApiStep::Detailed => self.detailed.is_none() || position < self.detailed_covers,
            _ => false,
        };
        if slot.registration == Registration::Unknown && !covered {
            // Not in the running check's `/detailed` answer: one more check.
            self.registry_dirty = true;
        }
        if heartbeat_due {
            self.stats.heartbeats_total += 1;
            decision = Decision::Heartbeat;
        } else if changed {
            decision = Decision::Write;
        } else {
            self.stats.writes_suppressed_total += 1;
        }
        self.trace(position, decision);
        let Some(slot) = self.table.slot_mut(position) else {
            return;
        };
        if !history {
            slot.pending = changed || heartbeat_due;
            return;
        }
        if !(changed || heartbeat_due) {
            return;
        }
        slot.changed_in_cycle = self.cycle_id;
        let entry = BacklogEntry {
            slot: position as u32,
            seq: self.next_seq,
            source_time_ms,
            value,
            on_disk: false,
        };
        self.next_seq += 1;
        self.queue_entry(now, &entry);
    }

    /// `history`: when what waits would take the Data-Service, at
    /// `per_second`, longer than `max_drain`, every change
    /// that a newer one of its tag follows and that is not in flight is
    /// dropped (counted), so that each tag's newest value arrives within
    /// two intervals: said once per overrun episode, with the rate seen.
    fn drop_superseded_changes(&mut self, now: Instant, per_second: u64) {
        if self.config.backlog != BacklogPolicy::History || self.backlog.is_empty() {
            return;
        }
        // No answer yet says nothing of the Data-Service's rate.
        if per_second == 0 {
            return;
        }
        let waiting = self.backlog.unacked();
        let drain_ms = (waiting as u64).saturating_mul(1000) / per_second;
        let limit = self.config.max_drain.map_or(
            self.config.interval.total_millis() * 3 / 2,
            Duration::total_millis,
        );
        if drain_ms <= limit {
            return;
        }
        let mut dropped = 0u64;
        let (slots, ring) = self.table.slots_and_backlog_mut();
        let mut at = self.backlog.head();
        while let Some(offset) = at {
            at = self.backlog.next(ring, offset);
            if state_of(ring, offset) != EntryState::Unsent {
                continue;
            }
            let Some(slot) = slots.get_mut(slot_of(ring, offset) as usize) else {
                continue;
            };
            if slot.queued > 1 {
                slot.queued -= 1;
                self.backlog.set_state(ring, offset, EntryState::Acked);
                dropped += 1;
            }
        }
        if dropped == 0 {
            return;
        }
        let (_, ring) = self.table.slots_and_backlog_mut();
        self.backlog.reclaim(ring);
        self.after_backlog_change();
        self.stats.backlog_dropped_total += dropped;
        self.backlog_drain_ms = drain_ms;
        if !core::mem::replace(&mut self.drain_reported, true) {
            self.stats.record_error(
                now,
                format_args!("backlog cannot drain: {dropped} superseded changes dropped"),
            );
            self.push_event(Event::BacklogCannotDrain {
                per_second,
                waiting,
                drain: Duration::from_millis(self.backlog_drain_ms.min(u64::MAX / 2)),
            });
        }
    }

    /// With `trace_decisions`, the decision about a reading as an event,
    /// while the queue keeps room for state changes; counted otherwise.
    fn trace(&mut self, position: usize, decision: Decision) {
        if !self.config.trace_decisions {
            return;
        }
        if self.events.len() >= TRACE_QUEUE_ROOM {
            self.decisions_not_shown += 1;
            return;
        }
        let key = self.preview_of(position);
        self.events.push(Event::Decision { key, decision });
    }

    /// Reports, once per tag, a registered type that would change the
    /// tag's latest value on the way into the Data-Service.
    fn check_type(&mut self, now: Instant, position: usize) {
        let Some(slot) = self.table.slots().get(position) else {
            return;
        };
        let Some(registered) = slot.registered_type() else {
            return;
        };
        if slot.type_mismatch {
            return;
        }
        let value = self.table.value_of(slot);
        if value.fits_data_type(registered) {
            return;
        }
        self.table.slots_mut()[position].type_mismatch = true;
        self.stats.type_mismatches_total += 1;
        let key = self.preview_of(position);
        let value_type = value.data_type();
        self.stats.record_error(
            now,
            format_args!("type mismatch: {key}: a {value_type} value into a {registered} key"),
        );
        self.push_event(Event::TypeMismatch {
            key,
            value_type,
            registered,
        });
    }

    /// Follows the reading's source timestamp; true while it is stale (it
    /// stood still for `max_age` in the sync's own clock, so that skew
    /// between the clocks cannot fake it). A reading without a timestamp
    /// is never stale.
    fn note_source_time(&mut self, now: Instant, position: usize, source_time_ms: u64) -> bool {
        let max_age = self.config.max_age;
        let Some(slot) = self.table.slot_mut(position) else {
            return false;
        };
        let stamp = source_time_ms as u32;
        let now_ms = now.total_millis() as u32;
        if source_time_ms == 0 || stamp != slot.source_stamp {
            slot.source_stamp = stamp;
            slot.source_since = now_ms;
            if core::mem::take(&mut slot.stale) {
                let key = self.preview_of(position);
                self.push_event(Event::TagFresh { key });
            }
            return false;
        }
        if slot.stale {
            return true;
        }
        let frozen_for = Duration::from_millis(u64::from(now_ms.wrapping_sub(slot.source_since)));
        match max_age {
            Some(max_age) if frozen_for >= max_age => {
                slot.stale = true;
                self.stats.tags_stale_total += 1;
                let key = self.preview_of(position);
                self.stats.record_error(
                    now,
                    format_args!("tag stale: {key}: source timestamp unchanged for {frozen_for}"),
                );
                self.push_event(Event::TagStale { key, frozen_for });
                true
            }
            _ => false,
        }
    }

    /// Appends to the backlog, dropping the oldest entries while it is full.
    fn queue_entry(&mut self, now: Instant, entry: &BacklogEntry) {
        loop {
            let (slots, buf) = self.table.slots_and_backlog_mut();
            match self.backlog.push(buf, entry) {
                Ok(true) => {
                    if let Some(slot) = slots.get_mut(entry.slot as usize) {
                        slot.queued += 1;
                        slot.queued_hash = value_hash(&entry.value);
                        slot.queued_number = number(&entry.value).unwrap_or(f64::NAN);
                    }
                    return;
                }
                Ok(false) => {
                    let Some((gone, state)) = self.backlog.pop(buf) else {
                        return;
                    };
                    if state != EntryState::Acked {
                        if let Some(slot) = slots.get_mut(gone.slot as usize) {
                            slot.queued = slot.queued.saturating_sub(1);
                        }
                        self.note_backlog_drop(now, gone.seq);
                    }
                }
                Err(EntryTooLarge) => {
                    self.note_backlog_drop(now, entry.seq);
                    return;
                }
            }
        }
    }

    fn note_backlog_drop(&mut self, now: Instant, seq: u64) {
        self.stats.backlog_dropped_total += 1;
        if !self.backlog_full_reported {
            self.backlog_full_reported = true;
            let bytes = self.table.backlog_bytes().len();
            self.stats.record_error(
                now,
                format_args!("backlog full ({bytes} bytes): oldest changes dropped, from #{seq}"),
            );
            self.push_event(Event::BacklogFull { bytes });
        }
    }

    fn acknowledge(&mut self, now: Instant, position: usize) {
        self.stats.writes_ok_total += 1;
        if let Some(slot) = self.table.slot_mut(position) {
            slot.in_flight = false;
            slot.acked_hash = Some(slot.sent_hash);
            slot.acked_at = now;
            slot.acked_number = f64::NAN;
            if slot.seq == slot.sent_seq {
                slot.pending = false;
                slot.acked_number = slot.value.number().unwrap_or(f64::NAN);
            }
        }
    }

    // ---- registry ----

    fn start_registry_check_if_wanted(&mut self, now: Instant) {
        let wanted = self.config.registry_checks
            && self.registry_dirty
            && self.api_step == ApiStep::None
            && !self.shutting_down
            && (!self.api.is_down() || now >= self.api_retry_at);
        if wanted {
            self.registry_dirty = false;
            self.registry_check_started = now;
            self.api_step = ApiStep::DetailedDue;
            self.check_holds_every_tag = self
                .table
                .slots()
                .iter()
                .all(|slot| unchecked(slot.registration));
        }
    }

    /// While a check that every tag waits for runs, a fetch could deliver
    /// nothing, and with `--backlog latest` it would keep nothing the
    /// fetch after the check does not bring: ticks skip it, leaving the
    /// Data-Service (and the CPU) to the check, and a cycle follows the
    /// check at once. With `history` every change is kept, so cycles go on.
    fn fetch_waits_for_check(&self) -> bool {
        self.api_step != ApiStep::None
            && self.check_holds_every_tag
            && self.config.backlog == BacklogPolicy::Latest
    }

    /// The check is over (done, or failed: then unchecked tags go by key).
    fn registry_check_ended(&mut self, now: Instant) {
        if core::mem::take(&mut self.skipped_tick)
            && self.phase == Phase::Idle
            && !self.shutting_down
        {
            // Ticks skipped their fetch meanwhile: a cycle now, with fresh values.
            self.phase = Phase::FetchDue;
        } else {
            self.deliver_what_became_ready(now);
        }
    }

    /// Whether a tag in this state waits for a registry check (running, or
    /// to start when this cycle has delivered) rather than going by key: a
    /// key the Data-Service does not have would drop its value without a
    /// word. While the API is down, unchecked tags go by key.
    fn waits_for_check(&self, slot: &TagSlot) -> bool {
        self.check_coming() && unchecked(slot.registration)
    }

    fn check_coming(&self) -> bool {
        let running = self.api_step != ApiStep::None;
        let wanted = self.config.registry_checks && self.registry_dirty && !self.api.is_down();
        (running || wanted) && !self.shutting_down
    }

    /// Starts reading a `/detailed` answer (once per answer).
    fn begin_detailed(&mut self, now: Instant) {
        if self.detailed.is_some() {
            return;
        }
        if self.api.is_down() && self.api_down_epoch == self.registry_epoch {
            // The API came back: the Data-Service may have restarted (unless
            // that was seen already during the outage). This answer is the
            // fresh look at its registry.
            self.invalidate_registry(now, "its HTTP API came back");
            self.registry_dirty = false;
        }
        self.detailed = Some(DetailedRead::Reading(DetailedStream::default()));
        self.detailed_covers = self.table.len();
    }

    /// Takes the points complete at the start of `part`; returns the bytes
    /// used. After an error, takes everything (the answer is useless).
    fn feed_detailed(&mut self, part: &mut [u8]) -> usize {
        let stream = match self.detailed.as_mut() {
            None => return 0,
            Some(DetailedRead::Failed(_)) => return part.len(),
            Some(DetailedRead::Reading(stream)) => stream,
        };
        let mut key = crate::key::Key::new();
        let table = &mut self.table;
        let fed = stream.feed(part, |point| {
            key.clear();
            if point.key.write_unescaped(&mut key).is_err() {
                return;
            }
            let Some(position) = table.find(&key) else {
                return;
            };
            let Some(slot) = table.slot_mut(position) else {
                return;
            };
            if slot.registration != Registration::Unknown {
                return;
            }
            slot.registered_type = point
                .data_type
                .and_then(|t| DATA_TYPES.iter().position(|d| t.eq_str(d)))
                .map_or(UNKNOWN_TYPE, |i| i as u8);
            slot.registration = match point_meta(&point) {
                Some(meta) => {
                    slot.registry = RegistryData::Meta(meta);
                    Registration::Found
                }
                None => Registration::ByKeyOnly,
            };
        });
        fed.unwrap_or_else(|error| {
            self.detailed = Some(DetailedRead::Failed(error));
            part.len()
        })
    }

    /// The whole `/detailed` answer was read, its last bytes in `rest`.
    fn finish_detailed(&mut self, now: Instant, rest: &mut [u8]) -> Result<(), DocumentError> {
        let used = self.feed_detailed(rest);
        let whole = match self.detailed.take() {
            Some(DetailedRead::Failed(error)) => Err(error),
            Some(DetailedRead::Reading(stream)) if used == rest.len() => stream.finish(),
            // Bytes left that do not make a member: the body was cut off.
            _ => Err(DocumentError::Json(JsonError::UnexpectedEnd)),
        };
        if whole.is_err() {
            // Points came before the error: forget what they said.
            self.unmark_detailed();
            return whole;
        }
        let register = self.config.register;
        // Tags that came in while the answer was read (a cycle runs beside
        // it) may have come after their key went by: they stay unknown, and
        // another check looks again (`decide_write` asked for it).
        for position in 0..self.detailed_covers {
            if self.table.slots()[position].registration != Registration::Unknown {
                self.check_type(now, position);
                continue;
            }
            let key = KeyPreview::of_key(self.table.key(position));
            let slot = &mut self.table.slots_mut()[position];
            slot.registration = match register {
                RegisterMode::Missing => Registration::Missing,
                RegisterMode::Off => Registration::NotRegistered,
            };
            if register == RegisterMode::Off && self.first_report_of(&key) {
                self.push_event(Event::TagNotRegistered { key });
            }
        }
        self.register_cursor = 0;
        Ok(())
    }

    /// A `/detailed` answer failed part way: the tags it marked are checked
    /// again with the next one.
    fn unmark_detailed(&mut self) {
        self.detailed = None;
        for slot in self.table.slots_mut() {
            if matches!(
                slot.registration,
                Registration::Found | Registration::ByKeyOnly
            ) {
                slot.registration = Registration::Unknown;
                slot.registry = RegistryData::None;
                slot.registered_type = UNKNOWN_TYPE;
                slot.type_mismatch = false;
            }
        }
    }

    /// Encodes the next `/register/bulk` body; `None` when nothing is left.
    fn encode_registrations(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        let mut encoder = RegisterEncoder::new(buf).ok()?;
        let mut first = None;
        while self.register_cursor < self.table.len() {
            let position = self.register_cursor;
            let slot = &self.table.slots()[position];
            let spec = match (slot.registration, &slot.registry) {
                (Registration::Found, RegistryData::Meta(meta)) => PointSpec::Existing {
                    address: meta.address(),
                    default: meta.default(),
                    data_type: meta.data_type(),
                    units: meta.units(),
                },
                (Registration::Missing, _) => PointSpec::New {
                    data_type: self
                        .config
                        .rules
                        .rules
                        .get(usize::from(slot.rule))
                        .and_then(|rule| rule.data_type)
                        .map_or_else(
                            || self.table.value_of(slot).registration_type(),
                            |t| t.as_str(),
                        ),
                },
                _ => {
                    self.register_cursor += 1;
                    continue;
                }
            };
            let new_type = match spec {
                PointSpec::New { data_type } => data_type_index(data_type),
                PointSpec::Existing { .. } => None,
            };
            let pushed = encoder.push(self.table.key_of(slot), spec);
            let slot = &mut self.table.slots_mut()[position];
            if pushed.is_err() {
                if encoder.count() == 0 {
                    // Cannot fit even alone: keep it on write by key.
                    slot.registration = Registration::ByKeyOnly;
                    self.register_cursor += 1;
                    continue;
                }
                break;
            }
            slot.registration = Registration::Registering;
            if let Some(new_type) = new_type {
                slot.registered_type = new_type;
            }
            first.get_or_insert(position);
            self.register_cursor += 1;
        }
        let first = first?;
        Some((first, encoder.finish()))
    }

    fn apply_registrations(
        &mut self,
        now: Instant,
        first: usize,
        body: &[u8],
    ) -> Result<(), crate::wire::polled::DocumentError> {
        // Results come by index into the request: the n-th slot in state
        // Registering from `first` on. Indexes only go up; a point the
        // answer passes over stays Registering and fails below.
        let mut positions = first..self.table.len();
        let mut next_index = 0usize;
        let mut failures: heapless::Vec<(usize, heapless::String<64>), 8> = heapless::Vec::new();
        let mut failed_total = 0u64;
        let mut unlisted_failures = 0u32;
        let mut registered = 0u64;
        let table = &mut self.table;
        parse_register_bulk(body, |result| {
            let index = result.index.unwrap_or(next_index);
            if index < next_index {
                return;
            }
            let mut registering = || {
                positions
                    .by_ref()
                    .find(|&p| table.slots()[p].registration == Registration::Registering)
            };
            for _ in next_index..index {
                registering();
            }
            let Some(position) = registering() else {
                return;
            };
            next_index = index + 1;
            let slot = &mut table.slots_mut()[position];
            slot.registry = RegistryData::None;
            match (result.ok, result.id.and_then(|id| parse_id(id.raw()))) {
                (true, Some(id)) => {
                    slot.registry = RegistryData::Id(id);
                    slot.registration = Registration::Registered;
                    registered += 1;
                }
                _ => {
                    slot.registration = Registration::Failed;
                    failed_total += 1;
                    let mut text = heapless::String::new();
                    if let Some(error) = result.error {
                        error.write_unescaped(&mut Truncating::new(&mut text)).ok();
                    }
                    if failures.push((position, text)).is_err() {
                        unlisted_failures += 1;
                    }
                }
            }
        })?;
        // Points the answer did not mention failed too.
        for position in first..self.table.len() {
            let slot = &mut self.table.slots_mut()[position];
            if slot.registration == Registration::Registering {
                slot.registration = Registration::Failed;
                failed_total += 1;
            }
        }
        self.stats.registrations_total += registered;
        self.stats.registrations_failed_total += failed_total;
        for (position, error) in failures {
            let key = self.preview_of(position);
            self.stats
                .record_error(now, format_args!("registration failed: {key}: {error}"));
            if self.first_report_of(&key) {
                self.push_event(Event::RegistrationFailed { key, error });
            }
        }
        if unlisted_failures > 0 {
            // Named one by one above up to a few per answer; the rest in one line.
            self.stats.record_error(
                now,
                format_args!("{unlisted_failures} more registrations failed in the same answer"),
            );
            self.push_event(Event::MoreRegistrationsFailed {
                count: unlisted_failures,
            });
        }
        Ok(())
    }

    fn api_failed(&mut self, now: Instant, error: ApiError) {
        self.stats.api_errors_total += 1;
        self.stats
            .record_error(now, format_args!("Data-Service HTTP API: {error}"));
        if !self.api.is_down() {
            self.api_down_epoch = self.registry_epoch;
        }
        if let Change::WentDown(error) = self.api.record_failure(now, error) {
            self.push_event(Event::ApiDown(error));
        }
        self.api_retry_at = now + self.config.api_retry;
        if self.detailed.is_some() {
            self.unmark_detailed();
        }
        self.abandon_registration();
        // Tags stay unchecked and are written by key meanwhile.
        self.registry_dirty = true;
        self.registry_check_ended(now);
    }

    fn abandon_registration(&mut self) {
        self.api_step = ApiStep::None;
        for slot in self.table.slots_mut() {
            if matches!(
                slot.registration,
                Registration::Registering | Registration::Found | Registration::Missing
            ) {
                slot.registration = Registration::Unknown;
                slot.registry = RegistryData::None;
            }
        }
    }

    /// A restart shown by what was sent or seen in registry epoch `epoch`:
    /// news only if nothing was invalidated since (a restart answers every
    /// line in flight `id not found`, and its socket and API come back).
    fn restart_if_news(&mut self, now: Instant, epoch: u32, why: &'static str) {
        if epoch == self.registry_epoch {
            self.restart_assumed(now, why);
        }
    }

    /// A write showed that the Data-Service restarted: a check that was
    /// running asked the old one, so it starts again.
    fn restart_assumed(&mut self, now: Instant, why: &'static str) {
        if self.api_step != ApiStep::None {
            self.detailed = None;
            self.api_step = ApiStep::None;
        }
        self.invalidate_registry(now, why);
        self.start_registry_check_if_wanted(now);
    }

    /// The Data-Service lost its registrations and values (restart): check
    /// every tag again and write every value again.
    fn invalidate_registry(&mut self, now: Instant, why: &'static str) {
        let history = self.config.backlog == BacklogPolicy::History;
        for slot in self.table.slots_mut() {
            slot.registration = Registration::Unknown;
            slot.registry = RegistryData::None;
            slot.registered_type = UNKNOWN_TYPE;
            slot.type_mismatch = false;
            slot.acked_hash = None;
            slot.pending = !history && !slot.stale;
        }
        if history {
            // Refill: tags with nothing queued get their current value again.
            for position in 0..self.table.len() {
                let slot = &self.table.slots()[position];
                if slot.queued == 0 {
                    let entry = BacklogEntry {
                        slot: position as u32,
                        seq: self.next_seq,
                        source_time_ms: 0,
                        value: self.table.value_of(slot),
                        on_disk: false,
                    };
                    self.next_seq += 1;
                    self.queue_entry(now, &entry);
                }
            }
        }
        self.registry_dirty = true;
        self.registry_epoch = self.registry_epoch.wrapping_add(1);
        self.stats.dataservice_restarts_total += 1;
        self.stats
            .record_error(now, format_args!("Data-Service restart assumed: {why}"));
        self.push_event(Event::DataServiceRestarted { reason: why });
    }

    // ---- delivery ----

    /// The cycle's fetch ended (with a document, broken or whole, or an
    /// error, or cut short by shutdown): its delivery pass starts.
    fn end_fetch(&mut self, now: Instant) {
        self.cycle_fetch_ended = now;
        self.start_delivery(now);
    }

    fn start_delivery(&mut self, now: Instant) {
        self.phase = Phase::Delivering;
        self.catch_up_due = false;
        self.rewind_delivery();
        self.pass_started = now;
        self.acked_in_pass = 0;
        // Back after an outage: what the Data-Service took in the last pass
        // says at once whether the backlog can go within an interval. (While
        // it is down, every change is kept, for the spool.)
        if self.known_rate > 0 && !self.sink.is_down() {
            self.drop_superseded_changes(now, self.known_rate);
        }
        self.try_finish_cycle(now);
    }

    /// Changes the Data-Service acknowledged per second in this cycle.
    fn cycle_rate(&self, now: Instant) -> u64 {
        let elapsed_ms = (now - self.cycle_started).total_millis().max(1);
        self.acked_in_cycle.saturating_mul(1000) / elapsed_ms
    }

    /// Tags a registry check was holding back can go now, in a catch-up
    /// pass of their own: at once between cycles, or right after the
    /// running cycle's pass (a cycle about to deliver takes them anyway).
    fn deliver_what_became_ready(&mut self, now: Instant) {
        match self.phase {
            Phase::Delivering if self.catching_up => self.rewind_delivery(),
            Phase::Delivering => self.catch_up_due = true,
            Phase::Idle => self.start_catch_up(now),
            Phase::FetchDue | Phase::Fetching => {}
        }
    }

    fn start_catch_up(&mut self, now: Instant) {
        self.catching_up = true;
        self.start_delivery(now);
    }

    fn rewind_delivery(&mut self) {
        // In write mode there is no bulk pass; with a history backlog the
        // backlog is delivered instead of the table.
        let history = self.config.backlog == BacklogPolicy::History;
        self.bulk_cursor = match self.config.delivery {
            DeliveryMode::Bulk if !history => 0,
            _ => self.table.len(),
        };
        self.single_cursor = if history { self.table.len() } else { 0 };
        self.walk_done = !history;
    }

    fn end_delivery_pass(&mut self) {
        self.bulk_cursor = self.table.len();
        self.single_cursor = self.table.len();
        self.walk_done = true;
    }

    fn wants_bulk(&self, slot: &TagSlot) -> bool {
        self.config.delivery == DeliveryMode::Bulk && slot.registration == Registration::Registered
    }

    fn next_request_id(&mut self) -> RequestId {
        let request = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        request
    }

    fn next_bulk(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let limit = buf.len().min(self.config.bulk_max_bytes);
        let mut encoder = BulkEncoder::new(&mut buf[..limit]).ok()?;
        let request = RequestId(self.next_request);
        let mut first = None;
        let mut count = 0;
        while self.bulk_cursor < self.table.len() {
            let position = self.bulk_cursor;
            let slot = &self.table.slots()[position];
            if !slot.pending || slot.in_flight || !self.wants_bulk(slot) {
                self.bulk_cursor += 1;
                continue;
            }
            let mut hex = [0u8; 32];
            let value = self.table.value_of(slot);
            if encoder
                .push(id_hex(&slot.registry.id(), &mut hex), &value)
                .is_err()
            {
                break;
            }
            let slot = &mut self.table.slots_mut()[position];
            mark_sent(slot, request.0, &value);
            first.get_or_insert(position);
            count += 1;
            self.bulk_cursor += 1;
        }
        let first = first?;
        let len = encoder.finish();
        Some(self.bulk_sent(request, first, count, false, len))
    }

    /// Books a bulk request that was just encoded.
    fn bulk_sent(
        &mut self,
        request: RequestId,
        first: usize,
        count: usize,
        backlog: bool,
        len: usize,
    ) -> Transmit {
        self.next_request_id();
        self.stats.bulk_requests_total += 1;
        // `poll_transmit` checked that a place is free.
        self.in_flight
            .push(InFlight {
                request,
                first,
                count,
                bulk: true,
                backlog,
                epoch: self.registry_epoch,
            })
            .ok();
        Transmit { request, len }
    }

    fn next_single(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while self.single_cursor < self.table.len() {
            let position = self.single_cursor;
            self.single_cursor += 1;
            let slot = &self.table.slots()[position];
            if !slot.pending
                || slot.in_flight
                || self.wants_bulk(slot)
                || self.waits_for_check(slot)
            {
                continue;
            }
            let value = self.table.value_of(slot);
            let Ok(len) = encode_write(self.table.key_of(slot), &value, buf) else {
                // Keys and strings are bounded so that a line always fits a
                // buffer of `min_transmit_buffer()` bytes; skip defensively.
                continue;
            };
            let request = self.next_request_id();
            mark_sent(&mut self.table.slots_mut()[position], request.0, &value);
            self.in_flight
                .push(InFlight {
                    request,
                    first: position,
                    count: 1,
                    bulk: false,
                    backlog: false,
                    epoch: self.registry_epoch,
                })
                .ok();
            return Some(Transmit { request, len });
        }
        None
    }

    /// The next request from the `history` backlog: oldest changes first, a
    /// tag's changes in order and never in two requests at once; changes of
    /// tags with ids in one `bulk_write_by_id` line (the Data-Service applies
    /// its updates in order), the others one `write` each.
    fn next_from_backlog(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.walk_id = self.walk_id.wrapping_add(1);
        let walk = self.walk_id;
        let request = RequestId(self.next_request);
        // At shutdown the whole backlog goes, within the shutdown timeout.
        let budget = if self.shutting_down {
            u32::MAX
        } else {
            self.config.replay_per_cycle()
        };
        let bulk_mode = self.config.delivery == DeliveryMode::Bulk;
        let check_coming = self.check_coming();
        let limit = buf.len().min(self.config.bulk_max_bytes);
        let mut encoder = BulkEncoder::new(&mut buf[..limit]).ok()?;
        let mut first = None;
        let mut count = 0usize;
        let mut replayed = 0u32;
        let mut single: Option<(usize, usize)> = None;
        let table = &mut self.table;
        let mut at = self.backlog.head();
        while let Some(offset) = at {
            let (slots, ring) = table.slots_and_backlog_mut();
            at = self.backlog.next(ring, offset);
            if state_of(ring, offset) != EntryState::Unsent {
                continue;
            }
            let position = slot_of(ring, offset) as usize;
            let Some(slot) = slots.get_mut(position) else {
                continue;
            };
            let ours = slot.in_flight && slot.request == request.0;
            if (slot.in_flight && !ours) || slot.walk_mark == walk {
                continue;
            }
            if check_coming && unchecked(slot.registration) {
                // Its changes wait, in order, for the check.
                slot.walk_mark = walk;
                continue;
            }
            let old = seq_of(ring, offset) < self.cycle_first_seq;
            // The budget holds back replay only: a tag that changed in this
            // cycle sends its older changes now, so that its newest value
            // is not kept waiting behind them.
            let live = slot.changed_in_cycle == self.cycle_id;
            if old && !ours && !live && self.replayed_in_cycle + replayed >= budget {
                slot.walk_mark = walk;
                continue;
            }
            let entry = read_entry(ring, offset);
            if bulk_mode && slot.registration == Registration::Registered {
                let mut hex = [0u8; 32];
                if encoder
                    .push(id_hex(&slot.registry.id(), &mut hex), &entry.value)
                    .is_err()
                {
                    break;
                }
            } else if count == 0 {
                single = Some((offset, position));
                break;
            } else {
                // Its order must hold: nothing of this tag in this line.
                slot.walk_mark = walk;
                continue;
            }
            slot.in_flight = true;
            slot.request = request.0;
            self.backlog
                .set_state(ring, offset, EntryState::InFlight(request.0));
            first.get_or_insert(offset);
            count += 1;
            replayed += u32::from(old);
        }
        if let Some((offset, position)) = single {
            let ring = table.backlog_bytes();
            let entry = read_entry(ring, offset);
            let len = encode_write(table.key(position), &entry.value, buf).ok()?;
            let old = entry.seq < self.cycle_first_seq;
            let (slots, ring) = table.slots_and_backlog_mut();
            if let Some(slot) = slots.get_mut(position) {
                slot.in_flight = true;
                slot.request = request.0;
            }
            self.backlog
                .set_state(ring, offset, EntryState::InFlight(request.0));
            self.replayed_in_cycle += u32::from(old);
            self.next_request_id();
            self.in_flight
                .push(InFlight {
                    request,
                    first: offset,
                    count: 1,
                    bulk: false,
                    backlog: true,
                    epoch: self.registry_epoch,
                })
                .ok();
            return Some(Transmit { request, len });
        }
        let Some(first) = first else {
            self.walk_done = true;
            return None;
        };
        let len = encoder.finish();
        self.replayed_in_cycle += replayed;
        Some(self.bulk_sent(request, first, count, true, len))
    }

    /// Applies the answers to a backlog request, in order: `results` for a
    /// bulk, or `None` for a single write answered `ok`.
    fn settle_backlog(&mut self, now: Instant, flight: InFlight, response: Option<&Response<'_>>) {
        let request = flight.request.0;
        let mut outcomes = BacklogOutcomes::default();
        let table = &mut self.table;
        let backlog = &mut self.backlog;
        let mut cursor = if backlog.is_live(flight.first) {
            Some(flight.first)
        } else {
            backlog.head()
        };
        let mut settle = |ok: bool, id_not_found: bool| {
            let (slots, ring) = table.slots_and_backlog_mut();
            let Some(offset) = cursor.and_then(|c| find_in_flight(backlog, ring, c, request))
            else {
                return;
            };
            cursor = backlog.next(ring, offset);
            let position = slot_of(ring, offset) as usize;
            let slot = slots.get_mut(position);
            if ok {
                let value = read_entry(ring, offset).value;
                backlog.set_state(ring, offset, EntryState::Acked);
                if let Some(slot) = slot {
                    slot.in_flight = false;
                    slot.queued = slot.queued.saturating_sub(1);
                    slot.acked_hash = Some(value_hash(&value));
                    slot.acked_number = number(&value).unwrap_or(f64::NAN);
                    slot.acked_at = now;
                }
                outcomes.ok += 1;
            } else {
                backlog.set_state(ring, offset, EntryState::Unsent);
                if let Some(slot) = slot {
                    slot.in_flight = false;
                }
                outcomes.failed += 1;
                outcomes.id_not_found |= id_not_found;
            }
        };
        let read = match response {
            None => {
                settle(true, false);
                Ok(())
            }
            Some(response) => response.for_each_result(|result| {
                settle(
                    result.ok,
                    result.error.is_some_and(|e| e.eq_str("id not found")),
                )
            }),
        };
        // Updates the answer did not mention failed too.
        let answered = outcomes.ok + outcomes.failed;
        let unanswered = (flight.count as u64).saturating_sub(answered);
        match read {
            Ok(()) if unanswered > 0 => {
                self.release_backlog_flight(flight);
                outcomes.failed += unanswered;
            }
            Ok(()) => {}
            // Broken after the results read: those stand, the rest go again.
            Err(_) => self.sink_failed(
                now,
                InFlight {
                    count: unanswered as usize,
                    ..flight
                },
                SinkError::BadResponse,
            ),
        }
        let (_, ring) = self.table.slots_and_backlog_mut();
        self.backlog.reclaim(ring);
        self.after_backlog_change();
        self.stats.writes_ok_total += outcomes.ok;
        self.acked_in_cycle += outcomes.ok;
        self.acked_in_pass += outcomes.ok;
        self.stats.writes_failed_total += outcomes.failed;
        if outcomes.id_not_found {
            self.stats.ids_not_found_total += 1;
            self.restart_if_news(now, flight.epoch, "a write answered \"id not found\"");
        }
    }

    /// Puts a backlog request's entries back to be sent again.
    fn release_backlog_flight(&mut self, flight: InFlight) {
        let request = flight.request.0;
        let (slots, ring) = self.table.slots_and_backlog_mut();
        let mut at = if self.backlog.is_live(flight.first) {
            Some(flight.first)
        } else {
            self.backlog.head()
        };
        while let Some(offset) = at {
            at = self.backlog.next(ring, offset);
            if state_of(ring, offset) == EntryState::InFlight(request) {
                self.backlog.set_state(ring, offset, EntryState::Unsent);
                if let Some(slot) = slots.get_mut(slot_of(ring, offset) as usize) {
                    slot.in_flight = false;
                }
            }
        }
    }

    /// Something was acknowledged or released: more may be sendable now.
    fn after_backlog_change(&mut self) {
        if self.backlog.is_empty() {
            self.backlog_full_reported = false;
        }
        if self.phase == Phase::Delivering && !self.sink.is_down() {
            self.walk_done = false;
        }
    }

    fn apply_bulk_results(&mut self, now: Instant, flight: InFlight, response: &Response<'_>) {
        let request = flight.request.0;
        let mut cursor = flight.first;
        let mut answered = 0usize;
        let mut id_not_found = false;
        let mut failed = 0u64;
        let table = &mut self.table;
        let stats = &mut self.stats;
        // Results come in request order, and a bulk's slots are in table order.
        let read = response.for_each_result(|result| {
            let slots = table.slots_mut();
            let Some(position) =
                (cursor..slots.len()).find(|&p| slots[p].in_flight && slots[p].request == request)
            else {
                return;
            };
            cursor = position + 1;
            answered += 1;
            let slot = &mut slots[position];
            slot.in_flight = false;
            if result.ok {
                stats.writes_ok_total += 1;
                slot.acked_hash = Some(slot.sent_hash);
                slot.acked_at = now;
                slot.acked_number = f64::NAN;
                if slot.seq == slot.sent_seq {
                    slot.pending = false;
                    slot.acked_number = slot.value.number().unwrap_or(f64::NAN);
                }
            } else {
                failed += 1;
                if result.error.is_some_and(|e| e.eq_str("id not found")) {
                    stats.ids_not_found_total += 1;
                    id_not_found = true;
                }
            }
        });
        // Updates the answer did not mention failed too; only they are
        // still marked in flight, after the last answered one.
        let unanswered = InFlight {
            first: cursor,
            count: flight.count - answered.min(flight.count),
            ..flight
        };
        self.stats.writes_failed_total += failed;
        match read {
            Ok(()) => {
                self.stats.writes_failed_total += unanswered.count as u64;
                self.release_flight(unanswered);
            }
            // Broken after the results read: those stand, the rest go again.
            Err(_) => self.sink_failed(now, unanswered, SinkError::BadResponse),
        }
        if id_not_found {
            self.restart_if_news(now, flight.epoch, "a write answered \"id not found\"");
        }
    }

    fn try_finish_cycle(&mut self, now: Instant) {
        if self.phase != Phase::Delivering
            || self.bulk_cursor < self.table.len()
            || self.single_cursor < self.table.len()
            || !self.walk_done
            || !self.in_flight.is_empty()
        {
            return;
        }
        if self.acked_in_pass >= RATE_SAMPLE {
            // A pass's delivery runs at the Data-Service's pace: its rate.
            let elapsed_ms = (now - self.pass_started).total_millis().max(1);
            self.known_rate = self.acked_in_pass.saturating_mul(1000) / elapsed_ms;
        }
        if self.backlog.unacked() > 0 && !self.check_coming() {
            // Undelivered at the end of their cycle: keep them in the spool.
            // (Changes held for a registry check are looked at when it ends:
            // at start, that spares the disk a copy of every tag.)
            self.mirror_due = true;
        }
        // A catch-up pass fetched nothing: it is no cycle.
        if !core::mem::take(&mut self.catching_up) {
            self.stats.record_cycle(
                now - self.cycle_started,
                self.cycle_fetch_ended - self.cycle_started,
            );
            if self.cycle_fetch_ok {
                self.stats.last_sync_at = Some(now);
            }
            // A check this cycle wants starts now: the Data-Service does
            // one thing at a time, and its registry work (70 ms for the
            // `/detailed` of 10,000 keys) then falls between deliveries,
            // while the next cycle reads the polling service.
            self.start_registry_check_if_wanted(now);
        }
        let next_cycle = core::mem::take(&mut self.tick_missed) && !self.shutting_down;
        if next_cycle {
            self.phase = Phase::FetchDue;
        } else if self.catch_up_due {
            self.start_catch_up(now);
        } else {
            self.phase = Phase::Idle;
        }
    }

    fn take_in_flight(&mut self, request: RequestId) -> Option<InFlight> {
        let index = self.in_flight.iter().position(|f| f.request == request)?;
        Some(self.in_flight.swap_remove(index))
    }

    /// Clears the in-flight mark of a request's slots (a bulk's slots
    /// follow its first one in table order).
    fn release_flight(&mut self, flight: InFlight) {
        if flight.backlog {
            self.release_backlog_flight(flight);
            return;
        }
        let request = flight.request.0;
        let mut left = flight.count;
        for slot in self.table.slots_mut().iter_mut().skip(flight.first) {
            if left == 0 {
                break;
            }
            if slot.in_flight && slot.request == request {
                slot.in_flight = false;
                left -= 1;
            }
        }
    }

    fn sink_answered(&mut self, now: Instant) {
        self.stats.last_sink_ok_at = Some(now);
        self.consecutive_busy = 0;
        self.backoff = self.config.backoff_initial;
        if let Change::CameUp { failures, down_for } = self.sink.record_success(now) {
            self.push_event(Event::SinkUp {
                after_failures: failures,
                down_for,
            });
            if failures > 0 && self.config.registry_checks {
                // Back after an outage: it may have restarted with new ids.
                let epoch = self.sink_down_epoch;
                self.restart_if_news(now, epoch, "its socket came back after an outage");
            }
        }
    }

    fn sink_failed(&mut self, now: Instant, flight: InFlight, error: SinkError) {
        self.stats.writes_failed_total += flight.count as u64;
        self.stats.sink_errors_by_kind[error.kind_index()] += 1;
        let key = self.flight_preview(flight);
        self.release_flight(flight);
        self.mirror_due = true;
        self.stats
            .record_error(now, format_args!("write failed: {key}: {error}"));
        if !self.sink.is_down() {
            self.sink_down_epoch = self.registry_epoch;
        }
        if let Change::WentDown(error) = self.sink.record_failure(now, error) {
            self.push_event(Event::SinkDown(error));
        }
        self.retry_at = now + self.backoff;
        // Down: the rest of this cycle's values wait for the next cycle.
        self.end_delivery_pass();
        let doubled = Duration::from_millis(self.backoff.total_millis().saturating_mul(2));
        self.backoff = doubled.min(self.config.backoff_cap());
        self.consecutive_busy = 0;
    }

    fn source_failed(&mut self, now: Instant, problem: SourceProblem) {
        self.stats
            .record_error(now, format_args!("source: {problem}"));
        if let Change::WentDown(problem) = self.source.record_failure(now, problem) {
            self.push_event(Event::SourceDown(problem));
        }
    }

    /// Good reads of the last document left out for want of room: a log
    /// line on each change of the count.
    fn note_table_room(&mut self, left_out: u32) {
        self.stats.tags_over_capacity_total += u64::from(left_out);
        if left_out == self.over_capacity {
            return;
        }
        self.over_capacity = left_out;
        if left_out > 0 {
            self.push_event(Event::TableFull {
                capacity: self.table.capacity(),
                left_out,
            });
        } else {
            self.push_event(Event::TableFullCleared);
        }
    }

    /// The key of a request's first tag, to name it in a log line.
    fn flight_preview(&self, flight: InFlight) -> KeyPreview {
        if !flight.backlog {
            return self.preview_of(flight.first);
        }
        if !self.backlog.is_live(flight.first) {
            return KeyPreview::default();
        }
        self.preview_of(slot_of(self.table.backlog_bytes(), flight.first) as usize)
    }

    fn preview_of(&self, position: usize) -> KeyPreview {
        self.table
            .slots()
            .get(position)
            .map(|s| KeyPreview::of_key(self.table.key_of(s)))
            .unwrap_or_default()
    }

    /// True the first time a tag is reported; remembers up to
    /// `REJECTED_KEYS_LOGGED` tags, then stays quiet (counters still count).
    fn first_report_of(&mut self, tag: &KeyPreview) -> bool {
        matches!(self.logged_keys.insert(tag.hash()), Ok(true))
    }

    fn push_event(&mut self, event: Event) {
        if !self.events.push(event) {
            self.stats.events_dropped_total += 1;
        }
    }
}

/// What the answers to a backlog request came to.
#[derive(Default)]
struct BacklogOutcomes {
    ok: u64,
    failed: u64,
    id_not_found: bool,
}

/// The first entry from `from` on that is in flight in `request`.
fn find_in_flight(backlog: &Backlog, ring: &[u8], from: usize, request: u32) -> Option<usize> {
    let mut at = Some(from);
    while let Some(offset) = at {
        if state_of(ring, offset) == EntryState::InFlight(request) {
            return Some(offset);
        }
        at = backlog.next(ring, offset);
    }
    None
}

/// `value` is the slot's latest, now in the request numbered `request`.
/// Not yet known to the registry check: the tag has neither an id nor a
/// reason to go by key.
fn unchecked(registration: Registration) -> bool {
    matches!(
        registration,
        Registration::Unknown
            | Registration::Found
            | Registration::Missing
            | Registration::Registering
    )
}

fn mark_sent(slot: &mut TagSlot, request: u32, value: &Value) {
    slot.in_flight = true;
    slot.request = request;
    slot.sent_seq = slot.seq;
    slot.sent_hash = value_hash(value);
}

/// What `/detailed` says about a point, if it fits our bounded copy.
fn point_meta(point: &crate::wire::registry::DetailedPoint<'_>) -> Option<PointMeta> {
    let data_type = point.data_type?;
    let data_type = DATA_TYPES.iter().position(|t| data_type.eq_str(t))? as u8;
    let Address::Number(address) = point.address else {
        return None;
    };
    PointMeta::new(address, data_type, point.default?, |texts| {
        match point.units {
            Some(units) => units.write_unescaped(texts).ok(),
            None => Some(()),
        }
    })
}
