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

/// The room the answer to a request of `len` bytes gets at first: a bulk
/// answer repeats each id and adds the key (1.2 times the line with short
/// keys). It grows while it is read, up to [`answer_limit`].
fn answer_room(len: usize) -> usize {
    len.saturating_mul(2).max(4 * 1024)
}

/// The longest answer read for a request of `len` bytes: each update of a
/// bulk (45 bytes at least) is answered in at most about 830 bytes (its key
/// escaped, six bytes for each of 128), and a single write's answer is one
/// such result. Anything longer is a bad answer.
fn answer_limit(len: usize) -> usize {
    len.saturating_mul(20).max(4 * 1024)
}

/// What a connection came to.
pub(crate) enum WriteOutcome {
    Pending,
    Answered,
    Failed(SinkError),
}

/// One connection slot. Its buffers exist only while it has a request (the
/// request's only until it is sent), so that memory follows the requests
/// in flight, which `--bulk-in-flight` bounds. (Kept through a burst of
/// requests instead, the heap fragmented: peak RSS 7.3-7.4 against 6.8-6.9
/// MiB at 10,000 tags, when the polled document was still held whole.)
pub(crate) struct SinkSlot {
    conn: Option<Conn>,
    /// The request, encoded here by the engine (no copy).
    out: Vec<u8>,
    out_len: usize,
    out_capacity: usize,
    framer: LineFramer,
    /// The answer, read here in place; grown up to `answer_max` bytes.
    line: Vec<u8>,
    answer_max: usize,
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
    pub(crate) fn new(request_capacity: usize) -> Self {
        SinkSlot {
            conn: None,
            out: Vec::new(),
            out_len: 0,
            out_capacity: request_capacity,
            framer: LineFramer::new(),
            line: Vec::new(),
            answer_max: 0,
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

    /// The buffer the engine writes the next request into: `spare` (what a
    /// slot that had nothing to send gave back, still good), else a new one.
    pub(crate) fn request_buffer(&mut self, spare: &mut Vec<u8>) -> &mut [u8] {
        if self.out.is_empty() {
            self.out = if spare.len() == self.out_capacity {
                std::mem::take(spare)
            } else {
                vec![0; self.out_capacity]
            };
        }
        &mut self.out
    }

    /// Frees the buffers of a slot without a request (one that the engine
    /// gave nothing to send) and returns its unused request buffer: kept as
    /// the next try's spare, asking again costs no new zeroed buffer.
    pub(crate) fn release_buffers(&mut self) -> Vec<u8> {
        if self.conn.is_some() {
            return Vec::new();
        }
        self.line = Vec::new();
        std::mem::take(&mut self.out)
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
        self.answer_max = answer_limit(self.out_len);
        let room = answer_room(self.out_len).min(self.answer_max);
        if self.line.len() < room {
            self.line = vec![0; room];
        }
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
        // Sent: the request's memory is not needed while the answer comes.
        if !self.out.is_empty() {
            self.out = Vec::new();
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
                    Err(_) if self.line.len() < self.answer_max => {
                        let larger = self.line.len().saturating_mul(2).min(self.answer_max);
                        self.line.resize(larger, 0);
                    }
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
        drop(self.release_buffers());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    /// The engine's bulk write of `d.t0`..`d.t29` (ids `000…0`..`000…29`),
    /// encoded in `slot`; its id and length (1,622 bytes).
    fn bulk_request(slot: &mut SinkSlot) -> (RequestId, usize) {
        use dataservice_sync_core::{Action, Duration, Engine, EngineConfig};
        let tags = 0..30;
        let id = |i: usize| format!("{i:032}");
        let mut engine = Engine::new(
            EngineConfig::new(Duration::from_secs(1)),
            crate::storage::HeapStorage::with_capacity(32, 0),
        );
        let now = Instant::from_millis(0);
        engine.handle_tick(now);
        assert_eq!(engine.poll_action(now), Some(Action::FetchSource));
        let readings: Vec<String> = tags
            .clone()
            .map(|i| format!(r#""t{i}": {{"value": {i}, "status": "ok"}}"#))
            .collect();
        let body = format!(r#"{{"d": {{{}}}}}"#, readings.join(","));
        engine.handle_source_body(now, body.as_bytes());
        let mut buf = vec![0; 8192];
        // New tags wait for the registry check, which starts once this
        // cycle has delivered (nothing): its end is due now.
        assert!(engine.poll_transmit(now, &mut buf).is_none());
        assert!(engine.handle_timeout(now));
        assert!(engine.poll_api_request(now, &mut buf).is_some());
        let points: Vec<String> = tags
            .clone()
            .map(|i| format!(r#""d.t{i}": {{"key": "d.t{i}", "default": 0, "address": {}, "data_type": "int", "units": ""}}"#, 41001 + i))
            .collect();
        engine.handle_api_response(
            now,
            200,
            &mut format!("{{{}}}", points.join(",")).into_bytes(),
        );
        assert!(engine.poll_api_request(now, &mut buf).is_some());
        let results: Vec<String> = tags
            .map(|i| {
                format!(
                    r#"{{"index": {i}, "key": "d.t{i}", "id": "{}", "ok": true}}"#,
                    id(i)
                )
            })
            .collect();
        let registered = format!(
            r#"{{"ok": true, "results": [{}], "errors": []}}"#,
            results.join(",")
        );
        engine.handle_api_response(now, 200, &mut registered.into_bytes());
        // Every id known: the registry check is over (its end is due now),
        // a catch-up pass delivers.
        assert!(engine.poll_api_request(now, &mut buf).is_none());
        assert_eq!(engine.poll_timeout(), Some(now));
        assert!(engine.handle_timeout(now));
        let tx = engine
            .poll_transmit(now, slot.request_buffer(&mut Vec::new()))
            .unwrap();
        (tx.request, tx.len)
    }

    /// Sends that bulk through a slot to a server that answers `answer`;
    /// whether it was answered, and the line read.
    fn exchange(answer: Vec<u8>) -> (bool, Vec<u8>) {
        let name = format!("dss-sink-{}-{}", std::process::id(), answer.len());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ds.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            // A client that gave up on the answer is not the server's failure.
            let _ = (&stream).write_all(&answer);
            line
        });
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(8);
        let mut slot = SinkSlot::new(64 * 1024);
        let (request, len) = bulk_request(&mut slot);
        assert_eq!(len, 1_622);
        let deadline = Instant::from_millis(1000);
        slot.start(&socket, len, request, deadline, poll.registry(), Token(0))
            .unwrap();
        let answered = loop {
            match slot.on_ready(&socket) {
                WriteOutcome::Pending => poll.poll(&mut events, None).unwrap(),
                WriteOutcome::Answered => break true,
                WriteOutcome::Failed(_) => break false,
            }
        };
        let line = slot.line().to_vec();
        slot.close(poll.registry());
        assert!(server.join().unwrap().starts_with(
            r#"{"action":"bulk_write_by_id","updates":[{"id":"00000000000000000000000000000000","value":0},"#
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        (answered, line)
    }

    fn answer_with_key(len: usize) -> Vec<u8> {
        let mut answer = br#"{"ok": true, "key": ""#.to_vec();
        answer.extend(std::iter::repeat_n(b'k', len));
        answer.extend_from_slice(b"\"}\n");
        answer
    }

    #[test]
    fn an_answer_longer_than_its_first_room_is_read_whole_up_to_its_limit() {
        // The 1,622-byte bulk's answer gets 4,096 bytes at first and may
        // grow to 32,440: 20,000 bytes are read whole.
        let fits = answer_with_key(20_000);
        assert_eq!(
            exchange(fits.clone()),
            (true, fits[..fits.len() - 1].to_vec())
        );
        // Over the limit, it is a bad answer, not an unbounded buffer.
        assert!(!exchange(answer_with_key(40_000)).0);
    }
}
