//! The Data-Service IPC: newline-delimited JSON, one request and one
//! response per connection (PROTOCOLS.md §2).

use core::fmt;

use super::json::{JsonError, JsonStr, Lexer, Token};
pub use super::list::BufferTooSmall;
use super::list::{Cursor, ListWriter};
use super::scan::find_byte;
use crate::value::Value;

/// A Data-Service point id: 32 hexadecimal characters.
pub type PointId = heapless::String<32>;

/// Encodes `{"action":"write","key":..,"value":..}\n`; returns its length.
pub fn encode_write(key: &str, value: &Value, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    encode_single(br#"{"action":"write","key":"#, key, value, buf)
}

/// Encodes `{"action":"write_by_id","id":..,"value":..}\n`; returns its length.
pub fn encode_write_by_id(
    id: &str,
    value: &Value,
    buf: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    encode_single(br#"{"action":"write_by_id","id":"#, id, value, buf)
}

/// `head`, the JSON string `name`, then `,"value":..}` and the newline.
fn encode_single(
    head: &[u8],
    name: &str,
    value: &Value,
    buf: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut cursor = Cursor::new(buf);
    cursor.raw(head)?;
    cursor.string(name)?;
    cursor.raw(br#","value":"#)?;
    cursor.value(value)?;
    cursor.raw(b"}\n")?;
    Ok(cursor.len())
}

/// Builds one `bulk_write_by_id` line update by update, so the caller can
/// stop at its chunk size: [`BulkEncoder::push`] refuses an update that
/// would not fit and leaves the line as it was.
pub struct BulkEncoder<'b> {
    list: ListWriter<'b>,
}

const BULK_PREFIX: &[u8] = br#"{"action":"bulk_write_by_id","updates":["#;
const BULK_SUFFIX: &[u8] = b"]}\n";

impl<'b> BulkEncoder<'b> {
    /// Starts a line in `buf`.
    pub fn new(buf: &'b mut [u8]) -> Result<Self, BufferTooSmall> {
        Ok(BulkEncoder {
            list: ListWriter::new(buf, BULK_PREFIX, BULK_SUFFIX)?,
        })
    }

    /// Adds one update for the point `id`, or refuses it when the line
    /// would not fit.
    pub fn push(&mut self, id: &[u8; 16], value: &Value) -> Result<(), BufferTooSmall> {
        self.list.push(|cursor| {
            cursor.raw(br#"{"id":"#)?;
            cursor.hex_id(id)?;
            cursor.raw(br#","value":"#)?;
            cursor.value(value)?;
            cursor.raw(b"}")
        })
    }

    /// How many updates the line holds.
    pub fn count(&self) -> usize {
        self.list.count()
    }

    /// Closes the line; returns its length including the newline.
    pub fn finish(self) -> usize {
        self.list.finish()
    }
}

/// Why a response line is not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseError {
    /// Not JSON.
    Json(JsonError),
    /// JSON, but not an object with a boolean `ok`.
    MissingOk,
    /// `ok` or `results` again after the `results` already read.
    RepeatedMember,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Json(e) => write!(f, "response is not JSON: {e}"),
            ResponseError::MissingOk => f.write_str("response has no boolean \"ok\""),
            ResponseError::RepeatedMember => {
                f.write_str("response repeats \"ok\" or \"results\" after its results")
            }
        }
    }
}

impl core::error::Error for ResponseError {}

/// One decoded response line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Response<'a> {
    /// The top-level `ok`.
    pub ok: bool,
    /// `error`, when present.
    pub error: Option<JsonStr<'a>>,
    /// `key`, when present (answers to `write_by_id`).
    pub key: Option<JsonStr<'a>>,
    /// The `results` array of a bulk answer, still encoded.
    results: Option<Results<'a>>,
}

/// Where a bulk answer's `results` are, for [`Response::for_each_result`].
#[derive(Clone, Copy, Debug, PartialEq)]
struct Results<'a> {
    /// Just inside the array.
    inside: Lexer<'a>,
    /// Whether [`Response::decode`] checked the array and the rest of the
    /// line; else reading the results checks them.
    checked: bool,
}

