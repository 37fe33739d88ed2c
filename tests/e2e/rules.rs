//! Rules from a configuration file through the real binary: the file and
//! the command line, `config check`, filters and mapping with exact
//! values, SIGHUP reload under load, and the `check` subcommands.

use std::path::{Path, PathBuf};

use dataservice_sync_sim::PollingMode;
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::harness::{fixture, run_to_end, stat, temp_dir, writes};
use crate::{SECOND, peers};

fn config(name: &str, text: &str) -> PathBuf {
    let path = temp_dir(name).join("sync.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

const RULES: &str = r#"
key-template = "{device}:{tag}"
heartbeat = 3600

[filter]
exclude-devices = ["Pump*"]
good-statuses = ["ok", "SUCCESS", "success"]

[validation]
string-max-bytes = 5

[[rule]]
device = "Boiler-1"
tag = "t-001"
scale = 0.5
offset = -10
round = 1

[[rule]]
device = "Boiler-*"
tag = "t-002"
cast = "string"
key-template = "{device}/{tag_id}"

[[rule]]
device = "Kühl*"
max = -20
"#;

#[test]
fn a_config_file_sets_options_and_rules_and_the_command_line_wins() {
    let p = peers("rules-file", PollingMode::Body(fixture("basic.json")));
    let file = config("rules-file", &format!("interval = 0.05\n{RULES}"));
    // The command line's interval wins over the file's 0.05 s.
    let mut sync = p.start_sync(&[
        "--config",
        &path_str(&file),
        "--interval",
        "3600",
        "--dataservice-url",
        "off",
    ]);
    assert!(p.wait_requests(3, 10 * SECOND), "log:\n{}", sync.log());
    std::thread::sleep(SECOND);
    assert!(sync.terminate().success());
    assert_eq!(
        writes(&p.requests()),
        [
            // 71.25 * 0.5 - 10, rounded to one decimal.
            ("Boiler-1:t-001".to_string(), json!(25.6)),
            ("Boiler-1/t-002".to_string(), json!("3")),
            ("Boiler-1:t-003".to_string(), json!(true)),
        ]
    );
    let stats = sync.final_stats();
    // One cycle: Pump Station 2's two tags filtered; "OK" is not a good
    // status any more; RUNNING is longer than 5 bytes; -18.4 > max -20.
    assert_eq!(stat(&stats, "sync_cycles_total"), 1);
    assert_eq!(stat(&stats, "tags_filtered_total"), 2);
    assert_eq!(stat(&stats, "reads_failed_total"), 1);
    assert_eq!(stat(&stats, "rejected.string_too_long"), 1);
    assert_eq!(stat(&stats, "rejected.value_out_of_range"), 1);
}

#[test]
fn config_check_prints_the_effective_configuration_or_the_error_with_its_line() {
    let file = config("rules-check", RULES);
    let (code, out, err) = run_to_end(&["config", "check", &path_str(&file)]);
    assert_eq!(code, Some(0), "{err}");
    for expected in [
        "key-template = \"{device}:{tag}\"\n",
        "heartbeat = 3600\n",
        "interval = 1\n",
        "exclude-devices = [\"Pump*\"]\n",
        "good-statuses = [\"ok\", \"SUCCESS\", \"success\"]\n",
        "string-max-bytes = 5\n",
        "[[rule]]\ndevice = \"Boiler-1\"\ntag = \"t-001\"\nscale = 0.5\noffset = -10.0\nround = 1\n",
        "[[rule]]\ndevice = \"Kühl*\"\ntag = \"*\"\nmax = -20.0\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // What it prints reads back to the same configuration.
    let again = config("rules-check-again", &out);
    let (code, out_again, _) = run_to_end(&["config", "check", &path_str(&again)]);
    assert_eq!((code, &out_again), (Some(0), &out));
    for (text, expected) in [
        (
            "interval = 0.5\nsocket-path = 3\n[filter]\nexclude-tags = [1]\n",
            ":4: filter.exclude-tags: must be a list of strings",
        ),
        (
            "interval = 0.001\n",
            ":1: interval: invalid value '0.001' for '--interval <SECONDS>': \"0.001\" is less than 0.01 seconds",
        ),
        (
            "\n\n[[rule]]\nround = 12\n",
            ":4: rule[1].round: must be 0 to 9 decimals",
        ),
        ("intervall = 1\n", ":1: intervall: unknown setting"),
        (
            "key-template = \"{device}\"\n",
            ": --key-template \"{device}\": key template needs {tag} or {tag_id}",
        ),
    ] {
        let bad = config("rules-check-bad", text);
        let (code, out, err) = run_to_end(&["config", "check", &path_str(&bad)]);
        assert_eq!(code, Some(2), "{text:?}");
        assert_eq!(out, "");
        let expected = format!("error: {}{expected}\n", bad.display());
        assert_eq!(err, expected, "{text:?}");
    }
}

/// The round of `Device-0.tag-0` in a written value: `round * 10`, plus a
/// million under the reloaded rule.
fn round_of(value: &Value) -> (bool, u64) {
    let v = value.as_f64().expect("number") as u64;
    if v >= 1_000_000 {
        (true, (v - 1_000_000) / 10)
    } else {
        (false, v / 10)
    }
}

#[test]
fn sighup_applies_a_new_file_under_load_without_a_lost_or_duplicated_write() {
    let p = peers(
        "rules-reload",
        PollingMode::Generated {
            devices: 1,
            tags: 3,
            changing_percent: 100,
        },
    );
    let file = config(
        "rules-reload",
        "[[rule]]\ntag = \"tag-0\"\ncast = \"int\"\n",
    );
    let mut sync = p.start_sync(&[
        "--config",
        &path_str(&file),
        "--interval",
        "0.05",
        "--dataservice-url",
        "off",
    ]);
    assert!(p.wait_requests(30, 10 * SECOND), "log:\n{}", sync.log());
    // Two options a reload does not apply ride along: they are named.
    std::fs::write(
        &file,
        "write-timeout = 3.0\nreplay-rate = 100\n\
         [[rule]]\ntag = \"tag-0\"\noffset = 1000000\ncast = \"int\"\n",
    )
    .unwrap();
    sync.signal(Signal::SIGHUP);
    sync.expect_log("configuration reloaded from", 5 * SECOND);
    let reloaded_at = p.requests().len();
    assert!(p.wait_requests(reloaded_at + 30, 10 * SECOND));
    // A broken file is refused; the rules in force stay.
    std::fs::write(&file, "[[rule]]\ntag = \"tag-0\"\nscale = \"x\"\n").unwrap();
    sync.signal(Signal::SIGHUP);
    sync.expect_log("configuration reload refused", 5 * SECOND);
    let refused_at = p.requests().len();
    assert!(p.wait_requests(refused_at + 30, 10 * SECOND));
    assert!(sync.terminate().success());
    let rounds: Vec<(bool, u64)> = writes(&p.requests())
        .iter()
        .filter(|(key, _)| key == "Device-0.tag-0")
        .map(|(_, v)| round_of(v))
        .collect();
    // Every round once, in order; the old rule up to the reload, the new
    // one from then on, never both.
    let numbers: Vec<u64> = rounds.iter().map(|r| r.1).collect();
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    let switch = rounds
        .iter()
        .position(|r| r.0)
        .expect("the new rule applied");
    assert!(rounds[..switch].iter().all(|r| !r.0) && rounds[switch..].iter().all(|r| r.0));
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "config_reloads_total"), 1);
    assert_eq!(stat(&stats, "config_reload_failures_total"), 1);
    assert!(
        sync.log().contains(&format!(
            "configuration reloaded from {}: 1 rules, key template {{device}}.{{tag}}; changed but \
             applied only at the next start: write-timeout, replay-rate\n",
            file.display()
        )),
        "log:\n{}",
        sync.log()
    );
    assert!(
        sync.log().contains(&format!(
            "configuration reload refused, the rules in force stay: {}:3: rule[1].scale: must be a number",
            file.display()
        )),
        "log:\n{}",
        sync.log()
    );
}

#[test]
fn check_subcommands_talk_to_the_peers_with_clear_exit_codes() {
    let p = peers(
        "rules-check-peers",
        PollingMode::Body(fixture("basic.json")),
    );
    p.dataservice
        .register("dataservice_sync.check", "int")
        .unwrap();
    // By default the probe writes nothing.
    let (code, out, err) = run_to_end(&["check", "ipc", "--socket-path", &p.socket]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "sent:  {\"action\":\"dataservice-sync-probe\"}\nreply: {\"ok\": false, \"error\": \"unknown action\"}\n\
         ok: the Data-Service answered; nothing was written (--write writes a test value)\n"
    );
    assert_eq!(p.dataservice.store().applied, 0);
    let (code, out, err) = run_to_end(&["check", "ipc", "--write", "--socket-path", &p.socket]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "sent:  {\"action\":\"write\",\"key\":\"dataservice_sync.check\",\"value\":1}\nreply: {\"ok\": true}\n\
         ok: the Data-Service answered (it answers ok for unregistered keys too, and drops those writes)\n"
    );
    assert_eq!(p.dataservice.values()["dataservice_sync.check"], json!(1));
    let missing = format!("{}.gone", p.socket);
    let (code, _, err) = run_to_end(&["check", "ipc", "--socket-path", &missing]);
    assert_eq!(code, Some(3));
    assert_eq!(
        err,
        format!("error: {missing}: socket does not exist (is the Data-Service running?)\n")
    );
    let directory = std::env::temp_dir();
    let directory = directory.to_str().unwrap();
    let (code, _, err) = run_to_end(&["check", "ipc", "--socket-path", directory]);
    assert_eq!(
        (code, err),
        (
            Some(3),
            format!("error: {directory}: path is not a socket\n")
        )
    );
    // A value that is not JSON is a usage error.
    let (code, _, err) = run_to_end(&["check", "ipc", "--write", "--value", "notjson"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"notjson\" is not JSON"), "{err}");

    let (code, out, err) = run_to_end(&["check", "source", "--source", &p.polling.url()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "{:<32} {:>6} {:>6} {:>6} {:>8}\n{:<32} {:>6} {:>6} {:>6} {:>8}\n{:<32} {:>6} {:>6} {:>6} {:>8}\n\
             {:<32} {:>6} {:>6} {:>6} {:>8}\n{:<32} {:>6} {:>6} {:>6} {:>8}\n",
            "device",
            "tags",
            "good",
            "failed",
            "rejected",
            "Boiler-1",
            5,
            4,
            1,
            0,
            "Pump Station 2",
            2,
            1,
            1,
            0,
            "Kühlraum \"Nord\"",
            1,
            1,
            0,
            0,
            "3 devices",
            8,
            6,
            2,
            0,
        )
    );
    let (code, _, err) = run_to_end(&["check", "source", "--source", "http://127.0.0.1:1/x"]);
    assert_eq!(code, Some(3), "{err}");

    let (code, out, err) = run_to_end(&[
        "check",
        "dataservice",
        "--dataservice-url",
        &p.dataservice.http_url(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.ends_with("registered keys: 1 (1 with an address)\n"),
        "{out}"
    );
    assert!(out.starts_with("health: {"), "{out}");
}

#[test]
fn check_source_with_a_config_shows_what_each_tag_would_become() {
    let p = peers(
        "rules-check-decisions",
        PollingMode::Body(fixture("basic.json")),
    );
    let config = crate::harness::temp_dir("rules-check-decisions").join("sync.toml");
    std::fs::write(
        &config,
        "[filter]\nexclude-devices = [\"Pump*\"]\n\n[[rule]]\ndevice = \"Boiler-1\"\ntag = \"t-002\"\nscale = 10\n",
    )
    .unwrap();
    let (code, out, err) = run_to_end(&[
        "check",
        "source",
        "--config",
        config.to_str().unwrap(),
        "--source",
        &p.polling.url(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows[0], ["key", "value", "type", "rule", "decision"]);
    assert_eq!(
        rows[2],
        [
            "Boiler-1.t-002",
            "30.0",
            "float (registered as float)",
            "rule 1",
            "written when it changes"
        ]
    );
    assert_eq!(rows.len(), 9, "{out}");
    assert_eq!(
        rows.iter()
            .filter(|r| r.last() == Some(&"not written: filtered out"))
            .count(),
        2,
        "{out}"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.last() == Some(&"not written: failed read"))
            .count(),
        1,
        "{out}"
    );
}

#[test]
fn usage_errors_name_what_was_meant_and_exit_2() {
    for (args, env, expected) in [
        (
            vec!["--intervall", "1"],
            None,
            "error: unexpected argument '--intervall' found; tip: a similar argument exists: '--interval' (see --help)\n",
        ),
        (
            vec!["--backlog", "foo"],
            None,
            "error: invalid value 'foo' for '--backlog <POLICY>'; [possible values: latest, history] (see --help)\n",
        ),
        (
            vec!["config", "check"],
            None,
            "error: the following required arguments were not provided: <PATH> (see --help)\n",
        ),
        (
            vec!["--source", "http://[::1"],
            None,
            "error: --source: invalid URL \"http://[::1\": an IPv6 host goes in brackets, e.g. http://[::1]:8000/PATH\n",
        ),
        (
            vec!["--interval", "1"],
            Some(""),
            "error: the environment variable IPC_SOCKET_PATH is set but empty: unset it, or set it to the Data-Service's socket\n",
        ),
    ] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dataservice-sync"));
        command.args(&args).env_remove("IPC_SOCKET_PATH");
        if let Some(value) = env {
            command.env("IPC_SOCKET_PATH", value);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{args:?}");
    }
    // `check` alone: its usage.
    let (code, _, err) = run_to_end(&["check"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("Usage: dataservice-sync check <COMMAND>"),
        "{err}"
    );
    // The version names the build.
    let (code, out, _) = run_to_end(&["--version"]);
    assert_eq!(code, Some(0));
    let version = out.trim_end();
    let inner = version
        .strip_prefix(&format!(
            "dataservice-sync {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    let parts: Vec<&str> = inner.split(", ").collect();
    assert_eq!(parts.len(), 3, "{version}");
    assert!(parts[1].contains("-linux-"), "{version}");
    assert_eq!(parts[2].len(), "built 2026-12-04".len(), "{version}");
}

#[test]
fn a_demo_whose_reader_goes_away_stops_and_cleans_up() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dataservice-sync"))
        .args(["demo", "--status-listen", "off"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("dataservice-sync-demo-{}", child.id()));
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with("demo: simulated polling service at "),
        "{first}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!dir.exists(), "{} left behind", dir.display());
}
