//! Rules inside the engine: deadband against the last value delivered
//! (skipped after a failed read), minimum interval, per-rule heartbeat,
//! filters, and a reload that keeps the table and the statistics.

use std::string::String;
use std::vec::Vec;

use super::transcript::{at, cycle_with, transmits};
use crate::engine::*;
use crate::rules::{Deadband, Pattern, Rule};
use crate::table::ArrayStorage;

type TestEngine = Engine<ArrayStorage<4, 8, 256>>;

fn engine(rule: Rule) -> TestEngine {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    config.heartbeat = Duration::from_secs(3600);
    config.rules.rules.push(rule).ok();
    Engine::new(config, ArrayStorage::new())
}

fn doc(value: f64, status: &str) -> Vec<u8> {
    std::format!(r#"{{"d": {{"t": {{"value": {value:?}, "status": "{status}"}}}}}}"#).into_bytes()
}

/// One cycle; every write is acknowledged; returns the values written.
fn cycle(e: &mut TestEngine, ms: u64, value: f64, status: &str) -> Vec<String> {
    cycle_with(e, at(ms), &doc(value, status));
    let mut out = Vec::new();
    for (request, line) in transmits(e, at(ms)) {
        e.handle_sink_response(at(ms), request, br#"{"ok": true}"#);
        let v: &str = line
            .split("\"value\":")
            .nth(1)
            .unwrap_or("")
            .trim_end_matches("}\n");
        out.push(v.into());
    }
    out
}

#[test]
fn deadband_compares_with_the_last_value_delivered() {
    let mut rule = Rule::any();
    rule.deadband = Some(Deadband::Absolute(1.0));
    let mut e = engine(rule);
    assert_eq!(cycle(&mut e, 0, 10.0, "ok"), ["10.0"]);
    // 10.6 and 10.9 are within 1.0 of the delivered 10.0, though 10.9 is
    // 0.3 from 10.6: creeping changes do not hide.
    assert!(cycle(&mut e, 1000, 10.6, "ok").is_empty());
    assert!(cycle(&mut e, 2000, 10.9, "ok").is_empty());
    assert_eq!(cycle(&mut e, 3000, 11.0, "ok"), ["11.0"]);
    assert_eq!(e.stats().writes_deadband_total, 2);
    // After a failed read the next good value goes out, deadband or not.
    assert!(cycle(&mut e, 4000, 0.0, "timeout").is_empty());
    assert_eq!(cycle(&mut e, 5000, 11.2, "ok"), ["11.2"]);
    assert!(cycle(&mut e, 6000, 11.5, "ok").is_empty());
    assert_eq!(e.stats().writes_deadband_total, 3);
}

#[test]
fn percent_deadband() {
    let mut rule = Rule::any();
    rule.deadband = Some(Deadband::Percent(5.0));
    let mut e = engine(rule);
    assert_eq!(cycle(&mut e, 0, 200.0, "ok"), ["200.0"]);
    assert!(cycle(&mut e, 1000, 209.0, "ok").is_empty());
    assert_eq!(cycle(&mut e, 2000, 210.0, "ok"), ["210.0"]);
}

#[test]
fn minimum_interval_holds_changes_back_and_the_latest_goes_later() {
    let mut rule = Rule::any();
    rule.min_interval = Some(Duration::from_secs(5));
    let mut e = engine(rule);
    assert_eq!(cycle(&mut e, 0, 1.0, "ok"), ["1.0"]);
    assert!(cycle(&mut e, 1000, 2.0, "ok").is_empty());
    assert!(cycle(&mut e, 4000, 3.0, "ok").is_empty());
    assert_eq!(cycle(&mut e, 5000, 4.0, "ok"), ["4.0"]);
    assert_eq!(e.stats().writes_deferred_total, 2);
}

#[test]
fn a_rule_heartbeat_replaces_the_global_one() {
    let mut rule = Rule::any();
    rule.heartbeat = Some(Duration::from_secs(10));
    let mut e = engine(rule);
    assert_eq!(cycle(&mut e, 0, 1.0, "ok"), ["1.0"]);
    assert!(cycle(&mut e, 9000, 1.0, "ok").is_empty());
    assert_eq!(cycle(&mut e, 10_000, 1.0, "ok"), ["1.0"]);
    assert_eq!(e.stats().heartbeats_total, 1);
}

#[test]
fn filters_and_a_reload_keep_the_table_and_the_counters() {
    let mut e = engine(Rule::any());
    assert_eq!(cycle(&mut e, 0, 1.0, "ok"), ["1.0"]);
    let mut rules = RuleSet::default();
    rules
        .filters
        .exclude_devices
        .push(Pattern::try_from("d").unwrap())
        .unwrap();
    let template = e.config().key_template.clone();
    e.reload(rules, template, Duration::from_secs(3600));
    assert!(cycle(&mut e, 1000, 2.0, "ok").is_empty());
    let stats = e.stats();
    assert_eq!(
        (
            stats.tags_filtered_total,
            stats.writes_ok_total,
            stats.config_reloads_total
        ),
        (1, 1, 1)
    );
    assert_eq!(e.table().len(), 1);
    e.reload_refused(at(1000), format_args!("bad file"));
    assert_eq!(e.stats().config_reload_failures_total, 1);
}
