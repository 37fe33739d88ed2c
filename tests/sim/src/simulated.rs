//! The engine and the simulated peers in one process, on a simulated clock,
//! in the spirit of quinn-proto's `Pair`: [`SimulatedSync::step`] jumps the
//! clock to the next thing due (a tick, a peer's answer, the engine's own
//! timeout) and delivers it; [`SimulatedSync::drive_bounded`] goes on until
//! a moment and fails on a livelock. The engine's outputs are drained as
//! the runner drains them, and the Data-Service is the same [`Store`] the
//! socket double serves, so what holds here holds against the double; only
//! the OS (sockets, signals, files) is left out. A run is deterministic:
//! the same steps give the same requests, answers and ids.

use std::collections::VecDeque;

use dataservice_sync_core::{
    Action, ApiError, ApiRequest, ArrayStorage, Duration, Engine, EngineConfig, Instant, RequestId,
    SinkError, SourceError, index_len,
};

use serde_json::Value;

use crate::dataservice::Store;
use crate::pyjson::dumps;

/// Most tags a simulated sync holds.
pub const TAGS: usize = 64;

/// The table's storage: room for [`TAGS`] tags and a `history` backlog.
pub type SimulatedStorage = ArrayStorage<TAGS, { index_len(TAGS) }, 4096, 65536, 16384>;

/// Inputs delivered at one instant before it counts as a livelock: a sync
/// that makes progress moves the clock on long before this.
const STEPS_PER_INSTANT: u32 = 1000;

/// Rounds of draining the outputs after one input before it counts as a
/// livelock (each round hands out at least one output).
const DRAIN_ROUNDS: u32 = 10_000;

/// Bytes of a body handed to the engine at a time (the runner reads into a
/// scratch buffer of its own size; any size must give the same result).
const BODY_PART: usize = 1024;

/// A request line on its way to the Data-Service, answered at `at`.
#[derive(Debug)]
struct SinkCall {
    at: Instant,
    request: RequestId,
    line: String,
}

/// An HTTP API request, answered at `at`.
#[derive(Debug)]
struct ApiCall {
    at: Instant,
    method: &'static str,
    path: &'static str,
    body: Vec<u8>,
}

/// A sync and its peers on a simulated clock.
pub struct SimulatedSync {
    engine: Box<Engine<SimulatedStorage>>,
    now: Instant,
    interval: Duration,
    next_tick: Option<Instant>,
    /// How long the polling service takes to answer.
    pub source_latency: Duration,
    /// How long the Data-Service's HTTP API takes to answer.
    pub api_latency: Duration,
    /// How long the Data-Service takes to answer one IPC request (it
    /// answers one connection at a time).
    pub sink_latency: Duration,
    connections: usize,
    /// What the polling service answers to its `n`th fetch (from 1);
    /// `None`: it refuses connections.
    source: Box<dyn FnMut(u64) -> Option<Vec<u8>>>,
    fetches: u64,
    /// The Data-Service's store, IPC and HTTP API alike.
    pub dataservice: Store,
    dataservice_up: bool,
    /// The fetch under way: when it is answered, and with what.
    fetch: Option<(Instant, Vec<u8>)>,
    api: Option<ApiCall>,
    /// Answered one at a time, in the order sent, as the real server does.
    sinks: VecDeque<SinkCall>,
    api_buf: Vec<u8>,
    transmit_buf: Vec<u8>,
    /// Every line the engine logged, in order.
    pub log: Vec<String>,
    steps_at_now: u32,
}

impl SimulatedSync {
    /// A sync with `config` against a Data-Service whose ids follow from
    /// `seed`; each peer answers `latency` after it is asked, and the first
    /// tick is now.
    pub fn new(config: EngineConfig, seed: u64, latency: Duration) -> Self {
        let buffer = config
            .bulk_max_bytes
            .max(dataservice_sync_core::min_transmit_buffer());
        let interval = config.interval;
        let now = Instant::from_millis(1_000);
        SimulatedSync {
            engine: Box::new(Engine::new(config, SimulatedStorage::new())),
            now,
            interval,
            next_tick: Some(now),
            source_latency: latency,
            api_latency: latency,
            sink_latency: latency,
            connections: 4,
            source: Box::new(|_| None),
            fetches: 0,
            dataservice: Store::with_seed(seed),
            dataservice_up: true,
            fetch: None,
            api: None,
            sinks: VecDeque::new(),
            api_buf: vec![0; buffer],
            transmit_buf: vec![0; buffer],
            log: Vec::new(),
            steps_at_now: 0,
        }
    }

