//! Benchmark: the real binary (release profile) against the simulated
//! peers, side by side in one run. For each configuration it prints
//! updates delivered per second, the sync's CPU per delivered update,
//! cycle duration p50/p99 (from the sync's own statistics), its peak RSS,
//! and the simulated peers' CPU (to show when they, not the sync, limit):
//! all of them, and the Data-Service double's IPC thread per update alone.
//! The host's steal is read every 10 ms, to tell whether the cycles that
//! overran met a burst of it.
//!
//! ```text
//! cargo bench --bench sync -- --matrix [--seconds 10]
//! cargo bench --bench sync -- --tags 10000 --changing 100 --interval 0.1 --delivery bulk --seconds 60
//! cargo bench --bench sync -- --tags 10000 --changing 100 --interval 0.1 --new-tags-after 5
//! ```
//! `--new-tags-after S`: S seconds into the measurement each device gains
//! a tag (its key registered beforehand), so a registry check runs while
//! the cycles go on.
//! Keys are registered at explicit addresses (the Data-Service's automatic
//! ranges hold 1,000 points per type). Tags beyond the default
//! `--max-tags` (32,768) are counted, not synced.

use dataservice_sync_sim::PollingMode;
use dataservice_sync_sim::dataservice::IPC_THREAD_NAME;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod common;
use common::BenchPeers;

#[derive(Clone, Debug)]
struct Run {
    tags: u32,
    changing: u32,
    interval: f64,
    delivery: &'static str,
    seconds: f64,
    new_tags_after: Option<f64>,
}

fn parse_args() -> Vec<Run> {
    let mut run = Run {
        tags: 1000,
        changing: 100,
        interval: 1.0,
        delivery: "bulk",
        seconds: 10.0,
        new_tags_after: None,
    };
    let mut matrix = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--tags" => run.tags = value().parse().unwrap_or(run.tags),
            "--changing" => run.changing = value().parse().unwrap_or(run.changing),
            "--interval" => run.interval = value().parse().unwrap_or(run.interval),
            "--seconds" => run.seconds = value().parse().unwrap_or(run.seconds),
            "--new-tags-after" => run.new_tags_after = value().parse().ok(),
            "--delivery" => run.delivery = if value() == "write" { "write" } else { "bulk" },
            "--matrix" => matrix = true,
            "--bench" => {}
            "--help" => {
                println!(
                    "sync [--matrix] [--tags N] [--changing PERCENT] [--interval S] [--delivery bulk|write] [--seconds S] [--new-tags-after S]"
                );
                std::process::exit(0);
            }
            other => eprintln!("ignoring {other}"),
        }
    }
    if !matrix {
        return vec![run];
    }
    let mut runs = Vec::new();
    for tags in [1000, 10_000, 50_000] {
        for changing in [10, 100] {
            for interval in [1.0, 0.1] {
                for delivery in ["bulk", "write"] {
                    runs.push(Run {
                        tags,
                        changing,
                        interval,
                        delivery,
                        seconds: run.seconds,
                        new_tags_after: None,
                    });
                }
            }
        }
    }
    runs
}

fn stat_of(line: &str, name: &str) -> String {
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or("-")
        .to_string()
}

/// `1.234s` (the log's spelling of a duration) as `1234`.
fn millis_of(duration: &str) -> String {
    duration
        .strip_suffix('s')
        .and_then(|seconds| seconds.parse::<f64>().ok())
        .map_or_else(
            || String::from("-"),
            |seconds| format!("{:.0}", seconds * 1000.0),
        )
}

