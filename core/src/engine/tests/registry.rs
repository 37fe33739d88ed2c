//! The registry check: `/detailed`, registration, ids, and restarts of
//! the Data-Service.

use super::transcript::{at, cycle_with as fetch, events, fetch_due, transmits, waiting_cycle};
use crate::engine::*;
use crate::table::{ArrayStorage, Registration};
use std::string::String;
use std::vec::Vec;

/// With room for a `history` backlog.
type TestEngine = Engine<ArrayStorage<8, 16, 512, 1024>>;

const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const DOC: &[u8] =
    br#"{"d": {"a": {"value": 1.5, "status": "ok"}, "b": {"value": "x", "status": "ok"}}}"#;
const D2: &[u8] =
    br#"{"d": {"a": {"value": 2.5, "status": "ok"}, "b": {"value": "x", "status": "ok"}}}"#;
const DETAILED_A: &[u8] = br#"{"d.a": {"key": "d.a", "value": 0.0, "default": 0.0, "address": 40001, "data_type": "float", "units": "C", "timestamp": 1, "quality": "GOOD", "last_change": 1}}"#;

fn engine(register: RegisterMode) -> TestEngine {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.register = register;
    Engine::new(config, ArrayStorage::new())
}

/// With `--backlog history`: cycles go on while a check that every
/// tag waits for runs.
fn history_engine(register: RegisterMode) -> TestEngine {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.register = register;
    config.backlog = BacklogPolicy::History;
    Engine::new(config, ArrayStorage::new())
}

/// Drives the API requests: each (method, path, body) seen is answered
/// by `answer`.
fn api(
    e: &mut TestEngine,
    now: Instant,
    mut answer: impl FnMut(&str, &str) -> (u16, String),
) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(request) = api_once(e, now, &mut answer) {
        seen.push(request);
    }
    seen
}

/// Drives the next API request, if any: answered by `answer` at `now`.
fn api_once(
    e: &mut TestEngine,
    now: Instant,
    answer: &mut impl FnMut(&str, &str) -> (u16, String),
) -> Option<String> {
    let mut buf = [0u8; 4096];
    let Some(req) = e.poll_api_request(now, &mut buf) else {
        // The check may be over: the runner carries that out at once.
        e.handle_timeout(now);
        return None;
    };
    let body = String::from_utf8(buf[..req.body_len].to_vec()).unwrap();
    let (status, reply) = answer(req.path, &body);
    // Streamed as the runner does: 7-byte parts, the unused rest kept.
    let mut held = Vec::new();
    for part in reply.as_bytes().chunks(7) {
        held.extend_from_slice(part);
        let used = e.handle_api_body_part(now, status, &mut held);
        held.drain(..used);
    }
    e.handle_api_response(now, status, &mut held);
    Some(std::format!("{} {} {}", req.method, req.path, body))
}

/// The request lines the engine sends now.
fn sent_lines(e: &mut TestEngine, now: Instant) -> Vec<String> {
    transmits(e, now)
        .into_iter()
        .map(|(_, line)| line)
        .collect()
}

fn registry_answer(path: &str, body: &str) -> (u16, String) {
    match path {
        "/detailed" => (200, String::from_utf8(DETAILED_A.to_vec()).unwrap()),
        _ => {
            let mut results = Vec::new();
            if body.contains("\"key\":\"d.a\"") {
                results.push(std::format!(
                    r#"{{"index": {}, "key": "d.a", "id": "{ID_A}", "ok": true}}"#,
                    results.len()
                ));
            }
            if body.contains("\"key\":\"d.b\"") {
                results.push(std::format!(
                    r#"{{"index": {}, "key": "d.b", "id": "{ID_B}", "ok": true}}"#,
                    results.len()
                ));
            }
            (
                200,
                std::format!(
                    r#"{{"ok": true, "results": [{}], "errors": []}}"#,
                    results.join(", ")
                ),
            )
        }
    }
}

