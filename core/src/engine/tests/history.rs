//! The `history` backlog: every change delivered once, in order, across
//! outages; a full backlog drops the oldest; the spool sees exactly the
//! undelivered changes; replayed changes go before live ones.

use std::string::String;
use std::vec::Vec;

use super::transcript::{at, cycle_with, events, transmits};
use crate::engine::*;
use crate::table::ArrayStorage;
use crate::value::Value;
use crate::wire::spool::{Frame, decode};

type TestEngine = Engine<ArrayStorage<4, 8, 256, 2048>>;

const OK: &[u8] = br#"{"ok": true}"#;

fn engine() -> TestEngine {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    config.backlog = BacklogPolicy::History;
    config.spool = true;
    Engine::new(config, ArrayStorage::new())
}

fn doc(a: i64, b: i64) -> Vec<u8> {
    std::format!(
        r#"{{"d": {{"a": {{"value": {a}, "status": "ok", "timestamp": 100}}, "b": {{"value": {b}, "status": "ok"}}}}}}"#
    )
    .into_bytes()
}

/// Answers every transmit `ok` until none is left; returns the lines.
fn deliver<S: TableStorage>(e: &mut Engine<S>, now: Instant) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let sent = transmits(e, now);
        if sent.is_empty() {
            return lines;
        }
        for (request, line) in sent {
            e.handle_sink_response(now, request, OK);
            lines.push(line);
        }
    }
}

/// Frames the engine hands to the spool.
fn spooled(e: &mut TestEngine) -> Vec<(u64, String, String)> {
    let mut buf = [0u8; crate::wire::spool::MAX_FRAME_LEN];
    let mut out = Vec::new();
    while let Some(frame) = e.poll_spool(&mut buf) {
        match decode(&buf[..frame.len]) {
            Ok((Frame::Change(c), _)) => {
                assert_eq!(c.seq, frame.seq);
                out.push((c.seq, c.key.into(), std::format!("{}", c.value)))
            }
            other => panic!("{other:?}"),
        }
    }
    out
}

fn write(key: &str, value: i64) -> String {
    std::format!("{{\"action\":\"write\",\"key\":\"{key}\",\"value\":{value}}}\n")
}

#[test]
fn every_change_made_during_an_outage_is_delivered_once_in_order() {
    let mut e = engine();
    cycle_with(&mut e, at(0), &doc(1, 10));
    // The Data-Service is down: both writes fail.
    for (request, _) in transmits(&mut e, at(0)) {
        e.handle_sink_error(at(0), request, SinkError::Refused);
    }
    assert!(e.is_idle());
    // Three more cycles while down; b does not change in the second.
    cycle_with(&mut e, at(1000), &doc(2, 11));
    for (request, _) in transmits(&mut e, at(1000)) {
        e.handle_sink_error(at(1000), request, SinkError::Refused);
    }
    cycle_with(&mut e, at(2000), &doc(3, 11));
    for (request, _) in transmits(&mut e, at(2000)) {
        e.handle_sink_error(at(2000), request, SinkError::Refused);
    }
    assert_eq!(e.pending(), 5);
    assert_eq!(e.stats().writes_suppressed_total, 1);
    // Back: the next cycle delivers the five changes, each tag in order,
    // then the unchanged document adds nothing.
    cycle_with(&mut e, at(3000), &doc(3, 11));
    assert_eq!(
        deliver(&mut e, at(3000)),
        [
            write("d.a", 1),
            write("d.b", 10),
            write("d.a", 2),
            write("d.b", 11),
            write("d.a", 3),
        ]
    );
    assert_eq!(e.pending(), 0);
    assert!(e.is_idle());
    assert_eq!(e.stats().writes_ok_total, 5);
    assert_eq!(e.spool_acked_through(), 5);
}

