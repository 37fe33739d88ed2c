//! The status HTTP server's connections, inside the sync's mio loop:
//! read-only, one request per connection, with the request size, the number
//! of connections and each connection's lifetime bounded, so that a slow or
//! hostile client costs at most a few kilobytes and never stalls a cycle.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use dataservice_sync_core::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

/// Most connections served at once; more are closed on accept.
pub const MAX_STATUS_CONNECTIONS: usize = 8;
/// Largest request head accepted (a browser's is well under 2 KiB).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a connection may take, from accept to the last byte sent.
pub const CONNECTION_DEADLINE: Duration = Duration::from_millis(5000);

/// A parsed request: all a read-only server needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRequest {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string (after `?`), possibly empty.
    pub query: String,
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl StatusResponse {
    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        StatusResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }
}

enum Phase {
    Reading,
    Writing { sent: usize },
}

struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    phase: Phase,
    deadline: Instant,
}

/// Counters of the status server itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusServerStats {
    /// Requests answered.
    pub requests_total: u64,
    /// Connections closed on accept because all slots were busy.
    pub connections_refused_total: u64,
    /// Connections closed for a request too large, malformed or too slow.
    pub requests_rejected_total: u64,
}

/// The listener and its connections.
pub struct StatusServer {
    listener: TcpListener,
    address: SocketAddr,
    connections: Vec<Option<Connection>>,
    first_token: usize,
    stats: StatusServerStats,
}

impl StatusServer {
    /// Binds `address` and registers the listener as `listener_token`;
    /// connections use `first_token..first_token + MAX_STATUS_CONNECTIONS`.
    pub fn bind(
        address: SocketAddr,
        registry: &Registry,
        listener_token: Token,
        first_token: usize,
    ) -> io::Result<Self> {
        let mut listener = TcpListener::bind(address)?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        let address = listener.local_addr()?;
        Ok(StatusServer {
            listener,
            address,
            connections: (0..MAX_STATUS_CONNECTIONS).map(|_| None).collect(),
            first_token,
            stats: StatusServerStats::default(),
        })
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The server's own counters.
    pub fn stats(&self) -> StatusServerStats {
        self.stats
    }

    /// Whether `token` is one of this server's connections.
    pub fn owns(&self, token: Token) -> bool {
        (self.first_token..self.first_token + MAX_STATUS_CONNECTIONS).contains(&token.0)
    }

    /// The listener is readable: accepts what fits, closes the rest.
    pub fn on_accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ECONNABORTED, EMFILE…: nothing to serve this time.
                Err(_) => return,
            };
            let Some(slot) = self.connections.iter().position(Option::is_none) else {
                self.stats.connections_refused_total += 1;
                continue;
            };
            let token = Token(self.first_token + slot);
            if registry
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            self.connections[slot] = Some(Connection {
                stream,
                buf: Vec::with_capacity(1024),
                phase: Phase::Reading,
                deadline: now + CONNECTION_DEADLINE,
            });
        }
    }

    /// A connection is ready: reads its request, answers it with `respond`,
    /// writes what the socket takes.
    pub fn on_ready(
        &mut self,
        registry: &Registry,
        token: Token,
        respond: impl FnOnce(&StatusRequest) -> StatusResponse,
    ) {
        let slot = token.0 - self.first_token;
        let Some(Some(conn)) = self.connections.get_mut(slot) else {
            return;
        };
        let done = match conn.phase {
            Phase::Reading => match read_request(conn) {
                ReadOutcome::Pending => false,
                ReadOutcome::Closed => true,
                ReadOutcome::Request(request) => {
                    let mut response = respond(&request);
                    if request.method == "HEAD" {
                        let head = encode(&response, response.body.len(), false);
                        response.body.clear();
                        conn.buf = head;
                    } else {
                        let len = response.body.len();
                        conn.buf = encode(&response, len, true);
                    }
                    self.stats.requests_total += 1;
                    conn.phase = Phase::Writing { sent: 0 };
                    registry
                        .reregister(&mut conn.stream, token, Interest::WRITABLE)
                        .is_err()
                        || write_some(conn)
                }
                ReadOutcome::Invalid(status, why) => {
                    self.stats.requests_rejected_total += 1;
                    conn.buf = encode(&StatusResponse::text(status, why), why.len(), true);
                    conn.phase = Phase::Writing { sent: 0 };
                    registry
                        .reregister(&mut conn.stream, token, Interest::WRITABLE)
                        .is_err()
                        || write_some(conn)
                }
            },
            Phase::Writing { .. } => write_some(conn),
        };
        if done {
            self.close(registry, slot);
        }
    }

    /// Closes connections past their deadline.
    pub fn expire(&mut self, registry: &Registry, now: Instant) {
        for slot in 0..self.connections.len() {
            if self.connections[slot]
                .as_ref()
                .is_some_and(|c| now >= c.deadline)
            {
                self.stats.requests_rejected_total += 1;
                self.close(registry, slot);
            }
        }
    }

    /// The earliest connection deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.connections.iter().flatten().map(|c| c.deadline).min()
    }

    fn close(&mut self, registry: &Registry, slot: usize) {
        if let Some(mut conn) = self.connections[slot].take() {
            let _ = registry.deregister(&mut conn.stream);
        }
    }
}

