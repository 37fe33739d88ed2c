//! A small blocking HTTP/1.1 server for the simulated peers: one request
//! per connection, a thread per connection, replies that can misbehave on
//! purpose (hang, truncate, trickle, chunk).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A request as the handler sees it.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The body (by `Content-Length`).
    pub body: Vec<u8>,
}

/// How to answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A normal answer with `Content-Length`.
    Full {
        /// Status code.
        status: u16,
        /// Body bytes (sent as `application/json`).
        body: Vec<u8>,
    },
    /// A chunked answer in chunks of `chunk` bytes.
    Chunked {
        /// Body bytes.
        body: Vec<u8>,
        /// Chunk size.
        chunk: usize,
    },
    /// Declares `Content-Length` of the whole body, sends `sent` bytes, closes.
    Truncated {
        /// Body bytes.
        body: Vec<u8>,
        /// How many to send.
        sent: usize,
    },
    /// Sends the head, then one body byte every `every`.
    Trickle {
        /// Body bytes.
        body: Vec<u8>,
        /// Delay per byte.
        every: Duration,
    },
    /// Reads the request and never answers (until the server stops).
    Hang,
    /// Raw bytes, then close.
    Raw(Vec<u8>),
}

/// The handler: request in, reply out.
pub type Handler = Arc<dyn Fn(&HttpRequest) -> Reply + Send + Sync>;

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A running server.
pub struct HttpServer {
    local: ServerAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    /// TCP.
    Tcp(SocketAddr),
    /// Unix socket.
    Unix(PathBuf),
}

trait Conn: Read + Write + Send {
    fn set_timeouts(&self, d: Duration) -> io::Result<()>;
}
impl Conn for TcpStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}
impl Conn for UnixStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl HttpServer {
    /// Serves on TCP `addr` (e.g. `127.0.0.1:0`).
    pub fn tcp(addr: &str, handler: Handler) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let local = ServerAddr::Tcp(listener.local_addr()?);
        Ok(Self::spawn(Listener::Tcp(listener), local, handler))
    }

    /// Serves on a Unix socket at `path` (a stale file is removed first).
    pub fn unix(path: &Path, handler: Handler) -> io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let local = ServerAddr::Unix(path.to_path_buf());
        Ok(Self::spawn(
            Listener::Unix(listener, path.to_path_buf()),
            local,
            handler,
        ))
    }

    fn spawn(listener: Listener, local: ServerAddr, handler: Handler) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            loop {
                let conn: Box<dyn Conn> = match &listener {
                    Listener::Tcp(l) => match l.accept() {
                        Ok((s, _)) => Box::new(s),
                        Err(_) => continue,
                    },
                    Listener::Unix(l, _) => match l.accept() {
                        Ok((s, _)) => Box::new(s),
                        Err(_) => continue,
                    },
                };
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let handler = Arc::clone(&handler);
                let flag = Arc::clone(&flag);
                std::thread::spawn(move || serve_one(conn, &handler, &flag));
            }
            if let Listener::Unix(_, path) = &listener {
                let _ = std::fs::remove_file(path);
            }
        });
        HttpServer {
            local,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> &ServerAddr {
        &self.local
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        match &self.local {
            ServerAddr::Tcp(addr) => format!("http://{addr}{path}"),
            ServerAddr::Unix(socket) => format!(
                "http+unix://{}{path}",
                socket.display().to_string().replace('/', "%2F")
            ),
        }
    }

    /// Stops accepting and closes the listener (connections are then refused).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        match &self.local {
            ServerAddr::Tcp(addr) => drop(TcpStream::connect(addr)),
            ServerAddr::Unix(path) => drop(UnixStream::connect(path)),
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_request(conn: &mut dyn Conn) -> Option<HttpRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = request.parse(&buf) {
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(0);
            let method = request.method?.to_string();
            let path = request.path?.to_string();
            while buf.len() < head + length {
                let n = conn.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(HttpRequest {
                method,
                path,
                body: buf[head..head + length].to_vec(),
            });
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn head(status: u16, length: Option<usize>) -> Vec<u8> {
    let framing = match length {
        Some(n) => format!("content-length: {n}"),
        None => "transfer-encoding: chunked".to_string(),
    };
    format!(
        "HTTP/1.1 {status} {}\r\nserver: uvicorn\r\ncontent-type: application/json\r\n{framing}\r\n\r\n",
        reason(status)
    )
    .into_bytes()
}

fn serve_one(mut conn: Box<dyn Conn>, handler: &Handler, stop: &AtomicBool) {
    let _ = conn.set_timeouts(Duration::from_secs(10));
    let Some(request) = read_request(conn.as_mut()) else {
        return;
    };
    // Write errors mean the client went away: nothing to do about it here.
    let _ = match handler(&request) {
        Reply::Full { status, body } => conn
            .write_all(&head(status, Some(body.len())))
            .and_then(|_| conn.write_all(&body)),
        Reply::Chunked { body, chunk } => (|| {
            conn.write_all(&head(200, None))?;
            for piece in body.chunks(chunk.max(1)) {
                conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                conn.write_all(piece)?;
                conn.write_all(b"\r\n")?;
            }
            conn.write_all(b"0\r\n\r\n")
        })(),
        Reply::Truncated { body, sent } => conn
            .write_all(&head(200, Some(body.len())))
            .and_then(|_| conn.write_all(&body[..sent.min(body.len())])),
        Reply::Trickle { body, every } => (|| {
            conn.write_all(&head(200, Some(body.len())))?;
            for byte in &body {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                conn.write_all(std::slice::from_ref(byte))?;
                std::thread::sleep(every);
            }
            Ok(())
        })(),
        Reply::Hang => {
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
        Reply::Raw(bytes) => conn.write_all(&bytes),
    };
}
