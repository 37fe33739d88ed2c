//! Tag table storage on the heap, sized once at start. The slot buffer is
//! reserved whole but written only as tags arrive, so untouched pages cost
//! no resident memory; the index is zero-filled (lazily mapped zero pages).

use dataservice_sync_core::table::TableFull;
use dataservice_sync_core::{TableStorage, TagSlot, index_len};

/// Fixed-capacity heap storage for the core's tag table.
pub struct HeapStorage {
    slots: Vec<TagSlot>,
    capacity: usize,
    index: Vec<u32>,
}

impl HeapStorage {
    /// Storage for `capacity` tags; it never grows past it.
    pub fn with_capacity(capacity: usize) -> Self {
        HeapStorage {
            slots: Vec::with_capacity(capacity),
            capacity,
            index: vec![0; index_len(capacity)],
        }
    }
}

impl TableStorage for HeapStorage {
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
}