    /// The engine, to read its statistics and table.
    pub fn engine(&self) -> &Engine<SimulatedStorage> {
        &self.engine
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The polling service answers `body` to every fetch.
    pub fn set_document(&mut self, body: Vec<u8>) {
        self.source = Box::new(move |_| Some(body.clone()));
    }

    /// The polling service answers `source(n)` to its `n`th fetch (from 1),
    /// and refuses the connection where that is `None`.
    pub fn set_source(&mut self, source: impl FnMut(u64) -> Option<Vec<u8>> + 'static) {
        self.source = Box::new(source);
    }

    /// Fetches of the polling service so far.
    pub fn fetches(&self) -> u64 {
        self.fetches
    }

    /// The Data-Service goes away: its socket and HTTP API refuse, and the
    /// requests it had taken are closed unanswered.
    pub fn stop_dataservice(&mut self) {
        self.dataservice_up = false;
    }

    /// The Data-Service is back with its store (a socket that reappears).
    pub fn resume_dataservice(&mut self) {
        self.dataservice_up = true;
    }

    /// The Data-Service restarts: its registrations and ids are gone.
    pub fn restart_dataservice(&mut self) {
        self.dataservice.restart();
    }

    /// SIGTERM: the engine stops its cycles; ticks and the open fetch end,
    /// as the runner ends them.
    pub fn shutdown(&mut self) {
        self.engine.handle_shutdown(self.now);
        self.next_tick = None;
        self.fetch = None;
        self.api = None;
        self.drain();
    }

    /// Steps until the engine is drained after [`SimulatedSync::shutdown`],
    /// at most `timeout` of simulated time; how long it took, or `None`.
    pub fn drain_shutdown(&mut self, timeout: Duration) -> Option<Duration> {
        let started = self.now;
        let until = started + timeout;
        while !self.engine.is_drained() {
            if self.now >= until || !self.step_until(until) {
                return None;
            }
        }
        Some(self.now - started)
    }

    /// Delivers everything due before `until`, then sets the clock there.
    /// Panics on a livelock: an input loop that does not move the clock.
    pub fn drive_bounded(&mut self, until: Instant) {
        while self.step_until(until) {}
        self.now = self.now.max(until);
    }

    /// Runs for `span` of simulated time: from a tick, one interval is one
    /// cycle.
    pub fn run_for(&mut self, span: Duration) {
        let until = self.now + span;
        self.drive_bounded(until);
    }

    /// Steps until `done` holds, at most `span` of simulated time; whether
    /// it came to hold.
    pub fn run_until(&mut self, span: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let until = self.now + span;
        while !done(self) {
            if !self.step_until(until) {
                return done(self);
            }
        }
        true
    }

    /// Delivers the next input due before `until`; `false` when there is
    /// none.
    pub fn step_until(&mut self, until: Instant) -> bool {
        self.drain();
        let Some(at) = self.next_due() else {
            return false;
        };
        if at >= until {
            return false;
        }
        self.step();
        true
    }

    /// Jumps the clock to the next thing due and delivers it, then drains
    /// the engine's outputs; `false` when nothing is due at all.
    pub fn step(&mut self) -> bool {
        self.drain();
        let Some(at) = self.next_due() else {
            return false;
        };
        if at <= self.now {
            self.steps_at_now += 1;
            assert!(
                self.steps_at_now < STEPS_PER_INSTANT,
                "livelock: {STEPS_PER_INSTANT} inputs at {} ms without the clock moving",
                self.now.total_millis()
            );
        } else {
            self.now = at;
            self.steps_at_now = 0;
        }
        let now = self.now;
        if self.sinks.front().is_some_and(|call| call.at <= now) {
            self.answer_sink();
        } else if self.api.as_ref().is_some_and(|call| call.at <= now) {
            self.answer_api();
        } else if self.fetch.as_ref().is_some_and(|(at, _)| *at <= now) {
            self.answer_fetch();
        } else if self.next_tick.is_some_and(|at| at <= now) {
            self.next_tick = Some(now + self.interval);
            self.engine.handle_tick(now);
        }
        // Otherwise the engine's own timeout came: the drain serves it.
        self.drain();
        true
    }

    fn next_due(&self) -> Option<Instant> {
        [
            self.sinks.front().map(|call| call.at),
            self.api.as_ref().map(|call| call.at),
            self.fetch.as_ref().map(|(at, _)| *at),
            self.next_tick,
            self.engine.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Hands out the engine's outputs in the documented order, as the
    /// runner's `drive` does, until a round hands out nothing.
    fn drain(&mut self) {
        let now = self.now;
        for _ in 0..DRAIN_ROUNDS {
            let mut handed_out = false;
            while let Some(Action::FetchSource) = self.engine.poll_action(now) {
                handed_out = true;
                self.start_fetch();
            }
            if self.api.is_none()
                && let Some(request) = self.engine.poll_api_request(now, &mut self.api_buf)
            {
                handed_out = true;
                self.start_api(request);
            }
            if self.engine.handle_timeout(now) {
                continue;
            }
            while self.sinks.len() < self.connections {
                let Some(tx) = self.engine.poll_transmit(now, &mut self.transmit_buf) else {
                    break;
                };
                handed_out = true;
                let line = String::from_utf8_lossy(&self.transmit_buf[..tx.len]).into_owned();
                self.start_sink(tx.request, line);
            }
            if self.engine.handle_timeout(now) {
                continue;
            }
            while let Some(event) = self.engine.poll_event() {
                self.log.push(event.to_string());
            }
            if !handed_out {
                return;
            }
        }
        panic!(
            "livelock: the engine's outputs did not settle in {DRAIN_ROUNDS} rounds at {} ms",
            now.total_millis()
        );
    }

    fn start_fetch(&mut self) {
        self.fetches += 1;
        match (self.source)(self.fetches) {
            Some(body) => self.fetch = Some((self.now + self.source_latency, body)),
            None => self
                .engine
                .handle_source_error(self.now, SourceError::Refused),
        }
    }

    fn answer_fetch(&mut self) {
        let Some((_, body)) = self.fetch.take() else {
            return;
        };
        let mut held = Vec::new();
        for part in body.chunks(BODY_PART) {
            held.extend_from_slice(part);
            let used = self.engine.handle_source_body_part(&held);
            held.drain(..used);
        }
        self.engine.handle_source_body(self.now, &held);
    }

    fn start_api(&mut self, request: ApiRequest) {
        if !self.dataservice_up {
            let error = ApiError::Fetch(SourceError::Refused);
            self.engine.handle_api_error(self.now, error);
            return;
        }
        self.api = Some(ApiCall {
            at: self.now + self.api_latency,
            method: request.method,
            path: request.path,
            body: self.api_buf[..request.body_len].to_vec(),
        });
    }

    fn answer_api(&mut self) {
        let Some(call) = self.api.take() else {
            return;
        };
        if !self.dataservice_up {
            let error = ApiError::Fetch(SourceError::ClosedEarly);
            self.engine.handle_api_error(self.now, error);
            return;
        }
        let (status, answer) = self
            .dataservice
            .handle_api(call.method, call.path, &call.body);
        let mut body = dumps(&answer).into_bytes();
        let mut held = Vec::new();
        for part in body.chunks(BODY_PART) {
            held.extend_from_slice(part);
            let used = self
                .engine
                .handle_api_body_part(self.now, status, &mut held);
            held.drain(..used);
        }
        body = held;
        self.engine.handle_api_response(self.now, status, &mut body);
    }

    fn start_sink(&mut self, request: RequestId, line: String) {
        if !self.dataservice_up {
            self.engine
                .handle_sink_error(self.now, request, SinkError::SocketMissing);
            return;
        }
        let free_at = self
            .sinks
            .back()
            .map_or(self.now, |call| call.at.max(self.now));
        self.sinks.push_back(SinkCall {
            at: free_at + self.sink_latency,
            request,
            line,
        });
    }

    fn answer_sink(&mut self) {
        let Some(call) = self.sinks.pop_front() else {
            return;
        };
        if !self.dataservice_up {
            self.engine
                .handle_sink_error(self.now, call.request, SinkError::ClosedEarly);
            return;
        }
        let line = call.line.trim_end_matches(['\n', '\r']);
        let answer = self.dataservice.handle_ipc(line);
        self.dataservice.answered += 1;
        let line = format!("{}\n", dumps(&answer));
        self.engine
            .handle_sink_response(self.now, call.request, line.as_bytes());
    }
}

impl SimulatedSync {
    /// The values written to `key`, in the order the Data-Service applied
    /// them.
    pub fn writes_of(&self, key: &str) -> Vec<Value> {
        self.dataservice
            .applied_writes()
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A polled-values document: `(device, tag, value as JSON)` good reads,
/// each with the source `timestamp` (Unix seconds).
pub fn polled_document(reads: &[(&str, &str, &str)], timestamp: u64) -> Vec<u8> {
    let mut devices: Vec<(&str, Vec<String>)> = Vec::new();
    for &(device, tag, value) in reads {
        let entry = format!(
            "\"{tag}\": {{\"value\": {value}, \"status\": \"ok\", \"error\": null, \"timestamp\": {timestamp}}}"
        );
        match devices.iter_mut().find(|(name, _)| *name == device) {
            Some((_, tags)) => tags.push(entry),
            None => devices.push((device, vec![entry])),
        }
    }
    let devices: Vec<String> = devices
        .into_iter()
        .map(|(device, tags)| format!("\"{device}\": {{{}}}", tags.join(", ")))
        .collect();
    format!("{{{}}}", devices.join(", ")).into_bytes()
}
