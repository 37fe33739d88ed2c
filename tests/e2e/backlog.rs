//! Nothing lost: the `history` backlog and the spool through the real
//! binary. Values come from the generated document, where tag-0 of a device
//! holds `round * 10` in the polling service's `round`-th answer, so every
//! delivered value says which answer it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dataservice_sync_sim::PollingMode;
use nix::sys::signal::Signal;
use serde_json::Value;

use crate::harness::{SyncProcess, run_to_end, stat, temp_dir, wait_until};
use crate::{Peers, SECOND, peers};

const CHANGING: PollingMode = PollingMode::Generated {
    devices: 1,
    tags: 3,
    changing_percent: 100,
};

/// The rounds of `Device-0.tag-0` in the order the Data-Service got them.
fn delivered_rounds(p: &Peers) -> Vec<u64> {
    p.requests()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON request"))
        .filter(|r| r["key"] == "Device-0.tag-0")
        .map(|r| r["value"].as_u64().expect("integer") / 10)
        .collect()
}

/// Every value of every tag, per key, in order.
fn delivered_per_key(p: &Peers) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in p.requests() {
        let r: Value = serde_json::from_str(&line).expect("JSON request");
        assert_eq!(r["action"], "write", "{r}");
        out.entry(r["key"].as_str().unwrap().to_string())
            .or_default()
            .push(r["value"].clone());
    }
    out
}

fn expected_values(tag: u32, rounds: &[u64]) -> Vec<Value> {
    rounds
        .iter()
        .map(|&r| serde_json::from_str(&dataservice_sync_sim::generated_value(tag, r)).unwrap())
        .collect()
}

/// The sync against `p`, by key, every 100 ms, with a history backlog
/// that keeps every change however long it takes to drain (these tests are
/// about losing nothing; under emulation the Data-Service double is slow
/// enough for the default `--max-drain` to drop some); `extra` after.
fn history_command(p: &Peers, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "--dataservice-url",
        "off",
        "--interval",
        "0.1",
        "--backlog",
        "history",
        "--max-drain",
        "600",
    ];
    args.extend_from_slice(extra);
    p.sync_command(&args)
}

fn history_sync(p: &Peers, extra: &[&str]) -> SyncProcess {
    SyncProcess::from_command(history_command(p, extra))
}

/// Every tag got the values of exactly these rounds, in order.
fn assert_every_round_once(p: &Peers, rounds: &[u64]) {
    let per_key = delivered_per_key(p);
    for tag in 0..3 {
        let key = format!("Device-0.tag-{tag}");
        let got = per_key.get(&key).cloned().unwrap_or_default();
        // tag-2 is a bool that flips every round: still one change per round.
        assert_eq!(got, expected_values(tag, rounds), "{key}");
    }
}

/// The real socket going away and coming back; a 30 s outage (300 cycles)
/// is proven on the simulated clock (`tests/sim/tests/simulated_time.rs`).
#[test]
fn an_outage_loses_nothing_with_history() {
    let mut p = peers("history-outage", CHANGING);
    let mut sync = history_sync(&p, &["--stats-interval", "0"]);
    assert!(p.wait_requests(6, 10 * SECOND), "log:\n{}", sync.log());
    p.dataservice.stop_ipc();
    let stopped_at = p.polling.requests();
    std::thread::sleep(3 * SECOND);
    let during = p.polling.requests();
    p.dataservice.resume_ipc().unwrap();
    // Catch up: at least every round fetched during the outage arrives.
    assert!(
        wait_until(60 * SECOND, || delivered_rounds(&p).last() >= Some(&during)),
        "log:\n{}",
        sync.log()
    );
    assert!(sync.terminate().success());
    let rounds = delivered_rounds(&p);
    let served = p.polling.requests();
    // Each answer the sync applied, once, in order: rounds 1..=n, where the
    // last answer may have been cut by SIGTERM.
    let n = *rounds.last().unwrap();
    assert!(n + 1 >= served && n <= served, "n={n} served={served}");
    assert_eq!(rounds, (1..=n).collect::<Vec<_>>());
    assert!(
        during >= stopped_at + 10,
        "only {} rounds in 3 s at 100 ms",
        during - stopped_at
    );
    assert_every_round_once(&p, &rounds);
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "backlog_dropped_total"), 0);
    assert_eq!(stat(&stats, "writes_ok_total"), 3 * n);
}

