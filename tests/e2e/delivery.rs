//! Report by exception, registry checks and bulk writes: the exact requests
//! the Data-Service double sees for scripted series of documents.

use dataservice_sync_sim::PollingMode;
use serde_json::{Value, json};

use crate::harness::{stat, wait_until};
use crate::{SECOND, peers};

const D1: &[u8] =
    br#"{"dev": {"a": {"value": 1, "status": "ok"}, "b": {"value": 2.5, "status": "ok"}}}"#;
const D3: &[u8] =
    br#"{"dev": {"a": {"value": 1, "status": "ok"}, "b": {"value": 3.5, "status": "ok"}}}"#;
const REGISTER_BOTH: &str = r#"POST /register/bulk {"points":[{"key":"dev.a","data_type":"float"},{"key":"dev.b","data_type":"float"}],"allow_address_conflict":false}"#;

fn bulk(updates: &[(&str, Value)]) -> String {
    let updates: Vec<Value> = updates
        .iter()
        .map(|(id, v)| json!({"id": id, "value": v}))
        .collect();
    serde_json::to_string(&json!({"action": "bulk_write_by_id", "updates": updates})).unwrap()
}

/// Waits for the Data-Service to have received `delivered` requests and for
/// one more fetch of the same document (unchanged: nothing to send), then
/// makes the polling service answer `next` and waits for its one changed
/// value and two more fetches. The change waits for the delivery because
/// a value read while the sync cannot send yet (its registry check at start
/// can outlast intervals on a slow machine) is replaced by a newer read
/// before it is sent, and the test would then see only the newer one.
fn change_after_delivery(p: &crate::Peers, delivered: usize, next: &[u8]) {
    assert!(wait_until(10 * SECOND, || p.requests().len() >= delivered));
    let fetched = p.polling.requests();
    assert!(wait_until(10 * SECOND, || p.polling.requests() > fetched));
    p.polling.set_mode(PollingMode::Body(next.to_vec()));
    assert!(wait_until(10 * SECOND, || p.requests().len() > delivered));
    let fetched = p.polling.requests();
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= fetched + 2));
}

fn id_of(p: &crate::Peers, key: &str) -> String {
    p.dataservice.store().points()[key].id.clone()
}

#[test]
fn changes_only_are_written_in_bulk_after_registering_missing_keys() {
    let p = peers("rbe", PollingMode::Body(D1.to_vec()));
    let mut sync = p.start_sync(&[
        "--interval",
        "0.2",
        "--register",
        "missing",
        "--heartbeat",
        "3600",
    ]);
    change_after_delivery(&p, 1, D3);
    assert!(sync.terminate().success());
    assert_eq!(
        p.dataservice.api_requests(),
        vec!["GET /detailed ".to_string(), REGISTER_BOTH.to_string()]
    );
    let (a, b) = (id_of(&p, "dev.a"), id_of(&p, "dev.b"));
    assert_eq!(
        p.requests(),
        vec![
            bulk(&[(&a, json!(1)), (&b, json!(2.5))]),
            bulk(&[(&b, json!(3.5))])
        ]
    );
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "writes_ok_total"), 3);
    assert_eq!(stat(&stats, "bulk_requests_total"), 2);
    assert_eq!(stat(&stats, "registrations_total"), 2);
    // Every good read was written, suppressed, or (held while the check
    // outlasted an interval) replaced by a newer one before it was sent.
    assert_eq!(
        stat(&stats, "writes_suppressed_total") + stat(&stats, "writes_superseded_total"),
        stat(&stats, "reads_good_total") - 3
    );
    assert_eq!(p.dataservice.values()["dev.b"], json!(3.5));
}

