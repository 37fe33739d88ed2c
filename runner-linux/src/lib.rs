//! dataservice-sync for Linux gateways: reads the polling service's tag
//! values every interval and writes them to the local Data-Service.
//!
//! The logic lives in [`dataservice_sync_core`]; this crate owns the file
//! descriptors (mio, timerfd, signalfd) and the clock. [`SyncService`] is the
//! library API. The simulated peers are the `dataservice-sync-sim` crate;
//! `demo` (feature `demo`, on by default) runs the sync against them.

#![deny(missing_docs)]

pub mod check;
pub mod cli;
pub mod clock;
pub mod config_file;
#[cfg(feature = "demo")]
pub mod demo;
pub mod effective;
pub mod endpoint;
mod event_loop;
pub mod http;
pub mod log;
mod notify;
pub mod option_table;
pub mod options;
mod process;
mod service;
mod sink;
mod source;
pub mod spool;
pub mod stats;
pub mod stats_command;
pub mod status_routes;
pub mod status_server;
pub mod storage;

pub use options::{ConfigError, SyncOptions};

/// Prints `text` on stdout. A reader that went away (`stats --json | head`)
/// is not an error worth a panic: the rest is dropped.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
pub use service::{SyncHandle, SyncService};
pub use stats::StatsSnapshot;
