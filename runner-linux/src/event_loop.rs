//! The mio loop: registers fds, turns readiness into the engine's
//! `handle_*` calls and carries out what its `poll_*` calls return. It owns
//! the fds and the clock; every decision about tags is the engine's.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, SystemTime};

use dataservice_sync_core::report::ReportContext;
use dataservice_sync_core::{Action, BacklogPolicy, Engine, Instant, Level, min_transmit_buffer};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::clock::{Clock, rfc3339, unix_millis};
use crate::endpoint::HttpUrl;
use crate::http::BodyLimit;
use crate::log::{Logger, Severity};
use crate::notify::Notifier;
use crate::option_table;
use crate::options::{Resolved, core_duration};
use crate::sink::{SinkSlot, WriteOutcome};
use crate::source::{Fetch, FetchOutcome};
use crate::spool::Spool;
use crate::stats::StatsSnapshot;
use crate::status_routes;
use crate::status_server::StatusServer;
use crate::storage::HeapStorage;

const TIMER: Token = Token(0);
const SIGNALS: Token = Token(1);
pub(crate) const WAKER: Token = Token(2);
const SOURCE: Token = Token(3);
const API: Token = Token(4);
const STATUS_LISTENER: Token = Token(5);
const SINK_BASE: usize = 16;
const STATUS_BASE: usize = 64;

/// How the loop is told to stop.
pub(crate) enum StopSource {
    /// SIGINT/SIGTERM (and SIGHUP) through a signalfd: the binary.
    Signals(SignalFd),
    /// A flag and a waker: the library's `SyncHandle::stop`.
    Flag(Arc<AtomicBool>),
}

pub(crate) struct Runner {
    poll: Poll,
    /// Boxed: the engine is tens of KiB, and a Runner on the stack is moved
    /// (copied) on its way to `run`; stack pages once touched stay resident.
    engine: Box<Engine<HeapStorage>>,
    settings: Resolved,
    clock: Clock,
    log: Logger,
    timer: TimerFd,
    stop: StopSource,
    fetch: Option<Fetch>,
    /// The Data-Service HTTP API request in progress.
    api: Option<Fetch>,
    api_buf: Vec<u8>,
    sinks: Vec<SinkSlot>,
    scratch: Vec<u8>,
    shutdown_deadline: Option<Instant>,
    next_stats_at: Option<Instant>,
    /// The counters as the last statistics line gave them.
    logged_counters: Vec<u64>,
    shared: Arc<Mutex<StatsSnapshot>>,
    published_cycles: u64,
    notifier: Notifier,
    pinged_cycles: u64,
    status: Option<StatusServer>,
    started_at: Instant,
    spool: Option<Spool>,
    spool_buf: Vec<u8>,
    /// A spool error was logged; the next success is logged too.
    spool_failing: bool,
}

