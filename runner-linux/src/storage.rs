//! Tag table storage on the heap, sized once at start. The slot buffer, the
//! key arena and the string pool are reserved whole but written only as
//! tags arrive, so untouched pages cost no resident memory; the index and
//! the staging room are zero-filled (lazily mapped zero pages). None of
//! them ever grows.

use dataservice_sync_core::config::{KEY_BYTES_PER_TAG, STAGING_BYTES_PER_TAG};
use dataservice_sync_core::table::TableFull;
use dataservice_sync_core::value::StringValue;
use dataservice_sync_core::{TableStorage, TagSlot, index_len};

/// Fixed-capacity heap storage for the core's tag table.
pub struct HeapStorage {
    slots: Vec<TagSlot>,
    capacity: usize,
    index: Vec<u32>,
    keys: String,
    strings: Vec<StringValue>,
    backlog: Vec<u8>,
    staging: Vec<u8>,
}

impl HeapStorage {
    /// Storage for `capacity` tags and `backlog_bytes` of `history`
    /// backlog (zero-filled: its pages cost memory only once used); it
    /// never grows past them.
    pub fn with_capacity(capacity: usize, backlog_bytes: usize) -> Self {
        HeapStorage {
            slots: Vec::with_capacity(capacity),
            capacity,
            index: vec![0; index_len(capacity)],
            keys: String::with_capacity(capacity * KEY_BYTES_PER_TAG),
            strings: Vec::with_capacity(capacity),
            staging: vec![0; capacity * STAGING_BYTES_PER_TAG],
            backlog: vec![0; backlog_bytes],
        }
    }
}

impl TableStorage for HeapStorage {
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
    fn slots(&self) -> &[TagSlot] {
        &self.slots
    }
    fn slots_mut(&mut self) -> &mut [TagSlot] {
        &mut self.slots
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn push(&mut self, slot: TagSlot) -> Result<(), TableFull> {
        if self.slots.len() >= self.capacity {
            return Err(TableFull);
        }
        self.slots.push(slot);
        Ok(())
    }
    fn index(&self) -> &[u32] {
        &self.index
    }
    fn index_mut(&mut self) -> &mut [u32] {
        &mut self.index
    }
    fn keys(&self) -> &str {
        &self.keys
    }
    fn push_key(&mut self, key: &str) -> Result<u32, TableFull> {
        // Within the reserved capacity, so the arena never reallocates.
        if self.keys.len() + key.len() > self.keys.capacity() {
            return Err(TableFull);
        }
        let offset = u32::try_from(self.keys.len()).map_err(|_| TableFull)?;
        self.keys.push_str(key);
        Ok(offset)
    }
    fn strings(&self) -> &[StringValue] {
        &self.strings
    }
    fn strings_mut(&mut self) -> &mut [StringValue] {
        &mut self.strings
    }
    fn push_string(&mut self, value: StringValue) -> Result<u32, TableFull> {
        // Within the reserved capacity, so the pool never reallocates.
        if self.strings.len() >= self.capacity {
            return Err(TableFull);
        }
        let entry = u32::try_from(self.strings.len()).map_err(|_| TableFull)?;
        self.strings.push(value);
        Ok(entry)
    }
}