#[test]
fn metadata_beyond_the_slot_room_keeps_the_tag_on_write_by_key() {
    // "0.0" and 14 bytes of units fill the 17 bytes a slot keeps; one
    // more byte of units does not fit.
    for (units, kept) in [("u".repeat(14), true), ("u".repeat(15), false)] {
        let detailed = std::format!(
            r#"{{"d.a": {{"key": "d.a", "default": 0.0, "address": 40001, "data_type": "float", "units": "{units}"}}}}"#
        );
        let mut e = engine(RegisterMode::Off);
        waiting_cycle(&mut e, at(0), DOC);
        let seen = api(&mut e, at(0), |path, body| match path {
            "/detailed" => (200, detailed.clone()),
            _ => registry_answer(path, body),
        });
        let register = std::format!(
            r#"POST /register/bulk {{"points":[{{"key":"d.a","address":40001,"default":0.0,"data_type":"float","units":"{units}"}}],"allow_address_conflict":false}}"#
        );
        let a = e.table().find("d.a").unwrap();
        if kept {
            assert_eq!(seen, ["GET /detailed ", register.as_str()]);
            assert_eq!(
                e.table().slots()[a].registration(),
                Registration::Registered
            );
        } else {
            assert_eq!(seen, ["GET /detailed "]);
            assert_eq!(e.table().slots()[a].registration(), Registration::ByKeyOnly);
            assert_eq!(
                sent_lines(&mut e, at(1))[0],
                "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1.5}\n"
            );
        }
    }
}

#[test]
fn off_mode_fetches_ids_without_side_effects_and_reports_missing_keys() {
    let mut e = engine(RegisterMode::Off);
    waiting_cycle(&mut e, at(0), DOC);
    let seen = api(&mut e, at(0), registry_answer);
    assert_eq!(
        seen,
        [
            "GET /detailed ",
            r#"POST /register/bulk {"points":[{"key":"d.a","address":40001,"default":0.0,"data_type":"float","units":"C"}],"allow_address_conflict":false}"#,
        ]
    );
    let sent = transmits(&mut e, at(1));
    let lines: Vec<&str> = sent.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        lines,
        [
            "{\"action\":\"bulk_write_by_id\",\"updates\":[{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"value\":1.5}]}\n",
            "{\"action\":\"write\",\"key\":\"d.b\",\"value\":\"x\"}\n",
        ]
    );
    e.handle_sink_response(
        at(2),
        sent[0].0,
        std::format!(
            r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}]}}"#
        )
        .as_bytes(),
    );
    e.handle_sink_response(at(2), sent[1].0, br#"{"ok": true}"#);
    assert_eq!(e.stats().writes_ok_total, 2);
    assert_eq!(e.stats().registrations_total, 1);
    assert_eq!(e.unregistered(), 1);
    let logged = events(&mut e);
    assert!(logged.contains(&String::from(
        "key not registered in the Data-Service, its writes are dropped there (--register missing would register it): d.b"
    )), "{logged:?}");
    // Next cycle, same values: nothing is written and the registry is not asked again.
    fetch(&mut e, at(1000), DOC);
    assert!(api(&mut e, at(1000), registry_answer).is_empty());
    assert!(transmits(&mut e, at(1000)).is_empty());
    assert_eq!(e.stats().writes_suppressed_total, 2);
    assert_eq!(e.stats().sync_cycles_total, 2);
    assert_eq!(e.stats().registry_checks_total, 1);
    // The first cycle did not wait for the check (the catch-up pass
    // that sent its tags is no cycle).
    assert_eq!(e.stats().cycle_durations.as_slice(), [0, 0]);
}

