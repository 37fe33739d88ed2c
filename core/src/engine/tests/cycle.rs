//! Cycles, delivery, outages and shutdown, by key and in bulk.

use super::transcript::{at, cycle_with, events, transmits};
use crate::engine::*;
use crate::reject::RejectReason;
use crate::table::ArrayStorage;
use std::string::String;
use std::vec::Vec;

type TestEngine = Engine<ArrayStorage<4, 8, 256>>;

/// An engine that writes by key without registry checks.
fn engine() -> TestEngine {
    engine_over(ArrayStorage::new())
}

/// An engine over `storage`, without registry checks.
fn engine_over<S: TableStorage>(storage: S) -> Engine<S> {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    Engine::new(config, storage)
}

const DOC: &[u8] = br#"{"d": {"a": {"value": 1, "status": "ok"}, "b": {"value": "x", "status": "ok"}, "c": {"value": null, "status": "modbus_error"}}}"#;
const OK: &[u8] = br#"{"ok": true}"#;

#[test]
fn a_cycle_writes_every_good_read_and_counts_it() {
    let mut e = engine();
    cycle_with(&mut e, at(0), DOC);
    let sent = transmits(&mut e, at(1));
    assert_eq!(
        sent.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
        [
            "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1}\n",
            "{\"action\":\"write\",\"key\":\"d.b\",\"value\":\"x\"}\n",
        ]
    );
    assert_eq!(e.stats().sync_cycles_total, 0);
    e.handle_sink_response(at(2), sent[0].0, OK);
    e.handle_sink_response(at(3), sent[1].0, OK);
    let stats = e.stats();
    assert_eq!(
        (
            stats.sync_cycles_total,
            stats.writes_ok_total,
            stats.reads_good_total,
            stats.reads_failed_total
        ),
        (1, 2, 2, 1)
    );
    assert_eq!(stats.last_sync_at, Some(at(3)));
    assert_eq!(e.pending(), 0);
    assert_eq!(
        events(&mut e),
        [
            "source up: document accepted with 2 good reads",
            "sink up: Data-Service accepted a write",
        ]
    );
}

#[test]
fn a_cycle_reports_how_long_its_fetch_took() {
    let mut e = engine();
    e.handle_tick(at(0));
    assert_eq!(e.poll_action(at(0)), Some(Action::FetchSource));
    e.handle_source_body(at(12), DOC);
    for (request, _) in transmits(&mut e, at(12)) {
        e.handle_sink_response(at(30), request, OK);
    }
    assert_eq!(e.stats().last_cycle_duration, Duration::from_millis(30));
    assert_eq!(e.stats().last_fetch_duration, Duration::from_millis(12));
    // A failed fetch counts until it failed.
    e.handle_tick(at(1000));
    assert_eq!(e.poll_action(at(1000)), Some(Action::FetchSource));
    e.handle_source_error(at(1005), SourceError::Refused);
    assert!(transmits(&mut e, at(1005)).is_empty());
    assert_eq!(e.stats().last_cycle_duration, Duration::from_millis(5));
    assert_eq!(e.stats().last_fetch_duration, Duration::from_millis(5));
    assert_eq!(e.stats().cycle_duration_total_ms, 35);
    assert_eq!(e.stats().fetch_duration_total_ms, 17);
}

#[test]
fn a_tick_during_a_cycle_is_an_overrun_and_the_next_cycle_follows_at_once() {
    let mut e = engine();
    cycle_with(&mut e, at(0), DOC);
    let sent = transmits(&mut e, at(0));
    e.handle_tick(at(1000));
    e.handle_tick(at(2000));
    assert_eq!(e.stats().cycles_overrun_total, 2);
    assert_eq!(e.poll_action(at(2000)), None);
    for (request, _) in sent {
        e.handle_sink_response(at(2500), request, OK);
    }
    assert_eq!(e.poll_action(at(2500)), Some(Action::FetchSource));
    // That cycle overruns too: still one episode, one line.
    e.handle_tick(at(3000));
    e.handle_source_body(at(3000), DOC);
    for (request, _) in transmits(&mut e, at(3000)) {
        e.handle_sink_response(at(3100), request, OK);
    }
    assert_eq!(e.poll_action(at(3100)), Some(Action::FetchSource));
    e.handle_source_body(at(3200), DOC);
    for (request, _) in transmits(&mut e, at(3200)) {
        e.handle_sink_response(at(3300), request, OK);
    }
    // On time again.
    e.handle_tick(at(4000));
    assert_eq!(e.stats().cycles_overrun_total, 3);
    let logged = events(&mut e);
    assert_eq!(
        logged
            .iter()
            .filter(|l| l.starts_with("cycle"))
            .collect::<Vec<_>>(),
        [
            "cycle overrun: previous cycle still running after 1.000s; cycles run back to back until they fit the interval again",
            "cycles fit the interval again after 3 overrun ticks",
        ]
    );
}