fn bench(run: &Run) -> String {
    let devices = 10;
    let peers = BenchPeers::start("bench", devices, run.tags / devices, run.changing);
    let dataservice = &peers.dataservice;
    if run.new_tags_after.is_some() {
        let per_device = run.tags / devices;
        for d in 0..devices {
            dataservice
                .register_at(
                    &format!("Device-{d}.tag-{per_device}"),
                    "float",
                    200_000 + d,
                )
                .expect("register");
        }
    }
    let peers_cpu_at_spawn = common::sample("self").cpu;
    let mut child = peers
        .sync_command(run.interval)
        .args(["--delivery", run.delivery])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dataservice-sync");
    let last_line = Arc::new(Mutex::new(String::new()));
    let overruns = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("stderr");
    let keep = Arc::clone(&last_line);
    let seen_overruns = Arc::clone(&overruns);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("stopped: ") {
                *keep.lock().unwrap_or_else(|p| p.into_inner()) = line;
                continue;
            }
            if let Some(running_for) = overrun_running_for(&line) {
                seen_overruns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((Instant::now(), running_for));
            }
            if line.contains("WARN") || line.contains("error") {
                eprintln!("sync: {line}");
            }
        }
    });
    let pid = child.id().to_string();
    // Measure once every tag (up to the table's capacity) has been
    // delivered, so start-up and the first registry check are not counted.
    let spawned = Instant::now();
    let every_tag = (run.tags as usize).min(dataservice_sync::options::DEFAULT_MAX_TAGS);
    let mut first_delivered = None;
    let all_delivered = loop {
        let store = dataservice.store();
        if first_delivered.is_none() && store.applied > 0 {
            first_delivered = Some(spawned.elapsed());
        }
        let written = store.points().values().filter(|p| p.history > 0).count();
        drop(store);
        if written >= every_tag || spawned.elapsed() > Duration::from_secs(60) {
            break spawned.elapsed();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let sync_cpu_start = common::sample(&pid).cpu;
    let peers_cpu_start = common::sample("self").cpu;
    let ipc_cpu_start = common::thread_cpu(IPC_THREAD_NAME);
    let applied_start = dataservice.store().applied;
    let steal_trace = common::StealTrace::start();
    let started = Instant::now();
    match run.new_tags_after {
        Some(after) if after < run.seconds => {
            std::thread::sleep(Duration::from_secs_f64(after));
            peers.polling.set_mode(PollingMode::Generated {
                devices,
                tags: run.tags / devices + 1,
                changing_percent: run.changing,
            });
            std::thread::sleep(Duration::from_secs_f64(run.seconds - after));
        }
        _ => std::thread::sleep(Duration::from_secs_f64(run.seconds)),
    }
    let elapsed = started.elapsed().as_secs_f64();
    let applied = dataservice.store().applied - applied_start;
    let end = common::sample(&pid);
    let (sync_cpu_end, sync_hwm) = (end.cpu, end.peak_rss_kib);
    let peers_cpu_end = common::sample("self").cpu;
    let ipc_cpu = common::thread_cpu(IPC_THREAD_NAME) - ipc_cpu_start;
    let ended = Instant::now();
    let steal_samples = steal_trace.finish();
    let steal = steal_samples.ticks_between(started, ended).steal_percent();
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let _ = child.wait();
    let _ = reader.join();
    let line = last_line.lock().unwrap_or_else(|p| p.into_inner()).clone();
    drop(peers);
    let sync_cpu = sync_cpu_end - sync_cpu_start;
    // A cycle that overran ran from `running_for` before the tick that found
    // it running to about an interval after.
    let interval = Duration::from_secs_f64(run.interval);
    let overruns: Vec<(Instant, Instant)> = overruns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(at, _)| *at >= started && *at <= ended)
        .map(|(at, running_for)| (*at - *running_for, *at + interval))
        .collect();
    let overrun_steal = (!overruns.is_empty()).then(|| {
        let ticks = overruns
            .iter()
            .map(|(from, to)| steal_samples.ticks_between(*from, *to))
            .fold(common::MachineTicks::default(), common::MachineTicks::plus);
        format!("{:.0} %", ticks.steal_percent())
    });
    format!(
        "| {} | {} % | {} s | {} | {:.0} | {:.2} µs | {} | {} / {} / {} ms | {:.0} / {:.0} ms | {} ms | {:.0} / {:.0} ms | {} | {:.2} MiB | {:.2} s | {:.2} s | {:.2} µs | {:.0} % | {} |",
        run.tags,
        run.changing,
        run.interval,
        run.delivery,
        applied as f64 / elapsed,
        sync_cpu * 1e6 / applied.max(1) as f64,
        fetch_share(&line),
        stat_of(&line, "cycle_p50_ms"),
        stat_of(&line, "cycle_p99_ms"),
        stat_of(&line, "cycle_max_ms"),
        first_delivered.unwrap_or(all_delivered).as_secs_f64() * 1000.0,
        all_delivered.as_secs_f64() * 1000.0,
        millis_of(&stat_of(&line, "last_registry_check_duration")),
        sync_cpu_start * 1000.0,
        (peers_cpu_start - peers_cpu_at_spawn) * 1000.0,
        stat_of(&line, "cycles_overrun_total"),
        sync_hwm as f64 / 1024.0,
        sync_cpu,
        peers_cpu_end - peers_cpu_start,
        ipc_cpu * 1e6 / applied.max(1) as f64,
        steal,
        overrun_steal.as_deref().unwrap_or("-"),
    )
}

/// The share of the cycles' time spent fetching (the rest is delivery),
/// from the sync's last statistics line.
fn fetch_share(line: &str) -> String {
    let total = |name| stat_of(line, name).parse::<f64>().ok();
    match (
        total("fetch_duration_total_ms"),
        total("cycle_duration_total_ms"),
    ) {
        (Some(fetch), Some(cycles)) if cycles > 0.0 => format!("{:.0} %", fetch * 100.0 / cycles),
        _ => "-".into(),
    }
}

/// How long the previous cycle had run, from the sync's overrun warning
/// (`cycle overrun: previous cycle still running after 0.021s; …`).
fn overrun_running_for(line: &str) -> Option<Duration> {
    let after = line
        .split_once("cycle overrun: previous cycle still running after ")?
        .1;
    let seconds = after.split_once("s;")?.0.parse().ok()?;
    Some(Duration::from_secs_f64(seconds))
}

fn main() {
    let runs = parse_args();
    println!(
        "| tags | changing | interval | delivery | updates/s | sync CPU per update | fetch share of the cycles | cycle p50 / p99 / max | start to first / every tag delivered | registry check | CPU to every tag: sync / peers | overruns | sync peak RSS | sync CPU | peers' CPU | Data-Service double CPU per update | host steal | steal in overrunning cycles |"
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for run in &runs {
        println!("{}", bench(run));
    }
    if let Some(run) = runs.first() {
        println!(
            "(each row: {} s measured once every tag was delivered; \"start to\": from spawning the sync;\n\
             the registry check (reading /detailed, fetching the ids of every key) runs beside the cycles;\n\
             \"CPU to every tag\": CPU from the sync's start until every tag was delivered;\n\
             \"fetch share\": the cycles' time from the request to the polled body's end (the rest is delivery);\n\
             \"host steal\": the share of both cores' time the hypervisor gave to other guests;\n\
             \"steal in overrunning cycles\": the same share during the cycles that overran in the window\n\
             (/proc/stat read every 10 ms; a cycle that overran is taken from its start to an interval after the tick))",
            run.seconds
        );
    }
}
