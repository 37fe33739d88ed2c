//! The fault matrix: one test per fault, through the real binary. For each:
//! no crash, no hang past the configured timeouts, one clear log line, a
//! counter, and nothing accepted lost (the newest values arrive once the
//! fault is gone). The table in docs/fault-matrix.md lists them.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use dataservice_sync_sim::{PollingMode, SinkBehaviour, generated_value};
use nix::sys::signal::Signal;
use serde_json::Value;

use crate::harness::{SyncProcess, stat, temp_dir, wait_until};
use crate::{Peers, SECOND, peers};

const CHANGING: PollingMode = PollingMode::Generated {
    devices: 1,
    tags: 3,
    changing_percent: 100,
};

/// Peers whose Data-Service has the generated document's three keys.
fn changing(name: &str) -> Peers {
    let p = peers(name, CHANGING);
    for (tag, data_type) in ["int", "float", "bool"].iter().enumerate() {
        p.dataservice
            .register(&format!("Device-0.tag-{tag}"), data_type)
            .unwrap();
    }
    p
}

/// The Data-Service holds the values of a round at least as new as `round`.
fn has_round(p: &Peers, round: u64) -> bool {
    let values = p.dataservice.values();
    (0..3).all(|tag| {
        let want: Value = serde_json::from_str(&generated_value(tag, round)).unwrap();
        match (values.get(&format!("Device-0.tag-{tag}")), tag) {
            (Some(v), 0) => v.as_u64() >= want.as_u64(),
            (Some(_), _) => true,
            (None, _) => false,
        }
    })
}

/// After the fault: the newest round reaches the Data-Service; then stop.
fn recovers_and_stops(p: &Peers, sync: &mut SyncProcess) {
    let round = p.polling.requests();
    assert!(
        wait_until(20 * SECOND, || has_round(p, round)),
        "the newest values did not arrive after the fault; log:\n{}",
        sync.log()
    );
    let started = Instant::now();
    assert!(sync.terminate().success());
    assert!(started.elapsed() < 10 * SECOND);
}

/// After a Data-Service fault: the writes it broke were counted as failed,
/// and the newest values arrive.
fn sink_recovers_and_stops(p: &Peers, sync: &mut SyncProcess) {
    recovers_and_stops(p, sync);
    assert!(stat(&sync.final_stats(), "writes_failed_total") >= 1);
}

fn once(sync: &SyncProcess, line: &str) {
    sync.expect_log(line, 15 * SECOND);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sync.count(line), 1, "log:\n{}", sync.log());
}

// ---- the polling service ----

fn source_fault(name: &str, mode: PollingMode, line: &str, counter: &str, extra: &[&str]) {
    let p = changing(name);
    p.polling.set_mode(mode);
    let mut args = vec!["--interval", "0.1", "--dataservice-url", "off"];
    args.extend_from_slice(extra);
    let mut sync = p.start_sync(&args);
    once(&sync, line);
    p.polling.set_mode(CHANGING);
    recovers_and_stops(&p, &mut sync);
    assert!(stat(&sync.final_stats(), counter) >= 1);
}

#[test]
fn source_answers_404() {
    source_fault(
        "fault-404",
        PollingMode::Status(404),
        "source down: fetch failed: HTTP status 404",
        "source_errors_total",
        &[],
    );
}

