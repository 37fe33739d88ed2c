//! `dataservice-sync stats`: the running service's figures in the terminal,
//! read from its status server's `/api/stats`.

use std::net::SocketAddr;
use std::process::ExitCode;

use serde_json::Value;

use crate::check::http_get;
use crate::endpoint::HttpUrl;

/// The address to ask for a status server listening on `listen`: an
/// unspecified address (`0.0.0.0`) is reached on loopback.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    }
}

/// Prints the service's statistics; exit code 0, or 1 when it cannot be
/// reached or answers something else.
pub fn run(address: SocketAddr, json: bool) -> ExitCode {
    match fetch(address, "/api/stats") {
        Ok(body) if json => {
            crate::print_stdout(&format!("{body}\n"));
            ExitCode::SUCCESS
        }
        Ok(body) => match serde_json::from_str::<Value>(&body) {
            Ok(stats) => {
                crate::print_stdout(&render(&stats));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {address}/api/stats is not the expected JSON: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!(
                "error: cannot read http://{address}/api/stats: {e} \
                 (is the service running with --status-listen {address}?)"
            );
            ExitCode::from(1)
        }
    }
}

/// GETs `path` from the status server and returns the body of a 200 answer.
pub fn fetch(address: SocketAddr, path: &str) -> Result<String, String> {
    let url = HttpUrl::parse(&format!("http://{address}{path}")).map_err(|e| e.to_string())?;
    let (status, body) = http_get(&url, None).map_err(|e| e.message)?;
    if status != 200 {
        return Err(format!("HTTP status {status}"));
    }
    String::from_utf8(body).map_err(|_| "body is not UTF-8".into())
}

/// The figures as aligned lines.
pub fn render(stats: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "never".into(),
        other => other.to_string(),
    };
    let field = |name: &str| text(&stats[name]);
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<28} {value}\n"));
    line("version", field("version"));
    line("running", field("running"));
    line("health", field("health"));
    line("uptime", format!("{} s", field("uptime_seconds")));
    line("total syncs", field("total_syncs"));
    line("successful writes", field("successful_writes"));
    line("failed writes", field("failed_writes"));
    line("last sync time", field("last_sync_time"));
    line(
        "tags",
        format!(
            "{} (capacity {}, pending {}, unregistered {})",
            field("tags"),
            field("tag_capacity"),
            field("pending"),
            field("unregistered")
        ),
    );
    for peer in ["source", "dataservice", "dataservice_api"] {
        let state = &stats["peers"][peer];
        let mut value = text(&state["state"]);
        if let Some(problem) = state["problem"].as_str() {
            value.push_str(&format!(": {problem} (since {})", text(&state["since"])));
        }
        line(&format!("peer {peer}"), value);
    }
    let cycle = &stats["cycle_ms"];
    line(
        "cycle ms",
        format!(
            "last {} (fetch {}) p50 {} p99 {} max {}",
            text(&cycle["last"]),
            text(&cycle["last_fetch"]),
            text(&cycle["p50"]),
            text(&cycle["p99"]),
            text(&cycle["max"])
        ),
    );
    if let Some(counters) = stats["counters"].as_object() {
        for (name, value) in counters {
            line(name, value.to_string());
        }
    }
    if let Some(reasons) = stats["tags_rejected_total"].as_object() {
        for (reason, count) in reasons.iter().filter(|(_, c)| c.as_u64() != Some(0)) {
            line(&format!("rejected.{reason}"), count.to_string());
        }
    }
    let errors = stats["recent_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    out.push_str(&format!("recent errors ({}, newest last):\n", errors.len()));
    for error in errors.iter().rev().take(10).rev() {
        out.push_str(&format!(
            "  {} {}\n",
            text(&error["time"]),
            text(&error["message"])
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_line_shows_the_fetch_within_the_last_cycle() {
        let stats = serde_json::json!({
            "cycle_ms": {"last": 64, "last_fetch": 12, "p50": 60, "p99": 81, "max": 88},
        });
        assert!(
            render(&stats).contains(
                "\ncycle ms                     last 64 (fetch 12) p50 60 p99 81 max 88\n"
            ),
            "{}",
            render(&stats)
        );
    }
}
