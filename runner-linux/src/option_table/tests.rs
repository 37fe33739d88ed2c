//! The option table against the defaults, the engine, the CLI and the
//! documentation.

use super::*;

/// A TOML value as the command line would give it.
fn as_argument(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => panic!("not an option's value: {other:?}"),
    }
}

/// `name = value` read back through the option's own reader.
fn read_back(spec: &OptionSpec, toml_value: &str) -> Option<String> {
    let line = format!("{} = {toml_value}", spec.name);
    let table: toml::Table = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
    let mut options = SyncOptions::unset();
    (spec.set)(&mut options, &as_argument(&table[spec.name]))
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    (spec.show)(&options)
}

#[test]
fn every_default_is_read_by_its_option_and_shown_as_config_check_prints_it() {
    let defaults = SyncOptions::default();
    for spec in OPTIONS {
        let shown = (spec.show)(&defaults);
        match spec.default {
            DefaultValue::Unset(_) => assert_eq!(shown, None, "{}", spec.name),
            _ => {
                let shown = shown.unwrap_or_else(|| panic!("{} has no value", spec.name));
                assert_eq!(
                    read_back(spec, &shown).as_deref(),
                    Some(shown.as_str()),
                    "{}",
                    spec.name
                );
            }
        }
    }
}

#[test]
fn the_defaults_are_the_ones_users_are_told() {
    let shown: Vec<(&str, Option<String>)> = OPTIONS
        .iter()
        .map(|spec| (spec.name, (spec.show)(&SyncOptions::default())))
        .collect();
    let expected = [
        ("socket-path", Some("\"/tmp/dataservice.sock\"")),
        ("interval", Some("1")),
        ("no-logging", Some("false")),
        ("log-level", Some("\"info\"")),
        ("stats-interval", Some("60")),
        (
            "source",
            Some("\"http://127.0.0.1:8000/deploy/api/io/polled-values\""),
        ),
        ("key-template", Some("\"{device}.{tag}\"")),
        ("write-timeout", Some("2")),
        ("source-timeout", Some("5")),
        ("max-body-bytes", Some("16777216")),
        ("max-connections", Some("4")),
        ("shutdown-timeout", Some("5")),
        ("dataservice-url", Some("\"http://127.0.0.1:8080\"")),
        ("register", Some("\"off\"")),
        ("delivery", Some("\"bulk\"")),
        ("bulk-max-bytes", Some("65536")),
        ("bulk-in-flight", Some("2")),
        ("heartbeat", Some("60")),
        ("max-age", Some("120")),
        ("max-tags", Some("32768")),
        ("status-listen", Some("\"127.0.0.1:9108\"")),
        ("health-cycles", Some("3")),
        ("backlog", Some("\"latest\"")),
        ("backlog-bytes", Some("4194304")),
        ("replay-rate", Some("5000")),
        ("max-drain", None),
        ("spool-dir", None),
        ("spool-max-bytes", Some("67108864")),
        ("spool-sync", Some("\"1000\"")),
    ]
    .map(|(name, value)| (name, value.map(str::to_owned)));
    assert_eq!(shown, expected);
}

#[test]
fn the_engine_built_from_the_default_options_is_the_engine_s_own_default() {
    let built = engine_config(&SyncOptions::default());
    assert_eq!(format!("{built:?}"), format!("{:?}", engine_defaults()));
}

#[test]
fn every_option_reaches_the_engine_setting_it_names() {
    let mut options = SyncOptions::default();
    for (name, text) in [
        ("interval", "0.5"),
        ("log-level", "debug"),
        ("key-template", "{device}:{tag}"),
        ("dataservice-url", "off"),
        ("register", "missing"),
        ("delivery", "write"),
        ("bulk-max-bytes", "8192"),
        ("bulk-in-flight", "3"),
        ("heartbeat", "30"),
        ("max-age", "off"),
        ("backlog", "history"),
        ("replay-rate", "700"),
        ("max-drain", "4"),
        ("spool-dir", "/var/lib/dataservice-sync"),
    ] {
        let spec = OPTIONS.iter().find(|spec| spec.name == name).unwrap();
        (spec.set)(&mut options, text).unwrap();
    }
    let c = engine_config(&options);
    assert_eq!(c.interval, CoreDuration::from_millis(500));
    assert!(c.trace_decisions);
    assert_eq!(c.key_template.as_str(), "{device}:{tag}");
    assert!(!c.registry_checks);
    assert_eq!(c.register, RegisterMode::Missing);
    assert_eq!(c.delivery, DeliveryMode::Write);
    assert_eq!(c.bulk_max_bytes, 8192);
    assert_eq!(c.bulk_in_flight, 3);
    assert_eq!(c.heartbeat, CoreDuration::from_secs(30));
    assert_eq!(c.max_age, None);
    assert_eq!(c.backlog, BacklogPolicy::History);
    assert_eq!(c.replay_rate, 700);
    assert_eq!(c.max_drain, Some(CoreDuration::from_secs(4)));
    assert!(c.spool);
    // --no-logging wins over --log-level debug: nothing is traced.
    options.no_logging = true;
    assert!(!engine_config(&options).trace_decisions);
}

