//! The spool's record framing: append-only frames of
//! `MAGIC (2) | payload length (u32 LE) | CRC-32 of the payload (u32 LE) | payload`,
//! so that a torn or corrupted record is detected, skipped and counted, and
//! the reader finds the next record by its magic.
//!
//! Payloads: a change (`1 | seq u64 | source time ms u64 | key length u16 |
//! key | value`) or an acknowledgement watermark (`2 | seq u64`: every change
//! up to `seq` was acknowledged). Values: `i` i64, `f` f64 bits, `t`/`b`
//! (true/false), `s` length u8 and UTF-8 bytes. Integers are little-endian.

use crate::config::{MAX_KEY_LEN, MAX_STRING_VALUE_LEN};
use crate::value::{Value, decode_value, encode_value};

/// The two bytes that start every frame.
pub const MAGIC: [u8; 2] = [0xD5, 0x5C];
/// Bytes before the payload.
pub const HEADER_LEN: usize = 10;
/// The largest payload a valid frame carries.
pub const MAX_PAYLOAD_LEN: usize = 1 + 8 + 8 + 2 + MAX_KEY_LEN + 2 + MAX_STRING_VALUE_LEN;
/// The largest frame.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN;

const KIND_CHANGE: u8 = 1;
const KIND_ACK: u8 = 2;

/// One accepted change, as spooled.
#[derive(Clone, Debug, PartialEq)]
pub struct Change<'a> {
    /// Its number: changes are numbered in the order they were accepted.
    pub seq: u64,
    /// The polling service's timestamp, in ms since the Unix epoch (0: none).
    pub source_time_ms: u64,
    /// The Data-Service key.
    pub key: &'a str,
    /// The value.
    pub value: Value,
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame<'a> {
    /// A change.
    Change(Change<'a>),
    /// Every change up to this number was acknowledged.
    Acked(u64),
}

/// Why no frame could be read at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends inside a frame: read more, or (at the end of the
    /// file) a torn last record.
    Incomplete,
    /// Not a valid frame here (bad magic, length, CRC or payload): skip
    /// this many bytes (to the next magic, or all of them) and try again.
    Corrupt {
        /// Bytes to skip.
        skip: usize,
    },
}

/// Writes a change frame into `buf`; returns its length, or `None` when
/// `buf` is too small.
pub fn encode_change(change: &Change<'_>, buf: &mut [u8]) -> Option<usize> {
    let mut w = Writer::new(buf)?;
    w.put(&[KIND_CHANGE])?;
    w.put(&change.seq.to_le_bytes())?;
    w.put(&change.source_time_ms.to_le_bytes())?;
    let key_len = u16::try_from(change.key.len()).ok()?;
    w.put(&key_len.to_le_bytes())?;
    w.put(change.key.as_bytes())?;
    let mut value = [0u8; 2 + MAX_STRING_VALUE_LEN];
    let len = encode_value(&change.value, &mut value)?;
    w.put(&value[..len])?;
    w.finish()
}

/// Writes an acknowledgement frame into `buf`.
pub fn encode_acked(seq: u64, buf: &mut [u8]) -> Option<usize> {
    let mut w = Writer::new(buf)?;
    w.put(&[KIND_ACK])?;
    w.put(&seq.to_le_bytes())?;
    w.finish()
}

/// Reads the frame at the start of `buf`: the frame and its length.
pub fn decode(buf: &[u8]) -> Result<(Frame<'_>, usize), FrameError> {
    if buf.len() < 2 {
        return if buf.is_empty() || buf[0] == MAGIC[0] {
            Err(FrameError::Incomplete)
        } else {
            Err(corrupt(buf))
        };
    }
    if buf[..2] != MAGIC {
        return Err(corrupt(buf));
    }
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Incomplete);
    }
    let len = u32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
    if len > MAX_PAYLOAD_LEN {
        return Err(corrupt(buf));
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Err(FrameError::Incomplete);
    };
    let crc = u32::from_le_bytes([buf[6], buf[7], buf[8], buf[9]]);
    if crc32(payload) != crc {
        return Err(corrupt(buf));
    }
    let frame = decode_payload(payload).ok_or_else(|| corrupt(buf))?;
    Ok((frame, HEADER_LEN + len))
}

