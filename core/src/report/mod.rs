//! What the status server shows, rendered into any `fmt::Write`: Prometheus
//! metrics, the `/api/stats` and `/api/tags` documents and the health
//! verdict. The runner supplies the wall-clock reading; the core turns its
//! monotonic instants into wall times with it.

mod api;
mod health;
mod json;
mod metrics;

pub use api::{TagQuery, write_stats, write_tags};
pub use health::{HealthProblem, HealthReport, assess, write_health};
pub use json::{JsonString, Rfc3339, ValueJson};
pub use metrics::{write_metric, write_metrics};

use crate::time::Instant;

/// What the core needs to know about the service and the time to render a
/// report.
#[derive(Clone, Copy, Debug)]
pub struct ReportContext<'a> {
    /// The service's version.
    pub version: &'a str,
    /// The commit and target it was built from.
    pub commit: &'a str,
    /// The target triple.
    pub target: &'a str,
    /// The process's own figures, where the runner can read them.
    pub process: Option<ProcessFigures>,
    /// Now, on the engine's clock.
    pub now: Instant,
    /// Now, in milliseconds since the Unix epoch.
    pub unix_millis: u64,
    /// When the service started, on the engine's clock.
    pub started_at: Instant,
    /// Whether a stop was requested.
    pub stopping: bool,
}

/// What the operating system says of the process (Prometheus' standard
/// `process_*` series).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessFigures {
    /// Resident memory, in bytes.
    pub resident_memory_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// User and system CPU time, in milliseconds.
    pub cpu_millis: u64,
}

impl ReportContext<'_> {
    /// The wall-clock time of an engine instant, in milliseconds since the
    /// Unix epoch.
    pub fn unix_millis_of(&self, at: Instant) -> u64 {
        self.unix_millis
            .saturating_sub(self.now.total_millis().saturating_sub(at.total_millis()))
    }
}

#[cfg(test)]
mod tests;
