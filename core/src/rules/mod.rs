//! Rules from the configuration, evaluated in fixed memory: which entries
//! are taken (filters by device and tag name, the good statuses), how
//! their values are mapped (first matching rule wins), and what a key and
//! a value must satisfy (validation).

mod glob;
mod mapping;
#[cfg(test)]
mod proptests;

pub use glob::glob_match;
pub use mapping::{Cast, Deadband, Rule, within_deadband};

use crate::config::{MAX_KEY_LEN, MAX_STRING_VALUE_LEN};
use crate::reject::RejectReason;

/// The statuses that mean a good read, compared without regard to case:
/// the deployed backend's Modbus TCP/RTU drivers answer `ok`, IEC 104
/// `good`, DNP3 `success` (the product documentation's `SUCCESS`).
pub const GOOD_STATUSES: [&str; 3] = ["ok", "good", "success"];

/// Most mapping rules.
pub const MAX_RULES: usize = 32;
/// Most patterns per filter list.
pub const MAX_PATTERNS: usize = 16;
/// Longest pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 64;
/// Most good statuses.
pub const MAX_STATUSES: usize = 8;
/// Most character ranges allowed in keys.
pub const MAX_CHAR_RANGES: usize = 16;

/// A glob pattern.
pub type Pattern = heapless::String<MAX_PATTERN_LEN>;
/// A filter's patterns.
pub type PatternList = heapless::Vec<Pattern, MAX_PATTERNS>;
/// A status name.
pub type Status = heapless::String<32>;

/// Which entries are taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filters {
    /// Devices taken (empty: all).
    pub include_devices: PatternList,
    /// Devices left out.
    pub exclude_devices: PatternList,
    /// Tags taken, by name or id (empty: all).
    pub include_tags: PatternList,
    /// Tags left out, by name or id.
    pub exclude_tags: PatternList,
    /// Statuses that mean a good read.
    pub good_statuses: heapless::Vec<Status, MAX_STATUSES>,
}

impl Default for Filters {
    fn default() -> Self {
        let mut good_statuses = heapless::Vec::new();
        for status in GOOD_STATUSES {
            // Three short statuses fit in eight.
            good_statuses
                .push(Status::try_from(status).unwrap_or_default())
                .ok();
        }
        Filters {
            include_devices: heapless::Vec::new(),
            exclude_devices: heapless::Vec::new(),
            include_tags: heapless::Vec::new(),
            exclude_tags: heapless::Vec::new(),
            good_statuses,
        }
    }
}

/// Inclusive character ranges.
pub type CharRanges = heapless::Vec<(char, char), MAX_CHAR_RANGES>;

/// What keys and values must satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    /// Longest key, in bytes (at most `MAX_KEY_LEN`).
    pub key_max_bytes: usize,
    /// Characters allowed in keys (empty: any; the polling service's names
    /// pass through as they are, escapes included).
    pub key_allowed: CharRanges,
    /// Longest string value, in bytes (at most `MAX_STRING_VALUE_LEN`).
    pub string_max_bytes: usize,
}

impl Default for Validation {
    fn default() -> Self {
        Validation {
            key_max_bytes: MAX_KEY_LEN,
            key_allowed: CharRanges::new(),
            string_max_bytes: MAX_STRING_VALUE_LEN,
        }
    }
}

/// Why a character set is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharSetError {
    /// More than `MAX_CHAR_RANGES` ranges.
    TooManyRanges,
    /// A range whose end comes before its start, e.g. `z-a`.
    Reversed,
}

impl core::fmt::Display for CharSetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CharSetError::TooManyRanges => {
                write!(f, "more than {MAX_CHAR_RANGES} characters and ranges")
            }
            CharSetError::Reversed => f.write_str(
                "a range ends before it starts (`z-a`); a '-' meant as itself goes first or last",
            ),
        }
    }
}

/// Parses `A-Za-z0-9_.` style sets: single characters and `a-z` ranges; a
/// `-` first or last is itself.
pub fn parse_char_ranges(text: &str) -> Result<CharRanges, CharSetError> {
    let chars: heapless::Vec<char, 256> = text.chars().take(256).collect();
    let mut ranges = CharRanges::new();
    let mut i = 0;
    while i < chars.len() {
        let start = chars[i];
        let (end, step) = if i + 2 < chars.len() && chars[i + 1] == '-' {
            (chars[i + 2], 3)
        } else {
            (start, 1)
        };
        if end < start {
            return Err(CharSetError::Reversed);
        }
        ranges
            .push((start, end))
            .map_err(|_| CharSetError::TooManyRanges)?;
        i += step;
    }
    Ok(ranges)
}

/// Filters, mapping rules and validation, as one set swapped whole on reload.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RuleSet {
    /// Which entries are taken.
    pub filters: Filters,
    /// Mapping rules; the first whose patterns match applies.
    pub rules: heapless::Vec<Rule, MAX_RULES>,
    /// What keys and values must satisfy.
    pub validation: Validation,
}

