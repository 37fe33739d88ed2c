//! An HTTP/1.1 response reader fed with whatever a nonblocking read
//! returned: head through `httparse`, then a `Content-Length`, chunked or
//! read-until-close body, never more than the body cap in memory.

use std::fmt;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Why a response is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x, or a broken head or chunk framing.
    Malformed,
    /// A head over 16 KiB.
    HeadTooLarge,
    /// A body over the cap.
    BodyTooLarge,
    /// The connection closed before the response was complete.
    ClosedEarly,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::Malformed => "malformed HTTP response",
            HttpError::HeadTooLarge => "HTTP head too large",
            HttpError::BodyTooLarge => "body too large",
            HttpError::ClosedEarly => "closed before the response was complete",
        })
    }
}

impl std::error::Error for HttpError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size {
        size: usize,
        digits: usize,
        in_extension: bool,
    },
    Data(usize),
    DataEnd,
    Trailer {
        line_len: usize,
    },
    Done,
}

/// Bytes of a new read that complete an entry cut at the end of the last
/// one, when fewer than the held bytes (an entry is rarely longer).
const COMPLETE_WITH: usize = 4096;

/// How much of a body a reader may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLimit {
    /// The body is used whole: at most this many bytes (a longer
    /// `Content-Length` is refused before any of it is read).
    Whole(usize),
    /// The body is taken as it arrives ([`ResponseReader::take_part`]): at
    /// most this many bytes in all, refused as `Whole` is, but never held
    /// (nor reserved) whole.
    Streamed(usize),
    /// The body is taken as it arrives ([`ResponseReader::take_part`]): at
    /// most this many bytes held at once, however long it is.
    Held(usize),
}

impl BodyLimit {
    /// The most body bytes in all, if bounded.
    fn total(self) -> Option<usize> {
        match self {
            BodyLimit::Whole(bytes) | BodyLimit::Streamed(bytes) => Some(bytes),
            BodyLimit::Held(_) => None,
        }
    }
}

/// Reads one response.
#[derive(Debug)]
pub struct ResponseReader {
    head: Vec<u8>,
    status: Option<u16>,
    framing: Framing,
    chunk: Chunk,
    /// The body, or its part not taken yet ([`ResponseReader::take_part`]).
    body: Vec<u8>,
    /// Body bytes read so far, taken or not.
    received: usize,
    /// `take_part` offers the held body again only once it holds this
    /// many bytes.
    offer_at: usize,
    limit: BodyLimit,
    done: bool,
}

impl ResponseReader {
    /// A reader for a body used whole, of at most `max_body` bytes.
    pub fn new(max_body: usize) -> Self {
        Self::with_limit(BodyLimit::Whole(max_body))
    }

    /// A reader whose body may hold at most what `limit` says.
    pub fn with_limit(limit: BodyLimit) -> Self {
        ResponseReader {
            head: Vec::new(),
            status: None,
            framing: Framing::UntilClose,
            chunk: Chunk::Size {
                size: 0,
                digits: 0,
                in_extension: false,
            },
            body: Vec::new(),
            received: 0,
            offer_at: 0,
            limit,
            done: false,
        }
    }

    /// Feeds bytes; `Ok(true)` once the response is complete.
    pub fn push(&mut self, data: &[u8]) -> Result<bool, HttpError> {
        if self.done {
            return Ok(true);
        }
        if self.status.is_none() {
            let old = self.head.len();
            self.head.extend_from_slice(data);
            let Some(head_len) = self.parse_head()? else {
                if self.head.len() > MAX_HEAD {
                    return Err(HttpError::HeadTooLarge);
                }
                return Ok(false);
            };
            let rest = head_len.saturating_sub(old);
            self.head.clear();
            return self.push_body(&data[rest.min(data.len())..]);
        }
        self.push_body(data)
    }

    /// The peer closed the connection; returns the response if complete.
    pub fn finish(&mut self) -> Result<(), HttpError> {
        if self.done {
            return Ok(());
        }
        match (self.status, self.framing) {
            (Some(_), Framing::UntilClose) => {
                self.done = true;
                Ok(())
            }
            _ => Err(HttpError::ClosedEarly),
        }
    }