#[test]
fn a_restarted_dataservice_with_new_ids_is_registered_again_and_refilled() {
    let mut p = peers("restart", PollingMode::Body(D1.to_vec()));
    let mut sync = p.start_sync(&[
        "--interval",
        "0.2",
        "--register",
        "missing",
        "--heartbeat",
        "3600",
    ]);
    assert!(
        wait_until(10 * SECOND, || p.dataservice.store().applied == 2),
        "{}",
        sync.log()
    );
    let (a1, b1) = (id_of(&p, "dev.a"), id_of(&p, "dev.b"));
    p.dataservice.restart().unwrap();
    p.polling.set_mode(PollingMode::Body(D3.to_vec()));
    assert!(
        wait_until(10 * SECOND, || p.dataservice.store().applied == 2),
        "{}",
        sync.log()
    );
    assert!(sync.terminate().success());
    let (a2, b2) = (id_of(&p, "dev.a"), id_of(&p, "dev.b"));
    assert_ne!(a1, a2);
    assert_eq!(
        p.requests(),
        vec![
            bulk(&[(&a1, json!(1)), (&b1, json!(2.5))]),
            bulk(&[(&b1, json!(3.5))]),
            bulk(&[(&a2, json!(1)), (&b2, json!(3.5))]),
        ]
    );
    assert_eq!(
        p.dataservice.api_requests(),
        vec![
            "GET /detailed ".to_string(),
            REGISTER_BOTH.to_string(),
            "GET /detailed ".to_string(),
            REGISTER_BOTH.to_string(),
        ]
    );
    assert_eq!(
        p.dataservice.values(),
        [
            ("dev.a".to_string(), json!(1.0)), // registered float: the Data-Service holds a float,
            ("dev.b".to_string(), json!(3.5))
        ]
        .into()
    );
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "ids_not_found_total"), 1);
    assert_eq!(stat(&stats, "dataservice_restarts_total"), 1);
    assert_eq!(
        sync.count("Data-Service restart assumed (a write answered \"id not found\"): checking registrations and writing every value again"),
        1
    );
}

#[test]
fn existing_keys_get_their_ids_without_side_effects_and_an_exhausted_range_is_reported() {
    let p = peers(
        "exhausted",
        PollingMode::Body(br#"{"dev": {"n": {"value": 7, "status": "ok"}, "s": {"value": "on", "status": "ok"}, "f": {"value": 0.5, "status": "ok"}}}"#.to_vec()),
    );
    for i in 0..1000 {
        p.dataservice
            .register(&format!("filler-{i}"), "string")
            .unwrap();
    }
    let f_id = p.dataservice.register("dev.f", "float").unwrap();
    let mut sync = p.start_sync(&["--interval", "0.2", "--register", "missing"]);
    assert!(
        wait_until(10 * SECOND, || p.requests().len() == 2),
        "{}",
        sync.log()
    );
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= 3));
    assert!(sync.terminate().success());
    let api = p.dataservice.api_requests();
    assert_eq!(api.len(), 2);
    assert_eq!(
        api[1],
        r#"POST /register/bulk {"points":[{"key":"dev.n","data_type":"float"},{"key":"dev.s","data_type":"string"},{"key":"dev.f","address":40001,"default":0.0,"data_type":"float","units":""}],"allow_address_conflict":false}"#
    );
    let n_id = id_of(&p, "dev.n");
    assert_eq!(
        id_of(&p, "dev.f"),
        f_id,
        "re-registering an existing key changed nothing"
    );
    assert_eq!(p.dataservice.store().points()["dev.f"].address, Some(40001));
    assert_eq!(
        p.requests(),
        vec![
            bulk(&[(&n_id, json!(7)), (&f_id, json!(0.5))]),
            r#"{"action":"write","key":"dev.s","value":"on"}"#.to_string(),
        ]
    );
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "registrations_total"), 2);
    assert_eq!(stat(&stats, "registrations_failed_total"), 1);
    assert_eq!(
        sync.count("registration failed, writing by key: dev.s: address range exhausted for data_type string"),
        1
    );
}