impl RuleSet {
    /// Whether any filter is set (else names need not be unescaped).
    pub fn filters_names(&self) -> bool {
        let f = &self.filters;
        !(f.include_devices.is_empty()
            && f.exclude_devices.is_empty()
            && f.include_tags.is_empty()
            && f.exclude_tags.is_empty())
    }

    /// Whether the device and tag pass the filters.
    pub fn admits(&self, device: &str, tag_name: &str, tag_id: &str) -> bool {
        let f = &self.filters;
        let any = |patterns: &[Pattern], text: &str| patterns.iter().any(|p| glob_match(p, text));
        let tag = |patterns: &[Pattern]| any(patterns, tag_name) || any(patterns, tag_id);
        (f.include_devices.is_empty() || any(&f.include_devices, device))
            && !any(&f.exclude_devices, device)
            && (f.include_tags.is_empty() || tag(&f.include_tags))
            && !tag(&f.exclude_tags)
    }

    /// The first rule matching the device and the tag's name or id.
    pub fn rule_for(&self, device: &str, tag_name: &str, tag_id: &str) -> Option<(u8, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, r)| {
                glob_match(&r.device, device)
                    && (glob_match(&r.tag, tag_name) || glob_match(&r.tag, tag_id))
            })
            .map(|(i, r)| (i as u8, r))
    }

    /// Checks a key's length and characters.
    pub fn validate_key(&self, key: &str) -> Result<(), RejectReason> {
        if key.len() > self.validation.key_max_bytes {
            return Err(RejectReason::KeyTooLong);
        }
        let allowed = &self.validation.key_allowed;
        let ok = |c: char| allowed.iter().any(|&(low, high)| (low..=high).contains(&c));
        if allowed.is_empty() || key.chars().all(ok) {
            Ok(())
        } else {
            Err(RejectReason::KeyInvalidCharacters)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> heapless::Vec<Pattern, MAX_PATTERNS> {
        list.iter()
            .map(|p| Pattern::try_from(*p).unwrap())
            .collect()
    }

    #[test]
    fn filters_by_device_and_by_tag_name_or_id() {
        let mut set = RuleSet::default();
        assert!(!set.filters_names());
        assert!(set.admits("any", "thing", "t-1"));
        set.filters.include_devices = patterns(&["Boiler-*", "Pump*"]);
        set.filters.exclude_devices = patterns(&["Boiler-9"]);
        set.filters.exclude_tags = patterns(&["*_raw", "t-9?"]);
        assert!(set.filters_names());
        assert!(set.admits("Boiler-1", "Temp", "t-001"));
        assert!(set.admits("Pump Station 2", "Flow", "flow"));
        assert!(!set.admits("Chiller", "Temp", "t-001"));
        assert!(!set.admits("Boiler-9", "Temp", "t-001"));
        assert!(!set.admits("Boiler-1", "Temp_raw", "t-001"));
        assert!(!set.admits("Boiler-1", "Temp", "t-91"));
        set.filters.include_tags = patterns(&["Temp*"]);
        assert!(set.admits("Boiler-1", "Temperature", "t-1"));
        assert!(!set.admits("Boiler-1", "Pressure", "t-2"));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let mut set = RuleSet::default();
        set.rules
            .push(Rule::matching("Boiler-*", "t-00?").unwrap())
            .unwrap();
        set.rules.push(Rule::matching("*", "*").unwrap()).unwrap();
        assert_eq!(
            set.rule_for("Boiler-1", "Mode", "t-005").map(|r| r.0),
            Some(0)
        );
        assert_eq!(
            set.rule_for("Boiler-1", "t-010", "t-010").map(|r| r.0),
            Some(1)
        );
        set.rules.pop();
        assert!(set.rule_for("Pump", "x", "y").is_none());
    }

    #[test]
    fn keys_are_checked_for_length_and_characters() {
        let mut set = RuleSet::default();
        assert_eq!(set.validate_key("Kühlraum \"Nord\".T"), Ok(()));
        assert_eq!(set.validate_key("a\u{7}b"), Ok(()));
        set.validation.key_allowed = parse_char_ranges("A-Za-z0-9_.-").unwrap();
        assert_eq!(set.validate_key("Boiler-1.t_1"), Ok(()));
        assert_eq!(
            set.validate_key("Boiler 1.t"),
            Err(RejectReason::KeyInvalidCharacters)
        );
        set.validation.key_max_bytes = 5;
        assert_eq!(set.validate_key("abcdef"), Err(RejectReason::KeyTooLong));
        assert_eq!(parse_char_ranges("z-a"), Err(CharSetError::Reversed));
        assert_eq!(
            parse_char_ranges("-a").unwrap().as_slice(),
            &[('-', '-'), ('a', 'a')]
        );
    }
}
