//! Runs a sync command against the simulated peers and checks what reached
//! the Data-Service: the way to try a built or installed binary (a static
//! ARM one under qemu, say) without the real peers.
//!
//! ```text
//! dataservice-sync-peers --dir /tmp/demo -- /usr/bin/dataservice-sync --interval 0.5
//! ```
//!
//! The command gets `--source`, `--socket-path` and `--dataservice-url`
//! appended. Every generated tag keeps its value, so the check is exact:
//! once the Data-Service holds every key's value (or at `--timeout`), the
//! command gets SIGTERM; exit 0 when every value arrived and the command
//! stopped cleanly.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use dataservice_sync_sim::{DataServiceDouble, PollingDouble, PollingMode, generated_value};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Runs COMMAND against a simulated polling service and Data-Service.
#[derive(Parser)]
struct Args {
    /// Where the Data-Service socket goes (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Simulated devices.
    #[arg(long, default_value_t = 2)]
    devices: u32,
    /// Tags per device.
    #[arg(long, default_value_t = 5)]
    tags: u32,
    /// Seconds to wait for every value.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The sync to run, and its own arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dataservice-sync-peers: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.dir)?;
    let socket = args.dir.join("dataservice.sock");
    let dataservice = DataServiceDouble::start(&socket)?;
    let polling = PollingDouble::tcp(
        "127.0.0.1:0",
        PollingMode::Generated {
            devices: args.devices,
            tags: args.tags,
            changing_percent: 0,
        },
    )?;
    let mut expected = std::collections::BTreeMap::new();
    for d in 0..args.devices {
        for t in 0..args.tags {
            let key = format!("Device-{d}.tag-{t}");
            dataservice.register(&key, ["int", "float", "bool"][(t % 3) as usize])?;
            // Tags that do not change keep their round-1 value.
            expected.insert(
                key,
                serde_json::from_str::<serde_json::Value>(&generated_value(t, 1))?,
            );
        }
    }
    let (program, rest) = args.command.split_first().ok_or("no command")?;
    let mut child = Command::new(program)
        .args(rest)
        .arg("--source")
        .arg(polling.url())
        .arg("--socket-path")
        .arg(&socket)
        .arg("--dataservice-url")
        .arg(dataservice.http_url())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let arrived = loop {
        if dataservice.values() == expected {
            break true;
        }
        if Instant::now() >= deadline || child.try_wait()?.is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    let _ = kill(pid, Signal::SIGTERM);
    let status = child.wait()?;
    let held = dataservice.values();
    let right = held
        .iter()
        .filter(|(k, v)| expected.get(*k) == Some(v))
        .count();
    println!(
        "peers: {right} of {} values arrived ({} polling requests served); the sync exited with {status}",
        expected.len(),
        polling.requests()
    );
    if !arrived {
        return Err(format!(
            "not every value arrived within {} s: {held:?}",
            args.timeout
        )
        .into());
    }
    if !status.success() {
        return Err(format!("the sync did not stop cleanly: {status}").into());
    }
    Ok(())
}
