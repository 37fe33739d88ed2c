//! Soak: the release binary against the simulated peers for a long run
//! (default 10 minutes, 10,000 tags all changing every 100 ms, bulk), with
//! RSS, open file descriptors and CPU time sampled every minute. Flat
//! figures from the first sample to the last mean no leak.
//!
//! ```text
//! cargo bench --bench soak -- [--minutes 10] [--tags 10000] [--interval 0.1]
//! ```

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod common;
use common::BenchPeers;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let minutes = arg("--minutes", 10.0);
    let tags = arg("--tags", 10_000.0) as u32;
    let interval = arg("--interval", 0.1);
    let devices = 10;
    let peers = BenchPeers::start("soak", devices, tags / devices, 100);
    let dataservice = &peers.dataservice;
    let mut child = peers
        .sync_command(interval)
        .args(["--status-listen", "off"])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dataservice-sync");
    let pid = child.id().to_string();
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "soak: {tags} tags, all changing, every {interval} s, bulk, {minutes} min (after a 10 s warm-up)"
    );
    println!("| minute | sync RSS | open fds | sync CPU | updates applied |");
    println!("| --- | --- | --- | --- | --- |");
    let started = Instant::now();
    let applied_start = dataservice.store().applied;
    let first = common::sample(&pid);
    let print = |minute: f64, s: common::ProcSample, applied: u64| {
        println!(
            "| {minute:.0} | {:.2} MiB | {} | {:.1} s | {applied} |",
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.cpu - first.cpu
        );
    };
    print(0.0, first, 0);
    let mut last = first;
    for minute in 1..=minutes.ceil() as u64 {
        let due = Duration::from_secs_f64(minute as f64 * 60.0)
            .min(Duration::from_secs_f64(minutes * 60.0));
        std::thread::sleep(due.saturating_sub(started.elapsed()));
        last = common::sample(&pid);
        print(
            minute as f64,
            last,
            dataservice.store().applied - applied_start,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let applied = dataservice.store().applied - applied_start;
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let status = child.wait();
    println!(
        "start -> end: RSS {:.2} -> {:.2} MiB, fds {} -> {}, CPU {:.1} s for {} updates ({:.0}/s, {:.2} µs each); exit {:?}",
        first.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        first.fds,
        last.fds,
        last.cpu - first.cpu,
        applied,
        applied as f64 / elapsed,
        (last.cpu - first.cpu) * 1e6 / applied.max(1) as f64,
        status.map(|s| s.code())
    );
    drop(peers);
}
