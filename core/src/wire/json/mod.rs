//! A pull tokenizer for JSON that never allocates and never recurses.
//!
//! It validates structure as it goes (so a truncated or broken document is
//! found before anything from it is applied), bounds nesting at
//! [`MAX_JSON_DEPTH`], and accepts the
//! `NaN`, `Infinity` and `-Infinity` literals that Python's encoder emits,
//! reporting them as [`Token::NonFinite`] so callers can reject the value
//! rather than the document.

use core::fmt;

pub use self::one_pass::{Closed, Shaped};
pub use self::string::{JsonStr, Overflow};
use super::scan::{count_digits, find_string_special, same_bytes};
use crate::config::MAX_JSON_DEPTH;
use crate::text;

mod one_pass;
#[cfg(test)]
pub(crate) mod one_pass_proptests;
mod string;

const _: () = assert!(MAX_JSON_DEPTH <= 128);

/// Why a JSON text is not acceptable; `at` is a byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum JsonError {
    /// The text ends inside a value (a truncated body).
    UnexpectedEnd,
    /// A byte that cannot stand here.
    UnexpectedByte {
        /// Byte offset.
        at: usize,
    },
    /// A malformed number.
    InvalidNumber {
        /// Byte offset.
        at: usize,
    },
    /// A malformed escape sequence in a string.
    InvalidEscape {
        /// Byte offset.
        at: usize,
    },
    /// A string that is not UTF-8 or holds a raw control character.
    InvalidString {
        /// Byte offset.
        at: usize,
    },
    /// Arrays and objects nested deeper than the limit.
    NestingTooDeep {
        /// Byte offset.
        at: usize,
    },
    /// Something other than white space after the value.
    TrailingData {
        /// Byte offset.
        at: usize,
    },
}

impl JsonError {
    /// The same error with its offset moved `by` bytes on (for a text
    /// that was parsed apart from the stream it came in).
    pub fn shifted(self, by: usize) -> Self {
        use JsonError::*;
        match self {
            UnexpectedEnd => UnexpectedEnd,
            UnexpectedByte { at } => UnexpectedByte { at: at + by },
            InvalidNumber { at } => InvalidNumber { at: at + by },
            InvalidEscape { at } => InvalidEscape { at: at + by },
            InvalidString { at } => InvalidString { at: at + by },
            NestingTooDeep { at } => NestingTooDeep { at: at + by },
            TrailingData { at } => TrailingData { at: at + by },
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            JsonError::UnexpectedEnd => f.write_str("JSON ends unexpectedly (truncated)"),
            JsonError::UnexpectedByte { at } => write!(f, "unexpected byte at offset {at}"),
            JsonError::InvalidNumber { at } => write!(f, "invalid number at offset {at}"),
            JsonError::InvalidEscape { at } => write!(f, "invalid escape at offset {at}"),
            JsonError::InvalidString { at } => write!(f, "invalid string at offset {at}"),
            JsonError::NestingTooDeep { at } => write!(
                f,
                "nesting deeper than {MAX_JSON_DEPTH} levels at offset {at}"
            ),
            JsonError::TrailingData { at } => write!(f, "trailing data at offset {at}"),
        }
    }
}

impl core::error::Error for JsonError {}

/// Which non-finite literal was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NonFinite {
    /// `NaN`
    NaN,
    /// `Infinity`
    Infinity,
    /// `-Infinity`
    NegInfinity,
}

