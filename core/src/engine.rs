//! The sync engine: a sans-IO state machine in the style of quinn-proto.
//!
//! The runner feeds it inputs (`handle_*`, each with `now`) and drains its
//! outputs in this order after every input:
//! 1. [`Engine::poll_action`]: start a fetch of the polling service;
//! 2. [`Engine::poll_transmit`]: the next request line for the Data-Service,
//!    written into the runner's buffer, one per free connection;
//! 3. [`Engine::poll_event`]: what to log;
//! 4. [`Engine::poll_timeout`]: when to call again if nothing else happens.
//!
//! A cycle is: interval tick, fetch, apply the document to the tag table,
//! deliver every pending value once, done. Cycles never overlap: a tick
//! during a cycle is counted as an overrun and the next cycle starts as soon
//! as the current one ends.

use heapless::Deque;
use heapless::index_set::FnvIndexSet;

use crate::config::{MAX_IN_FLIGHT, REJECTED_KEYS_LOGGED};
use crate::event::Event;
use crate::key::KeyTemplate;
use crate::peer::{Change, Health, SinkError, SourceError, SourceProblem};
use crate::reading::{KeyPreview, Reading, classify};
use crate::stats::{Stats, Truncating};
use crate::table::{TableFull, TableStorage, TagTable, hash_key};
use crate::time::{Duration, Instant};
use crate::wire::ipc::{Response, encode_write};
use crate::wire::polled::parse_document;

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
}

impl EngineConfig {
    /// Defaults for `interval`.
    pub fn new(interval: Duration) -> Self {
        EngineConfig {
            interval,
            key_template: KeyTemplate::default(),
            busy_pause: Duration::from_millis(5),
            busy_limit: 200,
            backoff_initial: Duration::from_millis(100),
        }
    }

    fn backoff_cap(&self) -> Duration {
        let half = Duration::from_millis(self.interval.total_millis() / 2);
        half.max(self.backoff_initial).min(Duration::from_secs(5))
    }
}

/// Something the runner must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch the polled values, then call `handle_source_body` or
    /// `handle_source_error`.
    FetchSource,
}

/// Identifies a request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(u32);

/// A request line the runner must send on a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Pass it back with the response or the failure.
    pub request: RequestId,
    /// Bytes of the runner's buffer holding the line, newline included.
    pub len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    FetchDue,
    Fetching,
    Delivering,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    request: RequestId,
    position: usize,
    seq: u32,
}

/// The engine, over a tag table kept in `S`.
pub struct Engine<S: TableStorage> {
    config: EngineConfig,
    table: TagTable<S>,
    stats: Stats,
    events: Deque<Event, 32>,
    phase: Phase,
    cycle_started: Instant,
    cycle_fetch_ok: bool,
    tick_missed: bool,
    shutting_down: bool,
    cursor: usize,
    in_flight: heapless::Vec<InFlight, MAX_IN_FLIGHT>,
    next_request: u32,
    pause_until: Option<Instant>,
    consecutive_busy: u32,
    backoff: Duration,
    retry_at: Instant,
    source: Health<SourceProblem>,
    sink: Health<SinkError>,
    logged_keys: FnvIndexSet<u32, REJECTED_KEYS_LOGGED>,
    table_full_reported: bool,
}

