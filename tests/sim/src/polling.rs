//! The polling service double (PROTOCOLS.md §1): serves
//! `GET /deploy/api/io/polled-values` from a fixture or from generated
//! devices and tags whose values change on every request, and misbehaves
//! on demand.

use std::fmt::Write;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::http_server::{HttpRequest, HttpServer, Reply};

/// The path the polling backend serves.
pub const POLLED_VALUES_PATH: &str = "/deploy/api/io/polled-values";

/// What the double answers.
#[derive(Clone, Debug)]
pub enum PollingMode {
    /// `devices` × `tags` generated tags, new values every request.
    Generated {
        /// Devices.
        devices: u32,
        /// Tags per device.
        tags: u32,
        /// Percent of the tags (the first ones of each device) whose value
        /// changes every request; the others keep their first value.
        changing_percent: u32,
    },
    /// This body, every time.
    Body(Vec<u8>),
    /// These bodies in turn, one per request (e.g. the same devices in
    /// another order, as the real backend's order changes between runs).
    Cycle(Vec<Vec<u8>>),
    /// What the real backend answers while any register holds a NaN: `500`,
    /// `text/plain`, a 21-byte body, for every device.
    NanRegister,
    /// This body, chunked.
    Chunked(Vec<u8>),
    /// An empty answer with this status.
    Status(u16),
    /// Never answers.
    Hang,
    /// Declares the length of this body and sends half of it.
    Truncated(Vec<u8>),
    /// This body one byte at a time, with the delay.
    Trickle(Vec<u8>, Duration),
    /// Not HTTP at all.
    Garbage,
}

struct State {
    mode: PollingMode,
    requests: u64,
}

