//! The mio loop: registers fds, turns readiness into the engine's
//! `handle_*` calls and carries out what its `poll_*` calls return. It owns
//! the fds and the clock; every decision about tags is the engine's.
//!
//! Here: the loop itself and its set-up. `inputs` (fd readiness to
//! `handle_*`), `drive` (`poll_*` to fds), `deadlines`, `reload`,
//! `shutdown` and `housekeeping` (systemd, statistics lines, snapshots).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use dataservice_sync_core::{BacklogPolicy, Engine, Instant, min_transmit_buffer};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signalfd::SignalFd;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::clock::Clock;
use crate::log::Logger;
use crate::notify::Notifier;
use crate::option_table;
use crate::options::{Resolved, core_duration};
use crate::sink::SinkSlot;
use crate::source::Fetch;
use crate::spool::Spool;
use crate::stats::StatsSnapshot;
use crate::status_server::StatusServer;
use crate::storage::HeapStorage;

mod deadlines;
mod drive;
mod housekeeping;
mod inputs;
mod reload;
mod shutdown;

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
    /// A request buffer no slot needed on the last pass (at most one).
    spare_request: Vec<u8>,
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
            spare_request: Vec::new(),
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
        Ok(self.finish())
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
