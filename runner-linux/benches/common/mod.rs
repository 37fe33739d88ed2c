// Each benchmark uses a part of this module.
#![allow(dead_code)]

//! What the benchmarks share: the simulated peers with registered keys,
//! the binary under test, and /proc readings of a process.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataservice_sync_sim::{DataServiceDouble, PollingDouble, PollingMode};
use nix::unistd::{SysconfVar, sysconf};

/// The simulated peers: `devices` × `per_device` generated tags, every key
/// registered at an explicit address (the automatic ranges hold 1,000 per
/// type), and the temporary directory they live in.
pub struct BenchPeers {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub dataservice: DataServiceDouble,
    pub polling: PollingDouble,
}

impl BenchPeers {
    pub fn start(name: &str, devices: u32, per_device: u32, changing_percent: u32) -> Self {
        let dir = std::env::temp_dir().join(format!("dss-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("dataservice.sock");
        let dataservice = DataServiceDouble::start(&socket).expect("data-service double");
        for d in 0..devices {
            for t in 0..per_device {
                let data_type = ["int", "float", "bool"][(t % 3) as usize];
                let address = 100_000 + d * per_device + t;
                dataservice
                    .register_at(&format!("Device-{d}.tag-{t}"), data_type, address)
                    .expect("register");
            }
        }
        let polling = PollingDouble::tcp(
            "127.0.0.1:0",
            PollingMode::Generated {
                devices,
                tags: per_device,
                changing_percent,
            },
        )
        .expect("polling double");
        BenchPeers {
            dir,
            socket,
            dataservice,
            polling,
        }
    }

    /// The binary under test, pointed at these peers, syncing every
    /// `interval` seconds, without statistics lines; stdin and stdout null.
    pub fn sync_command(&self, interval: f64) -> Command {
        let mut command = Command::new(binary());
        command
            .args(self.sync_args(interval))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        command
    }

    /// The options of [`BenchPeers::sync_command`], for a command that runs
    /// the binary under another program.
    pub fn sync_args(&self, interval: f64) -> Vec<String> {
        [
            "--socket-path",
            self.socket.to_str().unwrap_or_default(),
            "--source",
            &self.polling.url(),
            "--dataservice-url",
            &self.dataservice.http_url(),
            "--interval",
            &interval.to_string(),
            "--stats-interval",
            "0",
        ]
        .map(String::from)
        .to_vec()
    }
}

impl Drop for BenchPeers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The binary to measure: this build's, or `DSS_BENCH_BIN` (e.g. a build of
/// another commit or `--profile profiling`).
pub fn binary() -> String {
    std::env::var("DSS_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_dataservice-sync").to_string())
}

/// A process's CPU time (user + system, seconds), RSS and peak RSS (KiB),
/// and open file descriptors.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    pub cpu: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub fds: usize,
}

/// User + system CPU seconds in a `/proc/.../stat` file.
fn stat_cpu(path: &str) -> f64 {
    let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // After the parenthesised command name, utime and stime are fields 12 and 13.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum::<f64>() / ticks
    })
}

/// CPU seconds of this process's live threads named `name`.
pub fn thread_cpu(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|task| stat_cpu(&task.path().join("stat").to_string_lossy()))
        .sum()
}

pub fn sample(pid: &str) -> ProcSample {
    let cpu = stat_cpu(&format!("/proc/{pid}/stat"));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    ProcSample {
        cpu,
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
    }
}

/// The machine's CPU ticks so far (all cores, from `/proc/stat`): those
/// the hypervisor gave to other guests (`steal`), and all of them.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineTicks {
    pub steal: u64,
    pub total: u64,
}

pub fn machine_ticks() -> MachineTicks {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // cpu user nice system idle iowait irq softirq steal guest guest_nice;
    // guest time is counted in user already.
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    MachineTicks {
        steal: fields.get(7).copied().unwrap_or(0),
        total: fields.iter().take(8).sum(),
    }
}

impl MachineTicks {
    /// The ticks from the `earlier` reading to this one.
    pub fn since(self, earlier: MachineTicks) -> MachineTicks {
        MachineTicks {
            steal: self.steal.saturating_sub(earlier.steal),
            total: self.total.saturating_sub(earlier.total),
        }
    }

    /// Two spans' ticks together.
    pub fn plus(self, other: MachineTicks) -> MachineTicks {
        MachineTicks {
            steal: self.steal + other.steal,
            total: self.total + other.total,
        }
    }

    /// The share of a span's ticks the hypervisor took, in percent.
    pub fn steal_percent(self) -> f64 {
        self.steal as f64 * 100.0 / self.total.max(1) as f64
    }
}

/// The machine's CPU ticks, read every 10 ms on a thread: a run's share
/// of steal hides a burst (40 ms taken once in 60 s is 0.03 %), and a
/// burst of tens of milliseconds is enough to push a cycle past its interval.
pub struct StealTrace {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Instant, MachineTicks)>>,
}

impl StealTrace {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        // The first reading is taken now, so a span from now on is covered.
        let first = (Instant::now(), machine_ticks());
        let thread = std::thread::spawn(move || {
            let mut samples = vec![first];
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                samples.push((Instant::now(), machine_ticks()));
            }
            samples.push((Instant::now(), machine_ticks()));
            samples
        });
        StealTrace { stop, thread }
    }

    pub fn finish(self) -> StealSamples {
        self.stop.store(true, Ordering::Relaxed);
        StealSamples(self.thread.join().unwrap_or_default())
    }
}

/// Machine tick readings in time order.
pub struct StealSamples(Vec<(Instant, MachineTicks)>);

impl StealSamples {
    /// The ticks from the last reading at or before `from` to the first at
    /// or after `to` (none when the readings do not cover both).
    pub fn ticks_between(&self, from: Instant, to: Instant) -> MachineTicks {
        let before = self.0.iter().rev().find(|(at, _)| *at <= from);
        let after = self.0.iter().find(|(at, _)| *at >= to);
        match (before, after) {
            (Some((_, earlier)), Some((_, later))) => later.since(*earlier),
            _ => MachineTicks::default(),
        }
    }
}
