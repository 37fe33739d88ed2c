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
        let closed = result.end(b"}")?;
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
                    // The usual result holds only scalars: read it in one pass.
                    if let Some(applied) = read_applied_result(&mut lexer) {
                        item = applied;
                    } else if !lexer.flat_object(|name, token| item.keep(name, token)) {
                        item = BulkResult::FAILED;
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
mod tests {
    use super::*;
    use crate::value::StringValue;
    use crate::wire::json::one_pass_proptests::{bulk_answer, check_shaped_reading};
    use std::{format, vec};

    fn text(buf: &[u8]) -> &str {
        core::str::from_utf8(buf).unwrap()
    }

    #[test]
    fn encodes_write_with_json_types_and_escaping() {
        let mut buf = [0u8; 256];
        let n = encode_write("Kühl \"N\"\n\u{1}", &Value::Int(3), &mut buf).unwrap();
        assert_eq!(
            text(&buf[..n]),
            "{\"action\":\"write\",\"key\":\"Kühl \\\"N\\\"\\n\\u0001\",\"value\":3}\n"
        );
        let n = encode_write("k", &Value::Float(-0.0005), &mut buf).unwrap();
        assert_eq!(
            text(&buf[..n]),
            "{\"action\":\"write\",\"key\":\"k\",\"value\":-0.0005}\n"
        );
        let n = encode_write("k", &Value::Float(3.0), &mut buf).unwrap();
        assert_eq!(
            text(&buf[..n]),
            "{\"action\":\"write\",\"key\":\"k\",\"value\":3.0}\n"
        );
        let s = Value::Str(StringValue::try_from("a\\b").unwrap());
        let n = encode_write("k", &s, &mut buf).unwrap();
        assert_eq!(
            text(&buf[..n]),
            "{\"action\":\"write\",\"key\":\"k\",\"value\":\"a\\\\b\"}\n"
        );
        let n = encode_write_by_id("00ff", &Value::Bool(false), &mut buf).unwrap();
        assert_eq!(
            text(&buf[..n]),
            "{\"action\":\"write_by_id\",\"id\":\"00ff\",\"value\":false}\n"
        );
        assert_eq!(
            encode_write("k", &Value::Int(1), &mut buf[..20]),
            Err(BufferTooSmall)
        );
    }

    #[test]
    fn bulk_encoder_stops_at_the_buffer_size() {
        let mut buf = [0u8; 165];
        let mut bulk = BulkEncoder::new(&mut buf).unwrap();
        let a1 = [0xa1; 16];
        let mut b2 = [0; 16];
        b2[15] = 0xb2;
        bulk.push(&a1, &Value::Int(1)).unwrap();
        bulk.push(&b2, &Value::Float(2.5)).unwrap();
        assert_eq!(bulk.push(&a1, &Value::Int(3)), Err(BufferTooSmall));
        assert_eq!(bulk.count(), 2);
        let n = bulk.finish();
        assert_eq!(
            text(&buf[..n]),
            "{\"action\":\"bulk_write_by_id\",\"updates\":[\
             {\"id\":\"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\",\"value\":1},\
             {\"id\":\"000000000000000000000000000000b2\",\"value\":2.5}]}\n"
        );
    }

    #[test]
    fn decodes_every_response_form() {
        let ok = Response::decode(br#"{"ok": true}"#).unwrap();
        assert!(ok.ok && ok.error.is_none() && !ok.has_results());
        let by_id = Response::decode(br#"{"ok": true, "key": "Boiler-1.temp"}"#).unwrap();
        assert!(by_id.key.unwrap().eq_str("Boiler-1.temp"));
        let err = Response::decode(br#"{"ok": false, "error": "id not found"}"#).unwrap();
        assert!(!err.ok && err.error.unwrap().eq_str("id not found"));
        let bulk = Response::decode(
            br#"{"ok": true, "results": [{"id": "a", "ok": true, "key": "K\u00fc"}, {"id": "b", "ok": false, "error": "id not found"}, 7]}"#,
        )
        .unwrap();
        let mut seen: heapless::Vec<(bool, bool), 4> = heapless::Vec::new();
        bulk.for_each_result(|r| {
            let id_ok = match r.id {
                Some(id) => id.eq_str(if r.ok { "a" } else { "b" }),
                None => true,
            };
            seen.push((r.ok, id_ok)).unwrap();
        })
        .unwrap();
        assert_eq!(
            seen.as_slice(),
            &[(true, true), (false, true), (false, true)]
        );
        assert_eq!(
            Response::decode(br#"{"status": "ok"}"#),
            Err(ResponseError::MissingOk)
        );
        assert_eq!(
            Response::decode(br#"{"ok": tru"#),
            Err(ResponseError::Json(JsonError::UnexpectedEnd))
        );
    }

    /// Each result's `ok` and `error`.
    type Seen<'a> = std::vec::Vec<(bool, Option<&'a str>)>;

    /// The results of `line` as a bulk answer, and how reading them ended.
    fn results_of(line: &str) -> (Seen<'_>, Result<(), ResponseError>) {
        let response = Response::decode_bulk(line.as_bytes()).unwrap();
        let mut seen = std::vec::Vec::new();
        let read = response.for_each_result(|r| seen.push((r.ok, r.error.map(|e| e.raw()))));
        (seen, read)
    }

    #[test]
    fn results_after_ok_are_checked_as_they_are_read() {
        let good = r#"{"id": "a", "ok": true}"#;
        let failed = r#"{"id": "b", "ok": false, "error": "id not found"}"#;
        // Whole, with a member after the results.
        assert_eq!(
            results_of(&format!(
                r#"{{"ok": true, "results": [{good}, {failed}], "n": [2]}}"#
            )),
            (vec![(true, None), (false, Some("id not found"))], Ok(()))
        );
        // Broken in the second entry: the first stands. Decoded as any
        // other answer, the line is refused whole.
        let broken = format!(r#"{{"ok": true, "results": [{good}, {{"id": "b", "ok": tru}}]}}"#);
        let at_tru = ResponseError::Json(JsonError::UnexpectedByte { at: 68 });
        assert_eq!(results_of(&broken), (vec![(true, None)], Err(at_tru)));
        assert_eq!(Response::decode(broken.as_bytes()), Err(at_tru));
        // Whole results, then a break, a second "ok", or trailing bytes.
        let results = format!(r#""results": [{good}]"#);
        for (line, error) in [
            (
                format!(r#"{{"ok": true, {results}, "n": }}"#),
                ResponseError::Json(JsonError::UnexpectedByte { at: 56 }),
            ),
            (
                format!(r#"{{"ok": true, {results}, "ok": false}}"#),
                ResponseError::RepeatedMember,
            ),
            (
                format!(r#"{{"ok": true, {results}}} x"#),
                ResponseError::Json(JsonError::TrailingData { at: 51 }),
            ),
        ] {
            assert_eq!(
                results_of(&line),
                (vec![(true, None)], Err(error)),
                "{line}"
            );
        }
    }

    #[test]
    fn results_before_ok_are_checked_whole_when_decoded() {
        assert_eq!(
            results_of(r#"{"results": [{"id": "a", "ok": true}], "ok": true}"#),
            (vec![(true, None)], Ok(()))
        );
        assert_eq!(
            Response::decode(br#"{"results": [{"id": "a", "ok": tru}], "ok": true}"#),
            Err(ResponseError::Json(JsonError::UnexpectedByte { at: 31 }))
        );
        // Refused: the results are there, but the caller does not read them.
        let refused =
            Response::decode(br#"{"ok": false, "results": [], "error": "busy"}"#).unwrap();
        assert!(!refused.ok && refused.has_results());
        assert!(refused.error.unwrap().eq_str("busy"));
    }

    #[test]
    fn framer_copes_with_partial_reads_and_long_lines() {
        /// One read of `data`, as a socket gives it: at most the room left.
        fn read(
            framer: &mut LineFramer,
            storage: &mut [u8],
            data: &[u8],
        ) -> Result<bool, FrameError> {
            let room = framer.unfilled(storage);
            let n = room.len().min(data.len());
            room[..n].copy_from_slice(&data[..n]);
            framer.filled(storage, n)
        }
        let mut storage = [0u8; 16];
        let mut framer = LineFramer::new();
        assert_eq!(read(&mut framer, &mut storage, b"{\"ok\""), Ok(false));
        assert_eq!(
            read(&mut framer, &mut storage, b": true}\r\nextra"),
            Ok(true)
        );
        assert_eq!(framer.line(&storage), b"{\"ok\": true}");
        framer.clear();
        assert_eq!(read(&mut framer, &mut storage, b"0123456789"), Ok(false));
        assert_eq!(
            read(&mut framer, &mut storage, b"0123456789"),
            Err(FrameError::LineTooLong)
        );
        // Read in place: 15 bytes and the newline fit in 16, 16 do not.
        framer.clear();
        framer.unfilled(&mut storage)[..9].copy_from_slice(b"{\"ok\": tr");
        assert_eq!(framer.filled(&storage, 9), Ok(false));
        let room = framer.unfilled(&mut storage);
        assert_eq!(room.len(), 7);
        room.copy_from_slice(b"ue}   \n");
        assert_eq!(framer.filled(&storage, 7), Ok(true));
        assert_eq!(framer.line(&storage), b"{\"ok\": true}   ");
        assert!(framer.unfilled(&mut storage).is_empty());
        framer.clear();
        storage.copy_from_slice(b"0123456789abcdef");
        assert_eq!(framer.filled(&storage, 16), Err(FrameError::LineTooLong));
        // In larger storage holding the same bytes, the line goes on.
        let mut larger = [0u8; 32];
        larger[..16].copy_from_slice(&storage);
        let room = framer.unfilled(&mut larger);
        assert_eq!(room.len(), 16);
        room[..3].copy_from_slice(b"gh\n");
        assert_eq!(framer.filled(&larger, 3), Ok(true));
        assert_eq!(framer.line(&larger), b"0123456789abcdefgh");
    }

    #[test]
    fn an_applied_result_is_read_whole() {
        let id = "0123456789abcdef0123456789abcdef";
        let line = format!(
            r#"{{"ok": true, "results": [{{"id": "{id}", "ok": true, "key": "d.a"}}, {{"id": "{id}", "ok": false, "error": "id not found"}}]}}"#
        );
        let applied = BulkResult {
            id: Some(JsonStr::from_parts(id, false)),
            ok: true,
            key: Some(JsonStr::from_parts("d.a", false)),
            error: None,
        };
        let failed = BulkResult {
            id: Some(JsonStr::from_parts(id, false)),
            ok: false,
            key: None,
            error: Some(JsonStr::from_parts("id not found", false)),
        };
        let response = Response::decode_bulk(line.as_bytes()).unwrap();
        let mut results = vec::Vec::new();
        assert_eq!(response.for_each_result(|r| results.push(r)), Ok(()));
        assert_eq!(results, vec![applied, failed]);
    }

    /// [`read_applied_result`] against the result read as a flat object
    /// at every object of `text`; how many it read.
    fn check_applied_results<'a>(text: &'a [u8]) -> usize {
        let flat = |lexer: &mut Lexer<'a>| {
            let mut result = BulkResult::FAILED;
            lexer
                .flat_object(|name, token| result.keep(name, token))
                .then_some(result)
        };
        check_shaped_reading(text, read_applied_result, flat)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::proptest_cases()))]

        #[test]
        fn applied_results_read_as_bytes_are_read_as_flat_objects(text in bulk_answer()) {
            check_applied_results(&text);
        }
    }

    #[test]
    fn applied_results_are_read_as_bytes_and_others_are_not() {
        let id = "0123456789abcdef0123456789abcdef";
        let applied = format!(r#"{{"id": "{id}", "ok": true, "key": "Boiler-1.t"}}"#);
        let answer = format!(r#"{{"ok": true, "results": [{applied}, {applied} ,{applied}]}}"#);
        assert_eq!(check_applied_results(answer.as_bytes()), 3);
        // Any scalars, escaped strings too.
        let odd = r#"[{"id": "a\"b", "ok": true, "key": null}]"#;
        assert_eq!(check_applied_results(odd.as_bytes()), 1);
        let others = [
            r#"[{"id":"a","ok":true,"key":"k"}]"#,
            r#"[{"id": "a", "ok": false, "error": "id not found"}]"#,
            r#"[{"id": "a", "ok": true, "key": "k", "n": 1}]"#,
            r#"[{"id": "a", "ok": true, "key": {"k": 1}}]"#,
            r#"[{"id": "a", "ok": true, "key": "k""#,
            r#"[{"id": "a", "ok": tru, "key": "k"}]"#,
            r#"[{"id": "a", "ok": 1, "key": "k"}]"#,
        ];
        for text in others {
            assert_eq!(check_applied_results(text.as_bytes()), 0, "{text}");
        }
    }
}
