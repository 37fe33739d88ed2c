//! `dataservice-sync check ipc|source|dataservice`: the manual checks of a
//! gateway's peers, one blocking request each, with clear exit codes:
//! 0 fine, 1 the peer answered something wrong, 3 it could not be reached.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use dataservice_sync_core::rules::RuleSet;
use dataservice_sync_core::wire::ipc::Response;
use dataservice_sync_core::wire::polled::parse_document;
use dataservice_sync_core::wire::registry::parse_detailed;
use dataservice_sync_core::{KeyTemplate, reading::Reading, reading::classify};

use crate::endpoint::{Endpoint, HttpUrl};
use crate::http::{ResponseReader, request_head};

/// Exit code: the peer answered, wrongly.
pub const BAD_ANSWER: u8 = 1;
/// Exit code: the peer could not be reached.
pub const UNREACHABLE: u8 = 3;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read (a polling document of 100,000 tags is ~14 MB).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A failed check: the exit code and the line to print.
#[derive(Debug)]
pub struct CheckError {
    /// `BAD_ANSWER` or `UNREACHABLE`.
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

fn unreachable(message: String) -> CheckError {
    CheckError {
        code: UNREACHABLE,
        message,
    }
}

fn bad(message: String) -> CheckError {
    CheckError {
        code: BAD_ANSWER,
        message,
    }
}

/// Prints a check's result and returns its exit code.
pub fn report(result: Result<String, CheckError>) -> ExitCode {
    match result {
        Ok(text) => {
            crate::print_stdout(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// What `check ipc` sends.
#[derive(Debug)]
pub enum IpcProbe {
    /// A request the Data-Service answers without touching its store: an
    /// action it does not know.
    ReadOnly,
    /// `{"action":"write","key":KEY,"value":VALUE}`.
    Write {
        /// The key written.
        key: String,
        /// The value, as JSON.
        value: serde_json::Value,
    },
}

/// Sends the probe and prints the reply.
pub fn ipc(socket: &Path, probe: &IpcProbe) -> Result<String, CheckError> {
    use std::os::unix::fs::FileTypeExt;
    let request = match probe {
        IpcProbe::ReadOnly => serde_json::json!({"action": "dataservice-sync-probe"}),
        IpcProbe::Write { key, value } => {
            serde_json::json!({"action": "write", "key": key, "value": value})
        }
    };
    let line = format!("{request}\n");
    match std::fs::metadata(socket) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(unreachable(format!(
                "{}: socket does not exist (is the Data-Service running?)",
                socket.display()
            )));
        }
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(unreachable(format!(
                "{}: path is not a socket",
                socket.display()
            )));
        }
        _ => {}
    }
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| unreachable(format!("cannot connect to {}: {e}", socket.display())))?;
    let io = |e: std::io::Error| unreachable(format!("{}: {e}", socket.display()));
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(stream.take(1024 * 1024))
        .read_line(&mut reply)
        .map_err(|e| unreachable(format!("no reply within {TIMEOUT:?}: {e}")))?;
    let mut out = format!("sent:  {line}reply: {reply}");
    if !reply.ends_with('\n') {
        out.push('\n');
    }
    match (probe, Response::decode(reply.trim_end().as_bytes())) {
        (IpcProbe::ReadOnly, Ok(response)) if !response.ok => {
            out.push_str(
                "ok: the Data-Service answered; nothing was written (--write writes a test value)\n",
            );
            Ok(out)
        }
        (IpcProbe::ReadOnly, Ok(_)) => Err(bad(format!(
            "{out}the Data-Service accepted an unknown action: is this the Data-Service?"
        ))),
        (IpcProbe::Write { .. }, Ok(response)) if response.ok => {
            out.push_str(
                "ok: the Data-Service answered (it answers ok for unregistered keys too, and drops those writes)\n",
            );
            Ok(out)
        }
        (IpcProbe::Write { .. }, Ok(_)) => {
            Err(bad(format!("{out}the Data-Service refused the write")))
        }
        (_, Err(e)) => Err(bad(format!("{out}not a Data-Service reply: {e}"))),
    }
}

/// Fetches the polling service once.
fn fetch_document(url: &str) -> Result<Vec<u8>, CheckError> {
    let url = HttpUrl::parse(url).map_err(|e| bad(e.to_string()))?;
    let (status, body) = http_get(&url, None)?;
    if status != 200 {
        return Err(bad(format!("HTTP status {status} from {}", url.path)));
    }
    Ok(body)
}

/// Fetches the polling service and shows, tag by tag, what the sync would
/// do with each entry under `template` and `rules`: key, value, type, the
/// rule that applied, and the decision (as `telegraf --test` does).
pub fn source_decisions(
    url: &str,
    template: &KeyTemplate,
    rules: &RuleSet,
) -> Result<String, CheckError> {
    let body = fetch_document(url)?;
    let mut rows: Vec<[String; 5]> = Vec::new();
    let result = parse_document(&body, |entry| {
        let row = match classify(&entry, template, rules) {
            Reading::Good {
                key, value, rule, ..
            } => [
                key.to_string(),
                dataservice_sync_core::report::ValueJson(&value).to_string(),
                format!(
                    "{} (registered as {})",
                    value.data_type(),
                    value.registration_type()
                ),
                rule.map_or("-".to_string(), |r| format!("rule {}", r + 1)),
                "written when it changes".to_string(),
            ],
            Reading::FailedRead { key } => [
                key.map_or_else(|| entry_name(&entry), |k| k.to_string()),
                "-".into(),
                "-".into(),
                "-".into(),
                "not written: failed read".into(),
            ],
            Reading::Rejected { reason, tag } => [
                tag.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("rejected: {reason}"),
            ],
            Reading::Filtered => [
                entry_name(&entry),
                "-".into(),
                "-".into(),
                "-".into(),
                "not written: filtered out".into(),
            ],
        };
        rows.push(row);
    });
    result.map_err(|e| bad(format!("document rejected, nothing would be written: {e}")))?;
    let header = ["key", "value", "type", "rule", "decision"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter().zip(row) {
            out.push_str(cell);
            out.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        out.push_str(&row[4]);
        out.push('\n');
    }
    Ok(out)
}

/// `device/tag` of an entry, for rows without a key.
fn entry_name(entry: &dataservice_sync_core::wire::polled::Entry<'_>) -> String {
    use dataservice_sync_core::wire::polled::Entry;
    let mut name = String::new();
    match entry {
        Entry::Tag { device, tag_id, .. } | Entry::TagNotObject { device, tag_id } => {
            let _ = device.write_unescaped(&mut name);
            name.push('/');
            let _ = tag_id.write_unescaped(&mut name);
        }
        Entry::DeviceNotObject { device } | Entry::DeviceNameTooLong { start: device, .. } => {
            let _ = device.write_unescaped(&mut name);
        }
    }
    name
}

/// Fetches the polling service and counts devices, tags, good and failed
/// reads and rejections per device.
pub fn source(url: &str) -> Result<String, CheckError> {
    let body = fetch_document(url)?;
    let template = KeyTemplate::default();
    let rules = RuleSet::default();
    // (device, tags, good, failed, rejected), in document order.
    let mut devices: Vec<(String, u64, u64, u64, u64)> = Vec::new();
    let result = parse_document(&body, |entry| {
        let device = match &entry {
            dataservice_sync_core::wire::polled::Entry::Tag { device, .. }
            | dataservice_sync_core::wire::polled::Entry::DeviceNotObject { device }
            | dataservice_sync_core::wire::polled::Entry::TagNotObject { device, .. }
            | dataservice_sync_core::wire::polled::Entry::DeviceNameTooLong {
                start: device, ..
            } => {
                let mut name = String::new();
                let _ = device.write_unescaped(&mut name);
                name
            }
        };
        if devices.last().is_none_or(|d| d.0 != device) {
            devices.push((device, 0, 0, 0, 0));
        }
        let Some(row) = devices.last_mut() else {
            return;
        };
        row.1 += 1;
        match classify(&entry, &template, &rules) {
            Reading::Good { .. } => row.2 += 1,
            Reading::FailedRead { .. } => row.3 += 1,
            Reading::Rejected { .. } | Reading::Filtered => row.4 += 1,
        }
    });
    result.map_err(|e| bad(format!("document rejected: {e}")))?;
    let mut out = format!(
        "{:<32} {:>6} {:>6} {:>6} {:>8}\n",
        "device", "tags", "good", "failed", "rejected"
    );
    let mut total = (0, 0, 0, 0);
    for (device, tags, good, failed, rejected) in &devices {
        out.push_str(&format!(
            "{device:<32} {tags:>6} {good:>6} {failed:>6} {rejected:>8}\n"
        ));
        total = (
            total.0 + tags,
            total.1 + good,
            total.2 + failed,
            total.3 + rejected,
        );
    }
    out.push_str(&format!(
        "{:<32} {:>6} {:>6} {:>6} {:>8}\n",
        format!("{} devices", devices.len()),
        total.0,
        total.1,
        total.2,
        total.3
    ));
    Ok(out)
}

/// Asks the Data-Service HTTP API for `/health` and counts the keys of
/// `/detailed`.
pub fn dataservice(url: &str) -> Result<String, CheckError> {
    let url = HttpUrl::parse(url).map_err(|e| bad(e.to_string()))?;
    let (status, health) = http_get(&url, Some("/health"))?;
    let health = String::from_utf8_lossy(&health).trim().to_string();
    if status != 200 {
        return Err(bad(format!("/health: HTTP status {status}: {health}")));
    }
    let (status, detailed) = http_get(&url, Some("/detailed"))?;
    if status != 200 {
        return Err(bad(format!("/detailed: HTTP status {status}")));
    }
    let mut keys = 0u64;
    let mut with_address = 0u64;
    parse_detailed(&detailed, |point| {
        keys += 1;
        if matches!(
            point.address,
            dataservice_sync_core::wire::registry::Address::Number(_)
        ) {
            with_address += 1;
        }
    })
    .map_err(|e| bad(format!("/detailed is not the expected JSON: {e}")))?;
    Ok(format!(
        "health: {health}\nregistered keys: {keys} ({with_address} with an address)\n"
    ))
}

/// A blocking GET of `url` (or of `path` on its server): status and body.
pub fn http_get(url: &HttpUrl, path: Option<&str>) -> Result<(u16, Vec<u8>), CheckError> {
    let path = path.unwrap_or(&url.path);
    let request = request_head(&url.host, path, None);
    let io = |e: std::io::Error| unreachable(format!("{path}: {e}"));
    let mut stream: Box<dyn ReadWrite> = match &url.endpoint {
        Endpoint::Tcp(address) => {
            let stream = std::net::TcpStream::connect_timeout(address, TIMEOUT)
                .map_err(|e| unreachable(format!("cannot connect to {address}: {e}")))?;
            stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
            stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
            Box::new(stream)
        }
        Endpoint::Unix(socket) => {
            let stream = UnixStream::connect(socket)
                .map_err(|e| unreachable(format!("cannot connect to {}: {e}", socket.display())))?;
            stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
            stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
            Box::new(stream)
        }
    };
    stream.write_all(&request).map_err(io)?;
    let mut reader = ResponseReader::new(MAX_BODY);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            reader.finish().map_err(|e| bad(format!("{path}: {e}")))?;
            break;
        }
        if reader
            .push(&chunk[..n])
            .map_err(|e| bad(format!("{path}: {e}")))?
        {
            break;
        }
    }
    let status = reader
        .status()
        .ok_or_else(|| bad(format!("{path}: no HTTP status")))?;
    Ok((status, reader.body().to_vec()))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
