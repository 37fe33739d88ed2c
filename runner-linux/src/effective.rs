//! The effective configuration as a TOML file that `--config` reads back:
//! what `dataservice-sync config check` prints.

use std::fmt::Write;

use dataservice_sync_core::rules::{Deadband, RuleSet};
use dataservice_sync_core::{BacklogPolicy, DeliveryMode, RegisterMode};

use crate::SyncOptions;
use crate::spool::SpoolSync;

/// `options` as TOML, every setting spelled out.
pub fn to_toml(o: &SyncOptions) -> String {
    let mut out = String::from("# effective configuration\n");
    let secs = |d: std::time::Duration| d.as_secs_f64().to_string();
    let quoted = |s: &str| format!("{s:?}");
    let lines: Vec<(&str, String)> = vec![
        ("socket-path", quoted(&o.socket_path.display().to_string())),
        ("interval", secs(o.interval)),
        ("no-logging", o.no_logging.to_string()),
        (
            "log-level",
            quoted(match o.log_level {
                crate::log::Severity::Fatal | crate::log::Severity::Error => "error",
                crate::log::Severity::Warn => "warn",
                crate::log::Severity::Info => "info",
                crate::log::Severity::Debug => "debug",
            }),
        ),
        ("stats-interval", secs(o.stats_interval)),
        ("source", quoted(&o.source)),
        ("key-template", quoted(&o.key_template)),
        ("write-timeout", secs(o.write_timeout)),
        ("source-timeout", secs(o.source_timeout)),
        ("max-body-bytes", o.max_body_bytes.to_string()),
        ("max-connections", o.max_connections.to_string()),
        ("shutdown-timeout", secs(o.shutdown_timeout)),
        (
            "dataservice-url",
            quoted(o.dataservice_url.as_deref().unwrap_or("off")),
        ),
        (
            "register",
            quoted(match o.register {
                RegisterMode::Off => "off",
                RegisterMode::Missing => "missing",
            }),
        ),
        (
            "delivery",
            quoted(match o.delivery {
                DeliveryMode::Bulk => "bulk",
                DeliveryMode::Write => "write",
            }),
        ),
        ("bulk-max-bytes", o.bulk_max_bytes.to_string()),
        ("bulk-in-flight", o.bulk_in_flight.to_string()),
        ("heartbeat", secs(o.heartbeat)),
        ("max-age", o.max_age.map_or(quoted("off"), secs)),
        ("max-tags", o.max_tags.to_string()),
        (
            "status-listen",
            quoted(&o.status_listen.map_or("off".into(), |a| a.to_string())),
        ),
        ("health-cycles", o.health_cycles.to_string()),
        (
            "backlog",
            quoted(match o.backlog {
                BacklogPolicy::Latest => "latest",
                BacklogPolicy::History => "history",
            }),
        ),
        ("backlog-bytes", o.backlog_bytes.to_string()),
        ("replay-rate", o.replay_rate.to_string()),
        ("spool-max-bytes", o.spool_max_bytes.to_string()),
        (
            "spool-sync",
            quoted(&match o.spool_sync {
                SpoolSync::Always => "always".to_string(),
                SpoolSync::Never => "never".to_string(),
                SpoolSync::Every(d) => d.as_millis().to_string(),
            }),
        ),
    ];
    for (name, value) in lines {
        let _ = writeln!(out, "{name} = {value}");
    }
    if let Some(max_drain) = o.max_drain {
        let _ = writeln!(out, "max-drain = {}", secs(max_drain));
    }
    match &o.spool_dir {
        Some(dir) => {
            let _ = writeln!(out, "spool-dir = {}", quoted(&dir.display().to_string()));
        }
        None => out.push_str("# spool-dir: off\n"),
    }
    write_rules(&mut out, &o.rules);
    out
}

fn write_rules(out: &mut String, rules: &RuleSet) {
    let list = |items: &mut dyn Iterator<Item = &str>| {
        let items: Vec<String> = items.map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(", "))
    };
    let f = &rules.filters;
    let _ = writeln!(out, "\n[filter]");
    let _ = writeln!(
        out,
        "include-devices = {}",
        list(&mut f.include_devices.iter().map(|p| p.as_str()))
    );
    let _ = writeln!(
        out,
        "exclude-devices = {}",
        list(&mut f.exclude_devices.iter().map(|p| p.as_str()))
    );
    let _ = writeln!(
        out,
        "include-tags = {}",
        list(&mut f.include_tags.iter().map(|p| p.as_str()))
    );
    let _ = writeln!(
        out,
        "exclude-tags = {}",
        list(&mut f.exclude_tags.iter().map(|p| p.as_str()))
    );
    let _ = writeln!(
        out,
        "good-statuses = {}",
        list(&mut f.good_statuses.iter().map(|p| p.as_str()))
    );
    let v = &rules.validation;
    let _ = writeln!(out, "\n[validation]");
    let _ = writeln!(out, "key-max-bytes = {}", v.key_max_bytes);
    let _ = writeln!(out, "string-max-bytes = {}", v.string_max_bytes);
    if !v.key_allowed.is_empty() {
        let set: String = v
            .key_allowed
            .iter()
            .map(|&(low, high)| {
                if low == high {
                    low.to_string()
                } else {
                    format!("{low}-{high}")
                }
            })
            .collect();
        let _ = writeln!(out, "key-allowed-characters = {set:?}");
    }
    for rule in &rules.rules {
        let _ = writeln!(out, "\n[[rule]]");
        let _ = writeln!(out, "device = {:?}", rule.device.as_str());
        let _ = writeln!(out, "tag = {:?}", rule.tag.as_str());
        if let Some(template) = &rule.key_template {
            let _ = writeln!(out, "key-template = {:?}", template.as_str());
        }
        let number = |out: &mut String, name: &str, value: Option<f64>| {
            if let Some(value) = value {
                let _ = writeln!(out, "{name} = {value:?}");
            }
        };
        number(out, "scale", rule.scale);
        number(out, "offset", rule.offset);
        number(out, "clamp-min", rule.clamp.map(|c| c.0));
        number(out, "clamp-max", rule.clamp.map(|c| c.1));
        if let Some(round) = rule.round {
            let _ = writeln!(out, "round = {round}");
        }
        if let Some(cast) = rule.cast {
            let _ = writeln!(out, "cast = {:?}", cast.as_str());
        }
        if let Some(data_type) = rule.data_type {
            let _ = writeln!(out, "data-type = {:?}", data_type.as_str());
        }
        let (low, high) = rule.valid_range.unwrap_or((f64::MIN, f64::MAX));
        number(out, "min", (low != f64::MIN).then_some(low));
        number(out, "max", (high != f64::MAX).then_some(high));
        match rule.deadband {
            Some(Deadband::Absolute(band)) => number(out, "deadband", Some(band)),
            Some(Deadband::Percent(band)) => number(out, "deadband-percent", Some(band)),
            None => {}
        }
        let seconds = |d: Option<dataservice_sync_core::Duration>| {
            d.map(|d| d.total_millis() as f64 / 1000.0)
        };
        number(out, "min-interval", seconds(rule.min_interval));
        number(out, "heartbeat", seconds(rule.heartbeat));
    }
}
