//! Connections to the Data-Service IPC socket: one request per connection,
//! a bounded number at once, each with a deadline.

use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use dataservice_sync_core::wire::ipc::LineFramer;
use dataservice_sync_core::{Instant, RequestId, SinkError};
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

use crate::source::would_block;

/// The answer to a bulk of N bytes can be about twice as long (each
/// result repeats the id and adds the key); this much room is kept.
pub(crate) fn response_capacity(bulk_max_bytes: usize) -> usize {
    bulk_max_bytes.saturating_mul(4).max(64 * 1024)
}

/// What a connection came to.
pub(crate) enum WriteOutcome {
    Pending,
    Answered,
    Failed(SinkError),
}

/// One connection slot. Its buffers exist only while it has a request:
/// freed, their memory serves the next polled document, which is freed in
/// turn before the cycle's requests start (one holds the memory, not both).
pub(crate) struct SinkSlot {
    conn: Option<Conn>,
    /// The request, encoded here by the engine (no copy).
    out: Vec<u8>,
    out_len: usize,
    out_capacity: usize,
    framer: LineFramer,
    line: Vec<u8>,
    line_capacity: usize,
}

struct Conn {
    stream: UnixStream,
    request: RequestId,
    written: usize,
    deadline: Instant,
}

/// Maps a connect error to what the engine understands.
pub(crate) fn sink_error(e: &io::Error, socket: &Path) -> SinkError {
    use nix::libc;
    match e.raw_os_error() {
        Some(libc::ENOENT) => SinkError::SocketMissing,
        Some(libc::EAGAIN) => SinkError::Busy,
        Some(libc::EACCES | libc::EPERM) => SinkError::PermissionDenied,
        Some(libc::ENOTSOCK) => SinkError::NotASocket,
        Some(libc::ECONNREFUSED) => {
            // Linux answers ECONNREFUSED for a regular file, too.
            match std::fs::metadata(socket) {
                Ok(meta) if !meta.file_type().is_socket() => SinkError::NotASocket,
                _ => SinkError::Refused,
            }
        }
        Some(libc::ECONNRESET | libc::EPIPE) => SinkError::ClosedEarly,
        _ if e.kind() == io::ErrorKind::TimedOut => SinkError::Timeout,
        Some(errno) => SinkError::Io(errno),
        None => SinkError::Io(0),
    }
}

impl SinkSlot {
    pub(crate) fn new(request_capacity: usize, response_capacity: usize) -> Self {
        SinkSlot {
            conn: None,
            out: Vec::new(),
            out_len: 0,
            out_capacity: request_capacity,
            framer: LineFramer::new(),
            line: Vec::new(),
            line_capacity: response_capacity,
        }
    }

    pub(crate) fn is_free(&self) -> bool {
        self.conn.is_none()
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.conn.as_ref().map(|c| c.deadline)
    }

    pub(crate) fn request(&self) -> Option<RequestId> {
        self.conn.as_ref().map(|c| c.request)
    }

    /// The answer line of an `Answered` connection.
    pub(crate) fn line(&self) -> &[u8] {
        self.framer.line(&self.line)
    }

    /// Where the next request is encoded, before [`SinkSlot::start`].
    pub(crate) fn request_buffer(&mut self) -> &mut [u8] {
        if self.out.is_empty() {
            self.out = vec![0; self.out_capacity];
        }
        &mut self.out
    }

    /// Frees the buffers of a slot without a request.
    pub(crate) fn release_buffers(&mut self) {
        if self.conn.is_none() {
            self.out = Vec::new();
            self.line = Vec::new();
        }
    }

    /// Connects and starts sending the first `len` bytes of the request buffer.
    pub(crate) fn start(
        &mut self,
        socket: &Path,
        len: usize,
        request: RequestId,
        deadline: Instant,
        registry: &Registry,
        token: Token,
    ) -> Result<(), SinkError> {
        let mut stream = UnixStream::connect(socket).map_err(|e| sink_error(&e, socket))?;
        registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| sink_error(&e, socket))?;
        self.out_len = len.min(self.out.len());
        self.line = vec![0; self.line_capacity];
        self.framer.clear();
        self.conn = Some(Conn {
            stream,
            request,
            written: 0,
            deadline,
        });
        Ok(())
    }

    /// Makes progress after a readiness event.
    pub(crate) fn on_ready(&mut self, socket: &Path) -> WriteOutcome {
        let Some(conn) = self.conn.as_mut() else {
            return WriteOutcome::Pending;
        };
        while conn.written < self.out_len {
            match conn.stream.write(&self.out[conn.written..self.out_len]) {
                Ok(n) => conn.written += n,
                Err(e) if would_block(&e) => return WriteOutcome::Pending,
                Err(e) => return WriteOutcome::Failed(sink_error(&e, socket)),
            }
        }
        loop {
            // Straight into the line buffer: answers run to a megabyte.
            let room = self.framer.unfilled(&mut self.line);
            if room.is_empty() {
                return WriteOutcome::Failed(SinkError::BadResponse);
            }
            match conn.stream.read(room) {
                Ok(0) => return WriteOutcome::Failed(SinkError::ClosedEarly),
                Ok(n) => match self.framer.filled(&self.line, n) {
                    Ok(true) => return WriteOutcome::Answered,
                    Ok(false) => {}
                    Err(_) => return WriteOutcome::Failed(SinkError::BadResponse),
                },
                Err(e) if would_block(&e) => return WriteOutcome::Pending,
                Err(e) => return WriteOutcome::Failed(sink_error(&e, socket)),
            }
        }
    }

    /// Closes the connection and frees the slot and its buffers.
    pub(crate) fn close(&mut self, registry: &Registry) {
        if let Some(mut conn) = self.conn.take() {
            // The socket is closed right after; a failed deregister is moot.
            let _ = registry.deregister(&mut conn.stream);
        }
        self.release_buffers();
    }
}
