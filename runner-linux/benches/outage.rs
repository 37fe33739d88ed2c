//! Benchmark of the `history` backlog and the spool: the real binary
//! (release profile) against the simulated peers, through a Data-Service
//! outage. Prints the figures issue #4 asks for, measured side by side for
//! each `--replay-rate`:
//! memory per backlog entry, spool bytes per change, replay rate, and the
//! longest stall of live values (from the Data-Service's return until it
//! holds every tag's current value: a tag's live value goes with its own
//! history; what the Data-Service cannot take within an interval of that
//! is dropped, oldest first, and counted).
//!
//! ```text
//! cargo bench --bench outage -- [--tags 1000] [--interval 1] [--outage 30] [--delivery bulk|write]
//! ```

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use dataservice_sync::stats_command::fetch;
use dataservice_sync_sim::{DataServiceDouble, generated_value};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod common;
use common::BenchPeers;

struct Setup {
    tags: u32,
    interval: f64,
    outage: f64,
    delivery: String,
}

fn parse_args() -> Setup {
    let mut setup = Setup {
        tags: 1000,
        interval: 1.0,
        outage: 30.0,
        delivery: "bulk".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--tags" => setup.tags = value().parse().unwrap_or(setup.tags),
            "--interval" => setup.interval = value().parse().unwrap_or(setup.interval),
            "--outage" => setup.outage = value().parse().unwrap_or(setup.outage),
            "--delivery" => setup.delivery = value(),
            "--bench" => {}
            other => eprintln!("ignoring {other}"),
        }
    }
    setup
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn run(setup: &Setup, replay_rate: u32) -> String {
    let devices = 10;
    let per_device = setup.tags / devices;
    let mut peers = BenchPeers::start(&format!("outage-{replay_rate}"), devices, per_device, 100);
    let dir = peers.dir.clone();
    let status: SocketAddr = format!("127.0.0.1:{}", 19200 + replay_rate % 1000)
        .parse()
        .expect("address");
    let mut child = peers
        .sync_command(setup.interval)
        .args(["--backlog", "history", "--backlog-bytes", "67108864"])
        .args(["--replay-rate", &replay_rate.to_string()])
        .args(["--delivery", &setup.delivery])
        .args([
            "--spool-dir",
            dir.join("spool").to_str().unwrap_or_default(),
        ])
        .args(["--status-listen", &status.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dataservice-sync");
    let wait_for = |what: &str, limit: Duration, mut done: Box<dyn FnMut() -> bool + '_>| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(
        "first writes",
        Duration::from_secs(60),
        Box::new(|| peers.dataservice.store().applied > 0),
    );
    std::thread::sleep(Duration::from_secs_f64(setup.interval * 2.0));
    peers.dataservice.stop_ipc();
    std::thread::sleep(Duration::from_secs_f64(setup.outage));
    let during = fetch(status, "/metrics").unwrap_or_default();
    let entries = metric(&during, "dataservice_sync_backlog_entries");
    let bytes = metric(&during, "dataservice_sync_backlog_bytes");
    let spool_bytes = metric(&during, "dataservice_sync_spool_bytes_written_total");
    let spool_records = metric(&during, "dataservice_sync_spool_records_written_total");
    peers.dataservice.resume_ipc().expect("resume");
    let back = Instant::now();
    // Live stall: until the Data-Service holds the current round's value of
    // every tag (the round keeps moving while we wait).
    let polling = &peers.polling;
    let current = |ds: &DataServiceDouble| {
        let round = polling.requests().saturating_sub(1).max(1);
        let values = ds.values();
        // Every third tag holds an integer that grows by 10 each round.
        (0..devices).all(|d| {
            (0..per_device).step_by(3).all(|t| {
                let want: u64 = generated_value(t, round).parse().unwrap_or(u64::MAX);
                let have = values
                    .get(&format!("Device-{d}.tag-{t}"))
                    .and_then(serde_json::Value::as_u64);
                have.is_some_and(|have| have >= want)
            })
        })
    };
    wait_for(
        "catch-up",
        Duration::from_secs(600),
        Box::new(|| current(&peers.dataservice)),
    );
    let stall = back.elapsed().as_secs_f64();
    wait_for(
        "an empty backlog",
        Duration::from_secs(600),
        Box::new(|| {
            let text = fetch(status, "/metrics").unwrap_or_default();
            metric(&text, "dataservice_sync_backlog_entries") < f64::from(setup.tags) + 1.0
        }),
    );
    let drained = back.elapsed().as_secs_f64();
    let after = fetch(status, "/metrics").unwrap_or_default();
    let dropped = metric(&after, "dataservice_sync_backlog_dropped_total");
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let _ = child.wait();
    drop(peers);
    format!(
        "| {replay_rate} | {:.0} | {:.1} B | {:.1} B | {:.0} changes/s | {stall:.1} s | {dropped:.0} |",
        entries,
        bytes / entries,
        spool_bytes / spool_records,
        entries / drained,
    )
}

fn main() {
    let setup = parse_args();
    println!(
        "{} tags, all changing, every {} s; Data-Service away for {} s; --backlog history --spool-dir --delivery {}",
        setup.tags, setup.interval, setup.outage, setup.delivery
    );
    println!(
        "| --replay-rate | backlog entries at the return | memory per entry | spool bytes per change | replay rate | longest live stall | changes dropped |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for rate in [5_000, 50_000] {
        println!("{}", run(&setup, rate));
    }
}
