//! What a table's memory is: the storage trait, and storage held inline.

use super::{TableFull, TagSlot};
use crate::value::StringValue;

/// Where a table keeps its slots and its hash index.
///
/// `index` must be a power of two at least twice the slot capacity, all
/// zeros at the start; [`index_len`] computes it.
pub trait TableStorage {
    /// The slots in use.
    fn slots(&self) -> &[TagSlot];
    /// The slots in use, mutably.
    fn slots_mut(&mut self) -> &mut [TagSlot];
    /// Most slots the storage can hold.
    fn capacity(&self) -> usize;
    /// Appends a slot, or refuses when full.
    fn push(&mut self, slot: TagSlot) -> Result<(), TableFull>;
    /// The hash index: 0 for empty, else slot position + 1.
    fn index(&self) -> &[u32];
    /// The hash index, mutably.
    fn index_mut(&mut self) -> &mut [u32];
    /// Every key, one after the other.
    fn keys(&self) -> &str;
    /// Appends a key to the arena and returns its offset, or refuses when full.
    fn push_key(&mut self, key: &str) -> Result<u32, TableFull>;
    /// The string pool: the string values, one entry per tag that held one.
    fn strings(&self) -> &[StringValue];
    /// The string pool, mutably.
    fn strings_mut(&mut self) -> &mut [StringValue];
    /// Appends a string to the pool and returns its entry, or refuses when
    /// it holds one per slot of capacity already.
    fn push_string(&mut self, value: StringValue) -> Result<u32, TableFull>;
    /// The `history` backlog's bytes (empty: no room for history).
    fn backlog(&self) -> &[u8];
    /// Room for a polled document's readings, held back until it is known
    /// whole (see `staging`).
    fn staging(&self) -> &[u8];
    /// The staging room, mutably.
    fn staging_mut(&mut self) -> &mut [u8];
    /// The slots and the backlog's bytes, both mutably.
    fn slots_and_backlog_mut(&mut self) -> (&mut [TagSlot], &mut [u8]);
}

/// The index length for `capacity` slots: a power of two, at least twice it.
pub const fn index_len(capacity: usize) -> usize {
    (capacity * 2).next_power_of_two()
}

/// Table storage held inline: `N` slots, an index of `I` entries
/// (`I == index_len(N)`), `K` bytes of keys, `N` pooled strings, `B` bytes
/// of `history` backlog, `S` bytes of staging for a document's readings.
/// Suits static memory on a microcontroller and tests.
#[derive(Debug)]
pub struct ArrayStorage<
    const N: usize,
    const I: usize,
    const K: usize,
    const B: usize = 0,
    const S: usize = 4096,
> {
    slots: heapless::Vec<TagSlot, N>,
    index: [u32; I],
    keys: heapless::String<K>,
    strings: heapless::Vec<StringValue, N>,
    backlog: [u8; B],
    staging: [u8; S],
}

impl<const N: usize, const I: usize, const K: usize, const B: usize, const S: usize>
    ArrayStorage<N, I, K, B, S>
{
    /// Empty storage.
    pub const fn new() -> Self {
        assert!(I == index_len(N), "index length must be index_len(N)");
        ArrayStorage {
            slots: heapless::Vec::new(),
            index: [0; I],
            keys: heapless::String::new(),
            strings: heapless::Vec::new(),
            backlog: [0; B],
            staging: [0; S],
        }
    }
}

impl<const N: usize, const I: usize, const K: usize, const B: usize, const S: usize> Default
    for ArrayStorage<N, I, K, B, S>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const I: usize, const K: usize, const B: usize, const S: usize> TableStorage
    for ArrayStorage<N, I, K, B, S>
{
    fn backlog(&self) -> &[u8] {
        &self.backlog
    }
    fn staging(&self) -> &[u8] {
        &self.staging
    }
    fn staging_mut(&mut self) -> &mut [u8] {
        &mut self.staging
    }
    fn slots_and_backlog_mut(&mut self) -> (&mut [TagSlot], &mut [u8]) {
        (&mut self.slots, &mut self.backlog)
    }
    fn keys(&self) -> &str {
        &self.keys
    }
    fn push_key(&mut self, key: &str) -> Result<u32, TableFull> {
        let offset = self.keys.len() as u32;
        self.keys.push_str(key).map_err(|_| TableFull)?;
        Ok(offset)
    }
    fn strings(&self) -> &[StringValue] {
        &self.strings
    }
    fn strings_mut(&mut self) -> &mut [StringValue] {
        &mut self.strings
    }
    fn push_string(&mut self, value: StringValue) -> Result<u32, TableFull> {
        let entry = self.strings.len() as u32;
        self.strings.push(value).map_err(|_| TableFull)?;
        Ok(entry)
    }
    fn slots(&self) -> &[TagSlot] {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut [TagSlot] {
        &mut self.slots
    }
    fn capacity(&self) -> usize {
        N
    }
    fn push(&mut self, slot: TagSlot) -> Result<(), TableFull> {
        self.slots.push(slot).map_err(|_| TableFull)
    }
    fn index(&self) -> &[u32] {
        &self.index
    }
    fn index_mut(&mut self) -> &mut [u32] {
        &mut self.index
    }
}
