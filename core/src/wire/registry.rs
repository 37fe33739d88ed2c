//! The Data-Service HTTP API as the sync uses it (PROTOCOLS.md §3):
//! `GET /detailed` to learn which keys exist, `POST /register/bulk` to
//! register missing keys and to fetch the ids of existing ones without side
//! effects (same address, default, data_type and units).

use core::fmt::Write;

use super::ipc::BufferTooSmall;
use super::json::{JsonStr, Token};
use super::list::ListWriter;
use super::polled::{DocumentError, open_object};

/// A point's address in `/detailed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Address {
    /// No `address` field, or not a number that fits.
    Unusable,
    /// `null`: created inside the Data-Service; re-registering would move it.
    Null,
    /// The Modbus-style address.
    Number(u32),
}

/// One point of `GET /detailed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetailedPoint<'a> {
    /// The key (the object's member name).
    pub key: JsonStr<'a>,
    /// Its address.
    pub address: Address,
    /// `default` exactly as written (JSON text), if present.
    pub default: Option<&'a str>,
    /// `data_type`, if a string.
    pub data_type: Option<JsonStr<'a>>,
    /// `units`, if a string.
    pub units: Option<JsonStr<'a>>,
}

/// Validates a `/detailed` body whole, then calls `visit` for each point.
pub fn parse_detailed<'a, F>(body: &'a [u8], mut visit: F) -> Result<(), DocumentError>
where
    F: FnMut(DetailedPoint<'a>),
{
    let mut lexer = open_object(body)?;
    // Validated whole, so the body is UTF-8.
    let text = core::str::from_utf8(body).map_err(|_| DocumentError::NotAnObject)?;
    while let Some(Token::Key(key)) = lexer.next_token()? {
        let first = lexer.next_value()?;
        if first != Token::BeginObject {
            lexer.skip_value(first)?;
            continue;
        }
        let mut point = DetailedPoint {
            key,
            address: Address::Unusable,
            default: None,
            data_type: None,
            units: None,
        };
        while let Some(Token::Key(field)) = lexer.next_token()? {
            let start = lexer.position();
            let value = lexer.next_value()?;
            lexer.skip_value(value)?;
            match (field.raw(), value) {
                ("address", Token::Null) => point.address = Address::Null,
                ("address", Token::Number(n)) => {
                    point.address = n.parse().map_or(Address::Unusable, Address::Number)
                }
                ("default", _) => point.default = Some(text[start..lexer.position()].trim_start()),
                ("data_type", Token::Str(s)) => point.data_type = Some(s),
                ("units", Token::Str(s)) => point.units = Some(s),
                _ => {}
            }
        }
        visit(point);
    }
    Ok(())
}

/// One entry of a `/register/bulk` answer's `results`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegisterResult<'a> {
    /// Position of the point in the request.
    pub index: Option<usize>,
    /// Whether it was registered.
    pub ok: bool,
    /// Its id, when registered.
    pub id: Option<JsonStr<'a>>,
    /// Why not, when not.
    pub error: Option<JsonStr<'a>>,
}

/// Validates a `/register/bulk` answer whole, then calls `visit` for each result.
pub fn parse_register_bulk<'a, F>(body: &'a [u8], mut visit: F) -> Result<(), DocumentError>
where
    F: FnMut(RegisterResult<'a>),
{
    let mut lexer = open_object(body)?;
    while let Some(Token::Key(name)) = lexer.next_token()? {
        let value = lexer.next_value()?;
        if name.raw() != "results" || value != Token::BeginArray {
            lexer.skip_value(value)?;
            continue;
        }
        loop {
            match lexer.next_value()? {
                Token::EndArray => break,
                Token::BeginObject => {
                    let mut result = RegisterResult {
                        index: None,
                        ok: false,
                        id: None,
                        error: None,
                    };
                    while let Some(Token::Key(field)) = lexer.next_token()? {
                        let value = lexer.next_value()?;
                        lexer.skip_value(value)?;
                        match (field.raw(), value) {
                            ("index", Token::Number(n)) => result.index = n.parse().ok(),
                            ("ok", Token::Bool(ok)) => result.ok = ok,
                            ("id", Token::Str(s)) => result.id = Some(s),
                            ("error", Token::Str(s)) => result.error = Some(s),
                            _ => {}
                        }
                    }
                    visit(result);
                }
                other => lexer.skip_value(other)?,
            }
        }
    }
    Ok(())
}

/// Builds a `/register/bulk` body point by point, refusing a point that
/// would not fit (the body stays valid).
pub struct RegisterEncoder<'b> {
    list: ListWriter<'b>,
}

const REGISTER_PREFIX: &[u8] = br#"{"points":["#;
const REGISTER_SUFFIX: &[u8] = br#"],"allow_address_conflict":false}"#;