    /// The status code, once the head was read.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The body, complete once `push` returned `Ok(true)` or `finish`
    /// `Ok(())`, less what [`ResponseReader::take_part`] took.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// [`ResponseReader::body`], to be changed in place.
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.body
    }

    fn parse_head(&mut self) -> Result<Option<usize>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&self.head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
            Err(_) => return Err(HttpError::Malformed),
        };
        let status = response.code.ok_or(HttpError::Malformed)?;
        let mut framing = Framing::UntilClose;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                let value = std::str::from_utf8(header.value).map_err(|_| HttpError::Malformed)?;
                if value.trim().eq_ignore_ascii_case("chunked") {
                    framing = Framing::Chunked;
                }
            } else if header.name.eq_ignore_ascii_case("content-length")
                && framing != Framing::Chunked
            {
                let len = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or(HttpError::Malformed)?;
                if self.limit.total().is_some_and(|max| len > max) {
                    return Err(HttpError::BodyTooLarge);
                }
                framing = Framing::Length(len);
                if let BodyLimit::Whole(max) = self.limit {
                    self.body.reserve_exact(len.min(max));
                }
            }
        }
        self.status = Some(status);
        self.framing = framing;
        // 1xx, 204 and 304 carry no body.
        if status < 200 || status == 204 || status == 304 {
            self.framing = Framing::Length(0);
        }
        Ok(Some(head_len))
    }

    fn push_body(&mut self, data: &[u8]) -> Result<bool, HttpError> {
        match self.framing {
            Framing::Length(len) => {
                let take = (len - self.received).min(data.len());
                self.hold(&data[..take])?;
                self.done = self.received == len;
            }
            Framing::UntilClose => self.hold(data)?,
            Framing::Chunked => self.push_chunked(data)?,
        }
        Ok(self.done)
    }

    fn hold(&mut self, data: &[u8]) -> Result<(), HttpError> {
        self.check_room(data.len())?;
        self.body.extend_from_slice(data);
        self.received += data.len();
        Ok(())
    }

    /// Whether `len` more body bytes are within the limit.
    fn check_room(&self, len: usize) -> Result<(), HttpError> {
        let too_large = match self.limit {
            BodyLimit::Whole(max) | BodyLimit::Streamed(max) => self.received + len > max,
            BodyLimit::Held(max) => self.body.len() + len > max,
        };
        if too_large {
            return Err(HttpError::BodyTooLarge);
        }
        Ok(())
    }

    /// [`ResponseReader::push`], then [`ResponseReader::take_part`] if the
    /// response is not complete: the same bytes taken in all and the same
    /// left held, but where nothing is held before them, a read's body
    /// bytes are offered where they were read, and only what `take` leaves
    /// is copied. (A cut entry held from the last read is completed with
    /// the start of this one first.) `take` may be called twice.
    pub fn push_taking(
        &mut self,
        data: &mut [u8],
        mut take: impl FnMut(u16, &mut [u8]) -> usize,
    ) -> Result<bool, HttpError> {
        // In place: a body taken as it arrives, not chunked, that this read
        // does not complete (the end is kept for whoever reads it whole).
        let in_place = match (self.status, self.framing, self.limit) {
            (_, _, BodyLimit::Whole(_)) | (None, _, _) | (_, Framing::Chunked, _) => None,
            _ if self.done => None,
            (Some(status), Framing::Length(len), _) => {
                let body_len = (len - self.received).min(data.len());
                (self.received + body_len < len).then_some((status, body_len))
            }
            (Some(status), Framing::UntilClose, _) => Some((status, data.len())),
        };
        let Some((status, body_len)) = in_place else {
            let done = self.push(data)?;
            if !done {
                self.take_part(take);
            }
            return Ok(done);
        };
        let data = &mut data[..body_len];
        self.check_room(data.len())?;
        self.received += data.len();
        let mut rest = data;
        if !self.body.is_empty() {
            if self.body.len() + rest.len() < self.offer_at {
                self.body.extend_from_slice(rest);
                return Ok(false);
            }
            let held = self.body.len();
            let prefix = rest.len().min(held.max(COMPLETE_WITH));
            self.body.extend_from_slice(&rest[..prefix]);
            let used = take(status, &mut self.body).min(self.body.len());
            if used < held || prefix == rest.len() {
                // All of it offered already, or an entry longer than the
                // prefix: offered whole, as `take_part` would.
                self.body.drain(..used);
                self.body.extend_from_slice(&rest[prefix..]);
                if used < held && prefix < rest.len() {
                    let used = take(status, &mut self.body).min(self.body.len());
                    self.body.drain(..used);
                }
                self.set_offer_at();
                return Ok(false);
            }
            self.body.clear();
            rest = &mut rest[used - held..];
        }
        let used = take(status, rest).min(rest.len());
        self.body.extend_from_slice(&rest[used..]);
        self.set_offer_at();
        Ok(false)
    }

    /// Offers the body read so far to `take` (with the status), which
    /// returns how many of its first bytes it used: those are dropped, so
    /// a body used as it arrives is never held whole.
    pub fn take_part(&mut self, take: impl FnOnce(u16, &mut [u8]) -> usize) {
        let Some(status) = self.status else {
            return;
        };
        if self.body.is_empty() || self.body.len() < self.offer_at {
            return;
        }
        let used = take(status, &mut self.body).min(self.body.len());
        self.body.drain(..used);
        self.set_offer_at();
    }

    /// What is left is the start of something longer (a tag, a long
    /// string): offered again only once the held bytes have doubled, so
    /// that the taker's rescans of it add up to linear time, not
    /// quadratic. Within half a `Held` cap it is offered on every read,
    /// so that waiting never makes the held bytes overflow the cap.
    fn set_offer_at(&mut self) {
        let doubled = self.body.len() * 2;
        self.offer_at = match self.limit {
            BodyLimit::Held(max) => doubled.min(max / 2),
            BodyLimit::Whole(_) | BodyLimit::Streamed(_) => doubled,
        };
    }

    fn push_chunked(&mut self, mut data: &[u8]) -> Result<(), HttpError> {
        while let Some((&byte, rest)) = data.split_first() {
            match &mut self.chunk {
                Chunk::Data(remaining) => {
                    let take = (*remaining).min(data.len());
                    *remaining -= take;
                    if *remaining == 0 {
                        self.chunk = Chunk::DataEnd;
                    }
                    self.hold(&data[..take])?;
                    data = &data[take..];
                    continue;
                }
                Chunk::Size {
                    size,
                    digits,
                    in_extension,
                } => match byte {
                    b'\n' if *digits > 0 => {
                        self.chunk = if *size == 0 {
                            Chunk::Trailer { line_len: 0 }
                        } else {
                            Chunk::Data(*size)
                        };
                    }
                    b'\r' | b' ' | b'\t' => {}
                    b';' => *in_extension = true,
                    _ if *in_extension => {}
                    _ => {
                        let digit = (byte as char).to_digit(16).ok_or(HttpError::Malformed)?;
                        *size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(digit as usize))
                            .ok_or(HttpError::BodyTooLarge)?;
                        *digits += 1;
                    }
                },
                Chunk::DataEnd => match byte {
                    b'\r' => {}
                    b'\n' => {
                        self.chunk = Chunk::Size {
                            size: 0,
                            digits: 0,
                            in_extension: false,
                        }
                    }
                    _ => return Err(HttpError::Malformed),
                },
                Chunk::Trailer { line_len } => match byte {
                    b'\r' => {}
                    b'\n' if *line_len == 0 => {
                        self.chunk = Chunk::Done;
                        self.done = true;
                        return Ok(());
                    }
                    b'\n' => *line_len = 0,
                    _ => *line_len += 1,
                },
                Chunk::Done => return Ok(()),
            }
            data = rest;
        }
        Ok(())
    }
}

