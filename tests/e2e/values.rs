//! Right values: what the deployed peers really send and store (the
//! protocols doc's "what the deployed peers do"), through the real binary.

use std::time::Duration;

use dataservice_sync_sim::PollingMode;
use serde_json::{Value, json};

use crate::harness::{fixture, stat, wait_until, writes};
use crate::{SECOND, peers};

/// Rows of expected-real-backend.txt.
fn expected_real_backend() -> Vec<(String, Value)> {
    crate::harness::expected_rows("expected-real-backend.txt")
}

/// One good entry as the deployed backend writes it.
fn entry(value: &str, status: &str, timestamp: u64) -> String {
    format!(
        r#"{{"value":{value},"status":"{status}","error":null,"timestamp":{timestamp},"last_successful_timestamp":{timestamp}}}"#
    )
}

#[test]
fn real_backend_answer_writes_every_good_read_of_every_driver() {
    let p = peers(
        "real-backend",
        PollingMode::Body(fixture("real-backend.json")),
    );
    let mut sync = p.start_sync(&["--interval", "3600"]);
    assert!(p.wait_requests(11, 10 * SECOND), "log:\n{}", sync.log());
    assert!(sync.terminate().success());
    // The IEC 104 `good` read is among them; the two failed reads are not.
    assert_eq!(writes(&p.requests()), expected_real_backend());
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "reads_good_total"), 11);
    assert_eq!(stat(&stats, "reads_failed_total"), 2);
}

#[test]
fn good_statuses_are_compared_without_regard_to_case() {
    let doc = format!(
        r#"{{"d":{{"a":{},"b":{},"c":{},"e":{}}}}}"#,
        entry("1", "GOOD", 5),
        entry("2", "Success", 5),
        entry("3", "OK", 5),
        entry("4", "initializing", 5),
    );
    let p = peers("statuses", PollingMode::Body(doc.into_bytes()));
    let mut sync = p.start_sync(&["--interval", "3600"]);
    assert!(p.wait_requests(3, 10 * SECOND), "log:\n{}", sync.log());
    assert!(sync.terminate().success());
    assert_eq!(
        writes(&p.requests()),
        vec![
            ("d.a".to_string(), json!(1)),
            ("d.b".to_string(), json!(2)),
            ("d.c".to_string(), json!(3)),
        ]
    );
    assert_eq!(stat(&sync.final_stats(), "reads_failed_total"), 1);
}

#[test]
fn a_float_tag_first_answered_as_an_integer_is_registered_float_and_keeps_fractions() {
    let p = peers("clamp", PollingMode::Body(fixture("real-backend.json")));
    let key = "Boiler-1.tag-1764300000107";
    let mut sync = p.start_sync(&["--interval", "0.1", "--register", "missing"]);
    assert!(
        wait_until(10 * SECOND, || p.dataservice.values().get(key)
            == Some(&json!(100.0))),
        "log:\n{}",
        sync.log()
    );
    p.polling
        .set_mode(PollingMode::Body(fixture("real-backend-later.json")));
    assert!(
        wait_until(10 * SECOND, || p.dataservice.values().get(key)
            == Some(&json!(42.5))),
        "{:?}\nlog:\n{}",
        p.dataservice.values().get(key),
        sync.log()
    );
    assert!(sync.terminate().success());
    let store = p.dataservice.store();
    for (key, _) in expected_real_backend() {
        assert_eq!(store.points()[&key].data_type, "float", "{key}");
    }
    assert_eq!(store.points()[key].quality, "GOOD");
    drop(store);
    assert_eq!(stat(&sync.final_stats(), "type_mismatches_total"), 0);
}