impl<S: TableStorage> Engine<S> {
    /// An idle engine; the first tick starts the first cycle.
    pub fn new(config: EngineConfig, storage: S) -> Self {
        let backoff = config.backoff_initial;
        Engine {
            config,
            table: TagTable::new(storage),
            stats: Stats::default(),
            events: Deque::new(),
            phase: Phase::Idle,
            cycle_started: Instant::default(),
            cycle_fetch_ok: false,
            tick_missed: false,
            shutting_down: false,
            cursor: 0,
            in_flight: heapless::Vec::new(),
            next_request: 0,
            pause_until: None,
            consecutive_busy: 0,
            backoff,
            retry_at: Instant::default(),
            source: Health::Unknown,
            sink: Health::Unknown,
            logged_keys: FnvIndexSet::new(),
            table_full_reported: false,
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

    /// The polling service's health.
    pub fn source_health(&self) -> Health<SourceProblem> {
        self.source
    }

    /// The Data-Service's health.
    pub fn sink_health(&self) -> Health<SinkError> {
        self.sink
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Tags whose latest value the Data-Service has not acknowledged.
    pub fn pending(&self) -> usize {
        self.table.slots().iter().filter(|s| s.pending).count()
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
            Phase::Idle => self.phase = Phase::FetchDue,
            Phase::FetchDue => {}
            Phase::Fetching | Phase::Delivering => {
                self.stats.cycles_overrun_total += 1;
                if !self.tick_missed {
                    self.tick_missed = true;
                    self.push_event(Event::CycleOverrun {
                        running_for: now - self.cycle_started,
                    });
                }
            }
        }
    }

    /// The fetch answered 200 with `body`.
    pub fn handle_source_body(&mut self, now: Instant, body: &[u8]) {
        if self.phase != Phase::Fetching {
            return;
        }
        let template = self.config.key_template.clone();
        let mut good_reads = 0u32;
        let mut left_out = 0u32;
        let result = parse_document(body, |entry| match classify(&entry, &template) {
            Reading::Good { key, value } => {
                good_reads += 1;
                self.stats.reads_good_total += 1;
                if let Err(TableFull) = self.table.upsert(&key, value) {
                    left_out += 1;
                }
            }
            Reading::FailedRead => self.stats.reads_failed_total += 1,
            Reading::Rejected { reason, tag } => {
                self.stats.tags_rejected_total[reason.index()] += 1;
                if self.first_report_of(&tag) {
                    self.stats
                        .record_error(now, format_args!("tag rejected ({reason}): {tag}"));
                    self.push_event(Event::TagRejected { reason, tag });
                }
            }
        });
        match result {
            Ok(()) => {
                self.cycle_fetch_ok = true;
                self.note_table_room(left_out);
                if let Change::CameUp { failures, .. } = self.source.record_success(now) {
                    self.push_event(Event::SourceUp {
                        good_reads,
                        after_failures: failures,
                    });
                }
            }
            Err(error) => {
                self.stats.documents_rejected_total += 1;
                self.source_failed(now, SourceProblem::Document(error));
            }
        }
        self.start_delivery(now);
    }

    /// The fetch failed.
    pub fn handle_source_error(&mut self, now: Instant, error: SourceError) {
        if self.phase != Phase::Fetching {
            return;
        }
        self.stats.source_errors_total += 1;
        self.source_failed(now, SourceProblem::Fetch(error));
        // Values still pending from earlier cycles are retried all the same.
        self.start_delivery(now);
    }

    /// The Data-Service answered `request` with `line`.
    pub fn handle_sink_response(&mut self, now: Instant, request: RequestId, line: &[u8]) {
        let Some(flight) = self.take_in_flight(request) else {
            return;
        };
        match Response::decode(line) {
            Ok(response) if response.ok => {
                self.consecutive_busy = 0;
                self.stats.writes_ok_total += 1;
                if let Some(slot) = self.table.slot_mut(flight.position) {
                    slot.in_flight = false;
                    if slot.seq == flight.seq {
                        slot.pending = false;
                    }
                }
                self.sink_answered(now);
            }
            Ok(response) => {
                // The server is there and refused this one write; the value
                // stays pending and goes again next cycle.
                self.stats.writes_failed_total += 1;
                self.release(flight.position);
                self.sink_answered(now);
                let mut error = heapless::String::<64>::new();
                if let Some(text) = response.error {
                    text.write_unescaped(&mut Truncating(&mut error)).ok();
                }
                let key = self.preview_of(flight.position);
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
            // this tag after a short pause.
            self.consecutive_busy += 1;
            self.stats.sink_busy_total += 1;
            self.release(flight.position);
            self.cursor = self.cursor.min(flight.position);
            self.pause_until = Some(now + self.config.busy_pause);
            return;
        }
        self.sink_failed(now, flight, error);
        self.try_finish_cycle(now);
    }

    /// Stop: no new cycle; the running one delivers what it can.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        match self.phase {
            Phase::Idle | Phase::FetchDue => self.phase = Phase::Idle,
            // The runner drops the fetch; pending values still go out.
            Phase::Fetching => self.start_delivery(now),
            Phase::Delivering => {}
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
        Some(Action::FetchSource)
    }

    /// The next request line, written into `buf`.
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
            // While down: one probe at a time, and only once the backoff ran
            // out; otherwise this cycle's delivery ends here.
            if !self.in_flight.is_empty() {
                return None;
            }
            if now < self.retry_at {
                self.cursor = self.table.len();
                self.try_finish_cycle(now);
                return None;
            }
        }
        while self.cursor < self.table.len() {
            let position = self.cursor;
            self.cursor += 1;
            let Some(slot) = self.table.slot_mut(position) else {
                break;
            };
            if !slot.pending || slot.in_flight {
                continue;
            }
            let Ok(len) = encode_write(&slot.key, &slot.value, buf) else {
                // Keys and strings are bounded so that a line always fits a
                // buffer of `min_transmit_buffer()` bytes; skip defensively.
                continue;
            };
            slot.in_flight = true;
            let seq = slot.seq;
            let request = RequestId(self.next_request);
            self.next_request = self.next_request.wrapping_add(1);
            // `is_full` was checked above.
            self.in_flight
                .push(InFlight {
                    request,
                    position,
                    seq,
                })
                .ok();
            return Some(Transmit { request, len });
        }
        self.try_finish_cycle(now);
        None
    }

