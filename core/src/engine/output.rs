//! What the engine hands the runner: actions, requests and the records it
//! writes into the runner's buffers.

/// Something the runner must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch the polled values; call `handle_source_body_part` as the body
    /// arrives, then `handle_source_body` or `handle_source_error`.
    FetchSource,
}

/// An HTTP request to the Data-Service's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path.
    pub path: &'static str,
    /// Bytes of the runner's buffer holding the JSON body (0 for GET).
    pub body_len: usize,
}

/// Identifies a request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub(super) u32);

/// A change record for the spool, written into the runner's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpoolFrame {
    /// Bytes of the buffer holding the record.
    pub len: usize,
    /// The change's sequence number.
    pub seq: u64,
}

/// A request line the runner must send on a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Pass it back with the response or the failure.
    pub request: RequestId,
    /// Bytes of the runner's buffer holding the line, newline included.
    pub len: usize,
}

/// The smallest transmit buffer that always holds one `write` line: every
/// key and string byte may become a 6-byte `\u00XX` escape.
pub const fn min_transmit_buffer() -> usize {
    64 + 6 * (crate::config::MAX_KEY_LEN + crate::config::MAX_STRING_VALUE_LEN) + 32
}