#[test]
fn source_answers_malformed_json() {
    source_fault(
        "fault-malformed",
        PollingMode::Body(br#"{"Boiler-1": {"t": {"value": 1, "status": "ok"},,}}"#.to_vec()),
        "source down: document rejected, nothing applied: ",
        "documents_rejected_total",
        &[],
    );
}

#[test]
fn source_answers_a_truncated_body() {
    source_fault(
        "fault-truncated",
        PollingMode::Truncated(crate::harness::fixture("basic.json")),
        "source down: fetch failed: connection closed before the body ended",
        "source_errors_total",
        &[],
    );
}

#[test]
fn source_answers_50_mb() {
    let big = vec![b' '; 50 * 1024 * 1024];
    source_fault(
        "fault-50mb",
        PollingMode::Body(big),
        "source down: fetch failed: body larger than --max-body-bytes",
        "source_errors_total",
        &[],
    );
}

#[test]
fn source_answers_one_byte_per_second() {
    source_fault(
        "fault-trickle",
        PollingMode::Trickle(crate::harness::fixture("basic.json"), SECOND),
        "source down: fetch failed: timed out",
        "source_errors_total",
        &["--source-timeout", "1.5"],
    );
}

#[test]
fn source_refuses_connections() {
    let p = changing("fault-refused");
    let sync = SyncProcess::start(&[
        "--socket-path",
        &p.socket,
        "--source",
        "http://127.0.0.1:1/deploy/api/io/polled-values",
        "--interval",
        "0.1",
    ]);
    once(&sync, "source down: fetch failed: connection refused");
    let mut sync = sync;
    assert!(sync.terminate().success());
    assert!(stat(&sync.final_stats(), "source_errors_total") >= 3);
}

// ---- the Data-Service ----

/// The Data-Service's socket path holds something else (`squat` puts it
/// there); once it is gone and the socket is back, the values flow again.
fn socket_replaced(name: &str, squat: fn(&Path), line: &str) {
    let mut p = changing(name);
    p.dataservice.stop_ipc();
    squat(Path::new(&p.socket));
    let mut sync = p.start_sync(&["--interval", "0.1", "--dataservice-url", "off"]);
    once(&sync, line);
    std::fs::remove_file(&p.socket).unwrap();
    p.dataservice.resume_ipc().unwrap();
    sink_recovers_and_stops(&p, &mut sync);
}

#[test]
fn dataservice_socket_is_not_a_socket() {
    socket_replaced(
        "fault-notsock",
        |path| std::fs::write(path, b"a regular file").unwrap(),
        "sink down: path is not a socket",
    );
}

#[test]
fn dataservice_socket_refuses() {
    // A socket file nobody listens on.
    socket_replaced(
        "fault-refuses",
        |path| drop(std::os::unix::net::UnixListener::bind(path).unwrap()),
        "sink down: connection refused",
    );
}

#[test]
fn dataservice_socket_permission_denied() {
    let p = changing("fault-perm");
    std::fs::set_permissions(&p.socket, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root passes file permissions: run the sync as nobody then.
    let mut command = p.sync_command(&["--dataservice-url", "off", "--interval", "0.1"]);
    if nix::unistd::geteuid().is_root() {
        command.uid(65534).gid(65534);
    }
    let mut sync = SyncProcess::from_command(command);
    once(&sync, "sink down: permission denied");
    std::fs::set_permissions(&p.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    sink_recovers_and_stops(&p, &mut sync);
}

fn misbehaving_sink(name: &str, behaviour: SinkBehaviour, line: &str) {
    let p = changing(name);
    p.dataservice.set_behaviour(behaviour);
    let mut sync = p.start_sync(&[
        "--interval",
        "0.1",
        "--dataservice-url",
        "off",
        "--write-timeout",
        "0.5",
    ]);
    once(&sync, line);
    p.dataservice.set_behaviour(SinkBehaviour::Normal);
    sink_recovers_and_stops(&p, &mut sync);
}

#[test]
fn dataservice_answers_garbage() {
    misbehaving_sink(
        "fault-garbage",
        SinkBehaviour::Garbage,
        "sink down: answer is not a valid response line",
    );
}

#[test]
fn dataservice_answers_a_1_mb_line() {
    misbehaving_sink(
        "fault-huge",
        SinkBehaviour::HugeLine,
        "sink down: answer is not a valid response line",
    );
}

#[test]
fn dataservice_closes_early() {
    misbehaving_sink(
        "fault-close",
        SinkBehaviour::CloseEarly,
        "sink down: closed without answering",
    );
}

#[test]
fn dataservice_accepts_and_never_answers() {
    misbehaving_sink(
        "fault-frozen",
        SinkBehaviour::Frozen,
        "sink down: no answer within the write timeout",
    );
}

#[test]
fn dataservice_is_slow() {
    let p = changing("fault-slow");
    p.dataservice.set_behaviour(SinkBehaviour::SlowMillis(300));
    let mut sync = p.start_sync(&[
        "--interval",
        "0.1",
        "--dataservice-url",
        "off",
        "--write-timeout",
        "2",
    ]);
    // Slow is not down: cycles overrun, values keep arriving, no failure.
    once(&sync, "cycle overrun");
    p.dataservice.set_behaviour(SinkBehaviour::Normal);
    recovers_and_stops(&p, &mut sync);
    let stats = sync.final_stats();
    assert!(stat(&stats, "cycles_overrun_total") >= 1);
    assert_eq!(stat(&stats, "writes_failed_total"), 0);
}

// ---- signals and limits ----

#[test]
fn twenty_sighups_in_a_second_each_reload_and_lose_nothing() {
    let p = changing("fault-sighup");
    let file = temp_dir("fault-sighup").join("sync.toml");
    std::fs::write(&file, "interval = 0.05\n").unwrap();
    let mut sync = p.start_sync(&[
        "--config",
        &file.display().to_string(),
        "--dataservice-url",
        "off",
    ]);
    assert!(p.wait_requests(10, 10 * SECOND));
    for _ in 0..20 {
        sync.signal(Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(50));
    }
    // A SIGHUP that arrives while another is still pending merges with it
    // (POSIX), so a slow machine may see fewer than 20: each one that is
    // delivered is one reload, counted and logged.
    sync.expect_log("configuration reloaded from", 10 * SECOND);
    std::thread::sleep(2 * SECOND);
    let reloads = sync.count("configuration reloaded from");
    assert!((1..=20).contains(&reloads), "{reloads} reloads");
    recovers_and_stops(&p, &mut sync);
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "config_reloads_total"), reloads as u64);
    assert_eq!(stat(&stats, "writes_failed_total"), 0);
    // Every round of tag-0 once, in order.
    let rounds: Vec<u64> = crate::harness::writes(&p.requests())
        .iter()
        .filter(|(k, _)| k == "Device-0.tag-0")
        .map(|(_, v)| v.as_u64().unwrap() / 10)
        .collect();
    assert_eq!(rounds, (1..=rounds.len() as u64).collect::<Vec<_>>());
}

#[test]
fn a_limit_of_32_file_descriptors_is_enough() {
    let p = changing("fault-fds");
    let mut command = p.sync_command(&[
        "--interval",
        "0.05",
        "--delivery",
        "write",
        "--max-connections",
        "16",
        "--status-listen",
        "127.0.0.1:0",
    ]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 32, 32)
                .map_err(std::io::Error::from)
        });
    }
    let mut sync = SyncProcess::from_command(command);
    assert!(p.wait_requests(60, 10 * SECOND), "log:\n{}", sync.log());
    recovers_and_stops(&p, &mut sync);
    assert!(
        !sync.log().contains("Too many open files"),
        "log:\n{}",
        sync.log()
    );
}

