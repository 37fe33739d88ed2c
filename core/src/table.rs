//! The tag table: one slot per Data-Service key, fixed capacity, with an
//! open-addressing hash index and the keys packed in one arena (most keys
//! are far shorter than the longest allowed). Storage is supplied by the
//! caller (`heapless` containers in [`ArrayStorage`], or a runner's heap
//! buffers whose untouched pages cost no memory), so the engine never
//! allocates.

use core::num::NonZeroU64;

use crate::key::Key;
use crate::time::Instant;
use crate::value::{StringValue, Value, value_hash};

/// Where a tag stands with the Data-Service's registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Registration {
    /// Not checked yet (new tag, or the Data-Service restarted).
    Unknown,
    /// Listed in `/detailed`; its id is still to be fetched.
    Found,
    /// Not in `/detailed`.
    Missing,
    /// In a `/register/bulk` request now.
    Registering,
    /// Has an id: written with `bulk_write_by_id`.
    Registered,
    /// Not registered and `--register off`: written by key, dropped by the
    /// Data-Service; counted and reported.
    NotRegistered,
    /// Its address is null or its metadata too long to repeat without side
    /// effects: kept on `write` by key.
    ByKeyOnly,
    /// Registration failed (e.g. an exhausted address range): written by key.
    Failed,
}

impl Registration {
    /// The state's name in `/api/tags` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Unknown => "unknown",
            Registration::Found => "found",
            Registration::Missing => "missing",
            Registration::Registering => "registering",
            Registration::Registered => "registered",
            Registration::NotRegistered => "not_registered",
            Registration::ByKeyOnly => "by_key_only",
            Registration::Failed => "failed",
        }
    }

    /// Every state, in the order metrics list them.
    pub const ALL: [Registration; 8] = [
        Registration::Unknown,
        Registration::Found,
        Registration::Missing,
        Registration::Registering,
        Registration::Registered,
        Registration::NotRegistered,
        Registration::ByKeyOnly,
        Registration::Failed,
    ];
}

/// The Data-Service's data types, as `/detailed` and `/register` spell them.
pub(crate) const DATA_TYPES: [&str; 5] = ["float", "int", "bool", "string", "raw"];

/// The index into `DATA_TYPES` of a data type's name.
pub(crate) fn data_type_index(name: &str) -> Option<u8> {
    DATA_TYPES.iter().position(|t| *t == name).map(|i| i as u8)
}

/// Most bytes of `default` (its JSON text) and `units` together that a slot
/// keeps to re-register a point as it is; a point with more stays on
/// `write` by key.
pub const MAX_META_TEXT_LEN: usize = 17;

/// What `/detailed` says about a key, kept until its id is fetched. Packed
/// (the address as bytes, both texts in one string) so that it takes no
/// more room in every slot than it must.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointMeta {
    address: [u8; 4],
    /// Index into `DATA_TYPES`.
    data_type: u8,
    /// `texts` is `default` then `units`; this is where `units` starts.
    default_len: u8,
    texts: MetaTexts,
}

/// A point's `default` and `units`, back to back.
pub(crate) type MetaTexts = heapless::String<MAX_META_TEXT_LEN, u8>;

impl PointMeta {
    /// The metadata, or `None` if its texts do not fit together.
    pub(crate) fn new(
        address: u32,
        data_type: u8,
        default: &str,
        units: impl FnOnce(&mut MetaTexts) -> Option<()>,
    ) -> Option<Self> {
        if usize::from(data_type) >= DATA_TYPES.len() {
            return None;
        }
        let mut texts = heapless::String::new();
        texts.push_str(default).ok()?;
        let default_len = texts.len() as u8;
        units(&mut texts)?;
        Some(PointMeta {
            address: address.to_le_bytes(),
            data_type,
            default_len,
            texts,
        })
    }

    pub(crate) fn address(&self) -> u32 {
        u32::from_le_bytes(self.address)
    }

    pub(crate) fn data_type(&self) -> &'static str {
        DATA_TYPES[usize::from(self.data_type)]
    }

    pub(crate) fn default(&self) -> &str {
        self.texts
            .get(..usize::from(self.default_len))
            .unwrap_or("")
    }

    pub(crate) fn units(&self) -> &str {
        self.texts
            .get(usize::from(self.default_len)..)
            .unwrap_or("")
    }
}

/// What a slot holds from the registry: the `/detailed` metadata until the
/// id is fetched, then the id. Never both, so they share the space (a slot
/// per tag, 10,000s of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RegistryData {
    /// Nothing (yet, or any more).
    None,
    /// The point's metadata, to re-register it side-effect free.
    Meta(PointMeta),
    /// The point's id.
    Id([u8; 16]),
}

