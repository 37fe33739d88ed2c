//! Writing a JSON array of items into a caller's buffer, item by item,
//! refusing the item that would not fit and leaving a valid text behind:
//! the framing shared by `bulk_write_by_id` lines and `/register/bulk`
//! bodies.

use core::fmt;

use super::ipc::BufferTooSmall;

/// A cursor over a byte buffer that fails instead of overflowing.
pub(crate) struct Cursor<'c> {
    buf: &'c mut [u8],
    at: usize,
}

impl Cursor<'_> {
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