/// One entry of a bulk answer's `results`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BulkResult<'a> {
    /// The update's id.
    pub id: Option<JsonStr<'a>>,
    /// Whether it was applied.
    pub ok: bool,
    /// The key it was applied to.
    pub key: Option<JsonStr<'a>>,
    /// Why not, when it was not.
    pub error: Option<JsonStr<'a>>,
}

/// The rest of a bulk result whose `{` was just returned, when it is as
/// the Data-Service writes an applied update (with Python's separators):
/// matched as bytes but for the values, since nearly every result is one.
/// Else `None`, the lexer untouched.
pub fn read_applied_result<'a>(lexer: &mut Lexer<'a>) -> Option<BulkResult<'a>> {
    lexer.shaped_object(|mut result| {
        let id = result.value(br#""id": "#)?;
        let key = result.value(br#", "ok": true, "key": "#)?;
        let closed = result.end()?;
        let string = |token| match token {
            Token::Str(text) => Some(text),
            _ => None,
        };
        let read = BulkResult {
            id: string(id),
            ok: true,
            key: string(key),
            error: None,
        };
        Some((read, closed))
    })
}

impl<'a> BulkResult<'a> {
    /// An entry that says nothing: failed, with no id.
    const FAILED: Self = BulkResult {
        id: None,
        ok: false,
        key: None,
        error: None,
    };

    /// The rest of a result whose `{` was just returned, when it holds only
    /// scalars (the usual result): read in one pass. Else `None`, the lexer
    /// untouched.
    #[inline(always)]
    fn read_flat(lexer: &mut Lexer<'a>) -> Option<Self> {
        let mut result = Self::FAILED;
        lexer
            .flat_object(|name, token| result.keep(name, token))
            .then_some(result)
    }

    /// Keeps `token` if `name` is a member the sync reads.
    #[inline(always)]
    fn keep(&mut self, name: JsonStr<'a>, token: Token<'a>) {
        match (name.raw(), token) {
            ("id", Token::Str(s)) => self.id = Some(s),
            ("ok", Token::Bool(ok)) => self.ok = ok,
            ("key", Token::Str(s)) => self.key = Some(s),
            ("error", Token::Str(s)) => self.error = Some(s),
            _ => {}
        }
    }
}

impl<'a> Response<'a> {
    /// Decodes one response line (without or with its newline), checked
    /// whole.
    pub fn decode(line: &'a [u8]) -> Result<Self, ResponseError> {
        Self::decode_with(line, false)
    }

    /// Decodes the answer to a bulk request. With `"ok": true` before its
    /// `results` (the usual order), decoding stops at them and
    /// [`Response::for_each_result`] checks the rest as it reads it, so
    /// that the largest answers (100 KB for 700 updates) are lexed once.
    pub fn decode_bulk(line: &'a [u8]) -> Result<Self, ResponseError> {
        Self::decode_with(line, true)
    }

    fn decode_with(line: &'a [u8], results_later: bool) -> Result<Self, ResponseError> {
        let mut lexer = Lexer::new(line);
        let json = |e| ResponseError::Json(e);
        if lexer.next_token().map_err(json)? != Some(Token::BeginObject) {
            return Err(ResponseError::MissingOk);
        }
        let mut response = Response {
            ok: false,
            error: None,
            key: None,
            results: None,
        };
        let mut saw_ok = false;
        while let Some(Token::Key(name)) = lexer.next_token().map_err(json)? {
            let token = lexer
                .next_token()
                .map_err(json)?
                .ok_or(ResponseError::MissingOk)?;
            match (name.raw(), token) {
                ("ok", Token::Bool(ok)) => {
                    response.ok = ok;
                    saw_ok = true;
                }
                ("error", Token::Str(s)) => response.error = Some(s),
                ("key", Token::Str(s)) => response.key = Some(s),
                ("results", Token::BeginArray) => {
                    let inside = lexer;
                    if results_later && saw_ok && response.ok {
                        response.results = Some(Results {
                            inside,
                            checked: false,
                        });
                        return Ok(response);
                    }
                    lexer.skip_container().map_err(json)?;
                    response.results = Some(Results {
                        inside,
                        checked: true,
                    });
                }
                (_, other) => lexer.skip_value(other).map_err(json)?,
            }
        }
        // The final `next_token` checks that nothing follows the object.
        if lexer.next_token().map_err(json)?.is_some() {
            return Err(ResponseError::MissingOk);
        }
        if saw_ok {
            Ok(response)
        } else {
            Err(ResponseError::MissingOk)
        }
    }

    /// Whether the answer carried a `results` array.
    pub fn has_results(&self) -> bool {
        self.results.is_some()
    }

    /// Calls `f` with each entry of `results`, in order; entries that are
    /// not objects are passed as failed with no id. An error means the
    /// line broke after the entries passed (which are whole).
    pub fn for_each_result<F: FnMut(BulkResult<'a>)>(&self, mut f: F) -> Result<(), ResponseError> {
        let Some(Results { inside, checked }) = self.results else {
            return Ok(());
        };
        let mut lexer = inside;
        let json = |e| ResponseError::Json(e);
        loop {
            let mut item = BulkResult::FAILED;
            match lexer.next_value().map_err(json)? {
                Token::EndArray => break,
                Token::BeginObject => {
                    if let Some(applied) = read_applied_result(&mut lexer) {
                        item = applied;
                    } else if let Some(flat) = BulkResult::read_flat(&mut lexer) {
                        item = flat;
                    } else {
                        while let Some(Token::Key(name)) = lexer.next_token().map_err(json)? {
                            let token = lexer.next_value().map_err(json)?;
                            lexer.skip_value(token).map_err(json)?;
                            item.keep(name, token);
                        }
                    }
                }
                other => lexer.skip_value(other).map_err(json)?,
            }
            f(item);
        }
        if checked {
            return Ok(());
        }
        // The rest of the object: members that do not change what was
        // read, then nothing.
        while let Some(Token::Key(name)) = lexer.next_token().map_err(json)? {
            if matches!(name.raw(), "ok" | "results") {
                return Err(ResponseError::RepeatedMember);
            }
            let value = lexer.next_value().map_err(json)?;
            lexer.skip_value(value).map_err(json)?;
        }
        match lexer.next_token().map_err(json)? {
            None => Ok(()),
            Some(_) => Err(ResponseError::MissingOk),
        }
    }
}

/// Why a response could not be framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// No newline within the framer's capacity.
    LineTooLong,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response line too long")
    }
}

