//! One nonblocking HTTP/1.1 exchange, over TCP or a Unix socket: the GET of
//! the polling service, and the Data-Service HTTP API's GET and POST.

use std::io::{self, Read, Write};

use dataservice_sync_core::{Instant, SourceError};
use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::endpoint::{Endpoint, HttpUrl};
use crate::http::{BodyLimit, HttpError, ResponseReader, request_head};

/// A connected (or connecting) stream of either kind.
pub(crate) enum Stream {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
}

impl Stream {
    pub(crate) fn connect(endpoint: &Endpoint) -> io::Result<Self> {
        Ok(match endpoint {
            Endpoint::Tcp(addr) => Stream::Tcp(mio::net::TcpStream::connect(*addr)?),
            Endpoint::Unix(path) => Stream::Unix(mio::net::UnixStream::connect(path)?),
        })
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }

    fn is_connected(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.peer_addr().is_ok(),
            Stream::Unix(_) => true,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// What a fetch came to.
pub(crate) enum FetchOutcome {
    /// Still going.
    Pending,
    /// A complete response.
    Done { status: u16 },
    /// Failed.
    Failed(SourceError),
}

/// A fetch in progress.
pub(crate) struct Fetch {
    stream: Stream,
    request: Vec<u8>,
    written: usize,
    reader: ResponseReader,
    pub(crate) deadline: Instant,
    /// The last wake-up stopped reading at `READ_PER_WAKE` with bytes
    /// still to come: the loop calls again without a readiness event
    /// (mio's are edge-triggered).
    more_to_read: bool,
}

/// Most bytes read in one wake-up: about 2 ms of work, so that a long body
/// from a fast peer never keeps the status server waiting.
const READ_PER_WAKE: usize = 256 * 1024;

pub(crate) fn source_error(e: &io::Error) -> SourceError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => SourceError::Refused,
        io::ErrorKind::TimedOut => SourceError::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => SourceError::ClosedEarly,
        _ => SourceError::Io(e.raw_os_error().unwrap_or(0)),
    }
}

impl Fetch {
    /// Starts connecting; registers the stream under `token`. `path`
    /// replaces the URL's path; a `body` makes it a POST of JSON.
    pub(crate) fn start(
        url: &HttpUrl,
        path: Option<&str>,
        body: Option<&[u8]>,
        body_limit: BodyLimit,
        deadline: Instant,
        registry: &Registry,
        token: Token,
    ) -> Result<Self, SourceError> {
        let mut stream = Stream::connect(&url.endpoint).map_err(|e| source_error(&e))?;
        stream
            .register(registry, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| source_error(&e))?;
        Ok(Fetch {
            stream,
            request: request_head(&url.host, path.unwrap_or(&url.path), body),
            written: 0,
            reader: ResponseReader::with_limit(body_limit),
            deadline,
            more_to_read: false,
        })
    }

    /// Makes progress after a readiness event. While the body arrives,
    /// `take_part` is offered it as it is read ([`ResponseReader::push_taking`]).
    pub(crate) fn on_ready(
        &mut self,
        scratch: &mut [u8],
        mut take_part: impl FnMut(u16, &mut [u8]) -> usize,
    ) -> FetchOutcome {
        match self.advance(scratch, &mut take_part) {
            Ok(outcome) => outcome,
            Err(e) => FetchOutcome::Failed(e),
        }
    }

    fn advance(
        &mut self,
        scratch: &mut [u8],
        take_part: &mut impl FnMut(u16, &mut [u8]) -> usize,
    ) -> Result<FetchOutcome, SourceError> {
        if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
            return Err(source_error(&e));
        }
        if self.written < self.request.len() {
            if !self.stream.is_connected() {
                return Ok(FetchOutcome::Pending);
            }
            match self.stream.write(&self.request[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if would_block(&e) => return Ok(FetchOutcome::Pending),
                Err(e) => return Err(source_error(&e)),
            }
        }
        self.more_to_read = false;
        let mut read = 0;
        loop {
            if read >= READ_PER_WAKE {
                // A fast peer's long body: let the loop serve the others
                // (the status server) before reading on.
                self.more_to_read = true;
                return Ok(FetchOutcome::Pending);
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.reader.finish().map_err(http_error)?;
                    return self.complete();
                }
                Ok(n) => {
                    read += n;
                    if self
                        .reader
                        .push_taking(&mut scratch[..n], &mut *take_part)
                        .map_err(http_error)?
                    {
                        return self.complete();
                    }
                }
                Err(e) if would_block(&e) => return Ok(FetchOutcome::Pending),
                Err(e) => return Err(source_error(&e)),
            }
        }
    }

    fn complete(&self) -> Result<FetchOutcome, SourceError> {
        let status = self.reader.status().ok_or(SourceError::BadHttp)?;
        Ok(FetchOutcome::Done { status })
    }

    /// Bytes are left to read without waiting for a readiness event.
    pub(crate) fn has_more_to_read(&self) -> bool {
        self.more_to_read
    }

    /// The body of a complete response (its part not taken while it arrived).
    pub(crate) fn body(&mut self) -> &mut [u8] {
        self.reader.body_mut()
    }

    pub(crate) fn close(mut self, registry: &Registry) {
        // Deregistering a socket that is about to be closed cannot matter.
        let _ = self.stream.deregister(registry);
    }
}

fn http_error(e: HttpError) -> SourceError {
    match e {
        HttpError::BodyTooLarge => SourceError::BodyTooLarge,
        HttpError::ClosedEarly => SourceError::ClosedEarly,
        HttpError::Malformed | HttpError::HeadTooLarge => SourceError::BadHttp,
    }
}

pub(crate) fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(nix::libc::ENOTCONN)
}