#[test]
fn ticks_fetch_nothing_while_every_tag_waits_for_the_check_and_a_cycle_follows_it() {
    let mut e = engine(RegisterMode::Missing);
    // The first cycle ends at once: its tags wait for the check, which
    // starts then.
    waiting_cycle(&mut e, at(0), DOC);
    assert_eq!(e.stats().sync_cycles_total, 1);
    // Nothing could be delivered: the ticks during the check fetch
    // nothing, and are no overruns.
    e.handle_tick(at(100));
    assert_eq!(e.poll_action(at(100)), None);
    assert_eq!(
        api_once(&mut e, at(110), &mut registry_answer).as_deref(),
        Some("GET /detailed ")
    );
    e.handle_tick(at(200));
    let register = api_once(&mut e, at(250), &mut registry_answer).unwrap();
    assert!(register.starts_with("POST /register/bulk "), "{register}");
    assert_eq!(api_once(&mut e, at(250), &mut registry_answer), None);
    assert!(!e.is_registering());
    assert_eq!(e.stats().cycles_skipped_total, 2);
    assert_eq!(e.stats().cycles_overrun_total, 0);
    assert_eq!(e.stats().registry_checks_total, 1);
    assert_eq!(
        e.stats().last_registry_check_duration,
        Duration::from_millis(250)
    );
    // A cycle follows at once, with fresh values, all by id: the values
    // read at 0 were never sent.
    fetch_due(&mut e, at(250), D2);
    assert_eq!(e.stats().writes_superseded_total, 2);
    let sent = transmits(&mut e, at(250));
    assert_eq!(
        sent.iter()
            .map(|(_, line)| line.as_str())
            .collect::<Vec<_>>(),
        [std::format!(
            "{{\"action\":\"bulk_write_by_id\",\"updates\":[{{\"id\":\"{ID_A}\",\"value\":2.5}},{{\"id\":\"{ID_B}\",\"value\":\"x\"}}]}}\n"
        )]
    );
    e.handle_sink_response(
        at(260),
        sent[0].0,
        std::format!(r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}, {{"id": "{ID_B}", "ok": true, "key": "d.b"}}]}}"#).as_bytes(),
    );
    assert!(e.is_idle());
    assert_eq!(e.pending(), 0);
    assert_eq!(e.stats().sync_cycles_total, 2);
    assert_eq!(e.stats().cycle_durations.as_slice(), [0, 10]);
}

#[test]
fn with_an_interval_longer_than_the_check_a_catch_up_pass_sends_its_tags_at_once() {
    let mut e = engine(RegisterMode::Missing);
    waiting_cycle(&mut e, at(0), DOC);
    api(&mut e, at(300), registry_answer);
    // No tick came: the values read at 0 go now, in a pass that is no
    // cycle; a tick during it ends it, and the cycle follows.
    let sent = transmits(&mut e, at(300));
    assert_eq!(sent.len(), 1);
    e.handle_tick(at(1000));
    e.handle_sink_response(
        at(1005),
        sent[0].0,
        std::format!(r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}, {{"id": "{ID_B}", "ok": true, "key": "d.b"}}]}}"#).as_bytes(),
    );
    assert_eq!(e.stats().writes_ok_total, 2);
    assert_eq!(e.stats().sync_cycles_total, 1);
    assert_eq!(e.stats().cycles_overrun_total, 0);
    fetch_due(&mut e, at(1005), D2);
    assert_eq!(sent_lines(&mut e, at(1005)).len(), 1, "d.a changed");
}

#[test]
fn changes_held_for_a_check_are_not_copied_to_the_spool_until_it_ends() {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.register = RegisterMode::Missing;
    config.backlog = BacklogPolicy::History;
    config.spool = true;
    let mut e: TestEngine = Engine::new(config, ArrayStorage::new());
    let mut frame = [0u8; spool::MAX_FRAME_LEN];
    waiting_cycle(&mut e, at(0), DOC);
    assert_eq!(
        e.poll_spool(&mut frame),
        None,
        "held, not lost: no disk write"
    );
    api(&mut e, at(10), registry_answer);
    let sent = transmits(&mut e, at(10));
    assert_eq!(sent.len(), 1);
    // The Data-Service fails them: now they go to the spool.
    e.handle_sink_error(at(20), sent[0].0, SinkError::Refused);
    let mut seqs = Vec::new();
    while let Some(record) = e.poll_spool(&mut frame) {
        seqs.push(record.seq);
    }
    assert_eq!(seqs, [1, 2]);
}

