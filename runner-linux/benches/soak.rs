//! Soak: the release binary against the simulated peers for a long run
//! (default 10 minutes, 10,000 tags all changing every 100 ms, bulk), with
//! RSS, open file descriptors and CPU time sampled every minute. Flat
//! figures from the first sample to the last mean no leak.
//!
//! ```text
//! cargo bench --bench soak -- [--minutes 10] [--tags 10000] [--interval 0.1]
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataservice_sync::sim::{DataServiceDouble, PollingDouble, PollingMode};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, SysconfVar, sysconf};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (CPU seconds, RSS KiB, open fds) of `pid`.
fn sample(pid: u32) -> (f64, u64, usize) {
    let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let cpu = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>() / ticks
    });
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (cpu, rss, fds)
}

fn main() {
    let minutes = arg("--minutes", 10.0);
    let tags = arg("--tags", 10_000.0) as u32;
    let interval = arg("--interval", 0.1);
    let devices = 10;
    let per_device = tags / devices;
    let dir = std::env::temp_dir().join(format!("dss-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("dataservice.sock");
    let dataservice = DataServiceDouble::start(&socket).expect("data-service double");
    for d in 0..devices {
        for t in 0..per_device {
            let data_type = ["int", "float", "bool"][(t % 3) as usize];
            dataservice
                .register_at(&format!("Device-{d}.tag-{t}"), data_type, 100_000 + d * per_device + t)
                .expect("register");
        }
    }
    let polling = PollingDouble::tcp(
        "127.0.0.1:0",
        PollingMode::Generated {
            devices,
            tags: per_device,
            changing_percent: 100,
        },
    )
    .expect("polling double");
    let binary = std::env::var("DSS_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_dataservice-sync").to_string());
    let mut child = Command::new(binary)
        .args(["--socket-path", socket.to_str().unwrap_or_default()])
        .args(["--source", &polling.url()])
        .args(["--dataservice-url", &dataservice.http_url()])
        .args(["--interval", &interval.to_string()])
        .args(["--stats-interval", "0", "--status-listen", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dataservice-sync");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "soak: {tags} tags, all changing, every {interval} s, bulk, {minutes} min (after a 10 s warm-up)"
    );
    println!("| minute | sync RSS | open fds | sync CPU | updates applied |");
    println!("| --- | --- | --- | --- | --- |");
    let started = Instant::now();
    let applied_start = dataservice.store().applied;
    let first = sample(pid);
    let print = |minute: f64, s: (f64, u64, usize), applied: u64| {
        println!(
            "| {minute:.0} | {:.2} MiB | {} | {:.1} s | {applied} |",
            s.1 as f64 / 1024.0,
            s.2,
            s.0 - first.0
        );
    };
    print(0.0, first, 0);
    let mut last = first;
    for minute in 1..=minutes.ceil() as u64 {
        let due = Duration::from_secs_f64(minute as f64 * 60.0).min(Duration::from_secs_f64(minutes * 60.0));
        std::thread::sleep(due.saturating_sub(started.elapsed()));
        last = sample(pid);
        print(minute as f64, last, dataservice.store().applied - applied_start);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let applied = dataservice.store().applied - applied_start;
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let status = child.wait();
    println!(
        "start -> end: RSS {:.2} -> {:.2} MiB, fds {} -> {}, CPU {:.1} s for {} updates ({:.0}/s, {:.2} µs each); exit {:?}",
        first.1 as f64 / 1024.0,
        last.1 as f64 / 1024.0,
        first.2,
        last.2,
        last.0 - first.0,
        applied,
        applied as f64 / elapsed,
        (last.0 - first.0) * 1e6 / applied.max(1) as f64,
        status.map(|s| s.code())
    );
    drop(polling);
    drop(dataservice);
    let _ = std::fs::remove_dir_all(&dir);
}