#[test]
fn unregistered_keys_in_off_mode_are_written_by_key_and_reported_once_each() {
    let p = peers(
        "off",
        PollingMode::Body(crate::harness::fixture("basic.json")),
    );
    let mut sync = p.start_sync(&["--interval", "0.2"]);
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= 4));
    assert!(sync.terminate().success());
    assert_eq!(
        p.dataservice.api_requests(),
        vec!["GET /detailed ".to_string()]
    );
    assert_eq!(p.requests().len(), 6);
    assert!(
        p.requests()
            .iter()
            .all(|l| l.starts_with(r#"{"action":"write","key":"#))
    );
    assert_eq!(p.dataservice.store().dropped_unregistered, 6);
    assert_eq!(sync.count("key not registered in the Data-Service"), 6);
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "unregistered"), 6);
}

#[test]
fn an_unchanged_value_is_sent_again_when_its_heartbeat_is_due() {
    let p = peers(
        "heartbeat",
        PollingMode::Body(br#"{"dev": {"a": {"value": 1, "status": "ok"}}}"#.to_vec()),
    );
    let id = p.dataservice.register("dev.a", "int").unwrap();
    let mut sync = p.start_sync(&["--interval", "0.1", "--heartbeat", "0.5"]);
    assert!(wait_until(10 * SECOND, || p.requests().len() >= 3));
    assert!(sync.terminate().success());
    let requests = p.requests();
    assert!(
        requests.iter().all(|l| *l == bulk(&[(&id, json!(1))])),
        "{requests:?}"
    );
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "heartbeats_total"), requests.len() as u64 - 1);
    assert_eq!(stat(&stats, "writes_ok_total"), requests.len() as u64);
    // Every good read was written (first value, heartbeats), suppressed,
    // or (held while the check outlasted an interval) replaced by a newer
    // one before it was sent.
    assert_eq!(
        stat(&stats, "writes_suppressed_total")
            + stat(&stats, "writes_superseded_total")
            + requests.len() as u64,
        stat(&stats, "reads_good_total"),
        "{stats:?}"
    );
}

#[test]
fn write_mode_sends_one_write_by_key_per_changed_value() {
    let p = peers("write-mode", PollingMode::Body(D1.to_vec()));
    p.dataservice.register("dev.a", "int").unwrap();
    p.dataservice.register("dev.b", "float").unwrap();
    let mut sync = p.start_sync(&["--interval", "0.2", "--delivery", "write"]);
    change_after_delivery(&p, 2, D3);
    assert!(sync.terminate().success());
    assert_eq!(
        p.requests(),
        vec![
            r#"{"action":"write","key":"dev.a","value":1}"#.to_string(),
            r#"{"action":"write","key":"dev.b","value":2.5}"#.to_string(),
            r#"{"action":"write","key":"dev.b","value":3.5}"#.to_string(),
        ]
    );
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "bulk_requests_total"), 0);
    assert!(stat(&stats, "sync_cycles_total") >= 4);
}

#[test]
fn one_dataservice_restart_is_counted_and_logged_once_with_many_lines_in_flight() {
    let mut p = peers(
        "restart-once",
        PollingMode::Generated {
            devices: 1,
            tags: 400,
            changing_percent: 100,
        },
    );
    // About 80 updates a line: five lines a cycle, two in flight at once.
    let mut sync = p.start_sync(&[
        "--interval",
        "0.2",
        "--register",
        "missing",
        "--bulk-max-bytes",
        "4096",
        "--bulk-in-flight",
        "2",
    ]);
    let all_written = |p: &crate::Peers| {
        p.dataservice
            .store()
            .points()
            .values()
            .all(|point| point.history > 0)
    };
    assert!(
        wait_until(20 * SECOND, || p.dataservice.values().len() == 400
            && all_written(&p)),
        "{}",
        sync.log()
    );
    p.dataservice.restart().unwrap();
    assert!(
        wait_until(20 * SECOND, || p.dataservice.values().len() == 400
            && all_written(&p)),
        "{}",
        sync.log()
    );
    assert!(sync.terminate().success());
    let stats = sync.final_stats();
    assert_eq!(
        stat(&stats, "dataservice_restarts_total"),
        1,
        "{}",
        sync.log()
    );
    assert_eq!(
        sync.count("Data-Service restart assumed ("),
        1,
        "{}",
        sync.log()
    );
    assert!(stat(&stats, "ids_not_found_total") >= 1);
}
