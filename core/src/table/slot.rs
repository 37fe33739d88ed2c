//! One tag's slot: its key, its latest value, and the named parts that
//! delivery, the registry check, the `history` backlog and the source keep.

use core::num::NonZeroU64;

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
    pub(super) offset: u32,
    pub(super) len: u16,
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
    pub(super) fn inline(value: Value) -> Result<SlotValue, StringValue> {
        match value {
            Value::Int(v) => Ok(SlotValue::Int(v)),
            Value::Float(v) => Ok(SlotValue::Float(v)),
            Value::Bool(v) => Ok(SlotValue::Bool(v)),
            Value::Str(text) => Err(text),
        }
    }
}

/// `TagSlot::string` for a tag that never held a string.
pub(super) const NO_STRING: u32 = u32::MAX;

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
    /// A new tag's slot: nothing sent, acknowledged, registered or queued.
    pub(super) fn new(key: KeyRef, value: SlotValue, string: u32) -> Self {
        TagSlot {
            key,
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
        }
    }

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
