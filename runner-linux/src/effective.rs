//! The effective configuration as a TOML file that `--config` reads back:
//! what `dataservice-sync config check` prints.

use std::fmt::Write;

use dataservice_sync_core::rules::{Deadband, RuleSet};

use crate::SyncOptions;
use crate::option_table::{DefaultValue, OPTIONS};

/// `options` as TOML, every setting spelled out (one left unset as a
/// comment saying what that means).
pub fn to_toml(o: &SyncOptions) -> String {
    let mut out = String::from("# effective configuration\n");
    for spec in OPTIONS {
        match ((spec.show)(o), spec.default) {
            (Some(value), _) => {
                let _ = writeln!(out, "{} = {value}", spec.name);
            }
            (None, DefaultValue::Unset(meaning)) => {
                let _ = writeln!(out, "# {}: {meaning}", spec.name);
            }
            (None, _) => {
                let _ = writeln!(out, "# {}: unset", spec.name);
            }
        }
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