#[test]
fn a_sink_outage_is_logged_once_and_values_stay_pending_until_delivered() {
    let mut e = engine();
    cycle_with(&mut e, at(0), DOC);
    let sent = transmits(&mut e, at(0));
    e.handle_sink_error(at(1), sent[0].0, SinkError::SocketMissing);
    e.handle_sink_error(at(1), sent[1].0, SinkError::SocketMissing);
    assert_eq!(e.stats().writes_failed_total, 2);
    assert_eq!(e.stats().sync_cycles_total, 1);
    assert_eq!(e.pending(), 2);
    // Three more cycles while down: one probe each once the backoff ran out.
    let mut probes = 0;
    for n in 1..=3u64 {
        cycle_with(&mut e, at(n * 1000), DOC);
        for (request, line) in transmits(&mut e, at(n * 1000)) {
            assert_eq!(line, "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1}\n");
            probes += 1;
            e.handle_sink_error(at(n * 1000 + 1), request, SinkError::SocketMissing);
        }
    }
    assert_eq!(probes, 3);
    assert_eq!(e.stats().sync_cycles_total, 4);
    // Back: the probe succeeds and the rest of the cycle follows.
    cycle_with(&mut e, at(4000), DOC);
    let sent = transmits(&mut e, at(4000));
    assert_eq!(sent.len(), 1);
    e.handle_sink_response(at(4001), sent[0].0, OK);
    let rest = transmits(&mut e, at(4001));
    assert_eq!(rest.len(), 1);
    e.handle_sink_response(at(4002), rest[0].0, OK);
    assert_eq!(e.pending(), 0);
    let logged = events(&mut e);
    let sink: Vec<_> = logged.iter().filter(|l| l.starts_with("sink")).collect();
    assert_eq!(
        sink,
        [
            "sink down: socket does not exist; values stay pending and are retried with backoff",
            "sink up: Data-Service accepted a write (after 5 failed attempts, down for 4.000s)",
        ]
    );
}

#[test]
fn a_busy_backlog_is_retried_after_a_pause_and_is_not_a_failure() {
    let mut e = engine();
    cycle_with(&mut e, at(0), DOC);
    let sent = transmits(&mut e, at(0));
    e.handle_sink_error(at(0), sent[0].0, SinkError::Busy);
    assert_eq!(e.poll_timeout(), Some(at(5)));
    e.handle_sink_response(at(1), sent[1].0, OK);
    assert!(transmits(&mut e, at(4)).is_empty());
    let again = transmits(&mut e, at(5));
    assert_eq!(again.len(), 1);
    assert!(again[0].1.contains("\"d.a\""));
    e.handle_sink_response(at(6), again[0].0, OK);
    let s = e.stats();
    assert_eq!(
        (s.writes_ok_total, s.writes_failed_total, s.sink_busy_total),
        (2, 0, 1)
    );
    assert_eq!(s.sync_cycles_total, 1);
}

#[test]
fn a_broken_document_applies_nothing_and_is_reported_once() {
    let mut e = engine();
    for n in 0..3 {
        cycle_with(&mut e, at(n * 1000), &DOC[..DOC.len() - 5]);
        assert!(transmits(&mut e, at(n * 1000)).is_empty());
    }
    assert_eq!(e.table().len(), 0);
    assert_eq!(e.stats().documents_rejected_total, 3);
    assert_eq!(e.stats().sync_cycles_total, 3);
    assert_eq!(e.stats().last_sync_at, None);
    assert_eq!(
        events(&mut e),
        [
            "source down: document rejected, nothing applied: invalid JSON: JSON ends unexpectedly (truncated); retrying every interval"
        ]
    );
    assert_eq!(e.stats().recent_errors.len(), 3);
}

#[test]
fn readings_beyond_the_staging_room_refuse_the_document_whole() {
    // 48 bytes: the first readings of two new tags ("d.a" and "d.b",
    // 24 bytes each with a number), not three.
    let mut e: Engine<ArrayStorage<4, 8, 256, 0, 48>> = engine_over(ArrayStorage::new());
    let three = br#"{"d": {"a": {"value": 1, "status": "ok"}, "b": {"value": 2, "status": "ok"}, "c": {"value": 3, "status": "ok"}}}"#;
    cycle_with(&mut e, at(0), three);
    assert!(transmits(&mut e, at(0)).is_empty());
    assert_eq!(e.table().len(), 0);
    assert_eq!(
        (
            e.stats().documents_rejected_total,
            e.stats().reads_good_total
        ),
        (1, 0)
    );
    assert_eq!(
        events(&mut e),
        [
            "source down: document rejected, nothing applied: its readings need more than the 48 bytes that hold them until it is known whole; retrying every interval"
        ]
    );
    let two = br#"{"d": {"a": {"value": 1, "status": "ok"}, "b": {"value": 2, "status": "ok"}}}"#;
    cycle_with(&mut e, at(1000), two);
    let lines: Vec<String> = transmits(&mut e, at(1000))
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        lines,
        [
            "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1}\n",
            "{\"action\":\"write\",\"key\":\"d.b\",\"value\":2}\n",
        ]
    );
    assert_eq!(e.stats().reads_good_total, 2);
}

