//! What each status URL answers, from the engine's reports.

use std::fmt::Write as _;

use dataservice_sync_core::report::{
    ReportContext, TagQuery, assess, write_health, write_metric, write_metrics, write_stats,
    write_tags,
};
use dataservice_sync_core::{Engine, TableStorage};

use crate::endpoint::percent_decode;
use crate::spool::SpoolStats;
use crate::status_server::{StatusRequest, StatusResponse, StatusServerStats};

/// The page at `/`: HTML, CSS and JS in one file, nothing fetched from
/// elsewhere.
pub const STATUS_PAGE: &str = include_str!("status_page.html");

/// Tags per `/api/tags` answer by default, and at most.
pub const DEFAULT_TAG_PAGE: usize = 200;
/// The most tags one `/api/tags` answer carries.
pub const MAX_TAG_PAGE: usize = 1000;

/// Answers `request` from `engine`.
pub fn respond<S: TableStorage>(
    request: &StatusRequest,
    engine: &Engine<S>,
    ctx: &ReportContext<'_>,
    health_cycles: u32,
    runner: &RunnerFigures,
) -> StatusResponse {
    if request.method != "GET" && request.method != "HEAD" {
        return StatusResponse::text(405, "read-only: GET or HEAD\n");
    }
    let mut body = String::new();
    let (status, content_type) = match request.path.as_str() {
        "/" | "/index.html" => {
            body.push_str(STATUS_PAGE);
            (200, "text/html; charset=utf-8")
        }
        "/metrics" => {
            let _ = write_metrics(&mut body, engine, ctx);
            runner.write_metrics(&mut body);
            (200, "text/plain; version=0.0.4; charset=utf-8")
        }
        "/health" => {
            let report = assess(engine, ctx, health_cycles);
            let _ = write_health(&mut body, engine, ctx, &report);
            body.push('\n');
            let status = if report.is_healthy() { 200 } else { 503 };
            (status, "application/json")
        }
        "/api/stats" => {
            let _ = write_stats(&mut body, engine, ctx, health_cycles);
            (200, "application/json")
        }
        "/api/tags" => match tag_query(&request.query) {
            Ok((contains, offset, limit)) => {
                let query = TagQuery {
                    contains: &contains,
                    offset,
                    limit,
                };
                let _ = write_tags(&mut body, engine, ctx, &query);
                (200, "application/json")
            }
            Err(why) => return StatusResponse::text(400, why),
        },
        _ => {
            let _ = writeln!(
                body,
                "not found; try /, /metrics, /health, /api/stats, /api/tags?q=TEXT&offset=N&limit=N"
            );
            (404, "text/plain; charset=utf-8")
        }
    };
    StatusResponse {
        status,
        content_type,
        body: body.into_bytes(),
    }
}

/// What the runner counts itself (the status server, the spool), shown
/// after the engine's metrics.
#[derive(Clone, Copy, Debug)]
pub struct RunnerFigures {
    /// The status server's counters.
    pub server: StatusServerStats,
    /// The spool's, when there is one.
    pub spool: Option<SpoolStats>,
}

impl RunnerFigures {
    fn write_metrics(&self, out: &mut String) {
        let server = &self.server;
        let mut series = vec![
            (
                "status_requests_total",
                "counter",
                "Status server requests answered.",
                server.requests_total,
            ),
            (
                "status_connections_refused_total",
                "counter",
                "Status server connections closed at once: all slots busy.",
                server.connections_refused_total,
            ),
            (
                "status_requests_rejected_total",
                "counter",
                "Status server requests refused: too large, malformed or too slow.",
                server.requests_rejected_total,
            ),
        ];
        if let Some(spool) = &self.spool {
            series.extend([
                (
                    "spool_bytes",
                    "gauge",
                    "Bytes in the spool's segment files.",
                    spool.bytes_on_disk,
                ),
                (
                    "spool_records_written_total",
                    "counter",
                    "Undelivered changes written to the spool.",
                    spool.records_written_total,
                ),
                (
                    "spool_bytes_written_total",
                    "counter",
                    "Bytes appended to the spool.",
                    spool.bytes_written_total,
                ),
                (
                    "spool_errors_total",
                    "counter",
                    "Failed spool file operations.",
                    spool.errors_total,
                ),
                (
                    "spool_corrupt_records_total",
                    "counter",
                    "Damaged spool records skipped when reading.",
                    spool.corrupt_records_total,
                ),
                (
                    "spool_torn_records_total",
                    "counter",
                    "Incomplete spool records at the end of a segment.",
                    spool.torn_records_total,
                ),
                (
                    "spool_segments_dropped_total",
                    "counter",
                    "Spool segments deleted at the size limit with undelivered changes.",
                    spool.segments_dropped_total,
                ),
            ]);
        }
        for (name, kind, help, value) in series {
            let _ = write_metric(out, name, kind, help, value);
        }
    }
}

/// `q`, `offset` and `limit` from a query string.
fn tag_query(query: &str) -> Result<(String, usize, usize), String> {
    let (mut contains, mut offset, mut limit) = (String::new(), 0, DEFAULT_TAG_PAGE);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // A form's `+` is a space; `%2B` stays a plus.
        let value = percent_decode(&value.replace('+', " "))
            .ok_or_else(|| format!("{name}: bad percent-encoding\n"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{name}: {value:?} is not a non-negative integer\n"))
        };
        match name {
            "q" => contains = value.clone(),
            "offset" => offset = number()?,
            "limit" => limit = number()?.min(MAX_TAG_PAGE),
            _ => {}
        }
    }
    if contains.len() > 128 {
        return Err("q: longer than 128 bytes\n".into());
    }
    Ok((contains, offset, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tag_queries() {
        assert_eq!(tag_query(""), Ok((String::new(), 0, DEFAULT_TAG_PAGE)));
        assert_eq!(
            tag_query("q=Boiler%2D1+t&offset=20&limit=50000"),
            Ok(("Boiler-1 t".to_string(), 20, MAX_TAG_PAGE))
        );
        assert_eq!(
            tag_query("offset=-1"),
            Err("offset: \"-1\" is not a non-negative integer\n".to_string())
        );
        assert_eq!(
            tag_query("q=%zz"),
            Err("q: bad percent-encoding\n".to_string())
        );
        assert_eq!(
            tag_query("q=%ff"),
            Err("q: bad percent-encoding\n".to_string())
        );
    }
}
