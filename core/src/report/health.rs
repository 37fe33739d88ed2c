//! The health verdict behind `/health`: did the source and the sink work
//! within the last few cycles?

use core::fmt::{self, Write as _};

use crate::engine::Engine;
use crate::peer::{Health, SinkError, SourceProblem};
use crate::table::TableStorage;
use crate::time::{Duration, Instant};

use super::ReportContext;

/// Why the service is not healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthProblem {
    /// Stopping on a signal or `stop()`.
    Stopping,
    /// No document applied yet, and the grace period (the window) still runs.
    Starting,
    /// No document applied within the window.
    SourceStale {
        /// The last applied document, if any.
        last_ok: Option<Instant>,
        /// The latest problem, if the source is down.
        problem: Option<SourceProblem>,
    },
    /// The Data-Service's socket failed and has not answered within the window.
    SinkDown {
        /// The last answer, if any.
        last_ok: Option<Instant>,
        /// The latest problem.
        problem: SinkError,
    },
}

/// The verdict, as of one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// `None` when healthy.
    pub problem: Option<HealthProblem>,
    /// The window the verdict looked at: `cycles` intervals.
    pub window: Duration,
}

impl HealthReport {
    /// Whether `/health` answers 200.
    pub fn is_healthy(&self) -> bool {
        self.problem.is_none()
    }

    /// `ok`, `starting`, `stopping` or `unhealthy`.
    pub fn status(&self) -> &'static str {
        match self.problem {
            None => "ok",
            Some(HealthProblem::Starting) => "starting",
            Some(HealthProblem::Stopping) => "stopping",
            Some(_) => "unhealthy",
        }
    }
}

/// Judges `engine` healthy when a document was applied within the last
/// `cycles` intervals and the Data-Service's socket, if it failed, answered
/// again within them. A sink that was never needed (nothing to write) is
/// not held against it.
pub fn assess<S: TableStorage>(
    engine: &Engine<S>,
    ctx: &ReportContext<'_>,
    cycles: u32,
) -> HealthReport {
    let window = Duration::from_millis(
        engine
            .config()
            .interval
            .total_millis()
            .saturating_mul(u64::from(cycles.max(1))),
    );
    let recent = |at: Option<Instant>| at.is_some_and(|at| ctx.now - at <= window);
    let stats = engine.stats();
    let problem = if ctx.stopping {
        Some(HealthProblem::Stopping)
    } else if !recent(stats.last_source_ok_at) {
        if stats.last_source_ok_at.is_none() && ctx.now - ctx.started_at <= window {
            Some(HealthProblem::Starting)
        } else {
            let problem = match engine.source_health() {
                Health::Down { problem, .. } => Some(problem),
                _ => None,
            };
            Some(HealthProblem::SourceStale {
                last_ok: stats.last_source_ok_at,
                problem,
            })
        }
    } else {
        match engine.sink_health() {
            Health::Down { problem, .. } if !recent(stats.last_sink_ok_at) => {
                Some(HealthProblem::SinkDown {
                    last_ok: stats.last_sink_ok_at,
                    problem,
                })
            }
            _ => None,
        }
    };
    HealthReport { problem, window }
}

impl fmt::Display for HealthProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthProblem::Stopping => f.write_str("stopping"),
            HealthProblem::Starting => {
                f.write_str("starting: no document from the polling service yet")
            }
            HealthProblem::SourceStale {
                problem: Some(p), ..
            } => {
                write!(
                    f,
                    "polling service: no document applied within the window ({p})"
                )
            }
            HealthProblem::SourceStale { problem: None, .. } => {
                f.write_str("polling service: no document applied within the window")
            }
            HealthProblem::SinkDown { problem, .. } => {
                write!(f, "Data-Service socket down: {problem}")
            }
        }
    }
}

/// Writes the `/health` document.
pub fn write_health<S: TableStorage, W: fmt::Write>(
    out: &mut W,
    engine: &Engine<S>,
    ctx: &ReportContext<'_>,
    report: &HealthReport,
) -> fmt::Result {
    use super::json::{JsonString, Rfc3339};
    let last_sync = engine
        .stats()
        .last_sync_at
        .map(|at| Rfc3339(ctx.unix_millis_of(at)));
    write!(
        out,
        "{{\"status\":\"{}\",\"source\":\"{}\",\"dataservice\":\"{}\",\"window_ms\":{},\
         \"tags_over_capacity\":{},",
        report.status(),
        engine.source_health().as_str(),
        engine.sink_health().as_str(),
        report.window.total_millis(),
        engine.tags_over_capacity(),
    )?;
    match last_sync {
        Some(at) => write!(out, "\"last_sync_time\":\"{at}\",")?,
        None => out.write_str("\"last_sync_time\":null,")?,
    }
    match &report.problem {
        Some(problem) => {
            let mut reason: heapless::String<200> = heapless::String::new();
            crate::text::Truncating::new(&mut reason)
                .write_fmt(format_args!("{problem}"))
                .ok();
            write!(out, "\"reason\":{}}}", JsonString(&reason))
        }
        None => out.write_str("\"reason\":null}"),
    }
}