fn decode_payload(payload: &[u8]) -> Option<Frame<'_>> {
    let mut r = Reader(payload);
    match r.byte()? {
        KIND_ACK => {
            let seq = r.u64()?;
            r.0.is_empty().then_some(Frame::Acked(seq))
        }
        KIND_CHANGE => {
            let seq = r.u64()?;
            let source_time_ms = r.u64()?;
            let key_len = usize::from(u16::from_le_bytes(r.array()?));
            if key_len > MAX_KEY_LEN {
                return None;
            }
            let key = core::str::from_utf8(r.take(key_len)?).ok()?;
            let (value, len) = decode_value(r.0)?;
            r.take(len)?;
            r.0.is_empty().then_some(Frame::Change(Change {
                seq,
                source_time_ms,
                key,
                value,
            }))
        }
        _ => None,
    }
}

/// Skips to the next possible frame start after the first byte.
fn corrupt(buf: &[u8]) -> FrameError {
    let skip = buf
        .get(1..)
        .and_then(|rest| rest.iter().position(|&b| b == MAGIC[0]))
        .map_or(buf.len(), |at| at + 1);
    FrameError::Corrupt { skip }
}

struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    fn new(buf: &'b mut [u8]) -> Option<Self> {
        (buf.len() >= HEADER_LEN).then_some(Writer {
            buf,
            len: HEADER_LEN,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        self.buf.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    fn finish(self) -> Option<usize> {
        let payload_len = self.len - HEADER_LEN;
        let crc = crc32(&self.buf[HEADER_LEN..self.len]);
        self.buf[..2].copy_from_slice(&MAGIC);
        self.buf[2..6].copy_from_slice(&u32::try_from(payload_len).ok()?.to_le_bytes());
        self.buf[6..10].copy_from_slice(&crc.to_le_bytes());
        Some(self.len)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
}

/// CRC-32 (IEEE 802.3, as zlib computes it).
pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: u64, key: &str, value: Value) -> Change<'_> {
        Change {
            seq,
            source_time_ms: 1_764_318_000_000,
            key,
            value,
        }
    }

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trips_every_value_type() {
        let mut buf = [0u8; MAX_FRAME_LEN];
        for value in [
            Value::Int(-3),
            Value::Float(71.25),
            Value::Bool(true),
            Value::Bool(false),
            Value::Str("RUNNING".try_into().unwrap()),
        ] {
            let original = change(7, "Kühlraum.t", value);
            let len = encode_change(&original, &mut buf).unwrap();
            assert_eq!(decode(&buf[..len]), Ok((Frame::Change(original), len)));
        }
        let len = encode_acked(42, &mut buf).unwrap();
        assert_eq!(len, HEADER_LEN + 9);
        assert_eq!(decode(&buf[..len]), Ok((Frame::Acked(42), len)));
    }

    #[test]
    fn a_numeric_change_has_this_exact_layout() {
        let mut buf = [0u8; 64];
        let len = encode_change(&change(1, "d.t", Value::Int(5)), &mut buf).unwrap();
        assert_eq!(len, 10 + 1 + 8 + 8 + 2 + 3 + 1 + 8);
        assert_eq!(&buf[..2], &MAGIC);
        assert_eq!(&buf[2..6], &31u32.to_le_bytes());
        assert_eq!(&buf[10..11], &[1]);
        assert_eq!(&buf[29..32], b"d.t");
    }

    #[test]
    fn torn_and_corrupt_frames_are_detected_and_skipped() {
        let mut buf = [0u8; 256];
        let a = encode_change(&change(1, "a", Value::Int(1)), &mut buf).unwrap();
        let b = encode_change(&change(2, "b", Value::Int(2)), &mut buf[a..]).unwrap();
        // Every cut inside the first frame is incomplete, never a wrong frame.
        for cut in 0..a {
            assert_eq!(
                decode(&buf[..cut]),
                Err(FrameError::Incomplete),
                "cut at {cut}"
            );
        }
        // A flipped payload byte fails the CRC; skipping finds frame two.
        let mut damaged = buf;
        damaged[20] ^= 0x40;
        let mut at = 0;
        let mut skipped = 0;
        let frame = loop {
            match decode(&damaged[at..a + b]) {
                Ok((frame, _)) => break frame,
                Err(FrameError::Corrupt { skip }) => {
                    at += skip;
                    skipped += 1;
                }
                Err(FrameError::Incomplete) => panic!("lost the second frame"),
            }
        };
        assert!(skipped >= 1);
        assert_eq!(frame, Frame::Change(change(2, "b", Value::Int(2))));
        // Garbage without a magic byte is skipped whole.
        assert_eq!(decode(b"xyz"), Err(FrameError::Corrupt { skip: 3 }));
    }
}
