//! The `history` backlog: every accepted change, in order, in a byte ring
//! over caller storage, until the Data-Service acknowledges it. Entries
//! vary in size (a number takes 37 bytes, a string 29 plus its length), so
//! the ring holds as many changes as its bytes allow; when full, the oldest
//! change is dropped and counted.
//!
//! Entry layout (little-endian): `len u16 | state u8 | flags u8 |
//! request u32 | slot u32 | seq u64 | source time ms u64 | value`, value as
//! in the spool (`i`/`f` + 8 bytes, `t`, `b`, `s` + length u8 + bytes). A
//! `len` of 0 marks the end of the used part of the buffer (wrap).

use crate::value::{Value, decode_value, encode_value, encoded_value_len};

/// Bytes of an entry before its value.
pub const ENTRY_HEADER_LEN: usize = 28;

/// Where an entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting to be sent.
    Unsent,
    /// In the request with this id.
    InFlight(u32),
    /// Acknowledged; its bytes are reclaimed once it reaches the head.
    Acked,
}

/// One change, as the engine hands it to the ring or reads it back.
#[derive(Clone, Debug, PartialEq)]
pub struct BacklogEntry {
    /// The tag's slot position.
    pub slot: u32,
    /// The change's number.
    pub seq: u64,
    /// The polling service's timestamp in ms (0: none).
    pub source_time_ms: u64,
    /// The value.
    pub value: Value,
    /// Already written to the spool.
    pub on_disk: bool,
}

/// The ring's bookkeeping; the bytes are passed in by the caller.
#[derive(Clone, Debug, Default)]
pub struct Backlog {
    head: usize,
    tail: usize,
    /// Entries in the ring (acknowledged ones not yet reclaimed included).
    entries: usize,
    /// Entries not acknowledged.
    unacked: usize,
}

/// The ring has no room for an entry even when empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryTooLarge;

impl Backlog {
    /// Entries not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked
    }

    /// Whether the ring holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Bytes in use (acknowledged entries not yet reclaimed included).
    pub fn used_bytes(&self, capacity: usize) -> usize {
        if self.entries == 0 {
            0
        } else if self.head < self.tail {
            self.tail - self.head
        } else {
            capacity - self.head + self.tail
        }
    }

    /// The oldest entry's offset.
    pub fn head(&self) -> Option<usize> {
        (self.entries > 0).then_some(self.head)
    }

    /// The entry after the one at `offset`, if any.
    pub fn next(&self, buf: &[u8], offset: usize) -> Option<usize> {
        let mut next = offset + entry_len(buf, offset);
        if next == self.tail {
            return None;
        }
        if next + 2 > buf.len() || entry_len(buf, next) == 0 {
            next = 0;
        }
        (next != self.tail).then_some(next)
    }

    /// Appends `entry`, or reports that the oldest entry must go first
    /// (`Ok(false)`: no room; the caller drops [`Backlog::head`] and retries).
    pub fn push(&mut self, buf: &mut [u8], entry: &BacklogEntry) -> Result<bool, EntryTooLarge> {
        let len = encoded_len(&entry.value);
        if len + 2 > buf.len() {
            return Err(EntryTooLarge);
        }
        let Some(at) = self.room_for(buf, len) else {
            return Ok(false);
        };
        if at == 0 && self.tail != 0 && self.tail + 2 <= buf.len() {
            // Mark the skipped end of the buffer.
            buf[self.tail..self.tail + 2].copy_from_slice(&0u16.to_le_bytes());
        }
        write_entry(&mut buf[at..at + len], entry);
        self.tail = at + len;
        if self.tail + 2 > buf.len() {
            self.tail = 0;
        }
        if self.entries == 0 {
            self.head = at;
        }
        self.entries += 1;
        self.unacked += 1;
        Ok(true)
    }

    /// Where an entry of `len` bytes goes, if it fits; keeps `tail != head`
    /// unless the ring is empty.
    fn room_for(&mut self, buf: &[u8], len: usize) -> Option<usize> {
        if self.entries == 0 {
            self.head = 0;
            self.tail = 0;
            return Some(0);
        }
        if self.tail > self.head {
            if self.tail + len <= buf.len() && !(self.tail + len + 2 > buf.len() && self.head == 0)
            {
                return Some(self.tail);
            }
            // Wrap: the entry goes to the start, before the head.
            return (len < self.head).then_some(0);
        }
        // tail < head (tail == head only when empty).
        (self.tail + len < self.head).then_some(self.tail)
    }

    /// Removes the oldest entry; returns it (for the caller's counters).
    pub fn pop(&mut self, buf: &[u8]) -> Option<(BacklogEntry, EntryState)> {
        let head = self.head()?;
        let entry = read_entry(buf, head);
        let state = state_of(buf, head);
        if state != EntryState::Acked {
            self.unacked -= 1;
        }
        self.entries -= 1;
        if self.entries == 0 {
            self.head = 0;
            self.tail = 0;
        } else {
            let mut next = head + entry_len(buf, head);
            if next + 2 > buf.len() || entry_len(buf, next) == 0 {
                next = 0;
            }
            self.head = next;
        }
        Some((entry, state))
    }

    /// Reclaims acknowledged entries at the head.
    pub fn reclaim(&mut self, buf: &[u8]) {
        while let Some(head) = self.head() {
            if state_of(buf, head) != EntryState::Acked {
                break;
            }
            self.pop(buf);
        }
    }

    /// Sets an entry's state, keeping the unacknowledged count.
    pub fn set_state(&mut self, buf: &mut [u8], offset: usize, state: EntryState) {
        let old = state_of(buf, offset);
        if old == EntryState::Acked && state != EntryState::Acked {
            self.unacked += 1;
        } else if old != EntryState::Acked && state == EntryState::Acked {
            self.unacked -= 1;
        }
        let (code, request) = match state {
            EntryState::Unsent => (0u8, 0u32),
            EntryState::InFlight(request) => (1, request),
            EntryState::Acked => (2, 0),
        };
        buf[offset + 2] = code;
        buf[offset + 4..offset + 8].copy_from_slice(&request.to_le_bytes());
    }

    /// Whether `offset` is an entry in the live part of the ring.
    pub fn is_live(&self, offset: usize) -> bool {
        if self.entries == 0 {
            return false;
        }
        if self.head < self.tail {
            (self.head..self.tail).contains(&offset)
        } else {
            offset >= self.head || offset < self.tail
        }
    }
}