impl RegistryData {
    /// The id, all zeros when there is none.
    pub(crate) fn id(&self) -> [u8; 16] {
        match self {
            RegistryData::Id(id) => *id,
            _ => [0; 16],
        }
    }
}

/// Where a key lies in the table's key arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    offset: u32,
    len: u16,
}

const _: () = assert!(crate::config::MAX_KEY_LEN <= u16::MAX as usize);

/// A slot's value: a number or a bool in place; a string's text in the
/// table's string pool (most tags are numeric, and a string takes 66 bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum SlotValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// In the pool, at the slot's `string` entry.
    Str,
}

impl SlotValue {
    /// The value as a number, if it is one (as [`Value::number`]).
    pub(crate) fn number(self) -> Option<f64> {
        match self {
            SlotValue::Int(v) => Some(v as f64),
            SlotValue::Float(v) => Some(v),
            SlotValue::Bool(_) | SlotValue::Str => None,
        }
    }

    /// The value as a slot holds it in place, or the string for the pool.
    fn inline(value: Value) -> Result<SlotValue, StringValue> {
        match value {
            Value::Int(v) => Ok(SlotValue::Int(v)),
            Value::Float(v) => Ok(SlotValue::Float(v)),
            Value::Bool(v) => Ok(SlotValue::Bool(v)),
            Value::Str(text) => Err(text),
        }
    }
}

/// `TagSlot::string` for a tag that never held a string.
const NO_STRING: u32 = u32::MAX;

/// One tag's state: its key and latest value, and what delivery, the
/// registry check, the `history` backlog and the source's timestamps keep
/// of it.
#[derive(Clone, Debug, PartialEq)]
pub struct TagSlot {
    /// The Data-Service key, in the table's key arena ([`TagTable::key_of`]).
    pub(crate) key: KeyRef,
    /// The latest accepted value ([`TagTable::value_of`]).
    pub(crate) value: SlotValue,
    /// The tag's entry in the string pool, once it held a string (kept for
    /// its later strings, so the pool never holds more than one per tag).
    pub(crate) string: u32,
    /// Writing it, and what the Data-Service acknowledged.
    pub(crate) delivery: SlotDelivery,
    /// What the Data-Service's registry says of its key.
    pub(crate) registry: SlotRegistry,
    /// Its changes in the `history` backlog.
    pub(crate) history: SlotHistory,
    /// Its readings: their timestamps, failed reads, the rule that mapped
    /// the last one.
    pub(crate) source: SlotSource,
}

/// A tag's delivery: the write it waits for, the request it is in, and the
/// value the Data-Service last acknowledged.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotDelivery {
    /// Bumped on every accepted reading, so an acknowledgement of an older
    /// value does not clear a newer one.
    pub(crate) seq: u32,
    /// The latest value must be written.
    pub(crate) pending: bool,
    /// A request carrying this tag is in flight.
    pub(crate) in_flight: bool,
    /// The request it is in, and what it carried.
    pub(crate) request: u32,
    pub(crate) sent_seq: u32,
    pub(crate) sent_hash: NonZeroU64,
    /// Hash of the value the Data-Service last acknowledged, and when.
    pub(crate) acked_hash: Option<NonZeroU64>,
    pub(crate) acked_at: Instant,
    /// The last acknowledged value as a number (`NAN`: none), for deadbands.
    pub(crate) acked_number: f64,
}

/// A tag's key in the Data-Service's registry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotRegistry {
    /// Registry state, and the metadata or id that goes with it.
    pub(crate) registration: Registration,
    pub(crate) data: RegistryData,
    /// The key's data type in the Data-Service (index into `DATA_TYPES`,
    /// `UNKNOWN_TYPE` until `/detailed` or our registration said it).
    pub(crate) registered_type: u8,
    /// A value of this tag would be changed by that type on the way in
    /// (reported once, until the type is learnt again).
    pub(crate) type_mismatch: bool,
}

/// A tag's changes in the `history` backlog.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotHistory {
    /// Its changes not yet acknowledged, the hash of the newest, and the
    /// last delivery walk that passed it over.
    pub(crate) queued: u32,
    pub(crate) queued_hash: NonZeroU64,
    pub(crate) walk_mark: u32,
    /// The newest queued value as a number (`NAN`: none), for deadbands.
    pub(crate) queued_number: f64,
    /// The cycle (the engine's count) of its newest queued change; a
    /// change of the running cycle goes out past the replay budget, with
    /// the older ones it must follow.
    pub(crate) changed_in_cycle: u32,
}

