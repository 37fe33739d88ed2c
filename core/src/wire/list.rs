//! Writing a JSON array of items into a caller's buffer, item by item,
//! refusing the item that would not fit and leaving a valid text behind:
//! the framing shared by `bulk_write_by_id` lines and `/register/bulk`
//! bodies.

use core::fmt;

use super::id::write_id_hex;
use super::scan::find_string_special;
use crate::value::Value;

/// The request did not fit in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall;

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request does not fit in the transmit buffer")
    }
}

/// A cursor over a byte buffer that fails instead of overflowing.
pub(crate) struct Cursor<'c> {
    buf: &'c mut [u8],
    at: usize,
}

impl<'c> Cursor<'c> {
    /// A cursor at the start of `buf`.
    pub(crate) fn new(buf: &'c mut [u8]) -> Self {
        Cursor { buf, at: 0 }
    }

    /// How many bytes are written.
    pub(crate) fn len(&self) -> usize {
        self.at
    }

    /// Appends raw bytes.
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> Result<(), BufferTooSmall> {
        let end = self.at + bytes.len();
        self.buf
            .get_mut(self.at..end)
            .ok_or(BufferTooSmall)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    /// Appends a point id as its JSON string of 32 hex digits.
    pub(crate) fn hex_id(&mut self, id: &[u8; 16]) -> Result<(), BufferTooSmall> {
        let end = self.at + 34;
        let quoted = self.buf.get_mut(self.at..end).ok_or(BufferTooSmall)?;
        quoted[0] = b'"';
        quoted[33] = b'"';
        let digits: &mut [u8; 32] = (&mut quoted[1..33])
            .try_into()
            .map_err(|_| BufferTooSmall)?;
        write_id_hex(id, digits);
        self.at = end;
        Ok(())
    }

    /// Appends `text` as a JSON string, escaped as `serde-json-core` does
    /// (so every request reads the same whichever path wrote it); written
    /// by hand because this is the hot path of every delivery.
    pub(crate) fn string(&mut self, text: &str) -> Result<(), BufferTooSmall> {
        self.raw(b"\"")?;
        let bytes = text.as_bytes();
        let mut plain_start = 0;
        // Plain runs (every id, most keys) are found a word at a time.
        while let Some(offset) = find_string_special(&bytes[plain_start..]) {
            let i = plain_start + offset;
            let b = bytes[i];
            let escape: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                0x08 => b"\\b",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                0x0c => b"\\f",
                b'\r' => b"\\r",
                _ => b"",
            };
            self.raw(&bytes[plain_start..i])?;
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                self.raw(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ])?;
            } else {
                self.raw(escape)?;
            }
            plain_start = i + 1;
        }
        self.raw(&bytes[plain_start..])?;
        self.raw(b"\"")
    }

    /// Appends a value as JSON: numbers as `serde-json-core` writes them
    /// (floats by `ryu`, a non-finite one as `null`), strings escaped.
    pub(crate) fn value(&mut self, value: &Value) -> Result<(), BufferTooSmall> {
        match value {
            Value::Int(v) => {
                let mut digits = [0u8; 20];
                let mut at = digits.len();
                let mut rest = v.unsigned_abs();
                loop {
                    at -= 1;
                    digits[at] = b'0' + (rest % 10) as u8;
                    rest /= 10;
                    if rest == 0 {
                        break;
                    }
                }
                if *v < 0 {
                    self.raw(b"-")?;
                }
                self.raw(&digits[at..])
            }
            Value::Float(v) if v.is_finite() => {
                self.raw(ryu::Buffer::new().format_finite(*v).as_bytes())
            }
            Value::Float(_) => self.raw(b"null"),
            Value::Bool(true) => self.raw(b"true"),
            Value::Bool(false) => self.raw(b"false"),
            Value::Str(text) => self.string(text),
        }
    }

    /// Appends any serializable value as JSON (strings escaped).
    pub(crate) fn json<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), BufferTooSmall> {
        let n = serde_json_core::to_slice(value, &mut self.buf[self.at..])
            .map_err(|_| BufferTooSmall)?;
        self.at += n;
        Ok(())
    }
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.raw(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// `prefix item,item,… suffix` in a buffer of fixed size.
pub(crate) struct ListWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    count: usize,
    suffix: &'static [u8],
}

impl<'b> ListWriter<'b> {
    pub(crate) fn new(
        buf: &'b mut [u8],
        prefix: &[u8],
        suffix: &'static [u8],
    ) -> Result<Self, BufferTooSmall> {
        if buf.len() < prefix.len() + suffix.len() {
            return Err(BufferTooSmall);
        }
        buf[..prefix.len()].copy_from_slice(prefix);
        Ok(ListWriter {
            len: prefix.len(),
            buf,
            count: 0,
            suffix,
        })
    }

    /// Adds one item written by `item`, keeping room for the suffix; an
    /// item that does not fit is dropped whole.
    pub(crate) fn push<F>(&mut self, item: F) -> Result<(), BufferTooSmall>
    where
        F: FnOnce(&mut Cursor<'_>) -> Result<(), BufferTooSmall>,
    {
        let room = self.buf.len() - self.suffix.len();
        let mut cursor = Cursor {
            buf: &mut self.buf[..room],
            at: self.len,
        };
        if self.count > 0 {
            cursor.raw(b",")?;
        }
        item(&mut cursor)?;
        self.len = cursor.at;
        self.count += 1;
        Ok(())
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Writes the suffix; returns the total length.
    pub(crate) fn finish(self) -> usize {
        let end = self.len + self.suffix.len();
        self.buf[self.len..end].copy_from_slice(self.suffix);
        end
    }
}