/// What to register for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointSpec<'s> {
    /// An existing key, repeated exactly as `/detailed` shows it: no side
    /// effects, and the answer carries its id.
    Existing {
        /// Its address.
        address: u32,
        /// Its default, as JSON text.
        default: &'s str,
        /// Its data type.
        data_type: &'s str,
        /// Its units.
        units: &'s str,
    },
    /// A new key with an inferred data type (the Data-Service allocates the address).
    New {
        /// `float`, `int`, `bool` or `string`.
        data_type: &'s str,
    },
}

impl<'b> RegisterEncoder<'b> {
    /// Starts a body in `buf`.
    pub fn new(buf: &'b mut [u8]) -> Result<Self, BufferTooSmall> {
        Ok(RegisterEncoder {
            list: ListWriter::new(buf, REGISTER_PREFIX, REGISTER_SUFFIX)?,
        })
    }

    /// Adds one point, or refuses it when the body would not fit.
    pub fn push(&mut self, key: &str, spec: PointSpec<'_>) -> Result<(), BufferTooSmall> {
        self.list.push(|cursor| {
            cursor.raw(br#"{"key":"#)?;
            cursor.json(key)?;
            match spec {
                PointSpec::Existing {
                    address,
                    default,
                    data_type,
                    units,
                } => {
                    write!(cursor, ",\"address\":{address},\"default\":")
                        .map_err(|_| BufferTooSmall)?;
                    cursor.raw(default.as_bytes())?;
                    cursor.raw(br#","data_type":"#)?;
                    cursor.json(data_type)?;
                    cursor.raw(br#","units":"#)?;
                    cursor.json(units)?;
                }
                PointSpec::New { data_type } => {
                    cursor.raw(br#","data_type":"#)?;
                    cursor.json(data_type)?;
                }
            }
            cursor.raw(b"}")
        })
    }

    /// How many points the body holds.
    pub fn count(&self) -> usize {
        self.list.count()
    }

    /// Closes the body; returns its length.
    pub fn finish(self) -> usize {
        self.list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_detailed_points_with_their_exact_defaults() {
        let body = br#"{"a": {"key": "a", "value": 1, "default": 0.0, "address": 40001, "data_type": "float", "units": "C"},
                       "b": {"key": "b", "default": "x\"y", "address": null, "data_type": "string", "units": ""},
                       "c": 5}"#;
        let mut points: heapless::Vec<DetailedPoint<'_>, 4> = heapless::Vec::new();
        parse_detailed(body, |p| points.push(p).unwrap()).unwrap();
        assert_eq!(points.len(), 2);
        assert!(points[0].key.eq_str("a"));
        assert_eq!(points[0].address, Address::Number(40001));
        assert_eq!(points[0].default, Some("0.0"));
        assert!(points[0].units.unwrap().eq_str("C"));
        assert_eq!(points[1].address, Address::Null);
        assert_eq!(points[1].default, Some(r#""x\"y""#));
        assert_eq!(
            parse_detailed(b"[1]", |_| {}),
            Err(DocumentError::NotAnObject)
        );
    }

    #[test]
    fn encodes_register_bodies_and_reads_their_results() {
        let mut buf = [0u8; 256];
        let mut enc = RegisterEncoder::new(&mut buf).unwrap();
        enc.push(
            "a",
            PointSpec::Existing {
                address: 40001,
                default: "0.0",
                data_type: "float",
                units: "°C",
            },
        )
        .unwrap();
        enc.push("K\"ü", PointSpec::New { data_type: "int" })
            .unwrap();
        let long = [b'x'; 200];
        let long = core::str::from_utf8(&long).unwrap();
        assert_eq!(
            enc.push(long, PointSpec::New { data_type: "int" }),
            Err(BufferTooSmall)
        );
        let n = enc.finish();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            r#"{"points":[{"key":"a","address":40001,"default":0.0,"data_type":"float","units":"°C"},{"key":"K\"ü","data_type":"int"}],"allow_address_conflict":false}"#
        );
        let answer = br#"{"ok": false, "total_points": 2, "successful": 1, "failed": 1, "results": [{"index": 0, "key": "a", "id": "00ff", "ok": true}, {"index": 1, "key": "b", "ok": false, "error": "address range exhausted for data_type int"}], "errors": []}"#;
        let mut seen: heapless::Vec<(Option<usize>, bool), 4> = heapless::Vec::new();
        parse_register_bulk(answer, |r| {
            if r.ok {
                assert!(r.id.unwrap().eq_str("00ff"));
            } else {
                assert!(
                    r.error
                        .unwrap()
                        .eq_str("address range exhausted for data_type int")
                );
            }
            seen.push((r.index, r.ok)).unwrap();
        })
        .unwrap();
        assert_eq!(seen.as_slice(), &[(Some(0), true), (Some(1), false)]);
    }
}