/// A running polling service double.
pub struct PollingDouble {
    server: HttpServer,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl PollingDouble {
    /// Serves on TCP at `addr` (e.g. `127.0.0.1:0`).
    pub fn tcp(addr: &str, mode: PollingMode) -> io::Result<Self> {
        let state = Arc::new(Mutex::new(State { mode, requests: 0 }));
        let server = HttpServer::tcp(addr, Self::handler(&state))?;
        Ok(PollingDouble { server, state })
    }

    /// Serves on a Unix socket, as uvicorn's `--uds` does.
    pub fn unix(path: &Path, mode: PollingMode) -> io::Result<Self> {
        let state = Arc::new(Mutex::new(State { mode, requests: 0 }));
        let server = HttpServer::unix(path, Self::handler(&state))?;
        Ok(PollingDouble { server, state })
    }

    fn handler(state: &Arc<Mutex<State>>) -> crate::http_server::Handler {
        let state = Arc::clone(state);
        Arc::new(move |request: &HttpRequest| {
            // FastAPI ignores the query string, redirects a trailing slash
            // to the route (absolute location) and refuses HEAD.
            let path = request.path.split('?').next().unwrap_or_default();
            if path.strip_suffix('/') == Some(POLLED_VALUES_PATH) {
                return Reply::Raw(
                    format!(
                        "HTTP/1.1 307 Temporary Redirect\r\ncontent-length: 0\r\n\
                         location: http://127.0.0.1:8000{POLLED_VALUES_PATH}\r\n\r\n"
                    )
                    .into_bytes(),
                );
            }
            if path != POLLED_VALUES_PATH {
                return Reply::Full {
                    status: 404,
                    body: br#"{"detail":"Not Found"}"#.to_vec(),
                };
            }
            if request.method != "GET" {
                // A HEAD answer has the head only.
                return Reply::Raw(
                    b"HTTP/1.1 405 Method Not Allowed\r\nallow: GET\r\ncontent-length: 31\r\n\
                      content-type: application/json\r\n\r\n"
                        .to_vec(),
                );
            }
            let mut state = lock(&state);
            state.requests += 1;
            let round = state.requests;
            match &state.mode {
                PollingMode::Generated {
                    devices,
                    tags,
                    changing_percent,
                } => Reply::Full {
                    status: 200,
                    body: generated_document(*devices, *tags, *changing_percent, round),
                },
                PollingMode::Body(body) => Reply::Full {
                    status: 200,
                    body: body.clone(),
                },
                PollingMode::Cycle(bodies) => Reply::Full {
                    status: 200,
                    body: bodies
                        .get((round as usize - 1) % bodies.len().max(1))
                        .cloned()
                        .unwrap_or_default(),
                },
                PollingMode::NanRegister => Reply::Raw(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 21\r\n\
                      content-type: text/plain; charset=utf-8\r\n\r\nInternal Server Error"
                        .to_vec(),
                ),
                PollingMode::Chunked(body) => Reply::Chunked {
                    body: body.clone(),
                    chunk: 100,
                },
                PollingMode::Status(status) => Reply::Full {
                    status: *status,
                    body: br#"{"detail":"error"}"#.to_vec(),
                },
                PollingMode::Hang => Reply::Hang,
                PollingMode::Truncated(body) => Reply::Truncated {
                    body: body.clone(),
                    sent: body.len() / 2,
                },
                PollingMode::Trickle(body, every) => Reply::Trickle {
                    body: body.clone(),
                    every: *every,
                },
                PollingMode::Garbage => Reply::Raw(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
            }
        })
    }

    /// The polled-values URL, for `--source`.
    pub fn url(&self) -> String {
        self.server.url(POLLED_VALUES_PATH)
    }

    /// Changes what it answers.
    pub fn set_mode(&self, mode: PollingMode) {
        lock(&self.state).mode = mode;
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Stops listening: later connections are refused.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

/// The value of generated tag `tag` in `round`: integers, floats and bools
/// in turn, all changing every round.
pub fn generated_value(tag: u32, round: u64) -> String {
    match tag % 3 {
        0 => format!("{}", round * 10 + u64::from(tag)),
        1 => format!("{:?}", round as f64 * 0.5 + f64::from(tag) + 0.25),
        _ => format!("{}", (round + u64::from(tag)).is_multiple_of(2)),
    }
}

/// A polled-values document of `devices` × `tags` good reads, of which
/// `changing_percent` percent change from one round to the next; compact,
/// as the deployed backend writes it.
pub fn generated_document(devices: u32, tags: u32, changing_percent: u32, round: u64) -> Vec<u8> {
    generated_document_with_failures(devices, tags, changing_percent, None, round)
}

/// [`generated_document`] where every `failed_every`-th tag of a device
/// (the last of each run of that many) is a failed Modbus read.
pub fn generated_document_with_failures(
    devices: u32,
    tags: u32,
    changing_percent: u32,
    failed_every: Option<u32>,
    round: u64,
) -> Vec<u8> {
    let changing = (u64::from(tags) * u64::from(changing_percent.min(100))).div_ceil(100) as u32;
    let mut out = String::with_capacity((devices * tags) as usize * 130);
    let now = 1_764_318_000 + round;
    out.push('{');
    for d in 0..devices {
        if d > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"Device-{d}\":{{");
        for t in 0..tags {
            if t > 0 {
                out.push(',');
            }
            if failed_every.is_some_and(|every| t % every == every - 1) {
                let _ = write!(
                    out,
                    "\"tag-{t}\":{{\"value\":null,\"status\":\"modbus_error\",\"error\":\
                     \"Modbus read failed: timeout\",\"timestamp\":{now},\
                     \"last_successful_timestamp\":1764317000}}"
                );
                continue;
            }
            let _ = write!(
                out,
                "\"tag-{t}\":{{\"value\":{},\"status\":\"ok\",\"error\":null,\
                 \"timestamp\":{now},\"last_successful_timestamp\":{now}}}",
                generated_value(t, if t < changing { round } else { 1 }),
            );
        }
        out.push('}');
    }
    out.push('}');
    out.into_bytes()
}
