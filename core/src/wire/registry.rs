//! The Data-Service HTTP API as the sync uses it (PROTOCOLS.md §3):
//! `GET /detailed` to learn which keys exist, `POST /register/bulk` to
//! register missing keys and to fetch the ids of existing ones without side
//! effects (same address, default, data_type and units).

use core::fmt::Write;

use super::json::{JsonStr, Token};
use super::list::BufferTooSmall;
use super::list::ListWriter;
use super::members::MemberSplitter;
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

/// `GET /detailed` read while it streams in: each member is validated and
/// walked by [`parse_detailed`] as soon as it is whole. Points are visited
/// before the rest of the body is known to be well formed: a caller that
/// gets an error must undo what it took from them.
#[derive(Clone, Debug, Default)]
pub struct DetailedStream {
    members: MemberSplitter,
}

impl DetailedStream {
    /// Visits the points complete at the start of `part` (the body's bytes
    /// not used yet); returns how many bytes were used.
    pub fn feed<F>(&mut self, part: &mut [u8], mut visit: F) -> Result<usize, DocumentError>
    where
        F: FnMut(DetailedPoint<'_>),
    {
        self.members
            .split(part, |member| parse_detailed(member, &mut visit))
    }

    /// The body ended: it must have been one whole object.
    pub fn finish(&self) -> Result<(), DocumentError> {
        self.members.finish()
    }
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

#[cfg(test)]
mod stream_proptests {
    //! `/detailed` read in parts gives exactly what it gives read whole:
    //! the same points, and an error for the same broken bodies.

    use proptest::prelude::*;
    use std::string::{String, ToString};
    use std::vec::Vec;
    use std::{format, vec};

    use super::*;

    fn seen(point: DetailedPoint<'_>) -> String {
        format!(
            "{} {:?} {:?} {:?} {:?}",
            point.key.raw(),
            point.address,
            point.default,
            point.data_type.map(|s| s.raw().to_string()),
            point.units.map(|s| s.raw().to_string()),
        )
    }

    fn whole(body: &[u8]) -> Option<Vec<String>> {
        let mut points = Vec::new();
        parse_detailed(body, |p| points.push(seen(p))).ok()?;
        Some(points)
    }

    fn streamed(body: &[u8], size: usize) -> Option<Vec<String>> {
        let mut stream = DetailedStream::default();
        let mut points = Vec::new();
        let mut held = Vec::new();
        for part in body.chunks(size) {
            held.extend_from_slice(part);
            let used = stream.feed(&mut held, |p| points.push(seen(p))).ok()?;
            held.drain(..used);
        }
        let used = stream.feed(&mut held, |p| points.push(seen(p))).ok()?;
        (used == held.len()).then_some(())?;
        stream.finish().ok()?;
        Some(points)
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-z ,{}\\[\\]:]{0,6}|\\\\\"|\\\\\\\\|é"
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(String::from("null")),
            (-50_000i64..50_000).prop_map(|n| n.to_string()),
            Just(String::from("0.5")),
            text().prop_map(|t| format!("\"{t}\"")),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec((text(), inner), 0..3).prop_map(|fields| {
                    let fields: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| format!("\"{k}\": {v}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    fn point() -> impl Strategy<Value = String> {
        (text(), 40_001u32..45_000, value(), value(), " {0,2}").prop_map(
            |(key, address, default, other, space)| {
                format!(
                    "\"{key}\":{space}{{\"key\": \"{key}\", \"address\": {address}, \"default\": {default}, \"data_type\": \"float\", \"units\": \"C\", \"other\": {other}}}"
                )
            },
        )
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        (prop::collection::vec(point(), 0..5), "[ \n]{0,2}").prop_map(|(points, space)| {
            format!("{space}{{{}}}{space}", points.join(",\n ")).into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases()))]

        #[test]
        fn a_whole_body_gives_the_same_points_in_any_parts(body in body(), size in 1usize..64) {
            let expected = whole(&body);
            prop_assert!(expected.is_some());
            prop_assert_eq!(streamed(&body, size), expected);
        }

        #[test]
        fn a_broken_body_is_refused_in_any_parts(
            body in body(),
            size in 1usize..64,
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(vec![b'{', b'}', b'[', b']', b',', b':', b'"', b'\\', b'x', 0xff, b' ']),
            cut in any::<bool>(),
        ) {
            let mut body = body;
            let at = at.index(body.len() + 1);
            if cut {
                body.truncate(at);
            } else {
                body.insert(at, byte);
            }
            prop_assert_eq!(streamed(&body, size).is_some(), whole(&body).is_some());
            if let Some(points) = whole(&body) {
                prop_assert_eq!(streamed(&body, size), Some(points));
            }
        }
    }
}