#[test]
fn ids_that_come_during_a_cycle_go_out_after_it_in_a_pass_of_their_own() {
    let mut e = engine(RegisterMode::Missing);
    // d.c has no address: it goes by key.
    let detailed = r#"{"d.a": {"key": "d.a", "default": 0.0, "address": 40001, "data_type": "float", "units": "C"}, "d.c": {"key": "d.c", "default": 0, "address": null, "data_type": "int", "units": ""}}"#;
    let mut answer = |path: &str, body: &str| match path {
        "/detailed" => (200, String::from(detailed)),
        _ => registry_answer(path, body),
    };
    waiting_cycle(
        &mut e,
        at(0),
        br#"{"d": {"a": {"value": 1.5, "status": "ok"}}}"#,
    );
    api(&mut e, at(10), &mut answer);
    let sent = transmits(&mut e, at(10));
    e.handle_sink_response(
        at(15),
        sent[0].0,
        std::format!(
            r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}]}}"#
        )
        .as_bytes(),
    );
    // Two new tags: a check for them starts once this cycle is over;
    // d.a keeps its id, so the cycles go on meanwhile.
    let doc = |a: &str| {
        std::format!(
            r#"{{"d": {{"a": {{"value": {a}, "status": "ok"}}, "b": {{"value": "x", "status": "ok"}}, "c": {{"value": 3, "status": "ok"}}}}}}"#
        )
    };
    fetch(&mut e, at(100), doc("1.5").as_bytes());
    assert!(transmits(&mut e, at(100)).is_empty());
    assert_eq!(
        api_once(&mut e, at(110), &mut answer).as_deref(),
        Some("GET /detailed ")
    );
    fetch(&mut e, at(200), doc("2.5").as_bytes());
    let sent = sent_lines(&mut e, at(200));
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains(ID_A), "{sent:?}");
    assert_eq!(
        sent[1],
        "{\"action\":\"write\",\"key\":\"d.c\",\"value\":3}\n"
    );
    // d.b's id comes while the cycle waits for its writes.
    let register = api_once(&mut e, at(210), &mut answer).unwrap();
    assert!(
        register.contains(r#"{"key":"d.b","data_type":"string"}"#),
        "{register}"
    );
    assert!(transmits(&mut e, at(210)).is_empty());
    let flights: Vec<RequestId> = e.in_flight.iter().map(|f| f.request).collect();
    e.handle_sink_response(
        at(220),
        flights[0],
        std::format!(
            r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}]}}"#
        )
        .as_bytes(),
    );
    e.handle_sink_response(at(220), flights[1], br#"{"ok": true}"#);
    assert_eq!(e.stats().sync_cycles_total, 3);
    assert_eq!(e.stats().cycle_durations.as_slice(), [0, 0, 20]);
    let sent = sent_lines(&mut e, at(220));
    assert_eq!(
        sent,
        [std::format!(
            "{{\"action\":\"bulk_write_by_id\",\"updates\":[{{\"id\":\"{ID_B}\",\"value\":\"x\"}}]}}\n"
        )]
    );
    assert_eq!(e.stats().sync_cycles_total, 3, "that pass is no cycle");
}

#[test]
fn a_tag_that_comes_while_detailed_is_read_is_checked_again_not_taken_as_missing() {
    let mut e = history_engine(RegisterMode::Missing);
    let a_only = br#"{"d": {"a": {"value": 1.5, "status": "ok"}}}"#;
    waiting_cycle(&mut e, at(0), a_only);
    let mut buf = [0u8; 4096];
    let request = e.poll_api_request(at(0), &mut buf).unwrap();
    assert_eq!(request.path, "/detailed");
    // d.b exists in the Data-Service; its key goes by before the tag is
    // in the table (a cycle reads the source meanwhile).
    let detailed = br#"{"d.b": {"key": "d.b", "default": "", "address": 43001, "data_type": "string", "units": ""}, "d.a": {"key": "d.a", "default": 0.0, "address": 40001, "data_type": "float", "units": "C"}}"#;
    let (head, tail) = detailed.split_at(100);
    let mut held = head.to_vec();
    let used = e.handle_api_body_part(at(10), 200, &mut held);
    held.drain(..used);
    fetch(&mut e, at(100), DOC);
    held.extend_from_slice(tail);
    e.handle_api_response(at(110), 200, &mut held);
    let b = e.table().find("d.b").unwrap();
    assert_eq!(e.table().slots()[b].registration(), Registration::Unknown);
    // Only d.a is registered (with its own address); d.b waits for the
    // next check, which the next cycle starts.
    let seen = api(&mut e, at(120), registry_answer);
    assert_eq!(
        seen,
        [
            r#"POST /register/bulk {"points":[{"key":"d.a","address":40001,"default":0.0,"data_type":"float","units":"C"}],"allow_address_conflict":false}"#
        ]
    );
    let sent = transmits(&mut e, at(120));
    assert_eq!(sent.len(), 1, "d.b goes neither by id nor by key");
    assert!(sent[0].1.contains(ID_A), "{}", sent[0].1);
    e.handle_sink_response(
        at(125),
        sent[0].0,
        std::format!(
            r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}]}}"#
        )
        .as_bytes(),
    );
    assert_eq!(e.pending(), 1);
    assert!(transmits(&mut e, at(125)).is_empty());
    fetch(&mut e, at(200), DOC);
    assert!(transmits(&mut e, at(200)).is_empty());
    let seen = api(&mut e, at(200), |path, body| match path {
        "/detailed" => (200, String::from_utf8(detailed.to_vec()).unwrap()),
        _ => registry_answer(path, body),
    });
    assert_eq!(
        seen,
        [
            "GET /detailed ",
            r#"POST /register/bulk {"points":[{"key":"d.b","address":43001,"default":"","data_type":"string","units":""}],"allow_address_conflict":false}"#,
        ]
    );
    assert!(sent_lines(&mut e, at(200))[0].contains(ID_B));
}

