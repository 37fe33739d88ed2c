//! Helpers that drive an engine like a runner, for tests that read
//! like a transcript of a sync.
use crate::engine::*;
use std::string::String;
use std::vec::Vec;

pub(crate) fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Drains every transmit as (request, line).
pub(crate) fn transmits<S: TableStorage>(
    engine: &mut Engine<S>,
    now: Instant,
) -> Vec<(RequestId, String)> {
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    loop {
        // What an earlier `poll_api_request` left is carried out first.
        engine.handle_timeout(now);
        let Some(tx) = engine.poll_transmit(now, &mut buf) else {
            if engine.handle_timeout(now) {
                continue;
            }
            return out;
        };
        out.push((
            tx.request,
            String::from_utf8(buf[..tx.len].to_vec()).unwrap(),
        ));
    }
}

/// Drains every event as its log line.
pub(crate) fn events<S: TableStorage>(engine: &mut Engine<S>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(e) = engine.poll_event() {
        out.push(std::format!("{e}"));
    }
    out
}

/// A tick, the fetch it asks for, and `body` as the answer, streamed
/// as the runner does: 7-byte parts, the unused rest kept.
pub(crate) fn cycle_with<S: TableStorage>(engine: &mut Engine<S>, now: Instant, body: &[u8]) {
    engine.handle_tick(now);
    fetch_due(engine, now, body);
}

/// The fetch the engine asks for now, and `body` as its answer.
pub(crate) fn fetch_due<S: TableStorage>(engine: &mut Engine<S>, now: Instant, body: &[u8]) {
    assert_eq!(engine.poll_action(now), Some(Action::FetchSource));
    let mut held = std::vec::Vec::new();
    for part in body.chunks(7) {
        held.extend_from_slice(part);
        let used = engine.handle_source_body_part(&held);
        held.drain(..used);
    }
    engine.handle_source_body(now, &held);
}

/// A cycle whose tags all wait for the registry check: it sends
/// nothing and ends, and the check it wants starts.
pub(crate) fn waiting_cycle<S: TableStorage>(engine: &mut Engine<S>, now: Instant, body: &[u8]) {
    cycle_with(engine, now, body);
    assert!(
        transmits(engine, now).is_empty(),
        "the tags wait for the check"
    );
    assert!(engine.is_idle());
    assert!(engine.is_registering());
}
