//! The status server of a running sync: metrics (checked by Prometheus'
//! own parser), health, the stats and tags API, its bounds, and the
//! `stats` subcommand.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use dataservice_sync_sim::PollingMode;
use serde_json::{Value, json};

use crate::harness::{SyncProcess, fixture, message, run_to_end, wait_until};
use crate::{SECOND, peers};

/// The address from the `status server listening on http://ADDR/` line.
fn status_address(sync: &SyncProcess) -> SocketAddr {
    let prefix = "status server listening on http://";
    sync.expect_log(prefix, 10 * SECOND);
    let lines = sync.lines();
    let line = lines
        .iter()
        .map(|l| message(l))
        .find(|m| m.starts_with(prefix))
        .unwrap();
    line[prefix.len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends `request` as is and returns (status, body).
fn exchange(address: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(10 * SECOND)).unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn get(address: SocketAddr, path: &str) -> (u16, String) {
    exchange(address, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

fn get_json(address: SocketAddr, path: &str) -> Value {
    let (status, body) = get(address, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Runs Prometheus' Python parser over `text`; returns the family count.
fn prometheus_families(text: &str) -> usize {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys\n\
             from prometheus_client.parser import text_string_to_metric_families as parse\n\
             families = list(parse(sys.stdin.read()))\n\
             assert all(f.documentation for f in families), 'a family without HELP'\n\
             print(len(families))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (bash .ci/run installs it with prometheus_client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the metrics:\n{text}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn metrics_health_and_api_after_the_basic_fixture() {
    let p = peers("status-basic", PollingMode::Body(fixture("basic.json")));
    let sync = p.start_sync(&[
        "--interval",
        "3600",
        "--register",
        "missing",
        "--status-listen",
        "127.0.0.1:0",
    ]);
    let address = status_address(&sync);
    assert!(
        wait_until(10 * SECOND, || {
            // The cycle ends at once; the tags go once the check gave
            // them their ids.
            let stats = get_json(address, "/api/stats");
            stats["total_syncs"] == 1 && stats["successful_writes"] == 6
        }),
        "log:\n{}",
        sync.log()
    );

    let (status, metrics) = get(address, "/metrics");
    assert_eq!(status, 200);
    let lines: Vec<&str> = metrics.lines().collect();
    for expected in [
        "dataservice_sync_cycles_total 1",
        "dataservice_sync_writes_ok_total 6",
        "dataservice_sync_writes_failed_total 0",
        "dataservice_sync_reads_good_total 6",
        "dataservice_sync_reads_failed_total 2",
        "dataservice_sync_bulk_requests_total 1",
        "dataservice_sync_registrations_total 6",
        "dataservice_sync_tags_rejected_total{reason=\"null_value\"} 0",
        "dataservice_sync_tags 6",
        "dataservice_sync_pending_tags 0",
        "dataservice_sync_tags_by_registration{state=\"registered\"} 6",
        "dataservice_sync_tags_by_registration{state=\"unknown\"} 0",
        "dataservice_sync_peer_up{peer=\"source\"} 1",
        "dataservice_sync_peer_up{peer=\"dataservice\"} 1",
        "dataservice_sync_peer_up{peer=\"dataservice_api\"} 1",
        "dataservice_sync_sink_errors_total{kind=\"refused\"} 0",
        "dataservice_sync_cycle_duration_seconds_count 1",
        "# TYPE dataservice_sync_status_requests_total counter",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{metrics}"
        );
    }
    let families = lines.iter().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(prometheus_families(&metrics), families);

    let health = get_json(address, "/health");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["source"], "up");
    assert_eq!(health["dataservice"], "up");
    assert_eq!(health["reason"], Value::Null);

    let stats = get_json(address, "/api/stats");
    assert_eq!(
        (
            &stats["running"],
            &stats["total_syncs"],
            &stats["successful_writes"],
            &stats["failed_writes"],
            &stats["tags"],
            &stats["pending"],
        ),
        (
            &json!(true),
            &json!(1),
            &json!(6),
            &json!(0),
            &json!(6),
            &json!(0)
        )
    );
    assert_eq!(stats["recent_errors"], json!([]));
    assert_eq!(stats["counters"]["reads_failed_total"], 2);

    let tags = get_json(address, "/api/tags");
    let rows: Vec<(String, Value, String, String)> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().to_string(),
                t["value"].clone(),
                t["state"].as_str().unwrap().to_string(),
                t["registration"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let delivered = |key: &str, value: Value| {
        (
            key.to_string(),
            value,
            "delivered".to_string(),
            "registered".to_string(),
        )
    };
    assert_eq!(
        rows,
        [
            delivered("Boiler-1.t-001", json!(71.25)),
            delivered("Boiler-1.t-002", json!(3)),
            delivered("Boiler-1.t-003", json!(true)),
            delivered("Boiler-1.Mode", json!("RUNNING")),
            delivered("Pump Station 2.Flow rate", json!(-0.0005)),
            delivered("Kühlraum \"Nord\".Temperatur °C", json!(-18.4)),
        ]
    );
    let search = get_json(address, "/api/tags?q=pump+station&limit=5");
    assert_eq!(
        (search["total"].clone(), search["matched"].clone()),
        (json!(6), json!(1))
    );
    assert_eq!(search["tags"][0]["key"], "Pump Station 2.Flow rate");

    assert_eq!(get(address, "/nope").0, 404);
    assert_eq!(
        exchange(
            address,
            "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )
        .0,
        405
    );
    assert_eq!(get(address, "/api/tags?offset=x").0, 400);
    let (status, page) = get(address, "/");
    assert_eq!(status, 200);
    assert!(
        page.starts_with("<!doctype html>")
            && !page.contains("http://")
            && !page.contains("https://")
    );

    let (code, printed, _) = run_to_end(&["stats", "--status-address", &address.to_string()]);
    assert_eq!(code, Some(0));
    for expected in [
        "total syncs                  1\n",
        "successful writes            6\n",
        "failed writes                0\n",
        "peer dataservice             up\n",
        "tags                         6 (capacity 32768, pending 0, unregistered 0)\n",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
}

#[test]
fn health_is_503_with_the_reason_while_the_dataservice_is_down() {
    let p = peers("status-down", PollingMode::Body(fixture("basic.json")));
    let missing = format!("{}.absent", p.socket);
    let sync = SyncProcess::start(&[
        "--socket-path",
        &missing,
        "--source",
        &p.polling.url(),
        "--dataservice-url",
        "off",
        "--interval",
        "0.2",
        "--health-cycles",
        "2",
        "--status-listen",
        "127.0.0.1:0",
    ]);
    let address = status_address(&sync);
    let mut last = (0, String::new());
    let unhealthy = wait_until(10 * SECOND, || {
        last = get(address, "/health");
        last.0 == 503 && last.1.contains("\"status\":\"unhealthy\"")
    });
    assert!(unhealthy, "last answer {last:?}; log:\n{}", sync.log());
    let health: Value = serde_json::from_str(&last.1).unwrap();
    assert_eq!(
        health["reason"],
        "Data-Service socket down: socket does not exist"
    );
    assert_eq!(
        (health["source"].clone(), health["dataservice"].clone()),
        (json!("up"), json!("down"))
    );
    assert_eq!(health["window_ms"], 400);
    let (_, metrics) = get(address, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == "dataservice_sync_peer_up{peer=\"dataservice\"} 0")
    );
    assert!(
        metrics.lines().any(|l| l
            .starts_with("dataservice_sync_sink_errors_total{kind=\"socket_missing\"} ")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn idle_and_oversized_clients_are_bounded_and_do_not_stall_the_sync() {
    let p = peers("status-bounds", PollingMode::Body(fixture("basic.json")));
    let sync = p.start_sync(&["--interval", "0.1", "--status-listen", "127.0.0.1:0"]);
    let address = status_address(&sync);
    // Eight silent clients take every slot.
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let fetched_before = p.polling.requests();
    // A ninth is closed at once.
    let mut ninth = TcpStream::connect(address).unwrap();
    ninth.set_read_timeout(Some(2 * SECOND)).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(ninth.read(&mut byte).unwrap(), 0);
    // The sync keeps its pace meanwhile.
    std::thread::sleep(SECOND);
    assert!(
        p.polling.requests() >= fetched_before + 5,
        "the sync stalled"
    );
    // The silent ones are closed at their 5 s deadline.
    for mut client in idle {
        client.set_read_timeout(Some(10 * SECOND)).unwrap();
        assert_eq!(client.read(&mut byte).unwrap(), 0);
    }
    // A request head over 8 KiB is refused.
    let huge = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(exchange(address, &huge).0, 431);
    let (_, metrics) = get(address, "/metrics");
    for expected in [
        "dataservice_sync_status_connections_refused_total 1",
        "dataservice_sync_status_requests_rejected_total 9",
        "dataservice_sync_status_requests_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == expected),
            "missing {expected:?} in:\n{metrics}"
        );
    }
}

#[test]
fn stats_subcommand_without_a_service_says_so() {
    let (code, _, err) = run_to_end(&["stats", "--status-address", "127.0.0.1:1"]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("error: cannot read http://127.0.0.1:1/api/stats: cannot connect to 127.0.0.1:1: Connection refused"),
        "{err}"
    );
}

#[test]
fn tags_over_max_tags_are_a_gauge_a_health_field_and_a_line_per_change() {
    let generated = |tags| PollingMode::Generated {
        devices: 1,
        tags,
        changing_percent: 0,
    };
    let p = peers("status-max-tags", generated(14));
    let mut sync = p.start_sync(&[
        "--interval",
        "0.05",
        "--max-tags",
        "10",
        "--status-listen",
        "127.0.0.1:0",
        // /health is read for its field: a window wide enough for emulation.
        "--health-cycles",
        "1000",
    ]);
    let address = status_address(&sync);
    sync.expect_log("tag table full (10 tags): 4 tags left out", 10 * SECOND);
    let health = get_json(address, "/health");
    assert_eq!(health["tags_over_capacity"], 4, "{health}");
    let (_, metrics) = get(address, "/metrics");
    assert!(
        metrics.contains("\ndataservice_sync_tags_over_capacity 4\n"),
        "{metrics}"
    );
    // Two tags fewer: one more line with the new count; then all fit.
    p.polling.set_mode(generated(12));
    sync.expect_log("tag table full (10 tags): 2 tags left out", 10 * SECOND);
    p.polling.set_mode(generated(10));
    sync.expect_log("tag table: every tag fits again", 10 * SECOND);
    assert_eq!(get_json(address, "/health")["tags_over_capacity"], 0);
    assert!(sync.terminate().success());
    assert_eq!(
        sync.count("tag table full (10 tags): "),
        2,
        "{}",
        sync.log()
    );
    assert_eq!(sync.count("tag table: every tag fits again"), 1);
    let written: std::collections::BTreeSet<String> = crate::harness::parse_requests(&p.requests())
        .iter()
        .filter_map(|r| r["key"].as_str().map(str::to_string))
        .collect();
    assert_eq!(written.len(), 10, "{written:?}");
}

#[test]
fn every_metric_the_shipped_alerts_use_is_exposed() {
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/prometheus/alerts.yml"),
    )
    .unwrap();
    let mut used: Vec<String> = Vec::new();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        // A histogram's series are announced under its family's name.
        let family = word.strip_suffix("_bucket").unwrap_or(word);
        if family.starts_with("dataservice_sync_") && !used.iter().any(|u| u == family) {
            used.push(family.to_string());
        }
    }
    assert!(used.len() >= 7, "{used:?}");
    let p = peers("status-alerts", PollingMode::Body(fixture("basic.json")));
    let sync = p.start_sync(&["--interval", "3600", "--status-listen", "127.0.0.1:0"]);
    let address = status_address(&sync);
    assert!(wait_until(10 * SECOND, || p.requests().len() >= 6));
    let (_, metrics) = get(address, "/metrics");
    for name in used {
        assert!(
            metrics.contains(&format!("\n# TYPE {name} ")),
            "{name} is not exposed"
        );
    }
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(metrics.contains(&format!("\n{name} ")), "{name}");
    }
}

#[test]
fn stats_finds_the_service_by_its_config_file_and_a_closed_stdout_is_no_panic() {
    let p = peers(
        "status-stats-config",
        PollingMode::Body(fixture("basic.json")),
    );
    let sync = p.start_sync(&["--interval", "3600", "--status-listen", "127.0.0.1:0"]);
    let address = status_address(&sync);
    assert!(wait_until(10 * SECOND, || p.requests().len() >= 6));
    let config = crate::harness::temp_dir("status-stats-config").join("sync.toml");
    std::fs::write(
        &config,
        format!("status-listen = \"0.0.0.0:{}\"\n", address.port()),
    )
    .unwrap();
    let (code, out, err) = run_to_end(&["stats", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("successful writes            6\n"), "{out}");
    // `stats --json | head -c 10`: the reader is gone before it writes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_dataservice-sync"))
        .args(["stats", "--json", "--status-address", &address.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
