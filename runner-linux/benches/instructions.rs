//! User-space instructions per polled tag and per delivered update of the
//! sync binary against the simulated peers, counted by callgrind: counts
//! are the same from run to run where time on a shared VM is not.
//!
//! 10,000 tags in 10 devices, 1,000 of them failed reads; all good tags, or
//! 10 % of them, change every cycle. Each case runs the sync twice, for a
//! few cycles and for more, and takes the difference: start-up, the first
//! cycle (registry check, every tag new) and the exit cancel out. The
//! stages are callgrind's own cost of the functions of each part of the
//! code (after inlining, a function's cost is where the compiler put it).
//! On the same document, in the same run, serde_json (`IgnoredAny`) and
//! simd-json (its tape) validate it, so the ratio is printed.
//!
//! ```sh
//! apt-get install valgrind
//! cargo build --profile profiling -p dataservice-sync
//! DSS_BENCH_BIN=target/profiling/dataservice-sync cargo bench --bench instructions
//! ```
//!
//! The profiling build is the release build with symbols (the stages need
//! them); the release build gives the same totals and no stages.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataservice_sync_sim::PollingMode;
use dataservice_sync_sim::polling::generated_document_with_failures;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod common;
use common::BenchPeers;

const DEVICES: u32 = 10;
/// Every tenth tag of a device is a failed read.
const FAILED_EVERY: u32 = 10;

struct Settings {
    tags: u32,
    /// Cycles of the short and the long run; the short one at least 2, so
    /// that the first cycle's catch-up (every tag new) is over in both.
    cycles: (u64, u64),
    /// Seconds between cycles: long enough for a cycle under callgrind, so
    /// that the sync is idle when it is stopped.
    interval: f64,
    /// The costliest functions listed.
    top: usize,
}

fn parse_args() -> Settings {
    let mut settings = Settings {
        tags: 10_000,
        cycles: (2, 5),
        interval: 6.0,
        top: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        match flag.as_str() {
            "--tags" => settings.tags = value().parse().unwrap_or(settings.tags),
            "--interval" => settings.interval = value().parse().unwrap_or(settings.interval),
            "--top" => settings.top = value().parse().unwrap_or(settings.top),
            "--cycles" => {
                let text = value();
                if let Some((short, long)) = text.split_once(',')
                    && let (Ok(short), Ok(long)) = (short.parse(), long.parse())
                    && 2 <= short
                    && short < long
                {
                    settings.cycles = (short, long);
                }
            }
            "--bench" => {}
            "--help" => {
                println!("instructions [--tags N] [--cycles SHORT,LONG] [--interval S] [--top N]");
                std::process::exit(0);
            }
            other => eprintln!("ignoring {other}"),
        }
    }
    settings
}

/// The polled document of `round`: tags of `per_device` in each device,
/// every tenth a failed Modbus read, `changing_percent` of the good ones
/// with a new value.
fn document(per_device: u32, changing_percent: u32, round: u64) -> Vec<u8> {
    generated_document_with_failures(
        DEVICES,
        per_device,
        changing_percent,
        Some(FAILED_EVERY),
        round,
    )
}

/// What one callgrind run of the sync counted.
struct Count {
    total: u64,
    functions: BTreeMap<String, u64>,
    polled: u64,
    delivered: u64,
    cycles: u64,
}

/// The parts of the code, by the paths of their functions; the first
/// that matches takes a function.
const STAGES: &[(&str, &[&str])] = &[
    ("tokenizer (wire::json)", &["wire::json"]),
    ("polled document (wire::polled)", &["wire::polled"]),
    (
        "reading, key, value, rules",
        &["::reading", "::key::", "::value::", "::rules"],
    ),
    ("staging", &["::staging"]),
    ("tag table", &["::table"]),
    ("backlog", &["::backlog"]),
    (
        "IPC requests and answers (wire::ipc)",
        &["wire::ipc", "wire::list"],
    ),
    ("engine", &["dataservice_sync_core::engine"]),
    ("other core", &["dataservice_sync_core"]),
    ("number formatting (ryu, fmt)", &["ryu::", "core::fmt"]),
    ("runner (I/O, HTTP)", &["dataservice_sync::"]),
    (
        "memory (memcpy, memset, memmove)",
        &["memcpy", "memset", "memmove", "memcmp", "bcmp"],
    ),
];
const OTHER: &str = "other";

fn stage_of(function: &str) -> &'static str {
    STAGES
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| function.contains(p)))
        .map_or(OTHER, |(name, _)| name)
}

