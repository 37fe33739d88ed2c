//! Benchmark of one long JSON string in a polled document: the real binary
//! against the polling double, for bodies of growing size. Prints the
//! sync's CPU time to apply the document (which should grow linearly with
//! the body) and the longest wait for an answer of its status server
//! meanwhile (which should stay small whatever the size).
//!
//! ```text
//! cargo bench --bench long_string -- [--sizes 3,6,12,24,48]
//! ```
//! `DSS_BENCH_BIN=path` measures another build, for side-by-side figures.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dataservice_sync_sim::{DataServiceDouble, PollingDouble, PollingMode};

mod common;
use common::{binary, sample};

/// A document of one tag whose value is a string of `megabytes` MB, and
/// one normal tag.
fn document(megabytes: usize) -> Vec<u8> {
    let mut body = br#"{"d": {"long": {"value": ""#.to_vec();
    body.resize(body.len() + megabytes * 1_000_000, b'x');
    body.extend_from_slice(br#"", "status": "ok"}, "t": {"value": 1, "status": "ok"}}}"#);
    body
}

/// Asks `GET /health` and returns how long the answer took.
fn health_time(port: u16) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    Some(started.elapsed())
}

fn run(megabytes: usize, port: u16) -> String {
    let dir = std::env::temp_dir().join(format!("dss-long-{}-{megabytes}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let socket = dir.join("dataservice.sock");
    let dataservice = DataServiceDouble::start(&socket).expect("data-service double");
    let polling =
        PollingDouble::tcp("127.0.0.1:0", PollingMode::Body(document(megabytes))).expect("polling");
    let mut child = std::process::Command::new(binary())
        .args(["--socket-path", socket.to_str().unwrap_or_default()])
        .args(["--source", &polling.url()])
        .args(["--dataservice-url", "off"])
        .args(["--interval", "3600", "--stats-interval", "0"])
        .args([
            "--max-body-bytes",
            &(megabytes * 1_000_000 + 4096).to_string(),
        ])
        .args(["--source-timeout", "60"])
        .args(["--status-listen", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the sync");
    let pid = child.id().to_string();
    // Wait for the status server.
    let until = Instant::now() + Duration::from_secs(10);
    while health_time(port).is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            while !done.load(Ordering::SeqCst) {
                if let Some(took) = health_time(port) {
                    worst = worst.max(took);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            worst
        })
    };
    let started = Instant::now();
    let until = started + Duration::from_secs(120);
    while dataservice.requests().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    let cycle = started.elapsed();
    let cpu = sample(&pid).cpu;
    done.store(true, Ordering::SeqCst);
    let worst = watcher.join().unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    format!(
        "| {megabytes} MB | {cpu:.2} s | {:.0} ms | {:.0} ms |",
        cycle.as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0
    )
}

fn main() {
    let mut sizes = vec![3, 6, 12, 24, 48];
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--sizes" => {
                sizes = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|s| s.parse().ok())
                    .collect();
            }
            "--bench" => {}
            other => eprintln!("ignoring {other}"),
        }
    }
    println!("binary: {}", binary());
    println!(
        "| body | sync CPU (start to first write) | first write after | slowest /health meanwhile |"
    );
    println!("| --- | --- | --- | --- |");
    for (i, megabytes) in sizes.into_iter().enumerate() {
        println!("{}", run(megabytes, 19_310 + i as u16));
    }
}