#[test]
fn overrunning_cycles_are_one_line_when_they_start_and_one_when_they_stop() {
    let p = changing("fault-overrun-episode");
    p.dataservice.set_behaviour(SinkBehaviour::SlowMillis(300));
    let mut sync = p.start_sync(&["--interval", "0.1", "--dataservice-url", "off"]);
    sync.expect_log("cycle overrun: ", 15 * SECOND);
    // Several cycles of 300 ms writes, each overrunning.
    assert!(wait_until(15 * SECOND, || p.requests().len() >= 12));
    p.dataservice.set_behaviour(SinkBehaviour::Normal);
    sync.expect_log("cycles fit the interval again after ", 15 * SECOND);
    assert!(sync.terminate().success());
    assert_eq!(sync.count("cycle overrun: "), 1, "{}", sync.log());
    assert_eq!(sync.count("cycles fit the interval again"), 1);
    let overruns = stat(&sync.final_stats(), "cycles_overrun_total");
    assert!(overruns >= 3, "{overruns}");
    assert_eq!(
        sync.count(&format!(
            "cycles fit the interval again after {overruns} overrun ticks"
        )),
        1,
        "{}",
        sync.log()
    );
}

#[test]
fn fifty_unregistered_keys_are_named_or_summed_up_and_no_state_change_is_lost() {
    let tags: Vec<String> = (0..50)
        .map(|i| format!(r#""t{i}": {{"value": {i}, "status": "ok"}}"#))
        .collect();
    let doc = format!(r#"{{"d": {{{}}}}}"#, tags.join(", "));
    let p = peers(
        "fault-fifty-unregistered",
        PollingMode::Body(doc.into_bytes()),
    );
    let mut sync = p.start_sync(&["--interval", "3600"]);
    assert!(p.wait_requests(50, 10 * SECOND), "{}", sync.log());
    sync.expect_log("and ", 10 * SECOND);
    assert!(sync.terminate().success());
    let named = sync.count("key not registered in the Data-Service");
    let summed_up = 50 - named;
    assert_eq!(
        sync.count(&format!(
            "and {summed_up} more keys not registered in the Data-Service: see /api/tags"
        )),
        1,
        "{}",
        sync.log()
    );
    assert!(named >= 20, "{named}");
    // The state changes of the start all came.
    for line in ["source up: ", "Data-Service HTTP API up", "sink up: "] {
        assert_eq!(sync.count(line), 1, "{line}\n{}", sync.log());
    }
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "unregistered"), 50);
    assert_eq!(stat(&stats, "events_dropped_total"), summed_up as u64);
}