fn spool_dir(name: &str) -> PathBuf {
    temp_dir(name).join("spool")
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_sigkill_during_an_outage_loses_nothing_with_a_spool() {
    let mut p = peers("history-kill", CHANGING);
    let spool = spool_dir("history-kill");
    let spool_arg = spool.display().to_string();
    let spool_args = ["--spool-dir", spool_arg.as_str(), "--spool-sync", "always"];
    let mut first = history_sync(&p, &spool_args);
    assert!(p.wait_requests(6, 10 * SECOND), "log:\n{}", first.log());
    p.dataservice.stop_ipc();
    std::thread::sleep(3 * SECOND);
    // Counted only now: the double's IPC thread may still answer the
    // connection it was on when told to stop (under qemu it did, once).
    // Counted in writes, not rounds: the outage can fall between a round's
    // three writes, and the rest of that round is then spooled.
    let written_before = p.requests().len() as u64;
    let rounds_before = delivered_rounds(&p).len() as u64;
    first.signal(Signal::SIGKILL);
    first.wait_exit(10 * SECOND);
    let killed_at = p.polling.requests();
    assert!(!files(&spool).is_empty(), "nothing spooled");
    let second = history_sync(&p, &spool_args);
    second.expect_log("undelivered changes replayed", 10 * SECOND);
    std::thread::sleep(SECOND);
    p.dataservice.resume_ipc().unwrap();
    assert!(
        wait_until(30 * SECOND, || delivered_rounds(&p).last()
            > Some(&(killed_at + 5))),
        "log:\n{}",
        second.log()
    );
    let rounds = delivered_rounds(&p);
    // In order, each once; every answer the first process fetched up to the
    // kill is there (the one it was applying when killed may be missing).
    let mut sorted = rounds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(rounds, sorted, "out of order or twice");
    for round in 1..killed_at.saturating_sub(1) {
        assert!(
            rounds.contains(&round),
            "round {round} lost; got {rounds:?}"
        );
    }
    // The second process continued with the polling service's next answers.
    let after: Vec<u64> = rounds.iter().copied().filter(|&r| r > killed_at).collect();
    assert_eq!(
        after,
        (killed_at + 1..=*after.last().unwrap()).collect::<Vec<_>>()
    );
    // Everything acknowledged: the spool emptied itself.
    assert!(wait_until(10 * SECOND, || files(&spool).is_empty()));
    let mut second = second;
    assert!(second.terminate().success());
    // What came back from the spool: the writes of the first process's
    // rounds that the Data-Service had not had before the outage. Three
    // changes per round up to the last one it spooled, except that the
    // round whose records were being appended when SIGKILL came may be cut
    // after its first one or two (SIGKILL loses what the running cycle had
    // not spooled yet); its tag-0 record, appended first, is what makes it
    // the last round here.
    let last_spooled = rounds
        .iter()
        .copied()
        .filter(|&r| r <= killed_at)
        .max()
        .unwrap();
    assert!(
        last_spooled - rounds_before >= 20,
        "{rounds_before} rounds before the outage, up to {last_spooled} spooled"
    );
    let replayed = stat(&second.final_stats(), "replayed_total");
    let whole = 3 * last_spooled - written_before;
    assert!(
        (whole - 2..=whole).contains(&replayed),
        "replayed {replayed}: {written_before} writes before the outage, rounds up to {last_spooled} spooled"
    );
}

/// A spool segment of `rounds` changes of `Device-0.tag-0`, written the way
/// the sync writes it.
fn segment(rounds: std::ops::RangeInclusive<u64>) -> (Vec<u8>, Vec<usize>) {
    use dataservice_sync_core::Value as CoreValue;
    use dataservice_sync_core::wire::spool::{Change, MAX_FRAME_LEN, encode_change};
    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for round in rounds {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let change = Change {
            seq: round,
            source_time_ms: 0,
            key: "Device-0.tag-0",
            value: CoreValue::Int(round as i64 * 10),
        };
        let len = encode_change(&change, &mut buf).unwrap();
        starts.push(bytes.len());
        bytes.extend_from_slice(&buf[..len]);
    }
    (bytes, starts)
}

#[test]
fn a_corrupt_record_and_a_torn_tail_lose_only_those_records() {
    let p = peers("history-corrupt", PollingMode::Status(500));
    let spool = spool_dir("history-corrupt");
    std::fs::create_dir_all(&spool).unwrap();
    let (mut bytes, starts) = segment(1..=10);
    bytes[starts[4] + 20] ^= 0x55; // a flipped byte inside record 5
    bytes.truncate(starts[9] + 7); // record 10 cut short
    std::fs::write(spool.join("changes-00000000000000000001.spool"), &bytes).unwrap();
    let spool_arg = spool.display().to_string();
    let mut sync = history_sync(&p, &["--spool-dir", spool_arg.as_str()]);
    assert!(p.wait_requests(8, 10 * SECOND), "log:\n{}", sync.log());
    assert!(sync.terminate().success());
    assert_eq!(delivered_rounds(&p), [1, 2, 3, 4, 6, 7, 8, 9]);
    assert!(
        sync.log().contains("8 undelivered changes replayed (acknowledged through #0), 1 damaged and 1 torn records skipped"),
        "log:\n{}",
        sync.log()
    );
    assert_eq!(stat(&sync.final_stats(), "replayed_total"), 8);
    // All delivered: the damaged file is gone too, no manual wipe.
    assert!(files(&spool).is_empty(), "{:?}", files(&spool).keys());
}

#[test]
fn an_unusable_spool_is_one_clear_line_and_the_sync_goes_on_in_memory() {
    let mut p = peers("history-nospool", CHANGING);
    // A regular file where the directory should be.
    let not_a_dir = temp_dir("history-nospool").join("spool-file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let spool_arg = not_a_dir.display().to_string();
    let mut sync = history_sync(&p, &["--spool-dir", spool_arg.as_str()]);
    sync.expect_log("spool: cannot use", 10 * SECOND);
    assert!(p.wait_requests(6, 10 * SECOND));
    p.dataservice.stop_ipc();
    std::thread::sleep(2 * SECOND);
    every_round_once_after_the_outage(&mut p, &mut sync, "spool: cannot use");
}

/// The Data-Service comes back: every round up to its return arrives, in
/// order, and the spool's `line` was logged once. Returns that round.
fn every_round_once_after_the_outage(p: &mut Peers, sync: &mut SyncProcess, line: &str) -> u64 {
    p.dataservice.resume_ipc().unwrap();
    let during = p.polling.requests();
    assert!(wait_until(20 * SECOND, || delivered_rounds(p).last() >= Some(&during)));
    assert!(sync.terminate().success());
    let rounds = delivered_rounds(p);
    assert_eq!(rounds, (1..=*rounds.last().unwrap()).collect::<Vec<_>>());
    assert_eq!(sync.count(line), 1);
    during
}

#[test]
fn a_full_disk_is_one_clear_line_and_nothing_accepted_is_lost() {
    use std::os::unix::process::CommandExt;
    let mut p = peers("history-fsize", CHANGING);
    let spool = spool_dir("history-fsize").display().to_string();
    let mut command = history_command(&p, &["--spool-dir", &spool]);
    // A 2 KiB file size limit plays a full disk: writes fail with EFBIG
    // (SIGXFSZ ignored, as a service manager would not kill on it).
    unsafe {
        command.pre_exec(|| {
            nix::sys::signal::signal(Signal::SIGXFSZ, nix::sys::signal::SigHandler::SigIgn)
                .map_err(std::io::Error::from)?;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_FSIZE, 2048, 2048)
                .map_err(std::io::Error::from)
        });
    }
    let mut sync = SyncProcess::from_command(command);
    assert!(p.wait_requests(6, 10 * SECOND), "log:\n{}", sync.log());
    p.dataservice.stop_ipc();
    sync.expect_log("spool: File too large", 10 * SECOND);
    std::thread::sleep(SECOND);
    let during = every_round_once_after_the_outage(&mut p, &mut sync, "spool: File too large");
    assert!(stat(&sync.final_stats(), "writes_ok_total") >= 3 * during);
}

#[test]
fn a_restart_with_a_bad_configuration_leaves_the_spool_untouched() {
    let spool = spool_dir("history-badconf");
    std::fs::create_dir_all(&spool).unwrap();
    let (bytes, _) = segment(1..=3);
    std::fs::write(spool.join("changes-00000000000000000001.spool"), &bytes).unwrap();
    let before = files(&spool);
    let spool_arg = spool.display().to_string();
    for bad in [
        &[
            "--backlog",
            "history",
            "--spool-dir",
            spool_arg.as_str(),
            "--interval",
            "abc",
        ][..],
        &["--spool-dir", spool_arg.as_str()],
        &[
            "--backlog",
            "history",
            "--spool-dir",
            spool_arg.as_str(),
            "--source",
            "ftp://x",
        ],
    ] {
        let (code, _, _) = run_to_end(bad);
        assert_eq!(code, Some(2), "{bad:?}");
        assert_eq!(files(&spool), before, "{bad:?}");
    }
}

#[test]
fn sigterm_while_the_dataservice_is_down_spools_the_backlog_for_the_next_start() {
    let mut p = peers("history-term", CHANGING);
    let spool = spool_dir("history-term");
    let spool_arg = spool.display().to_string();
    let spool_args = ["--spool-dir", spool_arg.as_str(), "--spool-sync", "never"];
    p.dataservice.stop_ipc();
    let mut first = history_sync(&p, &spool_args);
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= 10));
    assert!(first.terminate().success());
    let served = p.polling.requests();
    first.expect_log("spool: ", SECOND);
    p.dataservice.resume_ipc().unwrap();
    let mut second = history_sync(&p, &spool_args);
    assert!(
        wait_until(20 * SECOND, || delivered_rounds(&p).last()
            > Some(&(served + 3))),
        "log:\n{}",
        second.log()
    );
    assert!(second.terminate().success());
    let rounds = delivered_rounds(&p);
    let n = *rounds.last().unwrap();
    // All rounds the first process applied (all but possibly the one in
    // flight at SIGTERM), then the second's, each once, in order.
    let expected: Vec<u64> = (1..=n).filter(|&r| r != served).collect();
    let without_cut: Vec<u64> = rounds.iter().copied().filter(|&r| r != served).collect();
    assert_eq!(without_cut, expected, "first process served {served}");
    // The first process's rounds all came back from the spool.
    let from_first = rounds.iter().filter(|&&r| r <= served).count() as u64;
    assert_eq!(
        stat(&second.final_stats(), "replayed_total"),
        3 * from_first
    );
}

