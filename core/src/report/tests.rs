//! Exact report output after a scripted sync.

use std::string::String;
use std::vec::Vec;

use super::*;
use crate::engine::tests::transcript::{at, cycle_with, events, transmits};
use crate::{ArrayStorage, Duration, Engine, EngineConfig, SinkError};

type TestEngine = Engine<ArrayStorage<4, 8, 256>>;

const DOC: &[u8] = br#"{"d": {"a": {"value": 1, "status": "ok"}, "b": {"value": "x\"y", "status": "ok"}, "c": {"value": null, "status": "modbus_error"}, "n": {"value": NaN, "status": "ok"}}}"#;

/// One cycle at t=1000: `a` acknowledged, `b` refused by the socket.
fn scripted() -> TestEngine {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    let mut engine = Engine::new(config, ArrayStorage::new());
    cycle_with(&mut engine, at(1000), DOC);
    let sent = transmits(&mut engine, at(1000));
    assert_eq!(sent.len(), 2);
    engine.handle_sink_response(at(1010), sent[0].0, br#"{"ok": true}"#);
    engine.handle_sink_error(at(1020), sent[1].0, SinkError::Refused);
    events(&mut engine);
    engine
}

fn context(now_ms: u64) -> ReportContext<'static> {
    ReportContext {
        version: "9.9.9",
        commit: "0123456789ab",
        target: "armv7-unknown-linux-musleabihf",
        process: Some(crate::report::ProcessFigures {
            resident_memory_bytes: 5_500_000,
            open_fds: 8,
            cpu_millis: 1250,
        }),
        now: at(now_ms),
        // 2026-11-28T12:00:00.000Z at now_ms.
        unix_millis: 1_795_867_200_000,
        started_at: at(0),
        stopping: false,
    }
}

fn render(f: impl FnOnce(&mut String) -> core::fmt::Result) -> String {
    let mut out = String::new();
    f(&mut out).unwrap();
    out
}

#[test]
fn metrics_after_a_scripted_cycle() {
    let engine = scripted();
    let text = render(|out| write_metrics(out, &engine, &context(2000)));
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "dataservice_sync_start_time_seconds 1795867198.000",
        "# HELP dataservice_sync_writes_ok_total Tag values the Data-Service acknowledged.",
        "# TYPE dataservice_sync_writes_ok_total counter",
        "dataservice_sync_writes_ok_total 1",
        "dataservice_sync_writes_failed_total 1",
        "dataservice_sync_reads_good_total 2",
        "dataservice_sync_reads_failed_total 1",
        "dataservice_sync_tags_rejected_total{reason=\"non_finite_number\"} 1",
        "dataservice_sync_tags_rejected_total{reason=\"null_value\"} 0",
        "dataservice_sync_sink_errors_total{kind=\"refused\"} 1",
        "dataservice_sync_sink_errors_total{kind=\"timeout\"} 0",
        "dataservice_sync_source_fetch_errors_total{kind=\"refused\"} 0",
        "dataservice_sync_tags 2",
        "dataservice_sync_tag_capacity 4",
        "dataservice_sync_pending_tags 1",
        "dataservice_sync_in_flight_requests 0",
        "dataservice_sync_tags_by_registration{state=\"unknown\"} 2",
        "dataservice_sync_peer_up{peer=\"source\"} 1",
        "dataservice_sync_peer_up{peer=\"dataservice\"} 0",
        "dataservice_sync_peer_up{peer=\"dataservice_api\"} 0",
        "dataservice_sync_last_sync_timestamp_seconds 1795867199.020",
        "dataservice_sync_last_cycle_duration_seconds 0.020",
        "dataservice_sync_last_fetch_duration_seconds 0.000",
        "# TYPE dataservice_sync_fetch_duration_seconds_total counter",
        "dataservice_sync_fetch_duration_seconds_total 0.000",
        "dataservice_sync_last_registry_check_duration_seconds 0.000",
        "dataservice_sync_registry_checks_total 0",
        "# TYPE dataservice_sync_cycle_duration_seconds histogram",
        "dataservice_sync_cycle_duration_seconds_bucket{le=\"0.010\"} 0",
        "dataservice_sync_cycle_duration_seconds_bucket{le=\"0.025\"} 1",
        "dataservice_sync_cycle_duration_seconds_bucket{le=\"+Inf\"} 1",
        "dataservice_sync_cycle_duration_seconds_sum 0.020",
        "dataservice_sync_cycle_duration_seconds_count 1",
        "dataservice_sync_fetch_duration_seconds_bucket{le=\"0.005\"} 1",
        "dataservice_sync_fetch_duration_seconds_count 1",
        "dataservice_sync_cycles_total 1",
        "dataservice_sync_build_info{version=\"9.9.9\",commit=\"0123456789ab\",target=\"armv7-unknown-linux-musleabihf\"} 1",
        "process_resident_memory_bytes 5500000",
        "process_open_fds 8",
        "process_cpu_seconds_total 1.250",
    ] {
        assert!(lines.contains(&expected), "missing: {expected}\n{text}");
    }
    // Every sample belongs to a family announced with HELP and TYPE just before.
    let mut announced = String::new();
    for line in &lines {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            announced = rest.split(' ').next().unwrap().into();
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .or_else(|| name.strip_suffix("_bucket"))
                .filter(|f| *f == announced)
                .unwrap_or(name);
            assert_eq!(family, announced, "sample outside its family: {line}");
        }
    }
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("# HELP ")).count(),
        lines.iter().filter(|l| l.starts_with("# TYPE ")).count()
    );
}