#[test]
fn rejections_past_those_named_in_one_document_are_counted_by_reason() {
    let mut e: Engine<ArrayStorage<4, 8, 256, 0, 65536>> = engine_over(ArrayStorage::new());
    let bad: Vec<String> = (0..REJECTED_KEYS_LOGGED + 5)
        .map(|i| std::format!(r#""t{i}": {{"value": null, "status": "ok"}}"#))
        .collect();
    let doc = std::format!(
        r#"{{"d": {{{}, "a": {{"value": 1, "status": "ok"}}}}}}"#,
        bad.join(", ")
    );
    cycle_with(&mut e, at(0), doc.as_bytes());
    let s = e.stats();
    assert_eq!(
        s.tags_rejected_total[RejectReason::NullValue.index()],
        REJECTED_KEYS_LOGGED as u64 + 5
    );
    assert_eq!(s.reads_good_total, 1);
    // Each named one is reported, then the source coming up: the event
    // queue keeps that state change in the place of the newest rejection
    // and sums up the rest in one line.
    let summed_up = s.events_dropped_total;
    let logged = events(&mut e);
    let named = logged
        .iter()
        .filter(|l| l.starts_with("tag rejected"))
        .count();
    assert_eq!(
        (named, named as u64 + summed_up),
        (31, REJECTED_KEYS_LOGGED as u64)
    );
    assert_eq!(
        logged[31..],
        [
            std::string::String::from("source up: document accepted with 1 good reads"),
            std::format!("and {summed_up} more tags rejected: see /api/tags"),
        ]
    );
    assert_eq!(transmits(&mut e, at(0)).len(), 1);
}

#[test]
fn tags_over_capacity_are_counted_and_the_others_keep_syncing() {
    let mut e = engine();
    let doc = br#"{"d": {"1": {"value": 1, "status": "ok"}, "2": {"value": 2, "status": "ok"}, "3": {"value": 3, "status": "ok"}, "4": {"value": 4, "status": "ok"}, "5": {"value": 5, "status": "ok"}, "6": {"value": 6, "status": "ok"}}}"#;
    cycle_with(&mut e, at(0), doc);
    let sent = transmits(&mut e, at(0));
    assert_eq!(sent.len(), 4);
    for (request, _) in sent {
        e.handle_sink_response(at(1), request, OK);
    }
    cycle_with(&mut e, at(1000), doc);
    // Unchanged values are not written again (report by exception).
    assert_eq!(transmits(&mut e, at(1000)).len(), 0);
    assert_eq!(e.stats().writes_suppressed_total, 4);
    assert_eq!(e.stats().tags_over_capacity_total, 4);
    let logged = events(&mut e);
    assert_eq!(
        logged
            .iter()
            .filter(|l| l.starts_with("tag table full (4 tags): 2 tags left out"))
            .count(),
        1
    );
}

#[test]
fn rejected_tags_are_logged_once_but_counted_every_cycle() {
    let mut e = engine();
    let doc = br#"{"d": {"n": {"value": NaN, "status": "ok"}}}"#;
    for n in 0..3 {
        cycle_with(&mut e, at(n * 1000), doc);
    }
    assert_eq!(e.stats().rejected(crate::RejectReason::NonFiniteNumber), 3);
    let logged = events(&mut e);
    assert_eq!(
        logged
            .iter()
            .filter(|l| l.starts_with("tag rejected"))
            .collect::<Vec<_>>(),
        ["tag rejected (non_finite_number), not written: d/n"]
    );
}

#[test]
fn shutdown_finishes_in_flight_writes_and_starts_no_new_cycle() {
    let mut e = engine();
    cycle_with(&mut e, at(0), DOC);
    let sent = transmits(&mut e, at(0));
    e.handle_shutdown(at(10));
    assert!(!e.is_drained());
    e.handle_tick(at(1000));
    for (request, _) in sent {
        e.handle_sink_response(at(20), request, OK);
    }
    assert!(e.is_drained());
    assert_eq!(e.poll_action(at(1000)), None);
    assert_eq!(e.stats().writes_ok_total, 2);
}

#[test]
fn an_old_acknowledgement_does_not_clear_a_newer_value() {
    let mut e = engine();
    cycle_with(
        &mut e,
        at(0),
        br#"{"d": {"a": {"value": 1, "status": "ok"}}}"#,
    );
    let sent = transmits(&mut e, at(0));
    e.handle_sink_error(at(1), sent[0].0, SinkError::Timeout);
    cycle_with(
        &mut e,
        at(1000),
        br#"{"d": {"a": {"value": 2, "status": "ok"}}}"#,
    );
    let sent = transmits(&mut e, at(1000));
    assert_eq!(
        sent[0].1,
        "{\"action\":\"write\",\"key\":\"d.a\",\"value\":2}\n"
    );
    e.handle_sink_response(
        at(1001),
        sent[0].0,
        br#"{"ok": false, "error": "key required"}"#,
    );
    assert_eq!(e.pending(), 1);
    assert_eq!(e.stats().writes_failed_total, 2);
    let logged = events(&mut e);
    assert!(
        logged.contains(&String::from(
            "write rejected by the Data-Service: d.a: key required"
        )),
        "{logged:?}"
    );
}