/// Each function's own cost, from callgrind_annotate.
fn self_costs(out_file: &Path) -> BTreeMap<String, u64> {
    let output = Command::new("callgrind_annotate")
        .args(["--inclusive=no", "--threshold=100", "--auto=no"])
        .arg(out_file)
        .output()
        .expect("callgrind_annotate (apt-get install valgrind)");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut costs = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        // `(12.3%)  file:function [object]`: the function, without the
        // file and the object.
        let Some((_, function)) = rest.split_once(':') else {
            continue;
        };
        let function = function.rsplit_once(" [").map_or(function, |(f, _)| f);
        *costs.entry(function.to_owned()).or_insert(0) += count;
    }
    costs
}

/// What `long` counted beyond `short`, function by function.
fn difference(long: &Count, short: &Count) -> BTreeMap<String, u64> {
    long.functions
        .iter()
        .map(|(function, count)| {
            let before = short.functions.get(function).copied().unwrap_or(0);
            (function.clone(), count.saturating_sub(before))
        })
        .collect()
}

fn by_stage(functions: &BTreeMap<String, u64>) -> BTreeMap<&'static str, u64> {
    let mut stages = BTreeMap::new();
    for (function, count) in functions {
        *stages.entry(stage_of(function)).or_insert(0) += count;
    }
    stages
}