#[test]
fn missing_mode_registers_numbers_as_float_and_reports_failures_per_tag() {
    let mut e = engine(RegisterMode::Missing);
    waiting_cycle(&mut e, at(0), br#"{"d": {"a": {"value": 1.5, "status": "ok"}, "b": {"value": 7, "status": "ok"}, "c": {"value": true, "status": "ok"}}}"#);
    let seen = api(&mut e, at(0), |path, _| match path {
        "/detailed" => (200, String::from("{}")),
        _ => (
            200,
            std::format!(
                r#"{{"ok": false, "total_points": 3, "successful": 2, "failed": 1, "results": [{{"index": 0, "key": "d.a", "id": "{ID_A}", "ok": true}}, {{"index": 1, "key": "d.b", "ok": false, "error": "address range exhausted for data_type float"}}, {{"index": 2, "key": "d.c", "id": "{ID_B}", "ok": true}}], "errors": []}}"#
            ),
        ),
    });
    assert_eq!(
        seen[1],
        r#"POST /register/bulk {"points":[{"key":"d.a","data_type":"float"},{"key":"d.b","data_type":"float"},{"key":"d.c","data_type":"bool"}],"allow_address_conflict":false}"#
    );
    let lines = sent_lines(&mut e, at(1));
    assert_eq!(
        lines,
        [
            std::format!(
                "{{\"action\":\"bulk_write_by_id\",\"updates\":[{{\"id\":\"{ID_A}\",\"value\":1.5}},{{\"id\":\"{ID_B}\",\"value\":true}}]}}\n"
            ),
            String::from("{\"action\":\"write\",\"key\":\"d.b\",\"value\":7}\n"),
        ]
    );
    assert_eq!(e.stats().registrations_total, 2);
    assert_eq!(e.stats().registrations_failed_total, 1);
    let logged = events(&mut e);
    assert!(
        logged.contains(&String::from(
            "registration failed, writing by key: d.b: address range exhausted for data_type float"
        )),
        "{logged:?}"
    );
}

#[test]
fn a_detailed_answer_broken_part_way_leaves_no_tag_marked() {
    let mut e = engine(RegisterMode::Off);
    waiting_cycle(&mut e, at(0), DOC);
    // `d.a` (address null: by key only) is taken before `d.b` breaks.
    let broken = r#"{"d.a": {"key": "d.a", "default": 0.0, "address": null, "data_type": "float", "units": ""}, "d.b": {"key": tru}}"#;
    let seen = api(&mut e, at(0), |_, _| (200, String::from(broken)));
    assert_eq!(seen, ["GET /detailed "]);
    assert_eq!(e.stats().api_errors_total, 1);
    assert_eq!(
        e.stats().recent_errors.recent().map(|r| r.message.as_str()),
        Some("Data-Service HTTP API: answer is not the expected JSON")
    );
    let states: Vec<Registration> = e
        .table()
        .slots()
        .iter()
        .map(|s| s.registry.registration)
        .collect();
    assert_eq!(states, [Registration::Unknown, Registration::Unknown]);
    let lines = sent_lines(&mut e, at(1));
    assert_eq!(
        lines,
        [
            "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1.5}\n",
            "{\"action\":\"write\",\"key\":\"d.b\",\"value\":\"x\"}\n",
        ]
    );
}

/// Both tags of `DOC` get ids and go in one bulk line, which `answer`
/// answers at 1 ms.
fn one_bulk_answered(answer: &str) -> TestEngine {
    let mut e = engine(RegisterMode::Missing);
    waiting_cycle(&mut e, at(0), DOC);
    api(&mut e, at(0), registry_answer);
    let sent = transmits(&mut e, at(0));
    assert_eq!(sent.len(), 1, "both tags have ids: one bulk");
    e.handle_sink_response(at(1), sent[0].0, answer.as_bytes());
    e
}

#[test]
fn id_not_found_means_a_restart_the_value_is_kept_and_everything_is_checked_again() {
    let mut e = one_bulk_answered(&std::format!(
        r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": false, "error": "id not found"}}, {{"id": "{ID_B}", "ok": true, "key": "d.b"}}]}}"#
    ));
    assert_eq!(e.stats().writes_ok_total, 1);
    assert_eq!(e.stats().ids_not_found_total, 1);
    assert_eq!(e.stats().writes_failed_total, 1);
    assert_eq!(e.stats().dataservice_restarts_total, 1);
    assert_eq!(
        e.pending(),
        2,
        "both values go again: the restarted Data-Service has neither"
    );
    // The check starts at once; the next cycle follows it.
    assert!(e.is_registering());
    e.handle_tick(at(1000));
    let seen = api(&mut e, at(1010), registry_answer);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], "GET /detailed ");
    fetch_due(&mut e, at(1010), DOC);
    assert_eq!(transmits(&mut e, at(1010)).len(), 1, "both in one bulk now");
}