/// A whole request that closes the connection after: a GET, or a POST of
/// the JSON `body`.
pub fn request_head(host: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
    let (method, length) = match body {
        Some(body) => (
            "POST",
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ),
        ),
        None => ("GET", String::new()),
    };
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\
         User-Agent: dataservice-sync/{}\r\n{length}Connection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes();
    request.extend_from_slice(body.unwrap_or_default());
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_in_pieces(
        reader: &mut ResponseReader,
        bytes: &[u8],
        piece: usize,
    ) -> Result<bool, HttpError> {
        let mut done = false;
        for chunk in bytes.chunks(piece) {
            done = reader.push(chunk)?;
        }
        Ok(done)
    }

    /// Takes the whole `|`-ended entries at the start of a part, as the
    /// engine takes whole tags; `!` stands for a broken document, after
    /// which everything offered is taken.
    fn take_entries(taken: &mut Vec<u8>, broken: &mut bool, part: &[u8]) -> usize {
        if !*broken && let Some(at) = part.iter().position(|&b| b == b'!') {
            let whole = part[..at]
                .iter()
                .rposition(|&b| b == b'|')
                .map_or(0, |i| i + 1);
            taken.extend_from_slice(&part[..whole]);
            *broken = true;
        }
        if *broken {
            return part.len();
        }
        let whole = part.iter().rposition(|&b| b == b'|').map_or(0, |i| i + 1);
        taken.extend_from_slice(&part[..whole]);
        whole
    }

    /// Reads `raw` in `pieces` with `push` and `take_part`, or with
    /// `push_taking`: the outcome, what was taken, and what is left held.
    fn read_all(
        raw: &[u8],
        pieces: &[usize],
        limit: BodyLimit,
        taking: bool,
    ) -> (Result<bool, HttpError>, Vec<u8>, Vec<u8>) {
        let mut reader = ResponseReader::with_limit(limit);
        let (mut taken, mut broken) = (Vec::new(), false);
        let mut at = 0;
        let mut outcome = Ok(false);
        for &piece in pieces.iter().cycle() {
            if at >= raw.len() || matches!(outcome, Ok(true) | Err(_)) {
                break;
            }
            let mut read = raw[at..(at + piece).min(raw.len())].to_vec();
            at += read.len();
            let take = |_: u16, part: &mut [u8]| take_entries(&mut taken, &mut broken, part);
            outcome = if taking {
                reader.push_taking(&mut read, take)
            } else {
                reader.push(&read).inspect(|&done| {
                    if !done {
                        reader.take_part(take);
                    }
                })
            };
        }
        (outcome, taken, reader.body().to_vec())
    }

    proptest! {
        // 256 cases, or PROPTEST_CASES.
        #![proptest_config(ProptestConfig::default())]

        #[test]
        fn taking_where_read_takes_and_holds_what_push_and_take_part_do(
            // Entries of 0 to 6,000 bytes, some not ended, some broken.
            entries in prop::collection::vec(
                (prop_oneof![8 => 0usize..200, 1 => 4000usize..6000], 0u8..10),
                0..60,
            ),
            // Reads shorter and longer than the 4 KiB that complete a cut entry.
            pieces in prop::collection::vec(prop_oneof![1usize..300, 4000usize..9000], 1..8),
            length in any::<bool>(),
            limit in prop_oneof![
                (50usize..50_000).prop_map(BodyLimit::Streamed),
                (8usize..12_000).prop_map(BodyLimit::Held),
            ],
        ) {
            let body: String = entries
                .iter()
                .map(|&(len, end)| match end {
                    0 => "!".to_string(),
                    1 => "x".repeat(len),
                    _ => "x".repeat(len) + "|",
                })
                .collect();
            let head = if length {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
            } else {
                String::from("HTTP/1.1 200 OK\r\n\r\n")
            };
            let raw = [head.as_bytes(), body.as_bytes()].concat();
            prop_assert_eq!(
                read_all(&raw, &pieces, limit, true),
                read_all(&raw, &pieces, limit, false)
            );
        }
    }

    #[test]
    fn a_read_is_taken_where_it_was_read_once_nothing_is_held_before_it() {
        let long = format!("d|{}f", "e|".repeat(3000));
        let len = "ab|c".len() + long.len() + "g|".len();
        let mut r = ResponseReader::with_limit(BodyLimit::Streamed(10_000));
        let mut offers = Vec::new();
        let mut take = |_: u16, part: &mut [u8]| {
            offers.push((String::from_utf8_lossy(&part[..4]).into_owned(), part.len()));
            part.iter().rposition(|&b| b == b'|').map_or(0, |i| i + 1)
        };
        let mut first =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\nab|c").into_bytes();
        assert_eq!(r.push_taking(&mut first, &mut take), Ok(false));
        assert_eq!(r.body(), b"c");
        // The cut entry completed with the read's first 4 KiB, then the
        // rest of the read offered where it was read; the last read
        // completes the body, which is kept for its end.
        assert_eq!(r.push_taking(&mut long.into_bytes(), &mut take), Ok(false));
        assert_eq!(r.body(), b"f");
        assert_eq!(r.push_taking(&mut b"g|".to_vec(), &mut take), Ok(true));
        assert_eq!(
            offers,
            [
                (String::from("ab|c"), 4),
                (String::from("cd|e"), 4097),
                (String::from("e|e|"), 1907)
            ]
        );
        assert_eq!(r.body(), b"fg|");
    }

    #[test]
    fn reads_content_length_bodies_in_any_pieces() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        for piece in [1, 3, 200] {
            let mut r = ResponseReader::new(100);
            assert_eq!(feed_in_pieces(&mut r, raw, piece), Ok(true));
            assert_eq!((r.status(), r.body()), (Some(200), &b"{\"a\":1}"[..]));
        }
    }

    #[test]
    fn a_body_taken_as_it_arrives_is_held_a_part_at_a_time() {
        // 24 body bytes; the taker uses whole 4-byte words, so at most 3 are
        // left over when the next piece (at most 9) comes: 12 may be held.
        let length =
            b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\naaaabbbbccccddddeeeeffff".to_vec();
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\naaaabbbbc\r\nf\r\ncccddddeeeeffff\r\n0\r\n\r\n".to_vec();
        for raw in [length, chunked] {
            for piece in [1, 5, 9] {
                let mut r = ResponseReader::with_limit(BodyLimit::Held(12));
                let mut taken = Vec::new();
                let mut done = false;
                for chunk in raw.chunks(piece) {
                    done = r.push(chunk).unwrap();
                    r.take_part(|status, part| {
                        assert_eq!(status, 200);
                        let whole = part.len() / 4 * 4;
                        taken.extend_from_slice(&part[..whole]);
                        whole
                    });
                }
                assert!(done);
                taken.extend_from_slice(r.body());
                assert_eq!(taken, b"aaaabbbbccccddddeeeeffff", "pieces of {piece}");
            }
        }
        // Not taken, the same body is too large to hold.
        let mut r = ResponseReader::with_limit(BodyLimit::Held(12));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\naaaabbbbc\r\nf\r\ncccddddeeeeffff\r\n0\r\n\r\n";
        assert_eq!(feed_in_pieces(&mut r, raw, 5), Err(HttpError::BodyTooLarge));
    }

    #[test]
    fn a_long_token_is_offered_again_only_as_its_bytes_double() {
        // 10 MB of one string, read 64 KB at a time; the taker can use
        // nothing of it until its end.
        let body_len = 10 * 1024 * 1024;
        let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {body_len}\r\n\r\n").into_bytes();
        raw.resize(raw.len() + body_len, b'x');
        let mut r = ResponseReader::with_limit(BodyLimit::Streamed(body_len));
        let (mut offers, mut offered) = (0usize, 0usize);
        for chunk in raw.chunks(64 * 1024) {
            r.push(chunk).unwrap();
            r.take_part(|_, part| {
                offers += 1;
                offered += part.len();
                0
            });
        }
        // Each offer holds at least twice the one before: 8 offers of 16.7
        // MB in all, where one per read would have been 161 of 855 MB.
        assert_eq!(offers, 8);
        assert_eq!(offered, 16_711_320);
        assert_eq!(r.body().len(), body_len);
        // Within half a Held cap, every read is offered.
        let mut r = ResponseReader::with_limit(BodyLimit::Held(8));
        let mut offers = 0;
        for chunk in b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nxxxxxxxx".chunks(1) {
            r.push(chunk).unwrap();
            r.take_part(|_, _| {
                offers += 1;
                0
            });
        }
        // At 1 and 2 bytes held, then at every byte from 4 (half the cap) on.
        assert_eq!(offers, 7);
    }

    #[test]
    fn a_streamed_body_is_capped_in_all_though_taken_as_it_arrives() {
        // Taken as it arrives, nothing is held; the cap is on the total.
        let take_all = |r: &mut ResponseReader, raw: &[u8]| -> Result<Vec<u8>, HttpError> {
            let mut taken = Vec::new();
            for chunk in raw.chunks(3) {
                r.push(chunk)?;
                r.take_part(|_, part| {
                    taken.extend_from_slice(part);
                    part.len()
                });
            }
            Ok(taken)
        };
        let mut r = ResponseReader::with_limit(BodyLimit::Streamed(10));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
        assert_eq!(take_all(&mut r, raw), Ok(b"0123456789".to_vec()));
        assert_eq!(r.body(), b"");
        // One byte over: refused before any is read, or once it comes.
        let mut r = ResponseReader::with_limit(BodyLimit::Streamed(10));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(r.push(raw), Err(HttpError::BodyTooLarge));
        let mut r = ResponseReader::with_limit(BodyLimit::Streamed(10));
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n6789a\r\n0\r\n\r\n";
        assert_eq!(take_all(&mut r, raw), Err(HttpError::BodyTooLarge));
    }

    #[test]
    fn reads_chunked_bodies_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n";
        for piece in [1, 5, 500] {
            let mut r = ResponseReader::new(100);
            assert_eq!(feed_in_pieces(&mut r, raw, piece), Ok(true));
            assert_eq!(r.body(), b"{\"a\":1}");
        }
    }

    #[test]
    fn enforces_the_body_cap_and_detects_truncation() {
        let mut r = ResponseReader::new(4);
        assert_eq!(
            r.push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        let mut r = ResponseReader::with_limit(BodyLimit::Held(4));
        assert_eq!(
            r.push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n1234"),
            Ok(false)
        );
        assert_eq!(r.push(b"5"), Err(HttpError::BodyTooLarge));
        let mut r = ResponseReader::new(4);
        assert_eq!(
            r.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n12345"),
            Err(HttpError::BodyTooLarge)
        );
        let mut r = ResponseReader::new(100);
        assert_eq!(
            r.push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12"),
            Ok(false)
        );
        assert_eq!(r.finish(), Err(HttpError::ClosedEarly));
        let mut r = ResponseReader::new(100);
        assert_eq!(r.push(b"HTTP/1.1 200 OK\r\n\r\nabc"), Ok(false));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.body(), b"abc");
        let mut r = ResponseReader::new(100);
        assert_eq!(r.push(b"garbage\r\n\r\n"), Err(HttpError::Malformed));
        let mut r = ResponseReader::new(100);
        assert_eq!(
            r.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            Err(HttpError::Malformed)
        );
    }

    #[test]
    fn builds_get_and_post_requests() {
        let get = String::from_utf8(request_head("h:1", "/x", None)).unwrap();
        assert!(get.starts_with("GET /x HTTP/1.1\r\nHost: h:1\r\n"), "{get}");
        assert!(get.ends_with("Connection: close\r\n\r\n"));
        let post = String::from_utf8(request_head("h", "/register/bulk", Some(b"{}"))).unwrap();
        assert!(post.starts_with("POST /register/bulk HTTP/1.1\r\n"));
        assert!(post.contains("Content-Type: application/json\r\nContent-Length: 2\r\n"));
        assert!(post.ends_with("\r\n\r\n{}"));
    }

    #[test]
    fn reports_the_status_of_errors() {
        let mut r = ResponseReader::new(100);
        assert_eq!(
            r.push(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"),
            Ok(true)
        );
        assert_eq!(r.status(), Some(500));
    }
}