/// A counter of the sync's last log line (`stopped: … name=value …`).
fn counter(line: &str, name: &str) -> u64 {
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

fn total_of(out_file: &Path) -> u64 {
    let text = std::fs::read_to_string(out_file).expect("callgrind output");
    text.lines()
        .find_map(|line| line.strip_prefix("summary: "))
        .or_else(|| text.lines().find_map(|line| line.strip_prefix("totals: ")))
        .and_then(|value| value.trim().parse().ok())
        .expect("callgrind summary line")
}

/// Runs the sync under callgrind for `cycles` cycles against `bodies`.
fn run_sync(settings: &Settings, bodies: &[Vec<u8>], cycles: u64, name: &str) -> Count {
    let per_device = settings.tags / DEVICES;
    let peers = BenchPeers::start(name, DEVICES, per_device, 100);
    peers.polling.set_mode(PollingMode::Cycle(bodies.to_vec()));
    let out_file = peers.dir.join("callgrind.out");
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(common::binary())
        .args(peers.sync_args(settings.interval))
        .args(["--status-listen", "off"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("valgrind (apt-get install valgrind)");
    let limit = Instant::now() + Duration::from_secs_f64(settings.interval * (cycles as f64 + 4.0));
    while peers.polling.requests() < cycles {
        assert!(
            Instant::now() < limit,
            "the sync did not reach {cycles} cycles"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The last cycle ends when the Data-Service has heard nothing for a
    // while; the next tick is an interval after the last one.
    let mut heard = peers.dataservice.store().request_lines().len();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(100));
        let now_heard = peers.dataservice.store().request_lines().len();
        if now_heard != heard {
            heard = now_heard;
            quiet_since = Instant::now();
        }
    }
    assert_eq!(
        peers.polling.requests(),
        cycles,
        "a cycle under callgrind takes longer than --interval {}: raise it",
        settings.interval
    );
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    let mut log = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut log);
    }
    let status = child.wait().expect("valgrind exit");
    assert!(status.success(), "sync under valgrind: {status}\n{log}");
    let last = log
        .lines()
        .find(|line| line.contains("stopped: "))
        .unwrap_or_else(|| panic!("no 'stopped:' line in\n{log}"));
    Count {
        total: total_of(&out_file),
        functions: self_costs(&out_file),
        polled: counter(last, "reads_good_total") + counter(last, "reads_failed_total"),
        delivered: counter(last, "writes_ok_total"),
        cycles: counter(last, "sync_cycles_total"),
    }
}

/// Instructions of this benchmark validating `file` `times` times with
/// `library` (the helper run under callgrind).
fn validate_count(library: &str, file: &Path, times: u32) -> u64 {
    let dir = file.parent().unwrap_or(Path::new("."));
    let out_file = dir.join(format!("callgrind.{library}.{times}.out"));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(std::env::current_exe().expect("this benchmark"))
        .args(["--validate", library])
        .arg(file)
        .arg(times.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("valgrind");
    assert!(status.success(), "{library} validation: {status}");
    total_of(&out_file)
}

/// The helper: validates the document in `file` `times` times.
fn validate(library: &str, file: &str, times: u32) {
    let document = std::fs::read(file).expect("document");
    for _ in 0..times {
        match library {
            "serde_json" => {
                let parsed: Result<serde::de::IgnoredAny, _> = serde_json::from_slice(&document);
                assert!(parsed.is_ok(), "serde_json refused the document");
            }
            "simd-json" => {
                let mut copy = document.clone();
                assert!(
                    simd_json::to_tape(&mut copy).is_ok(),
                    "simd-json refused the document"
                );
            }
            other => panic!("unknown library {other}"),
        }
    }
}

fn per(count: u64, of: u64) -> String {
    if of == 0 {
        return "-".into();
    }
    format!("{:.0}", count as f64 / of as f64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--validate") {
        let library = args.get(at + 1).map_or("", String::as_str);
        let file = args.get(at + 2).map_or("", String::as_str);
        let times = args.get(at + 3).and_then(|t| t.parse().ok()).unwrap_or(1);
        validate(library, file, times);
        return;
    }
    let settings = parse_args();
    let per_device = settings.tags / DEVICES;
    let tags = u64::from(per_device * DEVICES);
    let (short, long) = settings.cycles;
    println!(
        "{tags} tags in {DEVICES} devices ({} failed reads), {short} and {long} cycles every {} s, \
         binary {}",
        tags / u64::from(FAILED_EVERY),
        settings.interval,
        common::binary()
    );
    let mut rows = Vec::new();
    let mut stage_rows: Vec<(u32, BTreeMap<&'static str, u64>, u64)> = Vec::new();
    let mut top_rows: Vec<String> = Vec::new();
    for changing in [100, 10] {
        let bodies: Vec<Vec<u8>> = (1..=long + 3)
            .map(|round| document(per_device, changing, round))
            .collect();
        let a = run_sync(&settings, &bodies, short, &format!("instr-{changing}-a"));
        let b = run_sync(&settings, &bodies, long, &format!("instr-{changing}-b"));
        assert_eq!((a.cycles, b.cycles), (short, long), "cycles counted");
        let more = |long: u64, short: u64, what: &str| {
            long.checked_sub(short)
                .unwrap_or_else(|| panic!("the long run counted fewer {what} than the short one"))
        };
        let instructions = more(b.total, a.total, "instructions");
        let polled = more(b.polled, a.polled, "polled tags");
        let delivered = more(b.delivered, a.delivered, "delivered updates");
        rows.push(format!(
            "| {changing} % | {} | {} | {} | {} | {} |",
            per(instructions, long - short),
            polled / (long - short),
            delivered / (long - short),
            per(instructions, polled),
            per(instructions, delivered),
        ));
        let functions = difference(&b, &a);
        let stages = by_stage(&functions);
        if changing == 100 {
            let mut top: Vec<(&String, &u64)> = functions.iter().collect();
            top.sort_by(|x, y| y.1.cmp(x.1));
            top_rows = top
                .into_iter()
                .take(settings.top)
                .map(|(function, count)| format!("| {} | `{function}` |", per(*count, polled)))
                .collect();
        }
        stage_rows.push((changing, stages, polled));
    }
    println!();
    println!(
        "| changing | instructions per cycle | polled tags per cycle | delivered updates per cycle | per polled tag | per delivered update |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in &rows {
        println!("{row}");
    }

    println!();
    println!("| stage | per polled tag, 100 % changing | per polled tag, 10 % changing |");
    println!("| --- | --- | --- |");
    let names = STAGES.iter().map(|(name, _)| *name).chain([OTHER]);
    for name in names {
        let cell = |i: usize| {
            let (_, stages, polled) = &stage_rows[i];
            per(stages.get(name).copied().unwrap_or(0), *polled)
        };
        println!("| {name} | {} | {} |", cell(0), cell(1));
    }

    if !top_rows.is_empty() {
        println!();
        println!("| per polled tag, 100 % changing | function (its own cost) |");
        println!("| --- | --- |");
        for row in &top_rows {
            println!("{row}");
        }
    }

    let dir = std::env::temp_dir().join(format!("dss-instr-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file: PathBuf = dir.join("document.json");
    std::fs::write(&file, document(per_device, 100, 2)).expect("document");
    println!();
    println!("| the same document, validated by | instructions per tag |");
    println!("| --- | --- |");
    for library in ["serde_json", "simd-json"] {
        let once = validate_count(library, &file, 1);
        let six = validate_count(library, &file, 6);
        let five = six
            .checked_sub(once)
            .unwrap_or_else(|| panic!("{library}: six validations counted fewer than one"));
        println!("| {library} | {} |", per(five, 5 * tags));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