#[test]
fn sigterm_with_the_dataservice_up_delivers_the_whole_backlog_within_the_timeout() {
    let mut p = peers("history-term-up", CHANGING);
    p.dataservice.stop_ipc();
    // One old change per 100 ms cycle: most of the outage's backlog is
    // still waiting when SIGTERM comes.
    let mut sync = history_sync(&p, &["--replay-rate", "10", "--shutdown-timeout", "10"]);
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= 15));
    p.dataservice.resume_ipc().unwrap();
    assert!(p.wait_requests(3, 10 * SECOND), "log:\n{}", sync.log());
    assert!(sync.terminate().success());
    let rounds = delivered_rounds(&p);
    let last = *rounds.last().unwrap();
    assert!(last >= 15, "{rounds:?}");
    assert_every_round_once(&p, &(1..=last).collect::<Vec<_>>());
    let stats = sync.final_stats();
    assert_eq!(stat(&stats, "pending"), 0, "{}", sync.log());
    assert!(
        sync.lines().iter().all(|l| !l.contains("lost at exit")),
        "{}",
        sync.log()
    );
}

#[test]
fn the_exit_line_counts_changes_and_tags_each_right() {
    for (policy, expected) in [
        (
            "history",
            "{n} undelivered changes of 3 tags are lost at exit (no --spool-dir)",
        ),
        (
            "latest",
            "3 tags had values the Data-Service had not acknowledged at exit",
        ),
    ] {
        let mut p = peers("exit-line", CHANGING);
        p.dataservice.stop_ipc();
        let mut sync = history_sync(&p, &["--backlog", policy]);
        assert!(wait_until(10 * SECOND, || p.polling.requests() >= 5));
        assert!(sync.terminate().success());
        let stats = sync.final_stats();
        let pending = stat(&stats, "pending");
        let applied = stat(&stats, "reads_good_total");
        let expected = expected.replace("{n}", &pending.to_string());
        if policy == "history" {
            // Every change of every round applied waits.
            assert_eq!(pending, applied, "{stats:?}");
        } else {
            assert_eq!(pending, 3, "{stats:?}");
        }
        assert_eq!(sync.count(&expected), 1, "{policy}:\n{}", sync.log());
    }
}

