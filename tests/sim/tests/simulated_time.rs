//! The sync's timing, proven on a simulated clock: the engine and the
//! simulated peers in one process, deterministic, in milliseconds.

use dataservice_sync_core::{BacklogPolicy, Duration, EngineConfig, RegisterMode};
use dataservice_sync_sim::{SimulatedSync, polled_document};
use serde_json::{Value, json};

const INTERVAL: Duration = Duration::from_millis(100);

fn config(backlog: BacklogPolicy) -> EngineConfig {
    let mut config = EngineConfig::new(INTERVAL);
    config.register = RegisterMode::Missing;
    config.backlog = backlog;
    config
}

/// A sync whose `d.a` reads the number of its fetch (a value that changes
/// on every read) and `d.b` always 1.5.
fn sync(backlog: BacklogPolicy) -> SimulatedSync {
    let mut sync = SimulatedSync::new(config(backlog), 7, Duration::from_millis(2));
    sync.set_source(|n| {
        let value = n.to_string();
        Some(polled_document(&[("d", "a", &value), ("d", "b", "1.5")], n))
    });
    sync
}

fn numbers(range: std::ops::RangeInclusive<u64>) -> Vec<Value> {
    range.map(|n| json!(n)).collect()
}

/// The ids the Data-Service gave `keys`, in order.
fn ids(sync: &SimulatedSync, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|key| sync.dataservice.points()[*key].id.clone())
        .collect()
}

#[test]
fn every_change_of_a_tag_arrives_once_and_in_order_while_the_dataservice_is_slower_than_the_interval()
 {
    let mut sync = sync(BacklogPolicy::History);
    sync.sink_latency = Duration::from_millis(150);
    sync.run_for(Duration::from_secs(2));
    assert_eq!(
        sync.fetches(),
        14,
        "cycles run back to back, one per answer"
    );
    sync.set_document(polled_document(&[("d", "a", "14"), ("d", "b", "1.5")], 14));
    assert!(sync.run_until(Duration::from_secs(1), |s| s.engine().pending() == 0));
    assert_eq!(sync.writes_of("d.a"), numbers(1..=14));
    assert_eq!(
        sync.writes_of("d.b"),
        [json!(1.5)],
        "unchanged: written once"
    );
    assert_eq!(sync.engine().stats().writes_superseded_total, 0);
    assert_eq!(
        sync.log.last().map(String::as_str),
        Some(
            "cycle overrun: previous cycle still running after 0.044s; cycles run back to back \
             until they fit the interval again"
        )
    );
}

#[test]
fn with_latest_a_tag_s_older_value_never_follows_a_newer_one_through_an_outage() {
    let mut sync = sync(BacklogPolicy::Latest);
    sync.sink_latency = Duration::from_millis(30);
    sync.run_for(Duration::from_millis(300));
    sync.stop_dataservice();
    sync.run_for(Duration::from_millis(500));
    sync.resume_dataservice();
    sync.run_for(Duration::from_millis(300));
    let fetched = sync.fetches();
    assert!(sync.run_until(Duration::from_secs(1), |s| s.engine().pending() == 0));
    let written = sync.writes_of("d.a");
    assert_eq!(written.first(), Some(&json!(1)));
    assert_eq!(written.last(), Some(&json!(fetched)));
    assert!(
        written.windows(2).all(|w| w[0].as_u64() < w[1].as_u64()),
        "{written:?}"
    );
    assert_eq!(sync.dataservice.values()["d.a"], json!(fetched as f64));
}

#[test]
fn a_registry_check_for_a_new_tag_runs_beside_the_cycles_that_go_on_writing_the_known_ones() {
    let mut sync = SimulatedSync::new(config(BacklogPolicy::History), 7, Duration::from_millis(2));
    sync.api_latency = Duration::from_millis(250);
    sync.set_source(|n| {
        let value = n.to_string();
        let mut reads = vec![("d", "a", value.as_str())];
        if n >= 10 {
            reads.push(("d", "c", "true"));
        }
        Some(polled_document(&reads, n))
    });
    sync.run_for(Duration::from_secs(2));
    let stats = sync.engine().stats();
    assert_eq!(
        (stats.sync_cycles_total, stats.registry_checks_total),
        (20, 2)
    );
    assert_eq!(stats.cycles_skipped_total, 0, "no cycle waits for a check");
    assert_eq!(sync.writes_of("d.a"), numbers(1..=20));
    assert_eq!(sync.writes_of("d.c"), [json!(true)]);
    // d.c appeared in the 10th document; its check took 500 ms, in which
    // five more of d.a's changes went out.
    let first_c = sync
        .dataservice
        .applied_writes()
        .iter()
        .position(|(key, _)| key == "d.c");
    assert_eq!(first_c, Some(15));
    assert_eq!(
        sync.dataservice.api_request_lines(),
        [
            "GET /detailed ",
            r#"POST /register/bulk {"points":[{"key":"d.a","data_type":"float"}],"allow_address_conflict":false}"#,
            "GET /detailed ",
            r#"POST /register/bulk {"points":[{"key":"d.c","data_type":"bool"}],"allow_address_conflict":false}"#,
        ]
    );
}