#[test]
fn a_bulk_answer_broken_after_a_result_keeps_that_result_and_sends_the_rest_again() {
    let mut e = one_bulk_answered(&std::format!(
        r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true}}, {{"id": "{ID_B}", "ok": tru}}]}}"#
    ));
    assert_eq!(e.stats().writes_ok_total, 1);
    assert_eq!(e.stats().writes_failed_total, 1);
    assert_eq!(
        e.stats().sink_errors_by_kind[SinkError::BadResponse.kind_index()],
        1
    );
    assert_eq!(e.pending(), 1, "only d.b goes again");
    e.handle_tick(at(1000));
    fetch_due(&mut e, at(1000), DOC);
    let only_b = std::format!(
        r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{ID_B}","value":"x"}}]}}"#
    );
    assert_eq!(sent_lines(&mut e, at(1000)), [only_b + "\n"]);
}

#[test]
fn a_restart_seen_while_a_check_runs_drops_that_check_and_starts_again() {
    let mut e = engine(RegisterMode::Missing);
    waiting_cycle(&mut e, at(0), DOC);
    api(&mut e, at(0), registry_answer);
    let sent = transmits(&mut e, at(0));
    e.handle_sink_response(
        at(1),
        sent[0].0,
        std::format!(r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}, {{"id": "{ID_B}", "ok": true, "key": "d.b"}}]}}"#).as_bytes(),
    );
    // A new tag: the check starts once the cycle has delivered.
    let with_c = |a: &str| {
        std::format!(
            r#"{{"d": {{"a": {{"value": {a}, "status": "ok"}}, "b": {{"value": "x", "status": "ok"}}, "c": {{"value": 3, "status": "ok"}}}}}}"#
        )
    };
    fetch(&mut e, at(1000), with_c("2.5").as_bytes());
    let sent = transmits(&mut e, at(1000));
    assert_eq!(sent.len(), 1, "d.c waits for the check: {sent:?}");
    let mut buf = [0u8; 4096];
    assert_eq!(e.poll_api_request(at(1000), &mut buf), None);
    e.handle_sink_response(
        at(1005),
        sent[0].0,
        std::format!(
            r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": true, "key": "d.a"}}]}}"#
        )
        .as_bytes(),
    );
    assert_eq!(
        e.poll_api_request(at(1005), &mut buf).unwrap().path,
        "/detailed"
    );
    // While `/detailed` is on its way, the next cycle's write shows a
    // restart: what the check was reading is stale.
    fetch(&mut e, at(1100), with_c("3.5").as_bytes());
    let sent = transmits(&mut e, at(1100));
    assert_eq!(sent.len(), 1, "{sent:?}");
    e.handle_sink_response(
        at(1110),
        sent[0].0,
        std::format!(r#"{{"ok": true, "results": [{{"id": "{ID_A}", "ok": false, "error": "id not found"}}]}}"#).as_bytes(),
    );
    assert_eq!(e.stats().dataservice_restarts_total, 1);
    let stale = std::format!("{{\"d.a\": {}}}", "x".repeat(64));
    let mut held = stale.into_bytes();
    assert_eq!(e.handle_api_body_part(at(1120), 200, &mut held), held.len());
    e.handle_api_response(at(1120), 200, &mut []);
    assert_eq!(
        e.stats().api_errors_total,
        0,
        "the stale answer is dropped unread"
    );
    // The check starts again; nothing goes by key meanwhile.
    assert!(transmits(&mut e, at(1120)).is_empty());
    let seen = api(&mut e, at(1130), |path, body| match path {
        "/detailed" => (200, String::from("{}")),
        _ => registry_answer(path, body),
    });
    assert_eq!(
        seen,
        [
            "GET /detailed ",
            r#"POST /register/bulk {"points":[{"key":"d.a","data_type":"float"},{"key":"d.b","data_type":"string"},{"key":"d.c","data_type":"float"}],"allow_address_conflict":false}"#,
        ]
    );
    let lines = sent_lines(&mut e, at(1130));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("{\"action\":\"bulk_write_by_id\""),
        "{lines:?}"
    );
    assert!(
        lines[0].contains(ID_A) && lines[0].contains(ID_B),
        "{lines:?}"
    );
    assert!(lines[0].contains("3.5"), "the newest value: {lines:?}");
    assert_eq!(
        lines[1],
        "{\"action\":\"write\",\"key\":\"d.c\",\"value\":3}\n"
    );
}