/// One token of a JSON text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    /// `{`
    BeginObject,
    /// `}`
    EndObject,
    /// `[`
    BeginArray,
    /// `]`
    EndArray,
    /// An object member's name (its `:` is consumed too).
    Key(JsonStr<'a>),
    /// A string value.
    Str(JsonStr<'a>),
    /// A number, as written (validated against the JSON grammar).
    Number(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `NaN`, `Infinity` or `-Infinity`.
    NonFinite(NonFinite),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A value (the start, after `:`, after `,` in an array).
    Value,
    /// A value or `]` right after `[`.
    FirstElement,
    /// A key or `}` right after `{`.
    FirstKey,
    /// `,` or the closing bracket, or the end at depth 0.
    Separator,
}

/// The tokenizer. Call [`Lexer::next_token`] until it returns `Ok(None)`.
/// A copy goes on from where the original was.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lexer<'a> {
    input: &'a [u8],
    /// The same bytes as text: checked as UTF-8 once, up front.
    text: &'a str,
    /// Where the input stops being UTF-8, if it does: reaching it is an error.
    invalid_utf8_at: Option<usize>,
    pos: usize,
    /// One bit per open container: 1 for an object, 0 for an array.
    open: u128,
    depth: usize,
    expect: Expect,
}

impl<'a> Lexer<'a> {
    /// A tokenizer over one complete JSON text.
    pub fn new(input: &'a [u8]) -> Self {
        let (text, invalid_utf8_at) = match core::str::from_utf8(input) {
            Ok(text) => (text, None),
            Err(e) => {
                let valid = e.valid_up_to();
                // The prefix up to `valid_up_to` is UTF-8 by definition.
                let text = core::str::from_utf8(&input[..valid]).unwrap_or("");
                (text, Some(valid))
            }
        };
        Lexer {
            input: text.as_bytes(),
            text,
            invalid_utf8_at,
            pos: 0,
            open: 0,
            depth: 0,
            expect: Expect::Value,
        }
    }

    /// A tokenizer over the start of a text that continues elsewhere: inside
    /// `depth` nested objects (the outer ones too are objects), before their
    /// first key, or (`first` false) after a member. `text` is what of it is
    /// UTF-8 so far ([`utf8_prefix`]); `invalid_utf8_at` says where it is
    /// not, if it is not only cut off. Tokens that need more than `text`
    /// holds fail with [`JsonError::UnexpectedEnd`].
    pub fn in_object(
        text: &'a str,
        invalid_utf8_at: Option<usize>,
        depth: usize,
        first: bool,
    ) -> Self {
        let depth = depth.min(MAX_JSON_DEPTH);
        Lexer {
            input: text.as_bytes(),
            text,
            invalid_utf8_at,
            pos: 0,
            open: u128::MAX >> (128 - depth.max(1)),
            depth,
            expect: if first {
                Expect::FirstKey
            } else {
                Expect::Separator
            },
        }
    }

    /// The next token; `Ok(None)` once the single top-level value and any
    /// trailing white space are consumed.
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>, JsonError> {
        self.next_token_inlined()
    }

    /// [`Lexer::next_token`] for the loops that only skip tokens: inlined,
    /// so the tokens they drop are never built.
    #[inline(always)]
    fn next_token_inlined(&mut self) -> Result<Option<Token<'a>>, JsonError> {
        match self.token() {
            // The text was cut where it stops being UTF-8: say so.
            Err(JsonError::UnexpectedEnd) | Ok(None) if self.invalid_utf8_at.is_some() => {
                Err(JsonError::InvalidString {
                    at: self.invalid_utf8_at.unwrap_or(0),
                })
            }
            other => other,
        }
    }

    #[inline(always)]
    fn token(&mut self) -> Result<Option<Token<'a>>, JsonError> {
        self.skip_ws();
        match self.expect {
            Expect::Value => self.value().map(Some),
            Expect::FirstElement => {
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    self.close();
                    return Ok(Some(Token::EndArray));
                }
                self.value().map(Some)
            }
            Expect::FirstKey => {
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    self.close();
                    return Ok(Some(Token::EndObject));
                }
                self.key().map(Some)
            }
            Expect::Separator => {
                if self.depth == 0 {
                    return self.end();
                }
                let in_object = self.open & 1 == 1;
                match (self.peek(), in_object) {
                    (Some(b','), true) => {
                        self.pos += 1;
                        self.skip_ws();
                        self.key().map(Some)
                    }
                    (Some(b','), false) => {
                        self.pos += 1;
                        self.skip_ws();
                        self.value().map(Some)
                    }
                    (Some(b'}'), true) => {
                        self.pos += 1;
                        self.close();
                        Ok(Some(Token::EndObject))
                    }
                    (Some(b']'), false) => {
                        self.pos += 1;
                        self.close();
                        Ok(Some(Token::EndArray))
                    }
                    (None, _) => Err(JsonError::UnexpectedEnd),
                    _ => Err(JsonError::UnexpectedByte { at: self.pos }),
                }
            }
        }
    }

    /// The next token where the grammar requires one (the end of the text
    /// there means it was cut off).
    pub fn next_value(&mut self) -> Result<Token<'a>, JsonError> {
        self.next_token()?.ok_or(JsonError::UnexpectedEnd)
    }

    /// Consumes the rest of a container whose opening token was just
    /// returned, so that the next token follows it.
    pub fn skip_container(&mut self) -> Result<(), JsonError> {
        let target = self.depth - 1;
        while self.depth > target {
            if self.next_token_inlined()?.is_none() {
                return Err(JsonError::UnexpectedEnd);
            }
        }
        Ok(())
    }

    /// Consumes the value whose first token is `first` (a no-op for scalars).
    pub fn skip_value(&mut self, first: Token<'a>) -> Result<(), JsonError> {
        match first {
            Token::BeginArray | Token::BeginObject => self.skip_container(),
            _ => Ok(()),
        }
    }

    /// Byte offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn end(&mut self) -> Result<Option<Token<'a>>, JsonError> {
        self.skip_ws();
        if self.pos < self.input.len() {
            Err(JsonError::TrailingData { at: self.pos })
        } else {
            Ok(None)
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn open(&mut self, object: bool) -> Result<(), JsonError> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(JsonError::NestingTooDeep { at: self.pos - 1 });
        }
        self.open = (self.open << 1) | u128::from(object);
        self.depth += 1;
        self.expect = if object {
            Expect::FirstKey
        } else {
            Expect::FirstElement
        };
        Ok(())
    }

    #[inline(always)]
    fn close(&mut self) {
        self.open >>= 1;
        self.depth -= 1;
        self.expect = Expect::Separator;
    }

    #[inline(always)]
    fn key(&mut self) -> Result<Token<'a>, JsonError> {
        match self.peek() {
            Some(b'"') => {}
            None => return Err(JsonError::UnexpectedEnd),
            Some(_) => return Err(JsonError::UnexpectedByte { at: self.pos }),
        }
        let name = self.string()?;
        self.skip_ws();
        match self.peek() {
            Some(b':') => self.pos += 1,
            None => return Err(JsonError::UnexpectedEnd),
            Some(_) => return Err(JsonError::UnexpectedByte { at: self.pos }),
        }
        self.expect = Expect::Value;
        Ok(Token::Key(name))
    }

    #[inline(always)]
    fn value(&mut self) -> Result<Token<'a>, JsonError> {
        let start = self.pos;
        let token = match self.peek() {
            None => return Err(JsonError::UnexpectedEnd),
            Some(b'{') => {
                self.pos += 1;
                self.open(true)?;
                return Ok(Token::BeginObject);
            }
            Some(b'[') => {
                self.pos += 1;
                self.open(false)?;
                return Ok(Token::BeginArray);
            }
            Some(b'"') => Token::Str(self.string()?),
            Some(b't') => self.literal("true", Token::Bool(true))?,
            Some(b'f') => self.literal("false", Token::Bool(false))?,
            Some(b'n') => self.literal("null", Token::Null)?,
            Some(b'N') => self.literal("NaN", Token::NonFinite(NonFinite::NaN))?,
            Some(b'I') => self.literal("Infinity", Token::NonFinite(NonFinite::Infinity))?,
            Some(b'-') if self.input.get(start + 1) == Some(&b'I') => {
                self.literal("-Infinity", Token::NonFinite(NonFinite::NegInfinity))?
            }
            Some(b'-' | b'0'..=b'9') => Token::Number(self.number()?),
            Some(_) => return Err(JsonError::UnexpectedByte { at: start }),
        };
        self.expect = Expect::Separator;
        Ok(token)
    }

    #[inline(always)]
    fn literal(&mut self, word: &str, token: Token<'a>) -> Result<Token<'a>, JsonError> {
        if self.literal_bytes(word.as_bytes()).is_some() {
            return Ok(token);
        }
        let rest = &self.input[self.pos..];
        if rest.len() < word.len() && word.as_bytes().starts_with(rest) {
            Err(JsonError::UnexpectedEnd)
        } else {
            Err(JsonError::UnexpectedByte { at: self.pos })
        }
    }

    /// Consumes `bytes` if the text goes on with them.
    #[inline(always)]
    fn literal_bytes(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos + bytes.len();
        if !same_bytes(self.input.get(self.pos..end)?, bytes) {
            return None;
        }
        self.pos = end;
        Some(())
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let count = count_digits(self.input.get(self.pos..).unwrap_or_default());
        self.pos += count;
        count
    }

    #[inline(always)]
    fn number(&mut self) -> Result<&'a str, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = self.digits();
        if int_digits == 0 {
            return Err(self.number_error(start));
        }
        if int_digits > 1 && self.input[int_start] == b'0' {
            return Err(JsonError::InvalidNumber { at: start });
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.number_error(start));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.number_error(start));
            }
        }
        text::between(self.text, start, self.pos).ok_or(JsonError::InvalidNumber { at: start })
    }

    fn number_error(&self, start: usize) -> JsonError {
        if self.pos >= self.input.len() {
            JsonError::UnexpectedEnd
        } else {
            JsonError::InvalidNumber { at: start }
        }
    }

    #[inline(always)]
    fn string(&mut self) -> Result<JsonStr<'a>, JsonError> {
        let open_quote = self.pos;
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain bytes are the bulk of any document: skip them in one go.
            let plain = find_string_special(&self.input[self.pos..]);
            let Some(offset) = plain else {
                self.pos = self.input.len();
                return Err(JsonError::UnexpectedEnd);
            };
            self.pos += offset;
            match self.input[self.pos] {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(JsonError::InvalidString { at: self.pos }),
            }
        }
        let raw = text::between(self.text, start, self.pos)
            .ok_or(JsonError::InvalidString { at: open_quote })?;
        self.pos += 1;
        Ok(JsonStr::from_parts(raw, escaped))
    }

    #[inline(always)]
    fn escape(&mut self) -> Result<(), JsonError> {
        let at = self.pos;
        match self.input.get(at + 1) {
            None => Err(JsonError::UnexpectedEnd),
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 2;
                Ok(())
            }
            Some(b'u') => match self.input.get(at + 2..at + 6) {
                None => Err(JsonError::UnexpectedEnd),
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => {
                    self.pos += 6;
                    Ok(())
                }
                Some(_) => Err(JsonError::InvalidEscape { at }),
            },
            Some(_) => Err(JsonError::InvalidEscape { at }),
        }
    }
}