enum ReadOutcome {
    Pending,
    Closed,
    Request(StatusRequest),
    Invalid(u16, &'static str),
}

fn read_request(conn: &mut Connection) -> ReadOutcome {
    let mut chunk = [0u8; 2048];
    loop {
        match conn.stream.read(&mut chunk) {
            Ok(0) => return ReadOutcome::Closed,
            Ok(n) => {
                if conn.buf.len() + n > MAX_REQUEST_BYTES {
                    return ReadOutcome::Invalid(431, "request too large\n");
                }
                conn.buf.extend_from_slice(&chunk[..n]);
                match parse_request(&conn.buf) {
                    Ok(Some(request)) => return ReadOutcome::Request(request),
                    Ok(None) => {}
                    Err(MalformedRequest) => {
                        return ReadOutcome::Invalid(400, "malformed request\n");
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Pending,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return ReadOutcome::Closed,
        }
    }
}

/// Parses a request head; `Ok(None)` while it is incomplete. A body, if
/// any, is ignored: every route is read-only.
pub fn parse_request(buf: &[u8]) -> Result<Option<StatusRequest>, MalformedRequest> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let target = request.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            Ok(Some(StatusRequest {
                method: request.method.unwrap_or("GET").to_string(),
                path: path.to_string(),
                query: query.to_string(),
            }))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(MalformedRequest),
    }
}

/// A request head that is not HTTP/1.x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedRequest;

fn encode(response: &StatusResponse, content_length: usize, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {content_length}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        response.status,
        reason_phrase(response.status),
        response.content_type,
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(&response.body);
    }
    out
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes what the socket takes; true when done (all sent, or the peer left).
fn write_some(conn: &mut Connection) -> bool {
    let Phase::Writing { sent } = &mut conn.phase else {
        return false;
    };
    while *sent < conn.buf.len() {
        match conn.stream.write(&conn.buf[*sent..]) {
            Ok(0) => return true,
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_heads() {
        assert_eq!(
            parse_request(b"GET /api/tags?q=x&limit=5 HTTP/1.1\r\nHost: a\r\n"),
            Ok(None)
        );
        assert_eq!(
            parse_request(b"GET /api/tags?q=x&limit=5 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Ok(Some(StatusRequest {
                method: "GET".into(),
                path: "/api/tags".into(),
                query: "q=x&limit=5".into(),
            }))
        );
        assert_eq!(
            parse_request(b"\x00\x01 garbage\r\n\r\n"),
            Err(MalformedRequest)
        );
    }

    #[test]
    fn encodes_a_closing_response() {
        let bytes = encode(&StatusResponse::text(404, "no\n"), 3, true);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\nno\n"
        );
    }
}