#[test]
fn a_rule_sets_the_data_type_its_tags_are_registered_with() {
    let dir = crate::harness::temp_dir("data-type-rule");
    let config = dir.join("rules.toml");
    std::fs::write(
        &config,
        "[[rule]]\ndevice = \"Pump*\"\ntag = \"*\"\ndata-type = \"int\"\n",
    )
    .unwrap();
    let p = peers(
        "data-type-rule",
        PollingMode::Body(fixture("real-backend.json")),
    );
    let mut sync = p.start_sync(&[
        "--interval",
        "3600",
        "--register",
        "missing",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        wait_until(10 * SECOND, || p.dataservice.values().len() == 11),
        "log:\n{}",
        sync.log()
    );
    assert!(sync.terminate().success());
    let types: Vec<(String, String)> = p
        .dataservice
        .store()
        .points()
        .values()
        .filter(|point| point.key.starts_with("Pump") || point.key.starts_with("IEC"))
        .map(|point| (point.key.clone(), point.data_type.clone()))
        .collect();
    assert_eq!(
        types,
        [
            ("IEC Dev.tag-1764300000501", "float"),
            ("Pump Station Ü.tag-1764300000201", "int"),
            ("Pump Station Ü.tag-1764300000202", "int"),
        ]
        .map(|(k, t)| (k.to_string(), t.to_string()))
    );
}

#[test]
fn a_key_registered_as_int_is_reported_once_when_its_fractions_would_be_truncated() {
    let at = |value: &str, t: u64| format!(r#"{{"d":{{"t":{}}}}}"#, entry(value, "ok", t));
    let p = peers("mismatch", PollingMode::Body(at("100", 1).into_bytes()));
    p.dataservice.register("d.t", "int").unwrap();
    let mut sync = p.start_sync(&["--interval", "0.1"]);
    assert!(p.wait_requests(1, 10 * SECOND), "log:\n{}", sync.log());
    for (i, value) in ["42.5", "12.25", "7.75"].iter().enumerate() {
        p.polling
            .set_mode(PollingMode::Body(at(value, 2 + i as u64).into_bytes()));
        assert!(p.wait_requests(2 + i, 10 * SECOND), "log:\n{}", sync.log());
    }
    assert!(sync.terminate().success());
    // The Data-Service truncates, as the real one does: that is what the
    // report warns of.
    assert_eq!(p.dataservice.values()["d.t"], json!(7));
    assert_eq!(
        sync.count("type mismatch: d.t is registered as int in the Data-Service"),
        1,
        "{}",
        sync.log()
    );
    assert_eq!(stat(&sync.final_stats(), "type_mismatches_total"), 1);
}

#[test]
fn a_frozen_source_timestamp_makes_a_tag_stale_until_it_advances() {
    let at = |value: &str, t: u64| format!(r#"{{"d":{{"t":{}}}}}"#, entry(value, "ok", t));
    let p = peers(
        "stale",
        PollingMode::Body(at("5", 1_796_319_758).into_bytes()),
    );
    let mut sync = p.start_sync(&[
        "--interval",
        "0.05",
        "--heartbeat",
        "0.05",
        "--max-age",
        "0.5",
    ]);
    sync.expect_log(
        "tag stale: d.t: its source timestamp has not advanced",
        10 * SECOND,
    );
    // Heartbeats stop once it is stale: nothing more in ten intervals.
    let written = p.requests().len();
    assert!(written >= 2, "heartbeats while fresh: {written}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(p.requests().len(), written, "a stale tag is not rewritten");
    // The same value, but read anew: fresh again, and written.
    p.polling
        .set_mode(PollingMode::Body(at("5", 1_796_319_759).into_bytes()));
    sync.expect_log("tag fresh again: d.t", 10 * SECOND);
    assert!(p.wait_requests(written + 1, 10 * SECOND));
    assert!(sync.terminate().success());
    assert_eq!(sync.count("tag stale: d.t"), 1, "{}", sync.log());
    assert_eq!(sync.count("tag fresh again: d.t"), 1);
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "tags_stale_total"), 1);
    assert!(stat(&stats, "writes_stale_total") >= 3, "{stats:?}");
}

#[test]
fn the_same_answer_in_another_device_order_rewrites_nothing() {
    let p = peers(
        "device-order",
        PollingMode::Cycle(vec![
            fixture("real-backend.json"),
            fixture("real-backend-reordered.json"),
        ]),
    );
    let mut sync = p.start_sync(&["--interval", "0.05"]);
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= 6));
    assert!(sync.terminate().success());
    assert_eq!(writes(&p.requests()), expected_real_backend());
}

#[test]
fn every_driver_s_good_status_is_written_and_every_failed_one_counted() {
    let p = peers(
        "per-driver",
        PollingMode::Body(fixture("per-driver-statuses.json")),
    );
    let mut sync = p.start_sync(&["--interval", "3600"]);
    assert!(p.wait_requests(4, 10 * SECOND), "log:\n{}", sync.log());
    assert!(sync.terminate().success());
    let expected = crate::harness::expected_rows("expected-per-driver-statuses.txt");
    // An IEC 104 `error` with a value and a conversion error's `0` are not
    // good reads.
    assert_eq!(writes(&p.requests()), expected);
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "reads_good_total"), 4);
    assert_eq!(stat(&stats, "reads_failed_total"), 23);
    assert_eq!(stat(&stats, "tags_rejected_total"), 0);
}

#[test]
fn an_unconfigured_backend_s_empty_answer_is_a_good_document_of_nothing() {
    let p = peers(
        "unconfigured",
        PollingMode::Body(fixture("unconfigured.json")),
    );
    let mut sync = p.start_sync(&["--interval", "0.05"]);
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= 4));
    assert!(sync.terminate().success());
    assert!(p.requests().is_empty());
    assert_eq!(
        sync.count("source up: document accepted with 0 good reads"),
        1
    );
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "documents_rejected_total"), 0);
    assert_eq!(stat(&stats, "source_errors_total"), 0);
}

#[test]
fn a_nan_register_stops_every_value_until_it_clears() {
    let doc = format!(r#"{{"d":{{"t":{}}}}}"#, entry("3", "ok", 1));
    let p = peers("nan-500", PollingMode::NanRegister);
    let mut sync = p.start_sync(&["--interval", "0.05"]);
    sync.expect_log("source down: fetch failed: HTTP status 500", 10 * SECOND);
    assert!(p.requests().is_empty());
    p.polling.set_mode(PollingMode::Body(doc.into_bytes()));
    assert!(p.wait_requests(1, 10 * SECOND), "log:\n{}", sync.log());
    assert!(sync.terminate().success());
    assert_eq!(writes(&p.requests()), vec![("d.t".to_string(), json!(3))]);
}

#[test]
fn the_polling_double_answers_as_fastapi_does() {
    use std::io::{Read, Write};
    let p = peers("fastapi", PollingMode::Body(b"{}".to_vec()));
    let url = p.polling.url();
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let ask = |request: String| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let path = "/deploy/api/io/polled-values";
    let head = ask(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    let slash = ask(format!("GET {path}/ HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(slash.starts_with("HTTP/1.1 307 "), "{slash}");
    assert!(slash.contains(&format!("location: http://127.0.0.1:8000{path}\r\n")));
    let query = ask(format!("GET {path}?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(
        query.starts_with("HTTP/1.1 200 ") && query.ends_with("\r\n\r\n{}"),
        "{query}"
    );
}