/// The longest start of `bytes` that is UTF-8, and where it stops being
/// UTF-8 if that is not just a character cut off at the end.
pub fn utf8_prefix(bytes: &[u8]) -> (&str, Option<usize>) {
    match core::str::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let valid = e.valid_up_to();
            // The prefix up to `valid_up_to` is UTF-8 by definition.
            let text = core::str::from_utf8(&bytes[..valid]).unwrap_or("");
            (text, e.error_len().map(|_| valid))
        }
    }
}

/// Checks that `input` is one complete, well-formed JSON text.
pub fn validate(input: &[u8]) -> Result<(), JsonError> {
    let mut lexer = Lexer::new(input);
    while lexer.next_token_inlined()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Result<usize, JsonError> {
        let mut lexer = Lexer::new(text.as_bytes());
        let mut count = 0;
        while lexer.next_token()?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    #[test]
    fn accepts_well_formed_documents() {
        assert_eq!(
            tokens(r#"{"a": [1, -2.5e3, true, null, "x"], "b": {}}"#),
            Ok(13)
        );
        assert_eq!(tokens("  42  "), Ok(1));
        assert_eq!(tokens(r#"[NaN, Infinity, -Infinity]"#), Ok(5));
    }

    #[test]
    fn reports_truncation_as_unexpected_end() {
        for cut in [
            r#"{"a": [1, 2"#,
            r#"{"a": "x"#,
            r#"{"a""#,
            r#"{"a": tr"#,
            r#"{"a": 1."#,
            "[",
        ] {
            assert_eq!(tokens(cut), Err(JsonError::UnexpectedEnd), "{cut}");
        }
    }

    #[test]
    fn rejects_broken_structure() {
        assert_eq!(
            tokens(r#"{"a": 1]"#),
            Err(JsonError::UnexpectedByte { at: 7 })
        );
        assert_eq!(tokens(r#"[1,]"#), Err(JsonError::UnexpectedByte { at: 3 }));
        assert_eq!(
            tokens(r#"{"a" 1}"#),
            Err(JsonError::UnexpectedByte { at: 5 })
        );
        assert_eq!(tokens(r#"01"#), Err(JsonError::InvalidNumber { at: 0 }));
        assert_eq!(tokens(r#"1 2"#), Err(JsonError::TrailingData { at: 2 }));
        assert_eq!(tokens(r#""\x""#), Err(JsonError::InvalidEscape { at: 1 }));
        assert_eq!(tokens("\"a\nb\""), Err(JsonError::InvalidString { at: 2 }));
        assert_eq!(tokens(""), Err(JsonError::UnexpectedEnd));
    }

    #[test]
    fn rejects_invalid_utf8_where_it_starts() {
        let mut lexer = Lexer::new(b"{\"a\": \"x\xffy\"}");
        assert_eq!(lexer.next_token(), Ok(Some(Token::BeginObject)));
        assert!(matches!(lexer.next_token(), Ok(Some(Token::Key(_)))));
        assert_eq!(lexer.next_token(), Err(JsonError::InvalidString { at: 8 }));
        assert_eq!(
            validate(b"[1] \xff"),
            Err(JsonError::InvalidString { at: 4 })
        );
    }

    #[test]
    fn bounds_nesting_without_recursion() {
        let mut deep = [b'['; 100_000];
        deep[99_999] = b']';
        assert_eq!(
            tokens(core::str::from_utf8(&deep).unwrap()),
            Err(JsonError::NestingTooDeep { at: MAX_JSON_DEPTH })
        );
    }
}