#[test]
fn a_full_backlog_drops_the_oldest_change_and_says_so_once() {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    config.backlog = BacklogPolicy::History;
    // Room for four numeric changes (37 bytes each) and a bit.
    let mut e: Engine<ArrayStorage<4, 8, 256, 160>> = Engine::new(config, ArrayStorage::new());
    for (i, t) in [0u64, 1000, 2000, 3000].into_iter().enumerate() {
        let i = i as i64;
        cycle_with(&mut e, at(t), &doc(i, 10 + i));
        for (request, _) in transmits(&mut e, at(t)) {
            e.handle_sink_error(at(t), request, SinkError::Refused);
        }
    }
    assert_eq!(e.stats().backlog_dropped_total, 4);
    let logged = events(&mut e);
    let full: Vec<&String> = logged
        .iter()
        .filter(|l| l.starts_with("backlog full"))
        .collect();
    assert_eq!(full.len(), 1, "{logged:?}");
    cycle_with(&mut e, at(4000), &doc(3, 13));
    assert_eq!(
        deliver(&mut e, at(4000)),
        [
            write("d.a", 2),
            write("d.b", 12),
            write("d.a", 3),
            write("d.b", 13)
        ]
    );
}

#[test]
fn the_spool_gets_what_was_not_delivered_and_nothing_twice() {
    let mut e = engine();
    // Delivered at once: nothing for the spool.
    cycle_with(&mut e, at(0), &doc(1, 10));
    assert_eq!(deliver(&mut e, at(0)).len(), 2);
    assert!(spooled(&mut e).is_empty());
    // Down: the cycle's changes are spooled, once.
    cycle_with(&mut e, at(1000), &doc(2, 11));
    for (request, _) in transmits(&mut e, at(1000)) {
        e.handle_sink_error(at(1000), request, SinkError::Refused);
    }
    assert_eq!(
        spooled(&mut e),
        [
            (3, "d.a".into(), "2".into()),
            (4, "d.b".into(), "11".into())
        ]
    );
    assert!(spooled(&mut e).is_empty());
    cycle_with(&mut e, at(2000), &doc(3, 11));
    let _ = transmits(&mut e, at(2000));
    assert_eq!(spooled(&mut e), [(5, "d.a".into(), "3".into())]);
    assert_eq!(e.spool_acked_through(), 2);
    // Shutdown flushes nothing new: everything undelivered is on disk.
    e.flush_to_spool();
    assert!(spooled(&mut e).is_empty());
}

#[test]
fn replayed_changes_go_out_before_live_ones_and_numbering_continues() {
    let mut e = engine();
    for (seq, value) in [(41u64, 7i64), (42, 8)] {
        let change = spool::Change {
            seq,
            source_time_ms: 5,
            key: "d.a",
            value: Value::Int(value),
        };
        assert!(e.handle_replayed(at(0), &change));
    }
    assert_eq!(e.stats().replayed_total, 2);
    assert_eq!(e.spool_acked_through(), 40);
    cycle_with(&mut e, at(0), &doc(9, 10));
    assert_eq!(
        deliver(&mut e, at(0)),
        [
            write("d.a", 7),
            write("d.b", 10),
            write("d.a", 8),
            write("d.a", 9)
        ]
    );
    assert_eq!(e.spool_acked_through(), 44);
    // Replayed changes are already on disk: nothing spooled twice.
    assert!(spooled(&mut e).is_empty());
}

#[test]
fn replay_is_limited_per_cycle_for_tags_that_did_not_change_again() {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    config.backlog = BacklogPolicy::History;
    // One change per one-second cycle.
    config.replay_rate = 1;
    let mut e: TestEngine = Engine::new(config, ArrayStorage::new());
    for (seq, key, value) in [
        (1u64, "d.a", 7i64),
        (2, "d.a", 8),
        (3, "d.c", 1),
        (4, "d.c", 2),
    ] {
        let change = spool::Change {
            seq,
            source_time_ms: 0,
            key,
            value: Value::Int(value),
        };
        e.handle_replayed(at(0), &change);
    }
    // d.a changes again: its history goes now, in order, before its new
    // value (it is not held back by the budget). d.c did not: one of its
    // changes a cycle.
    cycle_with(&mut e, at(0), &doc(9, 10));
    assert_eq!(
        deliver(&mut e, at(0)),
        [
            write("d.a", 7),
            write("d.b", 10),
            write("d.a", 8),
            write("d.a", 9)
        ]
    );
    cycle_with(&mut e, at(1000), &doc(9, 10));
    assert_eq!(deliver(&mut e, at(1000)), [write("d.c", 1)]);
    cycle_with(&mut e, at(2000), &doc(9, 10));
    assert_eq!(deliver(&mut e, at(2000)), [write("d.c", 2)]);
    assert_eq!(e.pending(), 0);
}