#[test]
fn tags_document_lists_values_states_and_rejections() {
    let engine = scripted();
    let all = TagQuery {
        contains: "",
        offset: 0,
        limit: 100,
    };
    assert_eq!(
        render(|out| write_tags(out, &engine, &context(2000), &all)),
        r#"{"total":2,"matched":2,"offset":0,"tags":[{"key":"d.a","value":1,"type":"int","registered_type":null,"type_mismatch":false,"stale":false,"state":"delivered","registration":"unknown","last_written":"2026-11-28T11:59:59.010Z"},{"key":"d.b","value":"x\"y","type":"string","registered_type":null,"type_mismatch":false,"stale":false,"state":"pending","registration":"unknown","last_written":null}],"rejected":[{"tag":"d/n","reason":"non_finite_number","count":1,"last_seen":"2026-11-28T11:59:59.000Z"}],"rejected_untracked":0}"#
    );
    let search = TagQuery {
        contains: "D.B",
        offset: 0,
        limit: 100,
    };
    assert_eq!(
        render(|out| write_tags(out, &engine, &context(2000), &search)),
        r#"{"total":2,"matched":1,"offset":0,"tags":[{"key":"d.b","value":"x\"y","type":"string","registered_type":null,"type_mismatch":false,"stale":false,"state":"pending","registration":"unknown","last_written":null}],"rejected":[],"rejected_untracked":0}"#
    );
    let second_page = TagQuery {
        contains: "",
        offset: 1,
        limit: 0,
    };
    assert!(
        render(|out| write_tags(out, &engine, &context(2000), &second_page))
            .starts_with(r#"{"total":2,"matched":2,"offset":1,"tags":[],"#)
    );
}

#[test]
fn stats_document_has_the_seed_statistics() {
    let engine = scripted();
    let text = render(|out| write_stats(out, &engine, &context(2000), 3));
    for expected in [
        r#"{"running":true,"version":"9.9.9","started_at":"2026-11-28T11:59:58.000Z","now":"2026-11-28T12:00:00.000Z","uptime_seconds":2,"health":"ok","#,
        r#""total_syncs":1,"successful_writes":1,"failed_writes":1,"last_sync_time":"2026-11-28T11:59:59.020Z","#,
        r#""tags":2,"tag_capacity":4,"pending":1,"unregistered":0,"in_flight":0,"#,
        r#""peers":{"source":{"state":"up"},"dataservice":{"state":"down","since":"2026-11-28T11:59:59.020Z","failures":1,"problem":"connection refused"},"dataservice_api":{"state":"unknown"}}"#,
        r#""cycle_ms":{"last":20,"last_fetch":0,"p50":20,"p99":20,"max":20},"registry_check_ms":{"last":0},"#,
        r#""writes_ok_total":1,"#,
        r#""non_finite_number":1,"#,
        r#""recent_errors":[{"time":"2026-11-28T11:59:59.000Z","message":"tag rejected (non_finite_number): d/n"},{"time":"2026-11-28T11:59:59.020Z","message":"write failed: d.b: connection refused"}]}"#,
    ] {
        assert!(text.contains(expected), "missing: {expected}\n{text}");
    }
}

#[test]
fn health_follows_the_window() {
    let mut engine = scripted();
    // The sink failed at 1020 but answered at 1010, within three intervals.
    assert!(assess(&engine, &context(2000), 3).is_healthy());
    // No document for longer than three intervals: the source is stale.
    assert_eq!(
        assess(&engine, &context(4001), 3).problem,
        Some(HealthProblem::SourceStale {
            last_ok: Some(at(1000)),
            problem: None
        })
    );
    // A new document at 5000 whose write is refused again: the socket has
    // not answered since 1010.
    cycle_with(&mut engine, at(5000), DOC);
    let sent = transmits(&mut engine, at(5000));
    assert_eq!(sent.len(), 1);
    engine.handle_sink_error(at(5001), sent[0].0, SinkError::Refused);
    let report = assess(&engine, &context(5500), 3);
    assert_eq!(
        report.problem,
        Some(HealthProblem::SinkDown {
            last_ok: Some(at(1010)),
            problem: SinkError::Refused
        })
    );
    assert_eq!(
        render(|out| write_health(out, &engine, &context(5500), &report)),
        r#"{"status":"unhealthy","source":"up","dataservice":"down","window_ms":3000,"tags_over_capacity":0,"last_sync_time":"2026-11-28T11:59:59.501Z","reason":"Data-Service socket down: connection refused"}"#
    );
    // A fresh engine is starting until the window has passed.
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    let fresh: TestEngine = Engine::new(config, ArrayStorage::new());
    assert_eq!(
        assess(&fresh, &context(2999), 3).problem,
        Some(HealthProblem::Starting)
    );
    assert_eq!(
        assess(&fresh, &context(3001), 3).problem,
        Some(HealthProblem::SourceStale {
            last_ok: None,
            problem: None
        })
    );
}

#[test]
fn healthy_when_both_peers_worked() {
    let mut config = EngineConfig::new(Duration::from_secs(1));
    config.registry_checks = false;
    let mut engine: TestEngine = Engine::new(config, ArrayStorage::new());
    cycle_with(
        &mut engine,
        at(1000),
        br#"{"d": {"a": {"value": 1, "status": "ok"}}}"#,
    );
    let sent = transmits(&mut engine, at(1000));
    engine.handle_sink_response(at(1005), sent[0].0, br#"{"ok": true}"#);
    let report = assess(&engine, &context(2000), 3);
    assert!(report.is_healthy());
    assert_eq!(report.status(), "ok");
}
