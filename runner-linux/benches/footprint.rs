//! Footprint benchmark: the real binary (release profile) syncing generated
//! tags against the simulated peers for a while; prints delivered updates,
//! the sync's CPU time and peak RSS, and the peers' own CPU time, measured
//! side by side in one run.
//!
//! `cargo bench --bench footprint -- [--devices 10] [--tags 100] [--interval 1.0] [--seconds 60]`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataservice_sync::sim::{DataServiceDouble, PollingDouble, PollingMode};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, SysconfVar, sysconf};

struct Args {
    devices: u32,
    tags: u32,
    interval: f64,
    seconds: f64,
}

fn parse_args() -> Args {
    let mut args = Args {
        devices: 10,
        tags: 100,
        interval: 1.0,
        seconds: 60.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--devices" => args.devices = value().parse().unwrap_or(args.devices),
            "--tags" => args.tags = value().parse().unwrap_or(args.tags),
            "--interval" => args.interval = value().parse().unwrap_or(args.interval),
            "--seconds" => args.seconds = value().parse().unwrap_or(args.seconds),
            "--bench" => {}
            "--help" => {
                println!("footprint [--devices N] [--tags N] [--interval S] [--seconds S]");
                std::process::exit(0);
            }
            other => eprintln!("ignoring {other}"),
        }
    }
    args
}

/// (user + system CPU seconds, peak RSS KiB) of a process.
fn usage(pid: &str) -> (f64, u64) {
    let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let cpu = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>() / ticks
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

fn main() {
    let args = parse_args();
    let dir = std::env::temp_dir().join(format!("dss-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("dataservice.sock");
    let dataservice = DataServiceDouble::start(&socket).expect("data-service double");
    for d in 0..args.devices {
        for t in 0..args.tags {
            let data_type = ["int", "float", "bool"][(t % 3) as usize];
            dataservice
                .register(&format!("Device-{d}.tag-{t}"), data_type)
                .expect("register");
        }
    }
    let polling = PollingDouble::tcp(
        "127.0.0.1:0",
        PollingMode::Generated {
            devices: args.devices,
            tags: args.tags,
            changing_percent: 100,
        },
    )
    .expect("polling double");
    let (peers_cpu_before, _) = usage("self");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dataservice-sync"))
        .args(["--socket-path", socket.to_str().unwrap_or_default()])
        .args(["--source", &polling.url()])
        .args(["--interval", &args.interval.to_string()])
        .args(["--stats-interval", "0"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dataservice-sync");
    let pid = child.id().to_string();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let elapsed = started.elapsed().as_secs_f64();
    let (sync_cpu, sync_hwm) = usage(&pid);
    let (peers_cpu_after, _) = usage("self");
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let _ = child.wait();
    let delivered = dataservice.store().answered;
    let tags = u64::from(args.devices * args.tags);
    println!(
        "| tags | interval | run | cycles | updates delivered | updates/s | sync CPU | sync CPU per update | sync peak RSS | peers' CPU |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {tags} | {:.1} s | {elapsed:.1} s | {} | {delivered} | {:.0} | {sync_cpu:.2} s | {:.1} µs | {:.2} MiB | {:.2} s |",
        args.interval,
        polling.requests(),
        delivered as f64 / elapsed,
        sync_cpu * 1e6 / delivered.max(1) as f64,
        sync_hwm as f64 / 1024.0,
        peers_cpu_after - peers_cpu_before,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