    /// The next thing to log.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the engine wants to be called again (besides ticks and answers).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Delivering => self.pause_until,
            _ => None,
        }
    }

    // ---- internals ----

    fn start_delivery(&mut self, now: Instant) {
        self.phase = Phase::Delivering;
        self.cursor = 0;
        self.try_finish_cycle(now);
    }

    fn try_finish_cycle(&mut self, now: Instant) {
        if self.phase != Phase::Delivering
            || self.cursor < self.table.len()
            || !self.in_flight.is_empty()
        {
            return;
        }
        self.stats.sync_cycles_total += 1;
        self.stats.last_cycle_duration = now - self.cycle_started;
        if self.cycle_fetch_ok {
            self.stats.last_sync_at = Some(now);
        }
        self.phase = if self.tick_missed && !self.shutting_down {
            Phase::FetchDue
        } else {
            Phase::Idle
        };
        self.tick_missed = false;
    }

    fn take_in_flight(&mut self, request: RequestId) -> Option<InFlight> {
        let index = self.in_flight.iter().position(|f| f.request == request)?;
        Some(self.in_flight.swap_remove(index))
    }

    fn release(&mut self, position: usize) {
        if let Some(slot) = self.table.slot_mut(position) {
            slot.in_flight = false;
        }
    }

    fn sink_answered(&mut self, now: Instant) {
        self.backoff = self.config.backoff_initial;
        if let Change::CameUp { failures, down_for } = self.sink.record_success(now) {
            self.push_event(Event::SinkUp {
                after_failures: failures,
                down_for,
            });
        }
    }

    fn sink_failed(&mut self, now: Instant, flight: InFlight, error: SinkError) {
        self.stats.writes_failed_total += 1;
        self.release(flight.position);
        let key = self.preview_of(flight.position);
        self.stats
            .record_error(now, format_args!("write failed: {key}: {error}"));
        if let Change::WentDown(error) = self.sink.record_failure(now, error) {
            self.push_event(Event::SinkDown(error));
        }
        self.retry_at = now + self.backoff;
        // Down: the rest of this cycle's values wait for the next cycle.
        self.cursor = self.table.len();
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

    fn note_table_room(&mut self, left_out: u32) {
        self.stats.tags_over_capacity_total += u64::from(left_out);
        if left_out > 0 && !self.table_full_reported {
            self.table_full_reported = true;
            self.push_event(Event::TableFull {
                capacity: self.table.capacity(),
                left_out,
            });
        } else if left_out == 0 && self.table_full_reported {
            self.table_full_reported = false;
            self.push_event(Event::TableFullCleared);
        }
    }

    fn preview_of(&self, position: usize) -> KeyPreview {
        self.table
            .slots()
            .get(position)
            .map(|s| KeyPreview::of_key(&s.key))
            .unwrap_or_default()
    }

    /// True the first time a tag is reported; remembers up to
    /// `REJECTED_KEYS_LOGGED` tags, then stays quiet (counters still count).
    fn first_report_of(&mut self, tag: &KeyPreview) -> bool {
        let hash = hash_key(tag.text.as_bytes()) ^ (tag.full_len as u32).rotate_left(16);
        matches!(self.logged_keys.insert(hash), Ok(true))
    }

    fn push_event(&mut self, event: Event) {
        if self.events.push_back(event).is_err() {
            self.stats.events_dropped_total += 1;
        }
    }
}

