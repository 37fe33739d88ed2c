//! `dataservice-sync demo`: simulated peers on temporary sockets and a real
//! sync between them, narrated on stdout (the sync's own log is on stderr).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use std::cell::Cell;
use std::io::Write;

use crate::cli::DemoArgs;
use crate::{SyncOptions, SyncService};
use dataservice_sync_sim::{DataServiceDouble, PollingDouble, PollingMode};

/// Stdout, until it is closed (`demo | head -1`): then the demo stops and
/// cleans up instead of dying of a broken pipe.
struct Narrator {
    closed: Cell<bool>,
}

impl Narrator {
    fn say(&self, line: std::fmt::Arguments<'_>) {
        if self.closed.get() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            self.closed.set(true);
        }
    }
}

macro_rules! say {
    ($out:expr, $($arg:tt)*) => { $out.say(format_args!($($arg)*)) };
}

/// The demo's temporary directory, removed however the demo ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo; exit code 0 when data flowed end to end, or when it was
/// stopped early.
pub fn run(args: &DemoArgs) -> ExitCode {
    match run_demo(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_demo(args: &DemoArgs) -> Result<bool, Box<dyn std::error::Error>> {
    // Ctrl-C ends the demo cleanly: block it before any thread starts.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    mask.thread_block()?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;

    let dir =
        TempDir(std::env::temp_dir().join(format!("dataservice-sync-demo-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let out = Narrator {
        closed: Cell::new(false),
    };
    narrate(args, &dir.0, &signals, &out)
}

fn narrate(
    args: &DemoArgs,
    dir: &std::path::Path,
    signals: &SignalFd,
    out: &Narrator,
) -> Result<bool, Box<dyn std::error::Error>> {
    let socket: PathBuf = dir.join("dataservice.sock");
    let mut dataservice = DataServiceDouble::start(&socket)?;
    let polling = PollingDouble::tcp(
        "127.0.0.1:0",
        PollingMode::Generated {
            devices: args.devices,
            tags: args.tags,
            changing_percent: 50,
        },
    )?;
    say!(out, "demo: simulated polling service at {}", polling.url());
    say!(
        out,
        "demo: simulated {} devices x {} tags, half of them changing on every request",
        args.devices,
        args.tags
    );
    say!(
        out,
        "demo: simulated Data-Service: IPC socket {}, HTTP API {}",
        socket.display(),
        dataservice.http_url()
    );
    // The Data-Service drops writes to unregistered keys, so the demo
    // registers them first, as an integrator's set-up would.
    for d in 0..args.devices {
        for t in 0..args.tags {
            let data_type = ["int", "float", "bool"][(t % 3) as usize];
            dataservice.register(&format!("Device-{d}.tag-{t}"), data_type)?;
        }
    }
    say!(
        out,
        "demo: registered {} keys in the Data-Service",
        args.devices * args.tags
    );

    let options = SyncOptions {
        socket_path: socket.clone(),
        source: polling.url(),
        interval: args.interval,
        stats_interval: Duration::ZERO,
        dataservice_url: Some(dataservice.http_url()),
        status_listen: args.status_listen.0,
        ..SyncOptions::default()
    };
    say!(
        out,
        "demo: starting the sync (interval {:.1}s); same as: dataservice-sync --socket-path {} --source {} --dataservice-url {} --interval {}",
        args.interval.as_secs_f64(),
        socket.display(),
        polling.url(),
        dataservice.http_url(),
        args.interval.as_secs_f64()
    );
    say!(
        out,
        "demo: it reads the registered keys' ids from the Data-Service's HTTP API, then writes only changed values, in bulk"
    );
    let handle = SyncService::new(options)?.start()?;
    if let Some(address) = args.status_listen.0 {
        say!(
            out,
            "demo: status page at http://{address}/ (also /metrics, /health, /api/stats, /api/tags; `dataservice-sync stats --status-address {address}`)"
        );
    }
    let started = Instant::now();
    let outage_at = args.duration.mul_f64(0.4);
    let outage_for = Duration::from_secs(2).min(args.duration / 4);
    let mut outage = (!args.duration.is_zero() && outage_for >= args.interval).then_some(outage_at);
    let mut resume_at = None;
    let mut last_report = Instant::now();
    let mut interrupted = false;
    while args.duration.is_zero() || started.elapsed() < args.duration {
        if out.closed.get() {
            interrupted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(_)) = signals.read_signal() {
            say!(out, "demo: interrupted, stopping");
            interrupted = true;
            break;
        }
        if outage.is_some_and(|at| started.elapsed() >= at) {
            outage = None;
            say!(
                out,
                "demo: taking the Data-Service socket away for {:.1}s: the sync keeps values pending and says so once",
                outage_for.as_secs_f64()
            );
            dataservice.stop_ipc();
            resume_at = Some(started.elapsed() + outage_for);
        }
        if resume_at.is_some_and(|at| started.elapsed() >= at) {
            resume_at = None;
            dataservice.resume_ipc()?;
            say!(out, "demo: Data-Service socket is back");
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let stats = handle.stats();
            let sample = dataservice.values();
            let shown: Vec<String> = sample
                .iter()
                .take(3)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            say!(
                out,
                "demo: t={:>4.1}s cycles={} writes ok={} (in {} bulk requests) unchanged={} failed={} pending={} | Data-Service: {} ...",
                started.elapsed().as_secs_f64(),
                stats.total_syncs(),
                stats.successful_writes(),
                stats.counters.bulk_requests_total,
                stats.counters.writes_suppressed_total,
                stats.failed_writes(),
                stats.pending,
                shown.join(" ")
            );
        }
    }
    if resume_at.is_some() {
        dataservice.resume_ipc()?;
    }
    let last = handle.stop()?;
    let store = dataservice.store();
    say!(
        out,
        "demo: stopped. {} cycles, {} writes acknowledged, {} failed attempts (retried), {} values still pending",
        last.total_syncs(),
        last.successful_writes(),
        last.failed_writes(),
        last.pending
    );
    say!(
        out,
        "demo: the Data-Service applied {} writes to {} keys; {} polling requests served",
        store.applied,
        store.points().len(),
        polling.requests()
    );
    let flowed = store.applied > 0 && last.successful_writes() > 0;
    if !flowed && !interrupted {
        say!(
            out,
            "demo: no data reached the Data-Service: something is wrong"
        );
    }
    // Stopped early (Ctrl-C, or its reader gone) is not a failure.
    Ok(flowed || interrupted)
}
