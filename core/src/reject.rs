//! Why an entry was not written, and how a rejected tag is named: the
//! vocabulary that classifying, rules, counters and log lines share.

use core::fmt::{self, Write};

use crate::text::Truncating;
use crate::wire::json::JsonStr;

/// Why an entry was not written. Each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RejectReason {
    /// `NaN`, `Infinity` or `-Infinity`.
    NonFiniteNumber,
    /// An integer beyond `i64`, or a float beyond `f64`.
    NumberOutOfRange,
    /// An object or an array as the value.
    UnsupportedValueType,
    /// A good status with a `null` value.
    NullValue,
    /// A good status and no `value` field.
    MissingValue,
    /// No `status` field.
    MissingStatus,
    /// A `status` that is not a string.
    StatusNotString,
    /// A `tag_name` or `name` that is not a string.
    NameNotString,
    /// The key is longer than [`MAX_KEY_LEN`](crate::config::MAX_KEY_LEN).
    KeyTooLong,
    /// A string value longer than
    /// [`MAX_STRING_VALUE_LEN`](crate::config::MAX_STRING_VALUE_LEN).
    StringTooLong,
    /// A device whose value is not an object of tags.
    DeviceNotObject,
    /// A tag whose value is not an object.
    TagNotObject,
    /// A number outside a mapping rule's valid range (after mapping).
    ValueOutOfRange,
    /// A mapping rule's cast cannot convert the value (e.g. "abc" to float).
    CastFailed,
    /// A key with characters the validation does not allow.
    KeyInvalidCharacters,
}

impl RejectReason {
    /// Every reason, in counter order.
    pub const ALL: [RejectReason; 15] = [
        RejectReason::NonFiniteNumber,
        RejectReason::NumberOutOfRange,
        RejectReason::UnsupportedValueType,
        RejectReason::NullValue,
        RejectReason::MissingValue,
        RejectReason::MissingStatus,
        RejectReason::StatusNotString,
        RejectReason::NameNotString,
        RejectReason::KeyTooLong,
        RejectReason::StringTooLong,
        RejectReason::DeviceNotObject,
        RejectReason::TagNotObject,
        RejectReason::ValueOutOfRange,
        RejectReason::CastFailed,
        RejectReason::KeyInvalidCharacters,
    ];

    /// The name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NonFiniteNumber => "non_finite_number",
            RejectReason::NumberOutOfRange => "number_out_of_range",
            RejectReason::UnsupportedValueType => "unsupported_value_type",
            RejectReason::NullValue => "null_value",
            RejectReason::MissingValue => "missing_value",
            RejectReason::MissingStatus => "missing_status",
            RejectReason::StatusNotString => "status_not_string",
            RejectReason::NameNotString => "name_not_string",
            RejectReason::KeyTooLong => "key_too_long",
            RejectReason::StringTooLong => "string_too_long",
            RejectReason::DeviceNotObject => "device_not_object",
            RejectReason::TagNotObject => "tag_not_object",
            RejectReason::ValueOutOfRange => "value_out_of_range",
            RejectReason::CastFailed => "cast_failed",
            RejectReason::KeyInvalidCharacters => "key_invalid_characters",
        }
    }

    /// Position in [`RejectReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first bytes of a key (or of `device/tag_id` when no key could be
/// built), to name a tag in a log line without copying a huge name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPreview {
    /// At most 64 bytes of the name.
    pub text: heapless::String<64>,
    /// The full name's length in bytes.
    pub full_len: usize,
}

impl KeyPreview {
    /// A preview of `device/tag_id` for an entry that has no key.
    pub fn of_entry(device: JsonStr<'_>, tag_id: Option<JsonStr<'_>>) -> Self {
        let mut text = heapless::String::new();
        let mut writer = Truncating::new(&mut text);
        device.write_unescaped(&mut writer).ok();
        if let Some(tag_id) = tag_id {
            writer.write_char('/').ok();
            tag_id.write_unescaped(&mut writer).ok();
        }
        let full_len = writer.full_len();
        KeyPreview { text, full_len }
    }

    /// A hash of the name (its shown part and full length), to remember
    /// which tags were reported.
    pub fn hash(&self) -> u32 {
        crate::table::hash_key(self.text.as_bytes()) ^ (self.full_len as u32).rotate_left(16)
    }

    /// A preview of a built key.
    pub fn of_key(key: &str) -> Self {
        let mut text = heapless::String::new();
        let mut writer = Truncating::new(&mut text);
        writer.write_str(key).ok();
        let full_len = writer.full_len();
        KeyPreview { text, full_len }
    }
}

impl fmt::Display for KeyPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.full_len > self.text.len() {
            write!(f, "{}… ({} bytes)", self.text, self.full_len)
        } else {
            f.write_str(&self.text)
        }
    }
}
