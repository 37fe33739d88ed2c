//! The library API: the Rust form of the seed's integration API.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::{Poll, Waker};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::event_loop::{Runner, StopSource, new_waker};
use crate::options::{ConfigError, Resolved, SyncOptions};
use crate::stats::StatsSnapshot;

/// A configured sync service.
///
/// ```no_run
/// use std::time::Duration;
/// use dataservice_sync::{SyncOptions, SyncService};
///
/// let options = SyncOptions {
///     socket_path: "/tmp/dataservice.sock".into(),
///     interval: Duration::from_secs(1),
///     ..SyncOptions::default()
/// };
/// let handle = SyncService::new(options)?.start()?;
/// std::thread::sleep(Duration::from_secs(5));
/// println!("{} writes so far", handle.stats().successful_writes());
/// let last = handle.stop()?;
/// println!("{} cycles, {} failed writes", last.total_syncs(), last.failed_writes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SyncService {
    settings: Resolved,
}

/// A running service.
pub struct SyncHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    shared: Arc<Mutex<StatsSnapshot>>,
    thread: JoinHandle<io::Result<StatsSnapshot>>,
}

impl SyncService {
    /// Validates `options`.
    pub fn new(options: SyncOptions) -> Result<Self, ConfigError> {
        Ok(SyncService {
            settings: options.resolve()?,
        })
    }

    /// Runs the sync on its own thread.
    pub fn start(self) -> io::Result<SyncHandle> {
        let poll = Poll::new()?;
        let waker = Arc::new(new_waker(&poll)?);
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(StatsSnapshot {
            running: true,
            ..StatsSnapshot::default()
        }));
        let runner = Runner::new(
            self.settings,
            poll,
            StopSource::Flag(Arc::clone(&stop)),
            Arc::clone(&shared),
        )?;
        let thread = std::thread::Builder::new()
            .name("dataservice-sync".into())
            .spawn(move || runner.run())?;
        Ok(SyncHandle {
            stop,
            waker,
            shared,
            thread,
        })
    }

    /// Runs the sync on this thread until SIGINT or SIGTERM, then returns
    /// the final statistics. Blocks those signals (and SIGHUP) in this
    /// thread so that they arrive through a signalfd; call it before
    /// starting other threads, which inherit the mask.
    pub fn run_until_signal(self) -> io::Result<StatsSnapshot> {
        let mut mask = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            mask.add(signal);
        }
        mask.thread_block().map_err(io::Error::from)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io::Error::from)?;
        let shared = Arc::new(Mutex::new(StatsSnapshot::default()));
        let runner = Runner::new(
            self.settings,
            Poll::new()?,
            StopSource::Signals(signals),
            shared,
        )?;
        runner.run()
    }
}

impl SyncHandle {
    /// The statistics as of the last completed cycle.
    pub fn stats(&self) -> StatsSnapshot {
        match self.shared.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Stops polling, finishes in-flight writes (within the shutdown
    /// timeout) and returns the final statistics.
    pub fn stop(self) -> io::Result<StatsSnapshot> {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake()?;
        match self.thread.join() {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the sync thread panicked")),
        }
    }
}