#[test]
fn a_reload_names_every_changed_option_it_does_not_apply() {
    let old = SyncOptions::default();
    let mut new = SyncOptions::default();
    for (name, text) in [
        ("heartbeat", "30"),
        ("key-template", "{device}:{tag}"),
        ("write-timeout", "3"),
        ("log-level", "debug"),
        ("replay-rate", "100"),
        ("max-drain", "2"),
    ] {
        let spec = OPTIONS.iter().find(|spec| spec.name == name).unwrap();
        (spec.set)(&mut new, text).unwrap();
    }
    assert_eq!(
        changed_at_restart(&old, &new),
        ["log-level", "write-timeout", "replay-rate", "max-drain"]
    );
    // What the runner's reload applies: the key template and the heartbeat.
    let applied: Vec<&str> = OPTIONS
        .iter()
        .filter(|spec| spec.reload == Reload::Applies)
        .map(|spec| spec.name)
        .collect();
    assert_eq!(applied, ["key-template", "heartbeat"]);
}

#[test]
fn bad_values_are_refused_with_what_is_wrong() {
    let refused = |name: &str, text: &str| {
        let spec = OPTIONS.iter().find(|spec| spec.name == name).unwrap();
        (spec.set)(&mut SyncOptions::unset(), text).unwrap_err()
    };
    assert_eq!(refused("max-connections", "17"), "17 is not in 1..=16");
    assert_eq!(refused("health-cycles", "0"), "0 is not in 1..=1000");
    assert_eq!(
        refused("max-tags", "many"),
        "\"many\": invalid digit found in string"
    );
    assert_eq!(refused("interval", "0"), "\"0\" is less than 0.01 seconds");
    assert_eq!(
        refused("max-age", "x"),
        "\"x\" is not a number of seconds (or 'off')"
    );
    assert_eq!(refused("no-logging", "yes"), "\"yes\" is not true or false");
    assert_eq!(
        refused("spool-sync", "0"),
        "\"0\" is not 'always', 'never' or 1..3600000 milliseconds"
    );
    assert_eq!(refused("socket-path", ""), "the path is empty");
}

#[test]
fn the_packaged_config_file_names_every_option_with_its_default() {
    let file = include_str!("../../../dist/config.toml");
    let defaults = SyncOptions::default();
    for spec in OPTIONS {
        let commented = format!("#{} = ", spec.name);
        let set = format!("{} = ", spec.name);
        let line = file
            .lines()
            .find(|line| line.starts_with(&commented) || line.starts_with(&set))
            .unwrap_or_else(|| panic!("dist/config.toml lacks {}", spec.name));
        // A commented line is the default; the file sets `backlog` and
        // `spool-dir`, and shows `max-drain` (unset) with an example.
        if let (Some(value), Some(default)) =
            (line.strip_prefix(&commented), (spec.show)(&defaults))
        {
            assert_eq!(read_back(spec, value), Some(default), "{line}");
        }
    }
}

#[test]
fn the_configuration_reference_has_a_row_for_every_option() {
    let page = include_str!("../../../docs/configuration.md");
    let rows: Vec<&str> = page
        .lines()
        .filter_map(|line| line.strip_prefix("| `--"))
        .filter_map(|row| row.split([' ', '`']).next())
        .filter(|name| *name != "config")
        .collect();
    let names: Vec<&str> = OPTIONS.iter().map(|spec| spec.name).collect();
    assert_eq!(rows, names);
}
