//! On the device: systemd notifications and the start/stop scripts.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use dataservice_sync_sim::PollingMode;

use crate::harness::{SyncProcess, fixture, temp_dir, wait_until};
use crate::{SECOND, peers};

#[test]
fn systemd_gets_ready_status_watchdog_and_stopping() {
    let p = peers("notify", PollingMode::Body(fixture("basic.json")));
    let dir = temp_dir("notify-socket");
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let url = p.polling.url();
    let notify_env = notify_path.display().to_string();
    let mut sync = SyncProcess::start_with_env(
        &[
            "--socket-path",
            &p.socket,
            "--source",
            &url,
            "--interval",
            "0.1",
        ],
        &[("NOTIFY_SOCKET", &notify_env), ("WATCHDOG_USEC", "400000")],
    );
    let mut messages = Vec::new();
    let mut buf = [0u8; 4096];
    let mut receive = |messages: &mut Vec<String>| {
        while let Ok(n) = notify.recv(&mut buf) {
            // sd-notify ends every assignment with a newline.
            let text = String::from_utf8_lossy(&buf[..n]);
            messages.push(text.trim_end().to_string());
        }
    };
    assert!(
        wait_until(10 * SECOND, || {
            receive(&mut messages);
            let pings = messages.iter().filter(|m| *m == "WATCHDOG=1").count();
            let counted = messages
                .iter()
                .any(|m| m.starts_with("STATUS=cycles=") && !m.starts_with("STATUS=cycles=0 "));
            pings >= 3 && counted
        }),
        "{messages:?}\n{}",
        sync.log()
    );
    assert!(sync.terminate().success());
    receive(&mut messages);
    assert_eq!(
        messages[0],
        "READY=1\nSTATUS=cycles=0 writes_ok=0 writes_failed=0 pending=0 source=unknown sink=unknown"
    );
    assert!(
        messages.iter().any(|m| m.starts_with("STATUS=cycles=")
            && m.contains(" source=up sink=up")
            && !m.starts_with("STATUS=cycles=0 ")),
        "{messages:?}"
    );
    // STOPPING is the last word; the watchdog may still be pinged while
    // in-flight writes finish.
    let last = messages.iter().rev().find(|m| *m != "WATCHDOG=1").unwrap();
    assert!(
        last.starts_with("STOPPING=1\nSTATUS=stopping on SIGTERM: cycles="),
        "{last}"
    );
}

#[test]
fn start_and_stop_scripts_manage_a_pid_file_and_a_log_file() {
    let p = peers("scripts", PollingMode::Body(fixture("basic.json")));
    let dir = temp_dir("scripts");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pid = dir.join("sync.pid");
    let log = dir.join("sync.log");
    let url = p.polling.url();
    let envs = [
        (
            "DATASERVICE_SYNC_BIN",
            env!("CARGO_BIN_EXE_dataservice-sync").to_string(),
        ),
        ("DATASERVICE_SYNC_PID", pid.display().to_string()),
        ("DATASERVICE_SYNC_LOG", log.display().to_string()),
    ];
    let start = Command::new(root.join("dist/start_sync.sh"))
        .args([
            "--socket-path",
            &p.socket,
            "--source",
            &url,
            "--interval",
            "0.2",
            "--dataservice-url",
            "off",
        ])
        .envs(envs.clone())
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    assert!(pid.exists());
    assert!(p.wait_requests(6, 10 * SECOND));
    let stop = Command::new(root.join("dist/stop_sync.sh"))
        .envs(envs)
        .output()
        .unwrap();
    assert!(stop.status.success());
    assert_eq!(
        String::from_utf8_lossy(&stop.stdout),
        "dataservice-sync stopped\n"
    );
    assert!(!pid.exists());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains(" INFO  SIGTERM received: stopping"),
        "{logged}"
    );
    assert!(
        logged.contains(" INFO  stopped: tags=6 pending=0 "),
        "{logged}"
    );
}