/// Takes the Data-Service's socket away for `fetches` fetches.
fn away_for_fetches(p: &mut Peers, fetches: u64) {
    p.dataservice.stop_ipc();
    let down_at = p.polling.requests();
    assert!(wait_until(10 * SECOND, || p.polling.requests() >= down_at + fetches));
}

/// The rounds fetched when the Data-Service held a value of tag-0 first
/// read after `from`: how long its newest values waited.
fn fetches_until_live(p: &Peers, from: u64) -> u64 {
    assert!(
        wait_until(20 * SECOND, || delivered_rounds(p)
            .iter()
            .any(|&r| r > from)),
        "no round after {from}: {:?}",
        delivered_rounds(p)
    );
    p.polling.requests() - from
}

#[test]
fn a_replay_does_not_hold_back_the_newest_values() {
    let mut p = peers("history-live", CHANGING);
    // One old change per cycle for tags that did not change: the tags here
    // change every cycle, so their backlog goes ahead of their new values.
    let mut sync = history_sync(&p, &["--replay-rate", "10"]);
    assert!(p.wait_requests(6, 10 * SECOND), "log:\n{}", sync.log());
    away_for_fetches(&mut p, 10);
    let resumed_at = p.polling.requests();
    p.dataservice.resume_ipc().unwrap();
    let waited = fetches_until_live(&p, resumed_at);
    assert!(
        waited <= 3,
        "the newest value came {waited} fetches after the return"
    );
    assert!(sync.terminate().success());
    // Nothing was dropped: every round, in order, for every tag.
    let rounds = delivered_rounds(&p);
    assert_every_round_once(&p, &(1..=*rounds.last().unwrap()).collect::<Vec<_>>());
    assert_eq!(stat(&sync.final_stats(), "backlog_dropped_total"), 0);
}

