//! A polled document's readings, held back while it streams in until it is
//! known whole (a cut-off body applies nothing), in bytes the caller
//! provides: 10,000 numeric readings of known tags take 230 KB, where the
//! document took 1.2 MB.
//!
//! Records follow one another (little-endian):
//! - `G` slot u32 | `N` key length u16, key; then rule u8 (`NO_RULE`:
//!   none), source time ms u64, value (as [`encode_value`] writes it): a
//!   good reading of a tag the table holds, or of a new one;
//! - `F` slot u32 | `f` key length u16, key: a failed read;
//! - `R` reason u8, name length u32, shown length u8, shown name: an entry
//!   rejected, up to [`REJECTED_KEYS_LOGGED`] per document (the rest are
//!   only counted by reason).

use core::ops::Range;

use crate::config::{MAX_KEY_LEN, REJECTED_KEYS_LOGGED};
use crate::key::Key;
use crate::reading::Reading;
use crate::reject::{KeyPreview, RejectReason};
use crate::table::{NO_RULE, TableStorage, TagTable};
use crate::value::{Value, decode_value, encode_value};

/// Which tag a reading is of.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StagedTag {
    /// The table holds it, at this slot.
    Held(u32),
    /// Not in the table when the reading came: its key is these bytes of
    /// the staging room ([`staged_text`]), copied out only to add it.
    New(Range<usize>),
}

/// One held-back reading.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Staged {
    /// A good read to deliver.
    Good {
        tag: StagedTag,
        value: Value,
        source_time_ms: u64,
        rule: Option<u8>,
    },
    /// A read the polling service marked as failed.
    FailedRead(StagedTag),
    /// An entry that cannot be written, named: by these bytes of the
    /// staging room (at most 64 of its name) and the name's whole length.
    Rejected {
        reason: RejectReason,
        shown: Range<usize>,
        full_len: usize,
    },
}

/// The staging bytes are full: the document's readings do not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StagingFull;

/// What one document has held back so far, and what it only counted.
#[derive(Clone, Debug, Default)]
pub(crate) struct Staging {
    /// Bytes of records written.
    pub(crate) len: usize,
    /// Good readings of tags that are not in the table yet.
    new_tags: usize,
    pub(crate) good_reads: u32,
    pub(crate) failed_reads: u32,
    pub(crate) filtered: u32,
    /// Good readings of new tags the table has no room for.
    pub(crate) left_out: u32,
    named_rejections: usize,
    /// Rejections past the named ones, by reason.
    pub(crate) unnamed_rejections: [u32; RejectReason::ALL.len()],
    /// The slot after the last tag found: where the next is looked for
    /// first.
    next_guess: usize,
}

impl Staging {
    /// Holds back `reading`, or counts it.
    pub(crate) fn stage<S: TableStorage>(
        &mut self,
        table: &mut TagTable<S>,
        reading: Reading,
    ) -> Result<(), StagingFull> {
        // Straight into the room: a record is 20-230 bytes, and zeroing a
        // scratch buffer of the largest for every reading showed in profiles.
        // By reference: a reading is a key and a value of some 400 bytes,
        // and moving them out of it showed in profiles.
        let written = match &reading {
            Reading::Good {
                key,
                value,
                source_time_ms,
                rule,
            } => {
                self.good_reads += 1;
                let held = self.find_held(table, key);
                if held.is_none() && table.len() + self.new_tags >= table.capacity() {
                    // A key seen twice in one document is counted twice
                    // here: near a full table, one may be left out early.
                    self.left_out += 1;
                    return Ok(());
                }
                self.new_tags += usize::from(held.is_none());
                let mut w = Writer::at(table, self.len);
                w.tag(b'G', b'N', held, key);
                w.put(&[rule.unwrap_or(NO_RULE)]);
                w.put(&source_time_ms.to_le_bytes());
                w.value(value);
                w.written()
            }
            Reading::FailedRead { key } => {
                self.failed_reads += 1;
                let Some(key) = key else {
                    return Ok(());
                };
                let held = self.find_held(table, key);
                let mut w = Writer::at(table, self.len);
                w.tag(b'F', b'f', held, key);
                w.written()
            }
            Reading::Filtered => {
                self.filtered += 1;
                return Ok(());
            }
            Reading::Rejected { reason, tag } => {
                if self.named_rejections >= REJECTED_KEYS_LOGGED {
                    self.unnamed_rejections[reason.index()] += 1;
                    return Ok(());
                }
                self.named_rejections += 1;
                let mut w = Writer::at(table, self.len);
                w.put(&[b'R', reason.index() as u8]);
                w.put(&(tag.full_len as u32).to_le_bytes());
                w.put(&[tag.text.len() as u8]);
                w.put(tag.text.as_bytes());
                w.written()
            }
        };
        self.len += written?;
        Ok(())
    }