/// Collects one response line from reads of any size, in storage the
/// caller owns (a heap buffer sized for bulk answers, or an array). Bytes
/// after the newline are ignored: the server answers one line per connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineFramer {
    len: usize,
    complete: bool,
}

impl LineFramer {
    /// An empty framer.
    pub const fn new() -> Self {
        LineFramer {
            len: 0,
            complete: false,
        }
    }

    /// The storage after the line so far, for the next read to land in
    /// directly (no copy); empty once the line is complete.
    pub fn unfilled<'s>(&self, storage: &'s mut [u8]) -> &'s mut [u8] {
        if self.complete {
            return &mut [];
        }
        storage.get_mut(self.len..).unwrap_or_default()
    }

    /// Takes `n` bytes just read into [`LineFramer::unfilled`]; `Ok(true)`
    /// once the line is complete (bytes after its newline are ignored). A
    /// line whose newline does not fit in `storage` is an error; its bytes
    /// are kept, so that in larger storage (the same bytes first) reading
    /// can go on.
    pub fn filled(&mut self, storage: &[u8], n: usize) -> Result<bool, FrameError> {
        if self.complete {
            return Ok(true);
        }
        let start = self.len.min(storage.len());
        let end = (start + n).min(storage.len());
        match find_byte(&storage[start..end], b'\n') {
            Some(at) => {
                self.len = start + at;
                self.complete = true;
                Ok(true)
            }
            None if end == storage.len() => {
                self.len = end;
                Err(FrameError::LineTooLong)
            }
            None => {
                self.len = end;
                Ok(false)
            }
        }
    }

    /// The line without its newline (and without a trailing `\r`).
    pub fn line<'s>(&self, storage: &'s [u8]) -> &'s [u8] {
        let line = &storage[..self.len.min(storage.len())];
        line.strip_suffix(b"\r").unwrap_or(line)
    }

    /// Forgets the line, for the next connection.
    pub fn clear(&mut self) {
        *self = LineFramer::new();
    }
}

#[cfg(test)]
mod tests;
