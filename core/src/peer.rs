//! What can go wrong with each peer, as the runner reports it, and the
//! up/down state kept so that each change is logged once.

use core::fmt;

use crate::time::{Duration, Instant};
use crate::wire::polled::DocumentError;

/// A failed fetch of the polling service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SourceError {
    /// Connection refused (the backend is down).
    Refused,
    /// No answer within the source timeout.
    Timeout,
    /// An answer other than 200.
    HttpStatus(u16),
    /// A body larger than the configured cap.
    BodyTooLarge,
    /// Not a valid HTTP/1.1 response.
    BadHttp,
    /// The connection closed before the body was complete.
    ClosedEarly,
    /// Another socket error (`errno`).
    Io(i32),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Refused => f.write_str("connection refused"),
            SourceError::Timeout => f.write_str("timed out"),
            SourceError::HttpStatus(code) => write!(f, "HTTP status {code}"),
            SourceError::BodyTooLarge => f.write_str("body larger than --max-body-bytes"),
            SourceError::BadHttp => f.write_str("malformed HTTP response"),
            SourceError::ClosedEarly => f.write_str("connection closed before the body ended"),
            SourceError::Io(errno) => write!(f, "socket error (errno {errno})"),
        }
    }
}

impl SourceError {
    /// Every kind's name, in counter order ([`SourceError::kind_index`]).
    pub const KINDS: [&'static str; 7] = [
        "refused",
        "timeout",
        "http_status",
        "body_too_large",
        "bad_http",
        "closed_early",
        "io",
    ];

    /// The kind's position in [`SourceError::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            SourceError::Refused => 0,
            SourceError::Timeout => 1,
            SourceError::HttpStatus(_) => 2,
            SourceError::BodyTooLarge => 3,
            SourceError::BadHttp => 4,
            SourceError::ClosedEarly => 5,
            SourceError::Io(_) => 6,
        }
    }
}

/// Why a cycle got no document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SourceProblem {
    /// The fetch failed.
    Fetch(SourceError),
    /// The body was rejected whole.
    Document(DocumentError),
}

impl fmt::Display for SourceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceProblem::Fetch(e) => write!(f, "fetch failed: {e}"),
            SourceProblem::Document(e) => write!(f, "document rejected, nothing applied: {e}"),
        }
    }
}

/// A failed request to the Data-Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SinkError {
    /// The socket file does not exist (`ENOENT`).
    SocketMissing,
    /// Nobody listens on it (`ECONNREFUSED`).
    Refused,
    /// The listen backlog is full (`EAGAIN`); retried shortly.
    Busy,
    /// `EACCES`/`EPERM` on the socket.
    PermissionDenied,
    /// The path is not a socket (`ENOTSOCK`/`ECONNREFUSED` on a file).
    NotASocket,
    /// No answer within the write timeout.
    Timeout,
    /// Closed without answering.
    ClosedEarly,
    /// An answer that is not a response line.
    BadResponse,
    /// Another socket error (`errno`).
    Io(i32),
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkError::SocketMissing => f.write_str("socket does not exist"),
            SinkError::Refused => f.write_str("connection refused"),
            SinkError::Busy => f.write_str("listen backlog full"),
            SinkError::PermissionDenied => f.write_str("permission denied"),
            SinkError::NotASocket => f.write_str("path is not a socket"),
            SinkError::Timeout => f.write_str("no answer within the write timeout"),
            SinkError::ClosedEarly => f.write_str("closed without answering"),
            SinkError::BadResponse => f.write_str("answer is not a valid response line"),
            SinkError::Io(errno) => write!(f, "socket error (errno {errno})"),
        }
    }
}

impl SinkError {
    /// Every kind's name, in counter order ([`SinkError::kind_index`]).
    pub const KINDS: [&'static str; 9] = [
        "socket_missing",
        "refused",
        "busy",
        "permission_denied",
        "not_a_socket",
        "timeout",
        "closed_early",
        "bad_response",
        "io",
    ];

    /// The kind's position in [`SinkError::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            SinkError::SocketMissing => 0,
            SinkError::Refused => 1,
            SinkError::Busy => 2,
            SinkError::PermissionDenied => 3,
            SinkError::NotASocket => 4,
            SinkError::Timeout => 5,
            SinkError::ClosedEarly => 6,
            SinkError::BadResponse => 7,
            SinkError::Io(_) => 8,
        }
    }
}

/// A failed request to the Data-Service's HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ApiError {
    /// The fetch itself failed.
    Fetch(SourceError),
    /// An answer other than 200.
    HttpStatus(u16),
    /// A body that is not the JSON the protocol describes.
    BadBody,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Fetch(e) => write!(f, "{e}"),
            ApiError::HttpStatus(code) => write!(f, "HTTP status {code}"),
            ApiError::BadBody => f.write_str("answer is not the expected JSON"),
        }
    }
}

/// A peer's health as far as the engine knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health<P> {
    /// Nothing tried yet.
    Unknown,
    /// The last exchange worked.
    Up,
    /// The last exchanges failed.
    Down {
        /// The latest problem.
        problem: P,
        /// When the peer went down.
        since: Instant,
        /// Failed exchanges since then.
        failures: u32,
    },
}

/// A change of a peer's health worth one log line.
pub(crate) enum Change<P> {
    None,
    WentDown(P),
    CameUp { failures: u32, down_for: Duration },
}

impl<P> Health<P> {
    /// `unknown`, `up` or `down`, as logs, STATUS and metrics say it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down { .. } => "down",
        }
    }
}

impl<P: Copy + PartialEq> Health<P> {
    /// Whether the last exchange failed.
    pub fn is_down(&self) -> bool {
        matches!(self, Health::Down { .. })
    }

    pub(crate) fn record_failure(&mut self, now: Instant, problem: P) -> Change<P> {
        match self {
            Health::Down {
                problem: last,
                failures,
                ..
            } => {
                *failures += 1;
                let changed = *last != problem;
                *last = problem;
                if changed {
                    Change::WentDown(problem)
                } else {
                    Change::None
                }
            }
            _ => {
                *self = Health::Down {
                    problem,
                    since: now,
                    failures: 1,
                };
                Change::WentDown(problem)
            }
        }
    }

    pub(crate) fn record_success(&mut self, now: Instant) -> Change<P> {
        let change = match *self {
            Health::Up => Change::None,
            Health::Unknown => Change::CameUp {
                failures: 0,
                down_for: Duration::ZERO,
            },
            Health::Down {
                since, failures, ..
            } => Change::CameUp {
                failures,
                down_for: now - since,
            },
        };
        *self = Health::Up;
        change
    }
}