impl Runner {
    pub(crate) fn new(
        settings: Resolved,
        poll: Poll,
        stop: StopSource,
        shared: Arc<Mutex<StatsSnapshot>>,
    ) -> io::Result<Self> {
        let options = &settings.options;
        let config = option_table::engine_config(options);
        let history = options.backlog == BacklogPolicy::History;
        let mut engine = Box::new(Engine::new(
            config,
            HeapStorage::with_capacity(
                options.max_tags,
                if history { options.backlog_bytes } else { 0 },
            ),
        ));
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        // The first cycle starts at once, then one per interval.
        timer
            .set(
                Expiration::IntervalDelayed(
                    TimeSpec::from_duration(StdDuration::from_millis(1)),
                    TimeSpec::from_duration(options.interval),
                ),
                TimerSetTimeFlags::empty(),
            )
            .map_err(io::Error::from)?;
        poll.registry().register(
            &mut SourceFd(&timer.as_fd().as_raw_fd()),
            TIMER,
            Interest::READABLE,
        )?;
        if let StopSource::Signals(signals) = &stop {
            poll.registry().register(
                &mut SourceFd(&signals.as_fd().as_raw_fd()),
                SIGNALS,
                Interest::READABLE,
            )?;
        }
        let clock = Clock::new();
        let log = Logger::new(options.log_severity());
        let spool = options
            .spool_dir
            .as_deref()
            .and_then(|dir| open_spool(dir, options, &mut engine, clock.now(), &log));
        // The status server is for people; failing to bind it must not stop
        // the sync, so it is one loud line and the sync goes on without it.
        let status = options.status_listen.and_then(|address| {
            match StatusServer::bind(address, poll.registry(), STATUS_LISTENER, STATUS_BASE) {
                Ok(server) => Some(server),
                Err(e) => {
                    log.warn(format_args!(
                        "status server: cannot listen on {address}: {e}; running without it"
                    ));
                    None
                }
            }
        });
        let next_stats_at = (!options.stats_interval.is_zero())
            .then(|| clock.now() + core_duration(options.stats_interval));
        let tx_len = min_transmit_buffer().max(options.bulk_max_bytes);
        let sinks = (0..options.max_connections)
            .map(|_| SinkSlot::new(tx_len))
            .collect();
        Ok(Runner {
            poll,
            engine,
            log,
            sinks,
            settings,
            clock,
            timer,
            stop,
            fetch: None,
            api_buf: Vec::new(),
            api: None,
            scratch: vec![0; 64 * 1024],
            shutdown_deadline: None,
            next_stats_at,
            logged_counters: Vec::new(),
            shared,
            published_cycles: u64::MAX,
            notifier: Notifier::from_env(clock.now()),
            pinged_cycles: 0,
            status,
            started_at: clock.now(),
            spool,
            spool_buf: vec![0; dataservice_sync_core::wire::spool::MAX_FRAME_LEN],
            spool_failing: false,
        })
    }

