//! The polling service's document through the whole engine: parser,
//! classification with filters and rules, tag table, history backlog,
//! request encoding. Nothing may panic; every capacity holds.
#![no_main]

use dataservice_sync_core::rules::{Cast, Deadband, Pattern, Rule};
use dataservice_sync_core::{
    ArrayStorage, BacklogPolicy, Duration, Engine, EngineConfig, Instant, min_transmit_buffer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    config.backlog = BacklogPolicy::History;
    let mut rule = Rule::any();
    rule.scale = Some(0.5);
    rule.round = Some(2);
    rule.cast = Some(Cast::Int);
    rule.deadband = Some(Deadband::Percent(1.0));
    rule.device = Pattern::try_from("*a*").unwrap_or_default();
    config.rules.rules.push(rule).ok();
    config.rules.rules.push(Rule::any()).ok();
    let mut engine: Engine<ArrayStorage<64, 128, 4096, 8192>> =
        Engine::new(config, ArrayStorage::new());
    let mut buf = vec![0u8; min_transmit_buffer().max(64 * 1024)];
    for round in 0..2u64 {
        let now = Instant::from_millis(round * 1000);
        engine.handle_tick(now);
        let _ = engine.poll_action(now);
        // Streamed in parts of a size the input picks, the unused rest kept.
        let part_len = 1 + usize::from(data.first().copied().unwrap_or(0) % 64);
        let mut held = Vec::new();
        for part in data.chunks(part_len) {
            held.extend_from_slice(part);
            let used = engine.handle_source_body_part(&held);
            held.drain(..used);
        }
        engine.handle_source_body(now, &held);
        while let Some(tx) = engine.poll_transmit(now, &mut buf) {
            assert!(tx.len <= buf.len());
            engine.handle_sink_response(now, tx.request, br#"{"ok": true}"#);
        }
        while engine.poll_event().is_some() {}
    }
    assert!(engine.table().len() <= engine.table().capacity());
});