/// An entry's state.
pub fn state_of(buf: &[u8], offset: usize) -> EntryState {
    match buf[offset + 2] {
        1 => EntryState::InFlight(read_u32(buf, offset + 4)),
        2 => EntryState::Acked,
        _ => EntryState::Unsent,
    }
}

/// An entry's slot.
pub fn slot_of(buf: &[u8], offset: usize) -> u32 {
    read_u32(buf, offset + 8)
}

/// An entry's sequence number.
pub fn seq_of(buf: &[u8], offset: usize) -> u64 {
    read_u64(buf, offset + 12)
}

/// Whether the entry is already in the spool.
pub fn is_on_disk(buf: &[u8], offset: usize) -> bool {
    buf[offset + 3] & 1 != 0
}

/// Marks the entry as written to the spool.
pub fn mark_on_disk(buf: &mut [u8], offset: usize) {
    buf[offset + 3] |= 1;
}

/// The whole entry at `offset`.
pub fn read_entry(buf: &[u8], offset: usize) -> BacklogEntry {
    // Written by `write_entry` from a valid value, so this cannot fail.
    let value = decode_value(&buf[offset + ENTRY_HEADER_LEN..])
        .map_or(Value::Bool(false), |(value, _)| value);
    BacklogEntry {
        slot: slot_of(buf, offset),
        seq: seq_of(buf, offset),
        source_time_ms: read_u64(buf, offset + 20),
        value,
        on_disk: is_on_disk(buf, offset),
    }
}

/// Bytes an entry with `value` takes.
pub fn encoded_len(value: &Value) -> usize {
    ENTRY_HEADER_LEN + encoded_value_len(value)
}

fn entry_len(buf: &[u8], offset: usize) -> usize {
    usize::from(u16::from_le_bytes([buf[offset], buf[offset + 1]]))
}