#[test]
fn a_restart_with_new_ids_re_registers_and_resends_what_the_old_ids_lost() {
    let mut sync = sync(BacklogPolicy::History);
    sync.run_for(Duration::from_millis(300));
    let old = ids(&sync, &["d.a", "d.b"]);
    let seen = sync.dataservice.request_lines().len();
    sync.restart_dataservice();
    sync.run_for(Duration::from_millis(500));
    let new = ids(&sync, &["d.a", "d.b"]);
    assert_ne!(old, new);
    let (a, b, old_a) = (&new[0], &new[1], &old[0]);
    assert_eq!(
        sync.dataservice.request_lines()[seen..],
        [
            format!(r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{old_a}","value":4}}]}}"#),
            format!(
                r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{a}","value":4}},{{"id":"{b}","value":1.5}}]}}"#
            ),
            format!(r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{a}","value":5}}]}}"#),
            format!(r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{a}","value":6}}]}}"#),
            format!(r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{a}","value":7}}]}}"#),
            format!(r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{a}","value":8}}]}}"#),
        ]
    );
    assert_eq!(sync.writes_of("d.a"), numbers(1..=8));
    let stats = sync.engine().stats();
    assert_eq!(
        (stats.dataservice_restarts_total, stats.ids_not_found_total),
        (1, 1)
    );
    assert_eq!(
        sync.log.last().map(String::as_str),
        Some(
            "Data-Service restart assumed (a write answered \"id not found\"): checking \
             registrations and writing every value again"
        )
    );
}

#[test]
fn an_outage_is_replayed_in_order_and_the_newest_value_arrives_as_the_dataservice_returns() {
    let mut sync = sync(BacklogPolicy::History);
    sync.run_for(Duration::from_millis(300));
    sync.stop_dataservice();
    sync.run_for(Duration::from_millis(500));
    assert_eq!(sync.engine().pending(), 5, "the changes of the outage wait");
    sync.resume_dataservice();
    let back = sync.now();
    assert!(sync.run_until(Duration::from_secs(1), |s| {
        s.writes_of("d.a").last() == Some(&json!(s.fetches()))
    }));
    assert_eq!((sync.now() - back).total_millis(), 4);
    assert_eq!(sync.writes_of("d.a"), numbers(1..=9));
    assert_eq!(sync.writes_of("d.b"), [json!(1.5)]);
    sync.run_for(Duration::from_millis(300));
    assert_eq!(sync.writes_of("d.a"), numbers(1..=11));
    assert_eq!(
        sync.writes_of("d.b"),
        [json!(1.5), json!(1.5)],
        "written again once the restart it assumed was checked"
    );
    assert_eq!(
        sync.log[3..],
        [
            "sink down: socket does not exist; values stay pending and are retried with backoff",
            "sink up: Data-Service accepted a write (after 5 failed attempts, down for 0.502s)",
            "Data-Service restart assumed (its socket came back after an outage): checking \
             registrations and writing every value again",
        ]
    );
}

#[test]
fn shutdown_delivers_what_waits_or_ends_at_once_while_the_dataservice_is_down() {
    let mut up = sync(BacklogPolicy::History);
    up.sink_latency = Duration::from_millis(150);
    up.run_for(Duration::from_secs(1));
    assert_eq!((up.engine().pending(), up.fetches()), (1, 7));
    up.shutdown();
    let took = up.drain_shutdown(Duration::from_secs(5));
    assert_eq!(took, Some(Duration::from_millis(68)));
    assert_eq!(up.engine().pending(), 0);
    assert_eq!(up.writes_of("d.a"), numbers(1..=7));

    let mut down = sync(BacklogPolicy::History);
    down.sink_latency = Duration::from_millis(150);
    down.run_for(Duration::from_secs(1));
    down.stop_dataservice();
    down.run_for(Duration::from_millis(300));
    down.shutdown();
    assert_eq!(
        down.drain_shutdown(Duration::from_secs(5)),
        Some(Duration::ZERO)
    );
    assert_eq!((down.engine().pending(), down.fetches()), (4, 10));
    assert_eq!(down.writes_of("d.a"), numbers(1..=6));
}

#[test]
#[should_panic(expected = "livelock: 1000 inputs at 1000 ms without the clock moving")]
fn a_sync_that_never_lets_the_clock_move_is_a_livelock() {
    let mut config = config(BacklogPolicy::Latest);
    config.interval = Duration::ZERO;
    let mut sync = SimulatedSync::new(config, 7, Duration::from_millis(2));
    sync.run_for(Duration::from_millis(100));
}

#[test]
fn a_30_s_outage_with_history_loses_no_change_and_replays_every_round_in_order() {
    let mut config = config(BacklogPolicy::History);
    // Every change kept, however late the live values (as in the e2e test).
    config.max_drain = Some(Duration::from_secs(600));
    let mut sync = SimulatedSync::new(config, 11, Duration::from_millis(2));
    sync.set_source(|n| {
        let (int, float, flip) = (n.to_string(), format!("{n}.5"), (n % 2 == 0).to_string());
        Some(polled_document(
            &[("d", "a", &int), ("d", "b", &float), ("d", "c", &flip)],
            n,
        ))
    });
    sync.run_for(Duration::from_millis(500));
    let before = sync.fetches();
    sync.stop_dataservice();
    sync.run_for(Duration::from_secs(30));
    let during = sync.fetches() - before;
    assert_eq!(
        during, 300,
        "one fetch per interval while the Data-Service is away"
    );
    sync.resume_dataservice();
    assert!(sync.run_until(Duration::from_secs(10), |s| s.engine().pending() == 0));
    let n = sync.fetches();
    assert_eq!(sync.writes_of("d.a"), numbers(1..=n));
    assert_eq!(
        sync.writes_of("d.b"),
        (1..=n).map(|r| json!(r as f64 + 0.5)).collect::<Vec<_>>()
    );
    assert_eq!(
        sync.writes_of("d.c"),
        (1..=n).map(|r| json!(r % 2 == 0)).collect::<Vec<_>>()
    );
    let stats = sync.engine().stats();
    assert_eq!(stats.backlog_dropped_total, 0);
    assert_eq!(stats.writes_ok_total, 3 * n);
}
