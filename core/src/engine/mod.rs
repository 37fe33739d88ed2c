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
//! 5. [`Engine::poll_timeout`]: when to call [`Engine::handle_timeout`] if
//!    nothing else happens.
//!
//! A `poll_*` call only hands out; when it finds that a cycle or a registry
//! check is over, it leaves that to [`Engine::handle_timeout`] and
//! [`Engine::poll_timeout`] says "now". So after 2 and after 3 call
//! `handle_timeout(now)`: when it had something due, start again at 1. And
//! start again at 1 after a round that handed anything out.
//!
//! A cycle is: interval tick, fetch, apply the document to the tag table,
//! check new tags against the Data-Service's registry, deliver every value
//! that changed (report by exception) or whose heartbeat is due, done.
//! Cycles never overlap: a tick during a cycle is counted as an overrun and
//! the next cycle starts as soon as the current one ends.
//!
//! This file holds the contract: the state, the inputs and the outputs. The
//! work behind them is by concern: `document` (a polled document applied,
//! each tag's write decided), `delivery` (latest values, requests in
//! flight), `history` (the backlog of every change), `registry` (the
//! registry check and restarts), `cycle` (a fetch's and a cycle's end),
//! `reporting` (figures, health, events), `config` and `output`.

use crate::event_queue::EventQueue;
use heapless::index_set::FnvIndexSet;

use crate::backlog::{
    Backlog, BacklogEntry, EntryState, is_on_disk, mark_on_disk, read_entry, seq_of, state_of,
};
use crate::config::{MAX_IN_FLIGHT, REJECTED_KEYS_LOGGED};
use crate::event::Event;
use crate::key::KeyTemplate;
use crate::peer::{ApiError, Change, Health, SinkError, SourceError, SourceProblem};
use crate::rejections::RejectedTags;
use crate::rules::RuleSet;
use crate::staging::Staging;
use crate::stats::Stats;
use crate::table::{TableStorage, TagTable};
use crate::text::Truncating;
use crate::time::{Duration, Instant};
use crate::wire::ipc::Response;
use crate::wire::json::JsonError;
use crate::wire::polled::DocumentError;
use crate::wire::polled::DocumentStream;
use crate::wire::registry::DetailedStream;
use crate::wire::spool;

mod config;
mod cycle;
mod delivery;
mod document;
mod history;
mod output;
mod registry;
mod reporting;
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

/// A decision a `poll_*` call came to and left for
/// [`Engine::handle_timeout`], so that only inputs change the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingStep {
    /// The delivery pass has nothing more to send: the cycle may end.
    FinishCycle,
    /// The registry check has nothing more to register: it ends.
    EndRegistryCheck,
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
    /// What a `poll_*` call left for `handle_timeout`, and since when.
    pending_step: Option<(Instant, PendingStep)>,
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
            pending_step: None,
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

    /// A registry check runs (API requests to come); cycles go on meanwhile.
    pub fn is_registering(&self) -> bool {
        self.api_step != ApiStep::None
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
        if self.phase != Phase::FetchDue || self.pending_step.is_some() {
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
        if self.pending_step.is_some() {
            return None;
        }
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
                        self.pending_step = Some((now, PendingStep::EndRegistryCheck));
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
        if self.phase != Phase::Delivering
            || self.in_flight.is_full()
            || self.pending_step.is_some()
        {
            return None;
        }
        if self.pause_until.is_some_and(|until| now < until) {
            return None;
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
                self.finish_cycle_when_due(now);
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
            self.finish_cycle_when_due(now);
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
            slot.delivery.pending = false;
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
        if let Some((since, _)) = self.pending_step {
            return Some(since);
        }
        match self.phase {
            Phase::Delivering => self.pause_until,
            _ => None,
        }
    }

    /// Input: the time. When what [`Engine::poll_timeout`] named has come,
    /// ends a pause that ran out and carries out what a `poll_*` call
    /// decided: the end of a cycle (and the catch-up pass or registry check
    /// that follows it) or of a registry check. Whether anything was due:
    /// then the outputs are drained again from the first.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.poll_timeout().is_none_or(|at| at > now) {
            return false;
        }
        if self.pause_until.is_some_and(|until| now >= until) {
            self.pause_until = None;
        }
        match self.pending_step.take() {
            Some((_, PendingStep::FinishCycle)) => self.try_finish_cycle(now),
            Some((_, PendingStep::EndRegistryCheck)) => self.finish_registry_check(now),
            None => {}
        }
        true
    }
}
