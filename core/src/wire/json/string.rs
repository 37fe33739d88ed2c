//! A JSON string as it stands in the text, still escaped: unescaped only
//! where it is written out or compared.

use core::fmt;

/// A string as it stands in the JSON text, between its quotes, still escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

/// The unescaped text did not fit in the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

impl<'a> JsonStr<'a> {
    /// A string the lexer read before, from its raw text and whether it
    /// holds escapes ([`JsonStr::is_escaped`]).
    pub(crate) fn from_parts(raw: &'a str, escaped: bool) -> Self {
        JsonStr { raw, escaped }
    }

    /// Whether the raw text holds escapes.
    pub(crate) fn is_escaped(&self) -> bool {
        self.escaped
    }

    /// The text between the quotes, escapes not yet resolved.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// The length in bytes of the text once unescaped, computed without a buffer.
    pub fn unescaped_len(&self) -> usize {
        let mut len = 0;
        self.for_each_char(|c| {
            len += c.len_utf8();
            Ok(())
        })
        .ok();
        len
    }

    /// Appends the unescaped text to `out`; fails when `out` is full.
    pub fn write_unescaped<W: fmt::Write>(&self, out: &mut W) -> Result<(), Overflow> {
        if !self.escaped {
            return out.write_str(self.raw).map_err(|_| Overflow);
        }
        self.for_each_char(|c| out.write_char(c).map_err(|_| Overflow))
    }

    /// Compares the unescaped text with `text`.
    pub fn eq_str(&self, text: &str) -> bool {
        if !self.escaped {
            return self.raw == text;
        }
        self.eq_chars(text, |a, b| a == b)
    }

    /// Compares the unescaped text with `text`, ASCII letters without
    /// regard to case.
    pub fn eq_ignore_ascii_case(&self, text: &str) -> bool {
        if !self.escaped {
            return self.raw.eq_ignore_ascii_case(text);
        }
        self.eq_chars(text, |a, b| a.eq_ignore_ascii_case(&b))
    }

    fn eq_chars(&self, text: &str, same: impl Fn(char, char) -> bool) -> bool {
        let mut rest = text;
        let mut equal = true;
        self.for_each_char(|c| {
            let mut chars = rest.chars();
            if chars.next().is_some_and(|t| same(c, t)) {
                rest = chars.as_str();
                Ok(())
            } else {
                equal = false;
                Err(Overflow)
            }
        })
        .ok();
        equal && rest.is_empty()
    }

    /// Calls `f` with each unescaped character. The lexer has already
    /// validated every escape; a lone surrogate becomes U+FFFD.
    fn for_each_char<F>(&self, mut f: F) -> Result<(), Overflow>
    where
        F: FnMut(char) -> Result<(), Overflow>,
    {
        let bytes = self.raw.as_bytes();
        let mut plain_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'\\' {
                i += 1;
                continue;
            }
            for c in self.raw[plain_start..i].chars() {
                f(c)?;
            }
            let (c, used) = decode_escape(&bytes[i..]);
            f(c)?;
            i += used;
            plain_start = i;
        }
        for c in self.raw[plain_start..].chars() {
            f(c)?;
        }
        Ok(())
    }
}

/// Decodes one validated escape at the start of `bytes`; returns the
/// character and how many bytes it took.
fn decode_escape(bytes: &[u8]) -> (char, usize) {
    let simple = match bytes.get(1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        _ => {
            let high = hex4(&bytes[2..]).unwrap_or(0xFFFD);
            if (0xD800..0xDC00).contains(&high)
                && bytes.get(6) == Some(&b'\\')
                && bytes.get(7) == Some(&b'u')
                && let Some(low) = hex4(bytes.get(8..).unwrap_or(&[]))
                && (0xDC00..0xE000).contains(&low)
            {
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return (char::from_u32(code).unwrap_or('\u{FFFD}'), 12);
            }
            return (char::from_u32(high).unwrap_or('\u{FFFD}'), 6);
        }
    };
    (simple, 2)
}

fn hex4(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.get(..4)?;
    let mut value = 0u32;
    for &d in digits {
        value = value * 16 + (d as char).to_digit(16)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::super::{Lexer, Token};
    use super::*;

    #[test]
    fn unescapes_strings_including_surrogate_pairs() {
        let mut lexer = Lexer::new(br#""K\u00fchl \"N\" \ud83d\ude00 \ud800x\n""#);
        let Ok(Some(Token::Str(s))) = lexer.next_token() else {
            panic!("expected a string");
        };
        let mut out: heapless::String<64> = heapless::String::new();
        s.write_unescaped(&mut out).unwrap();
        assert_eq!(out.as_str(), "Kühl \"N\" 😀 \u{FFFD}x\n");
        assert!(s.eq_str("Kühl \"N\" 😀 \u{FFFD}x\n"));
        assert!(!s.eq_str("Kühl"));
        assert_eq!(s.unescaped_len(), out.len());
        let mut small: heapless::String<4> = heapless::String::new();
        assert_eq!(s.write_unescaped(&mut small), Err(Overflow));
    }
}