#[test]
fn an_unavailable_api_means_writes_by_key_and_a_retry_later() {
    let mut e = engine(RegisterMode::Missing);
    waiting_cycle(&mut e, at(0), DOC);
    assert_eq!(
        api(&mut e, at(0), |_, _| (503, String::new())),
        ["GET /detailed "]
    );
    let sent = transmits(&mut e, at(0));
    assert_eq!(sent.len(), 2);
    for (request, line) in sent {
        assert!(line.starts_with("{\"action\":\"write\""), "{line}");
        e.handle_sink_response(at(0), request, br#"{"ok": true}"#);
    }
    assert_eq!(e.stats().api_errors_total, 1);
    assert_eq!(
        events(&mut e)
            .iter()
            .filter(|l| l.starts_with("Data-Service HTTP API down: HTTP status 503"))
            .count(),
        1
    );
    // Within the retry time the API is left alone.
    fetch(
        &mut e,
        at(10_000),
        br#"{"d": {"a": {"value": 2.5, "status": "ok"}}}"#,
    );
    assert!(api(&mut e, at(10_000), registry_answer).is_empty());
    for (request, _) in transmits(&mut e, at(10_000)) {
        e.handle_sink_response(at(10_000), request, br#"{"ok": true}"#);
    }
    // After it, the API is asked again once the cycle has delivered
    // (by key, as while it is down); it answers: a restart is assumed.
    fetch(&mut e, at(31_000), DOC);
    let sent = transmits(&mut e, at(31_000));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].1,
        "{\"action\":\"write\",\"key\":\"d.a\",\"value\":1.5}\n"
    );
    e.handle_sink_response(at(31_000), sent[0].0, br#"{"ok": true}"#);
    assert_eq!(api(&mut e, at(31_000), registry_answer).len(), 2);
    let logged = events(&mut e);
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("Data-Service HTTP API up")),
        "{logged:?}"
    );
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("Data-Service restart assumed (its HTTP API came back)"))
    );
}

