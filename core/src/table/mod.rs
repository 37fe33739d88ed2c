//! The tag table: one slot per Data-Service key, fixed capacity, with an
//! open-addressing hash index and the keys packed in one arena (most keys
//! are far shorter than the longest allowed). Storage is supplied by the
//! caller (`heapless` containers in [`ArrayStorage`], or a runner's heap
//! buffers whose untouched pages cost no memory), so the engine never
//! allocates.

use crate::key::Key;
use crate::value::Value;

mod slot;
mod storage;

pub use self::slot::*;
pub use self::storage::{ArrayStorage, TableStorage, index_len};

/// The table is full: the tag was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TableFull;

/// Fixed-capacity map from key to [`TagSlot`], in order of first appearance.
#[derive(Debug)]
pub struct TagTable<S: TableStorage> {
    storage: S,
}

/// FNV-1a: short keys, no allocation, good spread for similar keys.
pub(crate) fn hash_key(key: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in key {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

impl<S: TableStorage> TagTable<S> {
    /// A table over `storage` (which should be empty).
    pub fn new(storage: S) -> Self {
        TagTable { storage }
    }

    /// How many tags the table holds.
    pub fn len(&self) -> usize {
        self.storage.slots().len()
    }

    /// Whether the table holds no tag.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most tags the table can hold (bounded by the storage and its index).
    pub fn capacity(&self) -> usize {
        self.storage.capacity().min(self.storage.index().len() / 2)
    }

    /// Every slot, in order of first appearance.
    pub fn slots(&self) -> &[TagSlot] {
        self.storage.slots()
    }

    /// A slot's key.
    pub fn key_of(&self, slot: &TagSlot) -> &str {
        let start = slot.key.offset as usize;
        self.storage
            .keys()
            .get(start..start + usize::from(slot.key.len))
            .unwrap_or("")
    }

    /// A slot's latest value.
    pub fn value_of(&self, slot: &TagSlot) -> Value {
        match slot.value {
            SlotValue::Int(v) => Value::Int(v),
            SlotValue::Float(v) => Value::Float(v),
            SlotValue::Bool(v) => Value::Bool(v),
            SlotValue::Str => Value::Str(
                self.storage
                    .strings()
                    .get(slot.string as usize)
                    .cloned()
                    .unwrap_or_default(),
            ),
        }
    }

    /// The latest value of the slot at `position`.
    pub fn value(&self, position: usize) -> Option<Value> {
        self.slots().get(position).map(|slot| self.value_of(slot))
    }

    /// Stores `value` as the latest of the slot at `position`, a string in
    /// the tag's pool entry (taken the first time).
    fn store_value(&mut self, position: usize, value: Value) -> Result<(), TableFull> {
        let Some(string) = self.storage.slots().get(position).map(|s| s.string) else {
            return Err(TableFull);
        };
        let (stored, string) = match SlotValue::inline(value) {
            Ok(stored) => (stored, string),
            Err(text) if string == NO_STRING => (SlotValue::Str, self.storage.push_string(text)?),
            Err(text) => {
                if let Some(pooled) = self.storage.strings_mut().get_mut(string as usize) {
                    *pooled = text;
                }
                (SlotValue::Str, string)
            }
        };
        let slot = &mut self.storage.slots_mut()[position];
        slot.value = stored;
        slot.string = string;
        Ok(())
    }

    /// The key of the slot at `position`.
    pub fn key(&self, position: usize) -> &str {
        self.slots().get(position).map_or("", |s| self.key_of(s))
    }

    pub(crate) fn slot_mut(&mut self, position: usize) -> Option<&mut TagSlot> {
        self.storage.slots_mut().get_mut(position)
    }

    pub(crate) fn slots_mut(&mut self) -> &mut [TagSlot] {
        self.storage.slots_mut()
    }

    /// The `history` backlog's bytes.
    pub fn backlog_bytes(&self) -> &[u8] {
        self.storage.backlog()
    }

    /// The staging room's bytes.
    pub(crate) fn staging(&self) -> &[u8] {
        self.storage.staging()
    }

    pub(crate) fn staging_mut(&mut self) -> &mut [u8] {
        self.storage.staging_mut()
    }

    pub(crate) fn slots_and_backlog_mut(&mut self) -> (&mut [TagSlot], &mut [u8]) {
        self.storage.slots_and_backlog_mut()
    }

    /// The position of `key`, if the table holds it.
    pub fn find(&self, key: &str) -> Option<usize> {
        match self.probe(key) {
            Probe::Found(position) => Some(position),
            Probe::Vacant(_) => None,
        }
    }

    /// Records a new value for the tag at `position`.
    pub fn update(&mut self, position: usize, value: Value) -> Result<(), TableFull> {
        self.store_value(position, value)?;
        let slot = &mut self.storage.slots_mut()[position];
        slot.delivery.seq = slot.delivery.seq.wrapping_add(1);
        Ok(())
    }

    /// Records a new value for `key`, adding the tag if it is new.
    /// Returns the slot position; whether to write it is the engine's call.
    pub fn upsert(&mut self, key: &Key, value: Value) -> Result<usize, TableFull> {
        match self.probe(key) {
            Probe::Found(position) => {
                self.update(position, value)?;
                Ok(position)
            }
            Probe::Vacant(bucket) => {
                let position = self.len();
                if position >= self.capacity() {
                    return Err(TableFull);
                }
                // The pool holds a string per slot at most, so it has room
                // for this one whenever the table has room for the tag.
                let (value, string) = match SlotValue::inline(value) {
                    Ok(stored) => (stored, NO_STRING),
                    Err(text) => (SlotValue::Str, self.storage.push_string(text)?),
                };
                let offset = self.storage.push_key(key)?;
                let slot = TagSlot::new(
                    KeyRef {
                        offset,
                        len: key.len() as u16,
                    },
                    value,
                    string,
                );
                self.storage.push(slot)?;
                // position < capacity <= index.len() / 2, so it fits in u32.
                self.storage.index_mut()[bucket] = position as u32 + 1;
                Ok(position)
            }
        }
    }

    fn probe(&self, key: &str) -> Probe {
        let index = self.storage.index();
        let slots = self.storage.slots();
        let keys = self.storage.keys();
        // A zero-length index holds nothing; report a vacancy that `upsert`
        // refuses through `capacity()`.
        if index.is_empty() {
            return Probe::Vacant(0);
        }
        let mask = index.len() - 1;
        let mut bucket = hash_key(key.as_bytes()) as usize & mask;
        loop {
            match index[bucket] {
                0 => return Probe::Vacant(bucket),
                entry => {
                    let position = entry as usize - 1;
                    let stored = slots.get(position).and_then(|s| {
                        let start = s.key.offset as usize;
                        keys.get(start..start + usize::from(s.key.len))
                    });
                    if stored == Some(key) {
                        return Probe::Found(position);
                    }
                }
            }
            bucket = (bucket + 1) & mask;
        }
    }
}

enum Probe {
    Found(usize),
    Vacant(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::StringValue;

    fn key(text: &str) -> Key {
        Key::try_from(text).unwrap()
    }

    #[test]
    fn upsert_adds_then_updates_and_refuses_past_capacity() {
        let mut table = TagTable::new(ArrayStorage::<4, 8, 64>::new());
        assert_eq!(table.upsert(&key("a"), Value::Int(1)), Ok(0));
        assert_eq!(table.upsert(&key("b"), Value::Int(2)), Ok(1));
        assert_eq!(table.upsert(&key("a"), Value::Int(3)), Ok(0));
        assert_eq!(table.value(0), Some(Value::Int(3)));
        assert_eq!(table.slots()[0].delivery.seq, 1);
        assert_eq!(table.upsert(&key("c"), Value::Int(4)), Ok(2));
        assert_eq!(table.upsert(&key("d"), Value::Int(5)), Ok(3));
        assert_eq!(table.upsert(&key("e"), Value::Int(6)), Err(TableFull));
        assert_eq!(table.len(), 4);
        assert_eq!(table.find("d"), Some(3));
        assert_eq!(table.key(3), "d");
        assert_eq!(table.find("e"), None);
        // The tags already in the table keep updating.
        assert_eq!(table.upsert(&key("b"), Value::Int(7)), Ok(1));
    }

    #[test]
    fn many_keys_are_all_found() {
        let mut table = TagTable::new(ArrayStorage::<512, 1024, 8192>::new());
        let mut name: heapless::String<16> = heapless::String::new();
        for i in 0..512 {
            name.clear();
            core::fmt::write(&mut name, format_args!("dev.tag{i}")).unwrap();
            assert_eq!(table.upsert(&key(&name), Value::Int(i)), Ok(i as usize));
        }
        for i in 0..512 {
            name.clear();
            core::fmt::write(&mut name, format_args!("dev.tag{i}")).unwrap();
            assert_eq!(table.find(&name), Some(i as usize));
        }
    }

    fn text(s: &str) -> Value {
        Value::Str(StringValue::try_from(s).unwrap())
    }

    #[test]
    fn strings_live_in_the_pool_one_entry_per_tag() {
        let mut table = TagTable::new(ArrayStorage::<4, 8, 64>::new());
        assert_eq!(table.upsert(&key("a"), text("one")), Ok(0));
        assert_eq!(table.upsert(&key("b"), Value::Float(2.5)), Ok(1));
        assert_eq!(table.upsert(&key("c"), text("three")), Ok(2));
        assert_eq!(table.value(0), Some(text("one")));
        assert_eq!(table.value(1), Some(Value::Float(2.5)));
        assert_eq!(table.value(2), Some(text("three")));
        // A tag that turns numeric and back to text keeps its one entry.
        assert_eq!(table.upsert(&key("a"), Value::Bool(true)), Ok(0));
        assert_eq!(table.value(0), Some(Value::Bool(true)));
        assert_eq!(table.upsert(&key("a"), text("again")), Ok(0));
        assert_eq!(table.upsert(&key("b"), text("now text")), Ok(1));
        assert_eq!(table.value(0), Some(text("again")));
        assert_eq!(table.value(1), Some(text("now text")));
        assert_eq!(table.value(2), Some(text("three")));
        assert_eq!(table.storage.strings().len(), 3);
        assert_eq!(table.value(3), None);
    }

    #[test]
    fn point_meta_keeps_default_and_units_apart_within_its_room() {
        let meta = PointMeta::new(40_001, 0, "0.0", |t| t.push_str("°C").ok()).unwrap();
        assert_eq!(
            (
                meta.address(),
                meta.data_type(),
                meta.default(),
                meta.units()
            ),
            (40_001, "float", "0.0", "°C")
        );
        let full = "x".repeat(MAX_META_TEXT_LEN - 3);
        let meta = PointMeta::new(7, 3, "\"\"", |t| t.push_str(&full[1..]).ok()).unwrap();
        assert_eq!((meta.default(), meta.units()), ("\"\"", &full[1..]));
        let meta = PointMeta::new(7, 1, &full, |t| t.push_str("kWh").ok()).unwrap();
        assert_eq!((meta.default(), meta.units()), (full.as_str(), "kWh"));
        // One byte more than the room, in either text: not kept.
        assert_eq!(
            PointMeta::new(7, 1, &full, |t| t.push_str("kWh!").ok()),
            None
        );
        let long = "1".repeat(MAX_META_TEXT_LEN + 1);
        assert_eq!(PointMeta::new(7, 1, &long, |_| Some(())), None);
        assert_eq!(PointMeta::new(7, 5, "0", |_| Some(())), None);
    }
}