    /// The slot holding `key`. A document lists its tags in the same order
    /// every cycle and the table keeps them in the order first seen, so the
    /// slot after the last one found is compared first: a hit spares the
    /// hash and the index's scattered reads (a tenth of the sync's CPU at
    /// 10,000 tags).
    fn find_held<S: TableStorage>(&mut self, table: &TagTable<S>, key: &str) -> Option<usize> {
        let guess = self.next_guess;
        let held = match table.slots().get(guess) {
            Some(slot) if table.key_of(slot) == key => Some(guess),
            _ => table.find(key),
        };
        if let Some(position) = held {
            self.next_guess = position + 1;
        }
        held
    }
}

/// Writes one record into the staging room's unused bytes.
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    full: bool,
}

impl<'b> Writer<'b> {
    /// After the `used` bytes of `table`'s staging room.
    fn at<S: TableStorage>(table: &'b mut TagTable<S>, used: usize) -> Self {
        Writer {
            buf: table.staging_mut().get_mut(used..).unwrap_or_default(),
            len: 0,
            full: false,
        }
    }

    /// The record's length, or `StagingFull` if it did not fit.
    fn written(&self) -> Result<usize, StagingFull> {
        if self.full {
            Err(StagingFull)
        } else {
            Ok(self.len)
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(out) => {
                out.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.full = true,
        }
    }

    /// The tag: its slot after `held_kind`, or its key after `new_kind`.
    fn tag(&mut self, held_kind: u8, new_kind: u8, held: Option<usize>, key: &str) {
        match held {
            Some(position) => {
                self.put(&[held_kind]);
                self.put(&(position as u32).to_le_bytes());
            }
            None => {
                self.put(&[new_kind]);
                // Keys are at most MAX_KEY_LEN bytes, which fits in a u16.
                self.put(&(key.len() as u16).to_le_bytes());
                self.put(key.as_bytes());
            }
        }
    }

    fn value(&mut self, value: &Value) {
        let out = self.buf.get_mut(self.len..).unwrap_or_default();
        match encode_value(value, out) {
            Some(len) => self.len += len,
            None => self.full = true,
        }
    }
}

/// The record at `at` in `staged` (written by [`Staging::stage`]) and where
/// the next starts; `None` at the end.
pub(crate) fn unstage(staged: &[u8], at: usize) -> Option<(Staged, usize)> {
    let mut r = Reader { bytes: staged, at };
    let record = match r.byte()? {
        kind @ (b'G' | b'N') => {
            let tag = r.tag(kind == b'G')?;
            let rule = r.byte()?;
            let source_time_ms = u64::from_le_bytes(r.array()?);
            let (value, len) = decode_value(r.bytes.get(r.at..)?)?;
            r.at += len;
            Staged::Good {
                tag,
                value,
                source_time_ms,
                rule: (rule != NO_RULE).then_some(rule),
            }
        }
        kind @ (b'F' | b'f') => Staged::FailedRead(r.tag(kind == b'F')?),
        b'R' => {
            let reason = *RejectReason::ALL.get(usize::from(r.byte()?))?;
            let full_len = u32::from_le_bytes(r.array()?) as usize;
            let shown = usize::from(r.byte()?);
            Staged::Rejected {
                reason,
                shown: r.text(shown)?,
                full_len,
            }
        }
        _ => return None,
    };
    Some((record, r.at))
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Option<&'b [u8]> {
        let out = self.bytes.get(self.at..self.at + n)?;
        self.at += n;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn tag(&mut self, held: bool) -> Option<StagedTag> {
        if held {
            return Some(StagedTag::Held(u32::from_le_bytes(self.array()?)));
        }
        let len = usize::from(u16::from_le_bytes(self.array()?));
        if len > MAX_KEY_LEN {
            return None;
        }
        Some(StagedTag::New(self.text(len)?))
    }

    /// The next `len` bytes, which must be UTF-8, as a range.
    fn text(&mut self, len: usize) -> Option<Range<usize>> {
        let start = self.at;
        core::str::from_utf8(self.take(len)?).ok()?;
        Some(start..self.at)
    }
}

/// The text at `range` of the staging room, as [`unstage`] found it.
pub(crate) fn staged_text(staged: &[u8], range: Range<usize>) -> &str {
    staged
        .get(range)
        .and_then(|bytes| core::str::from_utf8(bytes).ok())
        .unwrap_or("")
}

/// A new tag's key, as [`unstage`] found it (at most `MAX_KEY_LEN` bytes).
pub(crate) fn staged_key(staged: &[u8], range: Range<usize>) -> Option<Key> {
    Key::try_from(staged_text(staged, range)).ok()
}

/// A rejected entry's name, as [`unstage`] found it.
pub(crate) fn staged_preview(staged: &[u8], shown: Range<usize>, full_len: usize) -> KeyPreview {
    let mut tag = KeyPreview::of_key(staged_text(staged, shown));
    tag.full_len = full_len;
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ArrayStorage;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    fn good(key: &str) -> Reading {
        Reading::Good {
            key: Key::try_from(key).unwrap(),
            value: Value::Int(1),
            source_time_ms: 0,
            rule: None,
        }
    }

    /// Each staged reading's slot, or its key if new.
    fn staged_tags<S: TableStorage>(table: &TagTable<S>, staging: &Staging) -> Vec<String> {
        let mut tags = Vec::new();
        let mut at = 0;
        while at < staging.len {
            let Some((record, next)) = unstage(table.staging(), at) else {
                break;
            };
            at = next;
            match record {
                Staged::Good { tag, .. } | Staged::FailedRead(tag) => tags.push(match tag {
                    StagedTag::Held(position) => format!("slot {position}"),
                    StagedTag::New(key) => format!("new {}", staged_text(table.staging(), key)),
                }),
                Staged::Rejected { .. } => {}
            }
        }
        tags
    }

    #[test]
    fn tags_are_found_whatever_their_order_and_new_ones_are_named() {
        let mut table = TagTable::new(ArrayStorage::<8, 16, 64>::new());
        for key in ["d.a", "d.b", "d.c"] {
            table
                .upsert(&Key::try_from(key).unwrap(), Value::Int(0))
                .unwrap();
        }
        let mut staging = Staging::default();
        // In table order, then out of it, a new tag, a tag twice, a failed
        // read: each guess that misses falls back to the index.
        for key in ["d.a", "d.b", "d.c", "d.b", "d.new", "d.a", "d.a"] {
            staging.stage(&mut table, good(key)).unwrap();
        }
        let failed = Reading::FailedRead {
            key: Some(Key::try_from("d.c").unwrap()),
        };
        staging.stage(&mut table, failed).unwrap();
        assert_eq!(
            staged_tags(&table, &staging),
            [
                "slot 0",
                "slot 1",
                "slot 2",
                "slot 1",
                "new d.new",
                "slot 0",
                "slot 0",
                "slot 2"
            ]
        );
        assert_eq!(staging.good_reads, 7);
    }
}
