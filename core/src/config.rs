//! Compile-time capacities. Each has a documented default that a
//! build-time environment variable can change, e.g.
//! `DATASERVICE_SYNC_MAX_KEY_LEN=256 cargo build --release`. The tag
//! table's capacity is the storage's ([`crate::TableStorage::capacity`]),
//! chosen by whoever lends it.

/// Longest Data-Service key, in bytes of UTF-8 (default 128,
/// `DATASERVICE_SYNC_MAX_KEY_LEN`). Longer keys are rejected as `key_too_long`.
pub const MAX_KEY_LEN: usize = parse_or(option_env!("DATASERVICE_SYNC_MAX_KEY_LEN"), 128);

/// Longest string value, in bytes of UTF-8 (default 64,
/// `DATASERVICE_SYNC_MAX_STRING_LEN`). Longer strings are rejected as
/// `string_too_long`.
pub const MAX_STRING_VALUE_LEN: usize =
    parse_or(option_env!("DATASERVICE_SYNC_MAX_STRING_LEN"), 64);

/// Key arena bytes per tag, on average (default 48,
/// `DATASERVICE_SYNC_KEY_BYTES_PER_TAG`): keys are packed one after the
/// other, so long keys are fine as long as the average stays below this.
/// A full arena counts as a full table.
pub const KEY_BYTES_PER_TAG: usize =
    parse_or(option_env!("DATASERVICE_SYNC_KEY_BYTES_PER_TAG"), 48);

/// Staging bytes per tag of capacity, for a polled document's readings
/// while it streams in (default 96, `DATASERVICE_SYNC_STAGING_BYTES_PER_TAG`):
/// a reading of a known tag takes 23 bytes with a number, one of a new tag
/// 21 plus its key. A document whose readings do not fit is refused whole.
pub const STAGING_BYTES_PER_TAG: usize =
    parse_or(option_env!("DATASERVICE_SYNC_STAGING_BYTES_PER_TAG"), 96);

/// How many recent errors the statistics keep, with their time (the seed's 100).
pub const RECENT_ERRORS: usize = 100;

/// Longest message kept per recent error, in bytes.
pub const ERROR_MESSAGE_LEN: usize = 120;

/// Most requests the engine has in flight at once.
pub const MAX_IN_FLIGHT: usize = 16;

/// How many rejected keys are remembered so that each is logged once.
pub const REJECTED_KEYS_LOGGED: usize = 1024;

/// How many rejected tags are listed, with reason and count, for the
/// status page and `/api/tags` (a power of two).
pub const REJECTED_TAGS_SHOWN: usize = 256;

/// Deepest JSON nesting accepted in any document; deeper is a document error.
pub const MAX_JSON_DEPTH: usize = 64;

const _: () = assert!(MAX_KEY_LEN >= 8 && MAX_STRING_VALUE_LEN >= 8);
const _: () = assert!(REJECTED_KEYS_LOGGED.is_power_of_two());
const _: () = assert!(REJECTED_TAGS_SHOWN.is_power_of_two());

/// Parses a decimal build-time setting; a bad value stops the build.
const fn parse_or(text: Option<&str>, default: usize) -> usize {
    let bytes = match text {
        Some(text) => text.as_bytes(),
        None => return default,
    };
    assert!(!bytes.is_empty(), "capacity setting is empty");
    let mut value: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(
            digit.is_ascii_digit(),
            "capacity setting is not a decimal number"
        );
        value = value * 10 + (digit - b'0') as usize;
        i += 1;
    }
    value
}