/// What a tag's readings said over time.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SlotSource {
    /// The source timestamp of the latest reading in ms, its low 32 bits
    /// (0: none), and when, in the sync's own clock, it was first seen (ms,
    /// low 32 bits: differences hold for 49 days, `max_age` is at most one).
    /// Compared for change only, so the truncation costs nothing.
    pub(crate) stamp: u32,
    pub(crate) since: u32,
    /// The source timestamp stood still for longer than `max_age`.
    pub(crate) stale: bool,
    /// A failed read came since the last good one: the deadband is skipped.
    pub(crate) after_failed_read: bool,
    /// The mapping rule that applied last (`NO_RULE`: none).
    pub(crate) rule: u8,
}

/// `TagSlot::registered_type` while the Data-Service's type is not known.
pub(crate) const UNKNOWN_TYPE: u8 = u8::MAX;

/// `TagSlot::rule` when no mapping rule applied.
pub(crate) const NO_RULE: u8 = u8::MAX;

impl TagSlot {
    /// `latest`: the Data-Service took the value last sent. It is the
    /// acknowledged one, and the tag stops waiting unless a newer reading
    /// came meanwhile.
    pub(crate) fn acknowledge_sent(&mut self, now: Instant) {
        let delivery = &mut self.delivery;
        delivery.in_flight = false;
        delivery.acked_hash = Some(delivery.sent_hash);
        delivery.acked_at = now;
        delivery.acked_number = f64::NAN;
        if delivery.seq == delivery.sent_seq {
            delivery.pending = false;
            delivery.acked_number = self.value.number().unwrap_or(f64::NAN);
        }
    }

    /// `history`: the Data-Service took `value`, the oldest of the tag's
    /// queued changes.
    pub(crate) fn acknowledge_change(&mut self, now: Instant, value: &Value) {
        self.delivery.in_flight = false;
        self.delivery.acked_hash = Some(value_hash(value));
        self.delivery.acked_number = value.number().unwrap_or(f64::NAN);
        self.delivery.acked_at = now;
        self.history.queued = self.history.queued.saturating_sub(1);
    }

    /// When the Data-Service last acknowledged a value of this tag.
    pub fn last_written_at(&self) -> Option<Instant> {
        self.delivery.acked_hash.map(|_| self.delivery.acked_at)
    }

    /// Whether a request carrying this tag awaits its answer.
    pub fn is_in_flight(&self) -> bool {
        self.delivery.in_flight
    }

    /// Whether the latest value still waits to be written (in `history`
    /// mode: whether changes of this tag wait in the backlog).
    pub fn is_pending(&self) -> bool {
        self.delivery.pending || self.history.queued > 0
    }

    /// Where the tag stands with the Data-Service's registry.
    pub fn registration(&self) -> Registration {
        self.registry.registration
    }

    /// The key's data type in the Data-Service, once known.
    pub fn registered_type(&self) -> Option<&'static str> {
        DATA_TYPES
            .get(usize::from(self.registry.registered_type))
            .copied()
    }

    /// Whether the registered type would change this tag's values.
    pub fn has_type_mismatch(&self) -> bool {
        self.registry.type_mismatch
    }

    /// Whether the source timestamp stood still for longer than `max_age`.
    pub fn is_stale(&self) -> bool {
        self.source.stale
    }
}

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
                let slot = TagSlot {
                    key: KeyRef {
                        offset,
                        len: key.len() as u16,
                    },
                    value,
                    string,
                    delivery: SlotDelivery {
                        seq: 0,
                        pending: false,
                        in_flight: false,
                        request: 0,
                        sent_seq: 0,
                        sent_hash: NonZeroU64::MIN,
                        acked_hash: None,
                        acked_at: Instant::default(),
                        acked_number: f64::NAN,
                    },
                    registry: SlotRegistry {
                        registration: Registration::Unknown,
                        data: RegistryData::None,
                        registered_type: UNKNOWN_TYPE,
                        type_mismatch: false,
                    },
                    history: SlotHistory {
                        queued: 0,
                        queued_hash: NonZeroU64::MIN,
                        walk_mark: 0,
                        queued_number: f64::NAN,
                        changed_in_cycle: 0,
                    },
                    source: SlotSource {
                        stamp: 0,
                        since: 0,
                        stale: false,
                        after_failed_read: false,
                        rule: NO_RULE,
                    },
                };
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
