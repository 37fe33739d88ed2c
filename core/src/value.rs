//! Tag values, keeping the JSON type they arrived with.

use core::fmt;
use core::num::NonZeroU64;

use crate::config::MAX_STRING_VALUE_LEN;

/// A string value of bounded length.
/// Its length is a `u16`: a `usize` would make every [`Value`], and so every
/// tag slot, 8 bytes larger.
pub type StringValue = heapless::String<MAX_STRING_VALUE_LEN, u16>;

const _: () = assert!(
    MAX_STRING_VALUE_LEN <= u8::MAX as usize,
    "DATASERVICE_SYNC_MAX_STRING_LEN must be at most 255: a value's bytes give its length in one"
);

/// A tag value as the Data-Service will receive it. An integer stays an
/// integer (`3`, never `3.0`); a float is always finite.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A JSON number without fraction or exponent that fits in `i64`.
    Int(i64),
    /// Any other finite JSON number.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A string of at most [`MAX_STRING_VALUE_LEN`] bytes.
    Str(StringValue),
}

impl Value {
    /// The value as a number, if it is one.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// The data type name the Data-Service uses for this value.
    pub fn data_type(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Str(_) => "string",
        }
    }

    /// The data type a new key for this value is registered with: every
    /// number as `float`, as the product's frontend does. A tag's JSON
    /// number type says nothing reliable (a clamped float tag answers the
    /// integer limit, a conversion error `0`).
    pub fn registration_type(&self) -> &'static str {
        match self {
            Value::Int(_) | Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Str(_) => "string",
        }
    }

    /// Whether the Data-Service stores this value unchanged in a key of
    /// `data_type`: it coerces each write to the key's type, truncating a
    /// fraction into an `int`, and replaces what does not coerce by the
    /// key's default with quality BAD.
    pub fn fits_data_type(&self, data_type: &str) -> bool {
        // Integers up to 2^53 are exact in a double.
        const EXACT: i64 = 1 << 53;
        match (data_type, self) {
            ("raw", _) => true,
            ("float", Value::Float(_)) => true,
            ("float", Value::Int(i)) => (-EXACT..=EXACT).contains(i),
            ("int", Value::Int(_)) => true,
            ("int", Value::Float(x)) => x.abs() <= EXACT as f64 && *x as i64 as f64 == *x,
            ("bool", Value::Bool(_)) => true,
            ("string", Value::Str(_)) => true,
            _ => false,
        }
    }
}

/// A 64-bit FNV-1a hash of a value and its type: what the engine remembers
/// of the last acknowledged value, instead of a copy. Never zero, so that
/// "no value acknowledged" costs a slot no extra bytes.
pub(crate) fn value_hash(value: &Value) -> NonZeroU64 {
    fn fnv(hash: u64, bytes: &[u8]) -> u64 {
        bytes.iter().fold(hash, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
    let start = 0xcbf2_9ce4_8422_2325;
    let hash = match value {
        Value::Int(v) => fnv(fnv(start, b"i"), &v.to_le_bytes()),
        Value::Float(v) => fnv(fnv(start, b"f"), &v.to_bits().to_le_bytes()),
        Value::Bool(v) => fnv(start, if *v { b"t" } else { b"b" }),
        Value::Str(v) => fnv(fnv(start, b"s"), v.as_bytes()),
    };
    NonZeroU64::new(hash).unwrap_or(NonZeroU64::MIN)
}

/// Bytes [`encode_value`] writes for `value`.
pub(crate) fn encoded_value_len(value: &Value) -> usize {
    match value {
        Value::Int(_) | Value::Float(_) => 9,
        Value::Bool(_) => 1,
        Value::Str(s) => 2 + s.len(),
    }
}

/// Writes `value` as bytes (the form the spool, the backlog and the
/// staged readings share): `i` or `f` and 8 bytes little-endian, `t`, `b`,
/// or `s`, a length byte and the UTF-8. Returns the length, or `None` when
/// `out` is too small.
pub(crate) fn encode_value(value: &Value, out: &mut [u8]) -> Option<usize> {
    let len = encoded_value_len(value);
    let out = out.get_mut(..len)?;
    match value {
        Value::Int(v) => {
            out[0] = b'i';
            out[1..].copy_from_slice(&v.to_le_bytes());
        }
        Value::Float(v) => {
            out[0] = b'f';
            out[1..].copy_from_slice(&v.to_bits().to_le_bytes());
        }
        Value::Bool(true) => out[0] = b't',
        Value::Bool(false) => out[0] = b'b',
        Value::Str(s) => {
            out[0] = b's';
            // At most MAX_STRING_VALUE_LEN <= 255 bytes.
            out[1] = s.len() as u8;
            out[2..].copy_from_slice(s.as_bytes());
        }
    }
    Some(len)
}

/// Reads a value [`encode_value`] wrote at the start of `bytes`, and its
/// length; `None` if they are not one (e.g. read back from a damaged disk).
pub(crate) fn decode_value(bytes: &[u8]) -> Option<(Value, usize)> {
    let eight = || -> Option<[u8; 8]> { bytes.get(1..9)?.try_into().ok() };
    match *bytes.first()? {
        b'i' => Some((Value::Int(i64::from_le_bytes(eight()?)), 9)),
        b'f' => {
            let v = f64::from_le_bytes(eight()?);
            v.is_finite().then_some((Value::Float(v), 9))
        }
        b't' => Some((Value::Bool(true), 1)),
        b'b' => Some((Value::Bool(false), 1)),
        b's' => {
            let len = usize::from(*bytes.get(1)?);
            let text = core::str::from_utf8(bytes.get(2..2 + len)?).ok()?;
            Some((Value::Str(StringValue::try_from(text).ok()?), 2 + len))
        }
        _ => None,
    }
}

/// Why a number cannot become a [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// An integer outside `i64`, or a float that overflows to infinity.
    OutOfRange,
}

/// Converts a number as written in JSON (already validated by the lexer).
///
/// An integer beyond `i64` is rejected rather than written as a float: the
/// float would silently drop digits of a counter or an identifier.
pub fn parse_number(text: &str) -> Result<Value, NumberError> {
    let is_integer = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if is_integer {
        return text
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| NumberError::OutOfRange);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Value::Float(v)),
        _ => Err(NumberError::OutOfRange),
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(v) => serializer.serialize_i64(*v),
            Value::Float(v) => serializer.serialize_f64(*v),
            Value::Bool(v) => serializer.serialize_bool(*v),
            Value::Str(v) => serializer.serialize_str(v),
        }
    }
}

impl fmt::Display for Value {
    /// Shows the value as JSON would spell it (strings quoted, unescaped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(v) => write!(f, "\"{v}\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_json_type() {
        assert_eq!(parse_number("3"), Ok(Value::Int(3)));
        assert_eq!(parse_number("-0"), Ok(Value::Int(0)));
        assert_eq!(parse_number("-0.5e-3"), Ok(Value::Float(-0.0005)));
        assert_eq!(parse_number("71.25"), Ok(Value::Float(71.25)));
        assert_eq!(parse_number("3.0"), Ok(Value::Float(3.0)));
        assert_eq!(
            parse_number("9223372036854775807"),
            Ok(Value::Int(i64::MAX))
        );
        assert_eq!(
            parse_number("123456789012345678901234567890"),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(parse_number("1e400"), Err(NumberError::OutOfRange));
    }
}