#[test]
fn many_failed_registrations_are_named_up_to_eight_then_summed_up() {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.register = RegisterMode::Missing;
    let mut e: Engine<ArrayStorage<16, 32, 1024>> = Engine::new(config, ArrayStorage::new());
    let mut doc = String::from("{\"d\": {");
    let mut results = Vec::new();
    for i in 0..10 {
        if i > 0 {
            doc.push_str(", ");
            results.push(String::from(", "));
        }
        doc.push_str(&std::format!(
            "\"t{i}\": {{\"value\": \"s\", \"status\": \"ok\"}}"
        ));
        results.push(std::format!(
            "{{\"index\": {i}, \"key\": \"d.t{i}\", \"ok\": false, \"error\": \"address range exhausted for data_type string\"}}"
        ));
    }
    doc.push_str("}}");
    waiting_cycle(&mut e, at(0), doc.as_bytes());
    let mut buf = [0u8; 4096];
    let get = e.poll_api_request(at(0), &mut buf).unwrap();
    assert_eq!(get.path, "/detailed");
    e.handle_api_response(at(0), 200, &mut { *b"{}" });
    let post = e.poll_api_request(at(0), &mut buf).unwrap();
    assert_eq!(post.path, "/register/bulk");
    let answer = std::format!("{{\"ok\": false, \"results\": [{}]}}", results.concat());
    e.handle_api_response(at(0), 200, &mut answer.into_bytes());
    assert_eq!(e.stats().registrations_failed_total, 10);
    let logged = events(&mut e);
    assert_eq!(
        logged
            .iter()
            .filter(|l| l.starts_with("registration failed, writing by key: d.t"))
            .count(),
        8
    );
    assert!(logged.contains(&String::from(
        "registration failed for 2 more keys in the same answer, writing them by key (counted in registrations_failed_total)"
    )), "{logged:?}");
    // All ten still go out, by key.
    assert_eq!(e.poll_api_request(at(0), &mut buf), None);
    assert_eq!(transmits(&mut e, at(0)).len(), 10);
}

#[test]
fn write_mode_writes_registered_tags_by_key_and_ends_its_cycles() {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.register = RegisterMode::Missing;
    config.delivery = DeliveryMode::Write;
    let mut e: TestEngine = Engine::new(config, ArrayStorage::new());
    for (n, body) in [DOC, D2].into_iter().enumerate() {
        let now = at(n as u64 * 1000);
        fetch(&mut e, now, body);
        let mut sent = transmits(&mut e, now);
        api(&mut e, now, registry_answer);
        sent.extend(transmits(&mut e, now));
        for (request, line) in &sent {
            assert!(
                line.starts_with("{\"action\":\"write\",\"key\":\"d."),
                "{line}"
            );
            e.handle_sink_response(now, *request, br#"{"ok": true}"#);
        }
        assert!(transmits(&mut e, now).is_empty());
        assert_eq!(e.stats().sync_cycles_total, n as u64 + 1);
    }
    assert_eq!(e.stats().writes_ok_total, 3);
    assert_eq!(e.stats().bulk_requests_total, 0);
}

#[test]
fn unchanged_values_wait_for_their_heartbeat() {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    config.heartbeat = Duration::from_secs(10);
    let mut e: TestEngine = Engine::new(config, ArrayStorage::new());
    let doc = br#"{"d": {"a": {"value": 1, "status": "ok"}}}"#;
    let mut written = Vec::new();
    for second in 0..25u64 {
        let now = at(second * 1000);
        let body: &[u8] = if second == 12 {
            br#"{"d": {"a": {"value": 2, "status": "ok"}}}"#
        } else {
            doc
        };
        fetch(&mut e, now, body);
        for (request, line) in transmits(&mut e, now) {
            written.push((second, line));
            e.handle_sink_response(now, request, br#"{"ok": true}"#);
        }
    }
    let seconds: Vec<u64> = written.iter().map(|(s, _)| *s).collect();
    // 0: first value; 10: heartbeat; 12: change to 2; 13: back to 1; 23: heartbeat.
    assert_eq!(seconds, [0, 10, 12, 13, 23]);
    assert_eq!(e.stats().heartbeats_total, 2);
    assert_eq!(e.stats().writes_suppressed_total, 20);
}