/// The smallest transmit buffer that always holds one `write` line: every
/// key and string byte may become a 6-byte `\u00XX` escape.
pub const fn min_transmit_buffer() -> usize {
    64 + 6 * (crate::config::MAX_KEY_LEN + crate::config::MAX_STRING_VALUE_LEN) + 32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ArrayStorage;
    use std::string::String;
    use std::vec::Vec;

    type TestEngine = Engine<ArrayStorage<4, 8>>;

    fn engine() -> TestEngine {
        Engine::new(
            EngineConfig::new(Duration::from_secs(1)),
            ArrayStorage::new(),
        )
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// Drains every transmit as (request, line).
    fn transmits(engine: &mut TestEngine, now: Instant) -> Vec<(RequestId, String)> {
        let mut buf = [0u8; 1024];
        let mut out = Vec::new();
        while let Some(tx) = engine.poll_transmit(now, &mut buf) {
            out.push((
                tx.request,
                String::from_utf8(buf[..tx.len].to_vec()).unwrap(),
            ));
        }
        out
    }

    fn events(engine: &mut TestEngine) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(e) = engine.poll_event() {
            out.push(std::format!("{e}"));
        }
        out
    }

    fn cycle_with(engine: &mut TestEngine, now: Instant, body: &[u8]) {
        engine.handle_tick(now);
        assert_eq!(engine.poll_action(now), Some(Action::FetchSource));
        engine.handle_source_body(now, body);
    }

    const DOC: &[u8] = br#"{"d": {"a": {"value": 1, "status": "ok"}, "b": {"value": "x", "status": "ok"}, "c": {"value": null, "status": "modbus_error"}}}"#;
    const OK: &[u8] = br#"{"ok": true}"#;

    #[test]
    fn a_cycle_writes_every_good_read_and_counts_it() {
        let mut e = engine();
        cycle_with(&mut e, at(0), DOC);
        let sent = transmits(&mut e, at(1));
        assert_eq!(
            sent.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
            [
                "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1}\n",
                "{\"action\":\"write\",\"key\":\"d.b\",\"value\":\"x\"}\n",
            ]
        );
        assert_eq!(e.stats().sync_cycles_total, 0);
        e.handle_sink_response(at(2), sent[0].0, OK);
        e.handle_sink_response(at(3), sent[1].0, OK);
        let stats = e.stats();
        assert_eq!(
            (
                stats.sync_cycles_total,
                stats.writes_ok_total,
                stats.reads_good_total,
                stats.reads_failed_total
            ),
            (1, 2, 2, 1)
        );
        assert_eq!(stats.last_sync_at, Some(at(3)));
        assert_eq!(e.pending(), 0);
        assert_eq!(
            events(&mut e),
            [
                "source up: document accepted with 2 good reads (after 0 failed fetches)",
                "sink up: Data-Service accepted a write (after 0 failed attempts, down for 0.000s)",
            ]
        );
    }

    #[test]
    fn a_tick_during_a_cycle_is_an_overrun_and_the_next_cycle_follows_at_once() {
        let mut e = engine();
        cycle_with(&mut e, at(0), DOC);
        let sent = transmits(&mut e, at(0));
        e.handle_tick(at(1000));
        e.handle_tick(at(2000));
        assert_eq!(e.stats().cycles_overrun_total, 2);
        assert_eq!(e.poll_action(at(2000)), None);
        for (request, _) in sent {
            e.handle_sink_response(at(2500), request, OK);
        }
        assert_eq!(e.poll_action(at(2500)), Some(Action::FetchSource));
        let logged = events(&mut e);
        assert_eq!(
            logged
                .iter()
                .filter(|l| l.starts_with("cycle overrun"))
                .count(),
            1,
            "{logged:?}"
        );
    }

    #[test]
    fn a_sink_outage_is_logged_once_and_values_stay_pending_until_delivered() {
        let mut e = engine();
        cycle_with(&mut e, at(0), DOC);
        let sent = transmits(&mut e, at(0));
        e.handle_sink_error(at(1), sent[0].0, SinkError::SocketMissing);
        e.handle_sink_error(at(1), sent[1].0, SinkError::SocketMissing);
        assert_eq!(e.stats().writes_failed_total, 2);
        assert_eq!(e.stats().sync_cycles_total, 1);
        assert_eq!(e.pending(), 2);
        // Three more cycles while down: one probe each once the backoff ran out.
        let mut probes = 0;
        for n in 1..=3u64 {
            cycle_with(&mut e, at(n * 1000), DOC);
            for (request, line) in transmits(&mut e, at(n * 1000)) {
                assert_eq!(line, "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1}\n");
                probes += 1;
                e.handle_sink_error(at(n * 1000 + 1), request, SinkError::SocketMissing);
            }
        }
        assert_eq!(probes, 3);
        assert_eq!(e.stats().sync_cycles_total, 4);
        // Back: the probe succeeds and the rest of the cycle follows.
        cycle_with(&mut e, at(4000), DOC);
        let sent = transmits(&mut e, at(4000));
        assert_eq!(sent.len(), 1);
        e.handle_sink_response(at(4001), sent[0].0, OK);
        let rest = transmits(&mut e, at(4001));
        assert_eq!(rest.len(), 1);
        e.handle_sink_response(at(4002), rest[0].0, OK);
        assert_eq!(e.pending(), 0);
        let logged = events(&mut e);
        let sink: Vec<_> = logged.iter().filter(|l| l.starts_with("sink")).collect();
        assert_eq!(
            sink,
            [
                "sink down: socket does not exist; values stay pending and are retried with backoff",
                "sink up: Data-Service accepted a write (after 5 failed attempts, down for 4.000s)",
            ]
        );
    }

    #[test]
    fn a_busy_backlog_is_retried_after_a_pause_and_is_not_a_failure() {
        let mut e = engine();
        cycle_with(&mut e, at(0), DOC);
        let sent = transmits(&mut e, at(0));
        e.handle_sink_error(at(0), sent[0].0, SinkError::Busy);
        assert_eq!(e.poll_timeout(), Some(at(5)));
        e.handle_sink_response(at(1), sent[1].0, OK);
        assert!(transmits(&mut e, at(4)).is_empty());
        let again = transmits(&mut e, at(5));
        assert_eq!(again.len(), 1);
        assert!(again[0].1.contains("\"d.a\""));
        e.handle_sink_response(at(6), again[0].0, OK);
        let s = e.stats();
        assert_eq!(
            (s.writes_ok_total, s.writes_failed_total, s.sink_busy_total),
            (2, 0, 1)
        );
        assert_eq!(s.sync_cycles_total, 1);
    }

    #[test]
    fn a_broken_document_applies_nothing_and_is_reported_once() {
        let mut e = engine();
        for n in 0..3 {
            cycle_with(&mut e, at(n * 1000), &DOC[..DOC.len() - 5]);
            assert!(transmits(&mut e, at(n * 1000)).is_empty());
        }
        assert_eq!(e.table().len(), 0);
        assert_eq!(e.stats().documents_rejected_total, 3);
        assert_eq!(e.stats().sync_cycles_total, 3);
        assert_eq!(e.stats().last_sync_at, None);
        assert_eq!(
            events(&mut e),
            [
                "source down: document rejected, nothing applied: invalid JSON: JSON ends unexpectedly (truncated); retrying every interval"
            ]
        );
        assert_eq!(e.stats().recent_errors.len(), 3);
    }

    #[test]
    fn tags_over_capacity_are_counted_and_the_others_keep_syncing() {
        let mut e = engine();
        let doc = br#"{"d": {"1": {"value": 1, "status": "ok"}, "2": {"value": 2, "status": "ok"}, "3": {"value": 3, "status": "ok"}, "4": {"value": 4, "status": "ok"}, "5": {"value": 5, "status": "ok"}, "6": {"value": 6, "status": "ok"}}}"#;
        cycle_with(&mut e, at(0), doc);
        let sent = transmits(&mut e, at(0));
        assert_eq!(sent.len(), 4);
        for (request, _) in sent {
            e.handle_sink_response(at(1), request, OK);
        }
        cycle_with(&mut e, at(1000), doc);
        assert_eq!(transmits(&mut e, at(1000)).len(), 4);
        assert_eq!(e.stats().tags_over_capacity_total, 4);
        let logged = events(&mut e);
        assert_eq!(
            logged
                .iter()
                .filter(|l| l.starts_with("tag table full (4 tags): 2 tags left out"))
                .count(),
            1
        );
    }

    #[test]
    fn rejected_tags_are_logged_once_but_counted_every_cycle() {
        let mut e = engine();
        let doc = br#"{"d": {"n": {"value": NaN, "status": "ok"}}}"#;
        for n in 0..3 {
            cycle_with(&mut e, at(n * 1000), doc);
        }
        assert_eq!(e.stats().rejected(crate::RejectReason::NonFiniteNumber), 3);
        let logged = events(&mut e);
        assert_eq!(
            logged
                .iter()
                .filter(|l| l.starts_with("tag rejected"))
                .collect::<Vec<_>>(),
            ["tag rejected (non_finite_number), not written: d/n"]
        );
    }

    #[test]
    fn shutdown_finishes_in_flight_writes_and_starts_no_new_cycle() {
        let mut e = engine();
        cycle_with(&mut e, at(0), DOC);
        let sent = transmits(&mut e, at(0));
        e.handle_shutdown(at(10));
        assert!(!e.is_drained());
        e.handle_tick(at(1000));
        for (request, _) in sent {
            e.handle_sink_response(at(20), request, OK);
        }
        assert!(e.is_drained());
        assert_eq!(e.poll_action(at(1000)), None);
        assert_eq!(e.stats().writes_ok_total, 2);
    }

    #[test]
    fn an_old_acknowledgement_does_not_clear_a_newer_value() {
        let mut e = engine();
        cycle_with(
            &mut e,
            at(0),
            br#"{"d": {"a": {"value": 1, "status": "ok"}}}"#,
        );
        let sent = transmits(&mut e, at(0));
        e.handle_sink_error(at(1), sent[0].0, SinkError::Timeout);
        cycle_with(
            &mut e,
            at(1000),
            br#"{"d": {"a": {"value": 2, "status": "ok"}}}"#,
        );
        let sent = transmits(&mut e, at(1000));
        assert_eq!(
            sent[0].1,
            "{\"action\":\"write\",\"key\":\"d.a\",\"value\":2}\n"
        );
        e.handle_sink_response(
            at(1001),
            sent[0].0,
            br#"{"ok": false, "error": "key required"}"#,
        );
        assert_eq!(e.pending(), 1);
        assert_eq!(e.stats().writes_failed_total, 2);
        let logged = events(&mut e);
        assert!(
            logged.contains(&String::from(
                "write rejected by the Data-Service: d.a: key required"
            )),
            "{logged:?}"
        );
    }
}