fn write_entry(out: &mut [u8], entry: &BacklogEntry) {
    let len = out.len() as u16;
    out[0..2].copy_from_slice(&len.to_le_bytes());
    out[2] = 0;
    out[3] = u8::from(entry.on_disk);
    out[4..8].copy_from_slice(&0u32.to_le_bytes());
    out[8..12].copy_from_slice(&entry.slot.to_le_bytes());
    out[12..20].copy_from_slice(&entry.seq.to_le_bytes());
    out[20..28].copy_from_slice(&entry.source_time_ms.to_le_bytes());
    // `out` is `encoded_len` long: the value fits.
    encode_value(&entry.value, &mut out[ENTRY_HEADER_LEN..]);
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::StringValue;
    use std::collections::VecDeque;
    use std::vec::Vec;

    fn entry(seq: u64) -> BacklogEntry {
        let value = match seq % 4 {
            0 => Value::Int(seq as i64),
            1 => Value::Float(seq as f64 / 4.0),
            2 => Value::Bool(seq % 8 == 2),
            _ => {
                Value::Str(StringValue::try_from("x".repeat((seq % 40) as usize).as_str()).unwrap())
            }
        };
        BacklogEntry {
            slot: (seq % 7) as u32,
            seq,
            source_time_ms: 1000 + seq,
            value,
            on_disk: seq.is_multiple_of(5),
        }
    }

    fn contents(ring: &Backlog, buf: &[u8]) -> Vec<BacklogEntry> {
        let mut out = Vec::new();
        let mut at = ring.head();
        while let Some(offset) = at {
            out.push(read_entry(buf, offset));
            at = ring.next(buf, offset);
        }
        out
    }

    #[test]
    fn a_number_takes_37_bytes() {
        assert_eq!(encoded_len(&Value::Int(1)), 37);
        assert_eq!(encoded_len(&Value::Bool(true)), 29);
        assert_eq!(encoded_len(&Value::Str("abc".try_into().unwrap())), 33);
    }

    /// Pushes, acknowledges and drops at random against a model queue.
    #[test]
    fn behaves_like_a_queue_through_many_wraps() {
        let mut buf = [0u8; 500];
        let mut ring = Backlog::default();
        let mut model: VecDeque<BacklogEntry> = VecDeque::new();
        let mut rng = 0x1234_5678u32;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng
        };
        let mut dropped = 0;
        for seq in 0..5000u64 {
            let e = entry(seq);
            loop {
                match ring.push(&mut buf, &e) {
                    Ok(true) => break,
                    Ok(false) => {
                        let (gone, _) = ring.pop(&buf).unwrap();
                        assert_eq!(Some(gone), model.pop_front());
                        dropped += 1;
                    }
                    Err(EntryTooLarge) => panic!("fits an empty ring"),
                }
            }
            model.push_back(e);
            if next() % 3 == 0 {
                // Acknowledge the head and reclaim.
                let head = ring.head().unwrap();
                ring.set_state(&mut buf, head, EntryState::Acked);
                ring.reclaim(&buf);
                model.pop_front();
            }
            assert_eq!(
                contents(&ring, &buf),
                Vec::from(model.clone()),
                "after seq {seq}"
            );
            assert_eq!(ring.unacked(), model.len());
            assert!(ring.used_bytes(buf.len()) <= buf.len());
        }
        assert!(dropped > 1000, "the ring should have filled up: {dropped}");
    }

    #[test]
    fn acknowledged_entries_in_the_middle_wait_for_the_head() {
        let mut buf = [0u8; 400];
        let mut ring = Backlog::default();
        for seq in 0..3 {
            assert_eq!(ring.push(&mut buf, &entry(seq * 4)), Ok(true));
        }
        let first = ring.head().unwrap();
        let second = ring.next(&buf, first).unwrap();
        ring.set_state(&mut buf, second, EntryState::Acked);
        ring.reclaim(&buf);
        assert_eq!(ring.unacked(), 2);
        assert_eq!(contents(&ring, &buf).len(), 3);
        ring.set_state(&mut buf, first, EntryState::InFlight(9));
        assert_eq!(state_of(&buf, first), EntryState::InFlight(9));
        ring.set_state(&mut buf, first, EntryState::Acked);
        ring.reclaim(&buf);
        assert_eq!(
            contents(&ring, &buf)
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [8]
        );
    }
}