    pub(crate) fn run(mut self) -> io::Result<StatsSnapshot> {
        let o = &self.settings.options;
        self.log.info(format_args!(
            "dataservice-sync {} starting: source {}, Data-Service socket {}, interval {:.3}s, \
             key template {}, tag capacity {}",
            env!("CARGO_PKG_VERSION"),
            self.settings.source,
            o.socket_path.display(),
            o.interval.as_secs_f64(),
            self.settings.template.as_str(),
            self.engine.table().capacity(),
        ));
        if let Some(status) = &self.status {
            self.log.info(format_args!(
                "status server listening on http://{}/ (metrics /metrics, health /health, API /api/stats and /api/tags)",
                status.address()
            ));
        }
        self.notifier.ready(&self.status_line());
        let mut events = Events::with_capacity(64);
        loop {
            let now = self.clock.now();
            self.drive(now);
            self.notify(now);
            if self.engine.is_drained() {
                break;
            }
            if self.shutdown_deadline.is_some_and(|d| now >= d) {
                self.log.warn(format_args!(
                    "shutdown timeout reached with {} writes in flight; they are abandoned",
                    self.engine.in_flight()
                ));
                break;
            }
            self.log_stats_if_due(now);
            self.publish(true);
            let more_to_read = [&self.fetch, &self.api]
                .into_iter()
                .any(|f| f.as_ref().is_some_and(Fetch::has_more_to_read));
            let timeout = if more_to_read {
                Some(StdDuration::ZERO)
            } else {
                self.next_wakeup()
                    .map(|at| StdDuration::from_millis((at - now).total_millis()))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = self.clock.now();
            for event in events.iter() {
                match event.token() {
                    TIMER => self.on_timer(now),
                    SIGNALS => self.on_signals(now),
                    WAKER => self.on_wake(now),
                    SOURCE => self.on_source(now),
                    API => self.on_api(now),
                    STATUS_LISTENER => self.on_status_accept(now),
                    Token(t) if t >= STATUS_BASE => self.on_status(now, Token(t)),
                    Token(t) if t >= SINK_BASE => self.on_sink(now, t - SINK_BASE),
                    Token(_) => {}
                }
            }
            if self.fetch.as_ref().is_some_and(Fetch::has_more_to_read) {
                self.on_source(now);
            }
            if self.api.as_ref().is_some_and(Fetch::has_more_to_read) {
                self.on_api(now);
            }
            self.expire(now);
        }
        if let Some(spool) = self.spool.as_ref() {
            let before = spool.stats().records_written_total;
            self.engine.flush_to_spool();
            self.pump_spool(true);
            if let Some(spool) = self.spool.as_ref() {
                self.log.info(format_args!(
                    "spool: {} undelivered changes written at exit, {} bytes on disk",
                    spool.stats().records_written_total - before,
                    spool.stats().bytes_on_disk
                ));
            }
        }
        let pending = self.engine.pending();
        let pending_tags = self.engine.pending_tags();
        let stats = self.engine.stats();
        self.log.info(format_args!(
            "stopped: tags={} pending={pending} unregistered={} {stats}",
            self.engine.table().len(),
            self.engine.unregistered(),
        ));
        if pending > 0 && self.spool.is_none() {
            if self.settings.options.backlog == BacklogPolicy::History {
                self.log.error(format_args!(
                    "{pending} undelivered changes of {pending_tags} tags are lost at exit \
                     (no --spool-dir)"
                ));
            } else {
                self.log.warn(format_args!(
                    "{pending_tags} tags had values the Data-Service had not acknowledged at exit"
                ));
            }
        }
        self.publish(false);
        Ok(self.snapshot(false))
    }

    /// Carries out the engine's outputs until it has nothing more to say.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            let registering = self.engine.is_registering();
            while let Some(Action::FetchSource) = self.engine.poll_action(now) {
                self.start_fetch(now);
                progressed = true;
            }
            if self.api.is_none() && self.engine.is_registering() {
                // The body buffer exists only while registry checks run.
                if self.api_buf.is_empty() {
                    self.api_buf.resize(self.settings.options.bulk_max_bytes, 0);
                }
                if let Some(request) = self.engine.poll_api_request(now, &mut self.api_buf) {
                    progressed = true;
                    self.start_api(now, request);
                }
            }
            if !self.engine.is_registering() && !self.api_buf.is_empty() {
                self.api_buf = Vec::new();
            }
            while let Some(slot) = self.sinks.iter().position(SinkSlot::is_free) {
                let sink = &mut self.sinks[slot];
                let Some(tx) = self.engine.poll_transmit(now, sink.request_buffer()) else {
                    // Nothing to send: the slot gives its request buffer back.
                    sink.release_buffers();
                    break;
                };
                progressed = true;
                let deadline = now + core_duration(self.settings.options.write_timeout);
                let registry = self.poll.registry();
                let socket = &self.settings.options.socket_path;
                if let Err(error) = sink.start(
                    socket,
                    tx.len,
                    tx.request,
                    deadline,
                    registry,
                    Token(SINK_BASE + slot),
                ) {
                    self.engine.handle_sink_error(now, tx.request, error);
                }
            }
            while let Some(event) = self.engine.poll_event() {
                let severity = match event.level() {
                    Level::Debug => Severity::Debug,
                    Level::Info => Severity::Info,
                    Level::Warn => Severity::Warn,
                    Level::Error => Severity::Error,
                };
                self.log.line(severity, format_args!("{event}"));
            }
            self.pump_spool(false);
            // A registry check that started or ended on the way (as a cycle
            // ended, or with its last answer) has requests, a delivery or a
            // cycle due.
            if self.engine.is_registering() != registering || self.engine.is_fetch_due() {
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    /// Opens an HTTP exchange that must end within `--source-timeout`.
    fn open_exchange(
        &self,
        now: Instant,
        url: &HttpUrl,
        path: Option<&str>,
        body: Option<&[u8]>,
        token: Token,
        body_limit: BodyLimit,
    ) -> Result<Fetch, dataservice_sync_core::SourceError> {
        let deadline = now + core_duration(self.settings.options.source_timeout);
        Fetch::start(
            url,
            path,
            body,
            body_limit,
            deadline,
            self.poll.registry(),
            token,
        )
    }

    fn start_fetch(&mut self, now: Instant) {
        // The document is taken as it arrives (the engine says how much it
        // used, and applies nothing from a cut-off one).
        let limit = BodyLimit::Streamed(self.settings.options.max_body_bytes);
        match self.open_exchange(now, &self.settings.source, None, None, SOURCE, limit) {
            Ok(fetch) => self.fetch = Some(fetch),
            Err(error) => self.engine.handle_source_error(now, error),
        }
    }

    fn start_api(&mut self, now: Instant, request: dataservice_sync_core::ApiRequest) {
        let Some(url) = &self.settings.api else {
            self.engine.handle_api_error(
                now,
                dataservice_sync_core::ApiError::Fetch(dataservice_sync_core::SourceError::Refused),
            );
            return;
        };
        let body = (request.method == "POST").then(|| &self.api_buf[..request.body_len]);
        // `/detailed` is taken as it arrives (the engine says how much it used).
        let limit = BodyLimit::Held(self.settings.options.max_body_bytes);
        match self.open_exchange(now, url, Some(request.path), body, API, limit) {
            Ok(fetch) => self.api = Some(fetch),
            Err(error) => self
                .engine
                .handle_api_error(now, dataservice_sync_core::ApiError::Fetch(error)),
        }
    }

    fn on_api(&mut self, now: Instant) {
        let Some(fetch) = self.api.as_mut() else {
            return;
        };
        let engine = &mut self.engine;
        let outcome = fetch.on_ready(&mut self.scratch, |status, part| {
            engine.handle_api_body_part(now, status, part)
        });
        match outcome {
            FetchOutcome::Pending => return,
            FetchOutcome::Done { status } => {
                self.engine.handle_api_response(now, status, fetch.body())
            }
            FetchOutcome::Failed(error) => self
                .engine
                .handle_api_error(now, dataservice_sync_core::ApiError::Fetch(error)),
        }
        if let Some(fetch) = self.api.take() {
            fetch.close(self.poll.registry());
        }
    }

    fn on_source(&mut self, now: Instant) {
        let Some(fetch) = self.fetch.as_mut() else {
            return;
        };
        let engine = &mut self.engine;
        let outcome = fetch.on_ready(&mut self.scratch, |status, part| match status {
            200 => engine.handle_source_body_part(part),
            // Not a document: only its status is used.
            _ => part.len(),
        });
        match outcome {
            FetchOutcome::Pending => return,
            FetchOutcome::Done { status: 200 } => self.engine.handle_source_body(now, fetch.body()),
            FetchOutcome::Done { status } => self
                .engine
                .handle_source_error(now, dataservice_sync_core::SourceError::HttpStatus(status)),
            FetchOutcome::Failed(error) => self.engine.handle_source_error(now, error),
        }
        if let Some(fetch) = self.fetch.take() {
            fetch.close(self.poll.registry());
        }
    }

    fn on_sink(&mut self, now: Instant, slot: usize) {
        let socket = &self.settings.options.socket_path;
        let Some(sink) = self.sinks.get_mut(slot) else {
            return;
        };
        let Some(request) = sink.request() else {
            return;
        };
        match sink.on_ready(socket) {
            WriteOutcome::Pending => return,
            WriteOutcome::Answered => self.engine.handle_sink_response(now, request, sink.line()),
            WriteOutcome::Failed(error) => self.engine.handle_sink_error(now, request, error),
        }
        sink.close(self.poll.registry());
    }

    fn on_status_accept(&mut self, now: Instant) {
        if let Some(status) = self.status.as_mut() {
            status.on_accept(self.poll.registry(), now);
        }
    }

    fn on_status(&mut self, now: Instant, token: Token) {
        let ctx = ReportContext {
            version: env!("CARGO_PKG_VERSION"),
            commit: env!("DSS_COMMIT"),
            target: env!("DSS_TARGET"),
            process: crate::process::figures(),
            now,
            unix_millis: unix_millis(SystemTime::now()),
            started_at: self.started_at,
            stopping: self.shutdown_deadline.is_some(),
        };
        let engine = &self.engine;
        let health_cycles = self.settings.options.health_cycles;
        let Some(status) = self.status.as_mut() else {
            return;
        };
        let runner = status_routes::RunnerFigures {
            server: status.stats(),
            spool: self.spool.as_ref().map(Spool::stats),
        };
        status.on_ready(self.poll.registry(), token, |request| {
            status_routes::respond(request, engine, &ctx, health_cycles, &runner)
        });
    }

    /// Appends what the engine hands to the spool, the acknowledgement
    /// watermark, and syncs as the policy says (`exiting`: all of it, now).
    fn pump_spool(&mut self, exiting: bool) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let now = std::time::Instant::now();
        let mut result = Ok(());
        while let Some(frame) = self.engine.poll_spool(&mut self.spool_buf) {
            let bytes = &self.spool_buf[..frame.len];
            result = result.and(spool.append_change(bytes, frame.seq, now));
        }
        result = result
            .and_then(|()| spool.acknowledge(self.engine.spool_acked_through(), now))
            .and_then(|()| spool.sync(now, exiting));
        match result {
            Err(e) if !self.spool_failing => {
                self.spool_failing = true;
                self.log.warn(format_args!(
                    "spool: {e}: undelivered changes stay in memory only (retried in 30 s; spool_errors_total counts)"
                ));
            }
            Ok(()) if self.spool_failing && !spool.is_paused(now) => {
                self.spool_failing = false;
                self.log.info(format_args!("spool: writing again"));
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant) {
        let mut expirations = [0u8; 8];
        // Reading clears readiness; EAGAIN means another wakeup got there first.
        if nix::unistd::read(&self.timer, &mut expirations).is_ok() {
            self.engine.handle_tick(now);
        }
    }

    fn on_signals(&mut self, now: Instant) {
        let StopSource::Signals(signals) = &self.stop else {
            return;
        };
        let mut received = Vec::new();
        while let Ok(Some(info)) = signals.read_signal() {
            received.push(info.ssi_signo as i32);
        }
        for signo in received {
            match Signal::try_from(signo) {
                Ok(Signal::SIGHUP) => self.reload(now),
                Ok(signal) => self.begin_shutdown(now, signal.as_str()),
                Err(_) => {}
            }
        }
    }

    /// SIGHUP: reads the `--config` file again (under the same command
    /// line). A valid file's rules, filters, validation, key template and
    /// heartbeat apply at once, keeping the tag table, the backlog and the
    /// statistics; other changed settings are named and wait for a restart.
    /// An invalid file is refused and the rules in force stay.
    fn reload(&mut self, now: Instant) {
        let old = &self.settings.options;
        let Some(path) = old.config_file.clone() else {
            self.log.info(format_args!(
                "SIGHUP received: no --config file, nothing to reload"
            ));
            return;
        };
        let command_line = if old.command_line.is_empty() {
            vec![
                "dataservice-sync".into(),
                "--config".into(),
                path.clone().into(),
            ]
        } else {
            old.command_line.clone()
        };
        let new = crate::cli::parse(&command_line)
            .map_err(|e| e.first_line())
            .and_then(|(cli, rules)| {
                cli.run
                    .to_options(rules, command_line.clone())
                    .resolve()
                    .map_err(|e| e.to_string())
            });
        let resolved = match new {
            Ok(resolved) => resolved,
            Err(why) => {
                self.log.warn(format_args!(
                    "configuration reload refused, the rules in force stay: {why}"
                ));
                self.engine
                    .reload_refused(now, format_args!("configuration reload refused: {why}"));
                return;
            }
        };
        let new = &resolved.options;
        let restart_only = option_table::changed_at_restart(old, new);
        self.engine.reload(
            (*new.rules).clone(),
            resolved.template.clone(),
            core_duration(new.heartbeat),
        );
        self.log.info(format_args!(
            "configuration reloaded from {}: {} rules, key template {}{}",
            path.display(),
            new.rules.rules.len(),
            resolved.template.as_str(),
            if restart_only.is_empty() {
                String::new()
            } else {
                format!(
                    "; changed but applied only at the next start: {}",
                    restart_only.join(", ")
                )
            }
        ));
        let options = &mut self.settings.options;
        options.rules = resolved.options.rules.clone();
        options.key_template = resolved.options.key_template.clone();
        options.heartbeat = resolved.options.heartbeat;
        self.settings.template = resolved.template;
    }

    fn on_wake(&mut self, now: Instant) {
        if let StopSource::Flag(flag) = &self.stop
            && flag.load(Ordering::SeqCst)
        {
            self.begin_shutdown(now, "stop()");
        }
    }

    fn begin_shutdown(&mut self, now: Instant, why: &str) {
        if self.shutdown_deadline.is_some() {
            self.log.warn(format_args!("{why} again: stopping now"));
            self.shutdown_deadline = Some(now);
            return;
        }
        let timeout = self.settings.options.shutdown_timeout;
        self.log.info(format_args!(
            "{why} received: stopping; finishing in-flight writes (at most {:.1}s)",
            timeout.as_secs_f64()
        ));
        self.notifier
            .stopping(&format!("stopping on {why}: {}", self.status_line()));
        // Disarming a valid timerfd cannot fail; if it did, ticks are ignored anyway.
        let _ = self.timer.unset();
        self.engine.handle_shutdown(now);
        if let Some(fetch) = self.fetch.take() {
            fetch.close(self.poll.registry());
        }
        if let Some(api) = self.api.take() {
            api.close(self.poll.registry());
        }
        self.shutdown_deadline = Some(now + core_duration(timeout));
    }

    fn expire(&mut self, now: Instant) {
        if self.api.as_ref().is_some_and(|f| now >= f.deadline) {
            self.engine.handle_api_error(
                now,
                dataservice_sync_core::ApiError::Fetch(dataservice_sync_core::SourceError::Timeout),
            );
            if let Some(api) = self.api.take() {
                api.close(self.poll.registry());
            }
        }
        if self.fetch.as_ref().is_some_and(|f| now >= f.deadline) {
            self.engine
                .handle_source_error(now, dataservice_sync_core::SourceError::Timeout);
            if let Some(fetch) = self.fetch.take() {
                fetch.close(self.poll.registry());
            }
        }
        if let Some(status) = self.status.as_mut() {
            status.expire(self.poll.registry(), now);
        }
        for sink in &mut self.sinks {
            if sink.deadline().is_some_and(|d| now >= d) {
                if let Some(request) = sink.request() {
                    self.engine.handle_sink_error(
                        now,
                        request,
                        dataservice_sync_core::SinkError::Timeout,
                    );
                }
                sink.close(self.poll.registry());
            }
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let fetch = self.fetch.as_ref().map(|f| f.deadline);
        let api = self.api.as_ref().map(|f| f.deadline);
        let status = self.status.as_ref().and_then(StatusServer::next_deadline);
        let spool_sync = self.spool.as_ref().and_then(Spool::next_sync).map(|at| {
            let wait = at.saturating_duration_since(std::time::Instant::now());
            self.clock.now() + core_duration(wait)
        });
        let sinks = self.sinks.iter().filter_map(SinkSlot::deadline);
        [
            self.engine.poll_timeout(),
            fetch,
            api,
            self.shutdown_deadline,
            self.next_stats_at,
            status,
            spool_sync,
            self.notifier.next_wakeup(self.clock.now()),
        ]
        .into_iter()
        .flatten()
        .chain(sinks)
        .min()
    }

    /// The key counters, for systemd's STATUS.
    fn status_line(&self) -> String {
        let stats = self.engine.stats();
        format!(
            "cycles={} writes_ok={} writes_failed={} pending={} source={} sink={}",
            stats.sync_cycles_total,
            stats.writes_ok_total,
            stats.writes_failed_total,
            self.engine.pending(),
            self.engine.source_health().as_str(),
            self.engine.sink_health().as_str(),
        )
    }

    /// STATUS and the watchdog. Progress: a cycle completed since the last
    /// ping, or the engine idles between cycles; a loop stuck mid-cycle
    /// stops pinging and systemd restarts it.
    fn notify(&mut self, now: Instant) {
        let cycles = self.engine.stats().sync_cycles_total;
        let progressing = cycles != self.pinged_cycles || self.engine.is_idle();
        if self.notifier.watchdog(now, progressing) {
            self.pinged_cycles = cycles;
        }
        // Once stopping, the STOPPING status stays.
        if self.shutdown_deadline.is_none() && self.notifier.status_due(now) {
            self.notifier.status(&self.status_line());
        }
    }

    fn log_stats_if_due(&mut self, now: Instant) {
        let Some(due) = self.next_stats_at else {
            return;
        };
        if now < due {
            return;
        }
        let last_sync = self
            .engine
            .stats()
            .last_sync_at
            .map_or_else(|| "never".to_string(), |at| rfc3339(self.clock.wall(at)));
        // Only the counters that moved since the last line: a quiet gateway
        // writes a short line, not every counter every minute.
        let stats = self.engine.stats();
        let mut moved = String::new();
        for (i, counter) in stats.counters().iter().enumerate() {
            if self.logged_counters.get(i).copied().unwrap_or(0) != counter.value {
                moved.push_str(&format!(" {}={}", counter.name, counter.value));
            }
        }
        self.logged_counters = stats.counters().iter().map(|c| c.value).collect();
        if let (Some(p50), Some(p99)) = (stats.cycle_percentile(50), stats.cycle_percentile(99)) {
            moved.push_str(&format!(" cycle_p50_ms={p50} cycle_p99_ms={p99}"));
        }
        self.log.info(format_args!(
            "stats: tags={} pending={} unregistered={} last_sync={last_sync}{moved}",
            self.engine.table().len(),
            self.engine.pending(),
            self.engine.unregistered(),
        ));
        self.next_stats_at = Some(due + core_duration(self.settings.options.stats_interval));
    }

    /// Hands a copy of the statistics to the library's `stats()`, once per cycle.
    fn publish(&mut self, running: bool) {
        let cycles = self.engine.stats().sync_cycles_total;
        if running && cycles == self.published_cycles {
            return;
        }
        self.published_cycles = cycles;
        let snapshot = self.snapshot(running);
        if let Ok(mut shared) = self.shared.lock() {
            *shared = snapshot;
        }
    }

    fn snapshot(&self, running: bool) -> StatsSnapshot {
        let counters = self.engine.stats().clone();
        StatsSnapshot {
            running,
            tags: self.engine.table().len(),
            pending: self.engine.pending(),
            last_sync_time: counters.last_sync_at.map(|at| self.clock.wall(at)),
            recent_errors: counters
                .recent_errors
                .oldest_ordered()
                .map(|e| (self.clock.wall(e.at), e.message.to_string()))
                .collect(),
            counters,
        }
    }
}

/// Opens the spool and replays what it holds into the engine; on failure the
/// sync runs with its backlog in memory only.
fn open_spool(
    dir: &std::path::Path,
    options: &crate::options::SyncOptions,
    engine: &mut Engine<HeapStorage>,
    now: Instant,
    log: &Logger,
) -> Option<Spool> {
    let opened = Spool::open(dir, options.spool_max_bytes, options.spool_sync);
    let (mut spool, scan) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            log.warn(format_args!(
                "spool: cannot use {}: {e}; undelivered changes are kept in memory only",
                dir.display()
            ));
            return None;
        }
    };
    let mut replayed = 0u64;
    let result = spool.replay(scan.acked_through, |change| {
        if engine.handle_replayed(now, change) {
            replayed += 1;
        }
    });
    engine.resume_numbering(scan.max_seq.max(scan.acked_through) + 1);
    let stats = spool.stats();
    log.info(format_args!(
        "spool {}: {} segments, {replayed} undelivered changes replayed (acknowledged through #{}), \
         {} damaged and {} torn records skipped",
        dir.display(),
        scan.segments,
        scan.acked_through,
        stats.corrupt_records_total,
        stats.torn_records_total,
    ));
    if let Err(e) = result {
        log.warn(format_args!("spool: reading {} failed: {e}", dir.display()));
    }
    Some(spool)
}

/// Wakes the loop of a library-run service.
pub(crate) fn new_waker(poll: &Poll) -> io::Result<Waker> {
    Waker::new(poll.registry(), WAKER)
}
