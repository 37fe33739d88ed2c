//! Running the real binary and watching what it does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The fixtures folder of the project (tests/fixtures).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/polled-values")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The rows of an expected-*.txt fixture: key TAB value as JSON (lines
/// starting with `#` and empty ones skipped).
pub fn expected_rows(name: &str) -> Vec<(String, serde_json::Value)> {
    String::from_utf8(fixture(name))
        .expect("utf-8")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.split_once('\t').expect("key TAB value");
            (
                key.to_string(),
                serde_json::from_str(value).expect("JSON value"),
            )
        })
        .collect()
}

/// A fresh folder for one test's sockets.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dss-e2e-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// The real binary, running.
pub struct SyncProcess {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl SyncProcess {
    /// Starts `dataservice-sync ARGS` with stderr captured line by line.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Same, with extra environment variables.
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut command = sync_command(args);
        command.envs(envs.iter().copied());
        Self::from_command(command)
    }

    /// Starts a prepared command with stderr captured line by line.
    pub fn from_command(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dataservice-sync");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().expect("stderr pipe");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        SyncProcess { child, stderr }
    }

    /// Sends a signal.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("kill");
    }

    /// Waits for exit, at most `timeout`; kills it and fails past that.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let until = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!(
                    "dataservice-sync did not exit within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(10))
    }

    /// Every stderr line so far.
    pub fn lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle`; fails the test with the
    /// log when none does in time.
    pub fn expect_log(&self, needle: &str, timeout: Duration) {
        assert!(
            wait_until(timeout, || self.lines().iter().any(|l| l.contains(needle))),
            "no {needle:?} in the log:\n{}",
            self.log()
        );
    }

    /// The log as one string.
    pub fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// Lines whose message (after timestamp and level) starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| message(l).starts_with(prefix))
            .count()
    }

    /// The counters of the final `stopped:` line.
    pub fn final_stats(&self) -> HashMap<String, String> {
        let lines = self.lines();
        let line = lines
            .iter()
            .map(|l| message(l))
            .find(|m| m.starts_with("stopped: "))
            .unwrap_or_else(|| panic!("no final stats line in:\n{}", lines.join("\n")));
        line["stopped: ".len()..]
            .split(' ')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// `dataservice-sync ARGS`, not started: without the status server unless
/// the arguments ask for one (tests run in parallel), and without the
/// caller's `IPC_SOCKET_PATH`.
pub fn sync_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dataservice-sync"));
    command.args(args);
    if !args.contains(&"--status-listen") {
        command.args(["--status-listen", "off"]);
    }
    command
        .env_remove("IPC_SOCKET_PATH")
        .env_remove("JOURNAL_STREAM");
    command
}

/// Runs `dataservice-sync ARGS` to its end (without the caller's
/// `IPC_SOCKET_PATH`): exit code, standard output and standard error.
pub fn run_to_end(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dataservice-sync"))
        .args(args)
        .env_remove("IPC_SOCKET_PATH")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Drop for SyncProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The message part of a log line: `TIMESTAMP LEVEL message`.
pub fn message(line: &str) -> &str {
    line.splitn(3, ' ').nth(2).map_or(line, str::trim_start)
}

/// A stats map lookup as a number.
pub fn stat(stats: &HashMap<String, String>, name: &str) -> u64 {
    stats
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {stats:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {stats:?}"))
}

/// Parses request lines into JSON.
pub fn parse_requests(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("request {l:?} is not JSON: {e}"))
        })
        .collect()
}

/// (key, value) of `write` requests, in order.
pub fn writes(lines: &[String]) -> Vec<(String, serde_json::Value)> {
    parse_requests(lines)
        .into_iter()
        .map(|r| {
            assert_eq!(r["action"], "write", "{r}");
            (
                r["key"].as_str().expect("key").to_string(),
                r["value"].clone(),
            )
        })
        .collect()
}