#[test]
fn a_backlog_the_dataservice_cannot_take_in_time_drops_superseded_changes_once_said() {
    let mut p = peers("history-slow", CHANGING);
    // The default: one and a half intervals.
    let mut sync = history_sync(&p, &["--max-drain", "0.15"]);
    assert!(p.wait_requests(6, 10 * SECOND), "log:\n{}", sync.log());
    away_for_fetches(&mut p, 20);
    // Back, but taking 30 ms a write: the 60 waiting changes would take
    // some 2 s, live ones come at 30 a second.
    p.dataservice
        .set_behaviour(dataservice_sync_sim::SinkBehaviour::SlowMillis(30));
    let resumed_at = p.polling.requests();
    p.dataservice.resume_ipc().unwrap();
    let waited = fetches_until_live(&p, resumed_at);
    assert!(
        waited <= 5,
        "the newest value came {waited} fetches after the return"
    );
    sync.expect_log("backlog cannot drain: the Data-Service took ", 10 * SECOND);
    assert!(sync.terminate().success());
    assert_eq!(sync.count("backlog cannot drain"), 1, "{}", sync.log());
    let stats = sync.final_stats();
    assert!(stat(&stats, "backlog_dropped_total") > 0, "{stats:?}");
    // What went is in order for every tag: dropped changes leave gaps,
    // never an older value after a newer one.
    for (key, values) in delivered_per_key(&p) {
        let tag: u32 = key.rsplit('-').next().unwrap().parse().unwrap();
        if tag == 2 {
            continue; // a bool: its values repeat
        }
        let numbers: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{key}: {numbers:?}"
        );
    }
}
