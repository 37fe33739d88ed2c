//! A JSON object read one member at a time while it streams in, so that a
//! large body (the Data-Service's `/detailed`: 2 MB at 10,000 keys) is used
//! in the memory of one member. Each member is handed over as the text of a
//! one-member object, `{"key": value}`, to the ordinary parsers, which
//! validate it whole; this only finds where members end.

use core::fmt;

use super::json::JsonError;
use super::scan::{find_string_special, find_structural};
use crate::config::MAX_JSON_DEPTH;

/// Why a whole document was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DocumentError {
    /// Not well-formed JSON (truncated, broken, nested too deep).
    Json(JsonError),
    /// Well-formed, but the top level is not an object of devices.
    NotAnObject,
    /// Its readings need more than the staging room's bytes, which hold
    /// them until the document is known whole.
    ReadingsOverflow {
        /// The staging room's size in bytes.
        room: usize,
    },
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentError::Json(e) => write!(f, "invalid JSON: {e}"),
            DocumentError::NotAnObject => f.write_str("top level is not an object of devices"),
            DocumentError::ReadingsOverflow { room } => write!(
                f,
                "its readings need more than the {room} bytes that hold them until it is known whole"
            ),
        }
    }
}

impl core::error::Error for DocumentError {}

impl From<JsonError> for DocumentError {
    fn from(e: JsonError) -> Self {
        DocumentError::Json(e)
    }
}

/// Where the splitter is in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Before the opening `{`.
    Before,
    /// Inside; the next unused byte is the `{` or the `,` before a member.
    Inside { first: bool },
    /// After the closing `}`: only white space may follow.
    After,
}

/// Splits one streamed JSON object into its members.
#[derive(Clone, Debug)]
pub struct MemberSplitter {
    place: Place,
    /// Stream offset of the next part's first byte (for error offsets).
    offset: usize,
}

impl Default for MemberSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemberSplitter {
    /// A splitter at the start of the stream.
    pub const fn new() -> Self {
        MemberSplitter {
            place: Place::Before,
            offset: 0,
        }
    }

    /// Calls `visit` with each complete member at the start of `part` (the
    /// stream's bytes not used yet) and returns how many bytes were used;
    /// the rest must be offered again, with what follows it. `visit` sees a
    /// separator of `part` turned into a brace; `part` is restored after.
    /// An error from `visit` stops the split, its offsets made stream offsets.
    pub fn split<F>(&mut self, part: &mut [u8], mut visit: F) -> Result<usize, DocumentError>
    where
        F: FnMut(&[u8]) -> Result<(), DocumentError>,
    {
        let mut used = 0;
        let result = loop {
            match self.place {
                Place::Before => {
                    // Its only error, `NotAnObject`, has no offset to move.
                    let Some(at) = opening_brace(part)? else {
                        break Ok(());
                    };
                    used = at;
                    self.place = Place::Inside { first: true };
                }
                Place::Inside { first } => {
                    let key = skip_space(part, used + 1);
                    match part.get(key) {
                        None => break Ok(()),
                        Some(b'}') if first => {
                            used = key + 1;
                            self.place = Place::After;
                            continue;
                        }
                        Some(b'"') => {}
                        Some(_) => {
                            let error = JsonError::UnexpectedByte { at: key };
                            break Err(shifted(DocumentError::Json(error), self.offset));
                        }
                    }
                    let end = match member_end(part, key) {
                        Ok(Some(end)) => end,
                        Ok(None) => break Ok(()),
                        Err(error) => break Err(shifted(DocumentError::Json(error), self.offset)),
                    };
                    let (opening, closing) = (part[used], part[end]);
                    part[used] = b'{';
                    part[end] = b'}';
                    let visited = visit(&part[used..=end]);
                    part[used] = opening;
                    part[end] = closing;
                    if let Err(error) = visited {
                        break Err(shifted(error, self.offset + used));
                    }
                    if closing == b'}' {
                        used = end + 1;
                        self.place = Place::After;
                    } else {
                        used = end;
                        self.place = Place::Inside { first: false };
                    }
                }
                Place::After => {
                    break only_space_after(part, used)
                        .map(|end| used = end)
                        .map_err(|error| shifted(error, self.offset));
                }
            }
        };
        result?;
        self.offset += used;
        Ok(used)
    }

    /// The stream ended: the object must have been closed.
    pub fn finish(&self) -> Result<(), DocumentError> {
        match self.place {
            Place::After => Ok(()),
            _ => Err(DocumentError::Json(JsonError::UnexpectedEnd)),
        }
    }
}

/// Where the `{` opening a document starts `part` (after white space), or
/// `None` if more is needed.
pub(crate) fn opening_brace(part: &[u8]) -> Result<Option<usize>, DocumentError> {
    let at = skip_space(part, 0);
    match part.get(at) {
        None => Ok(None),
        Some(b'{') => Ok(Some(at)),
        Some(_) => Err(DocumentError::NotAnObject),
    }
}

/// After a document's closing `}` at `from`: only white space may follow.
/// Returns the end of `part`.
pub(crate) fn only_space_after(part: &[u8], from: usize) -> Result<usize, DocumentError> {
    let end = skip_space(part, from);
    if end < part.len() {
        return Err(DocumentError::Json(JsonError::TrailingData { at: end }));
    }
    Ok(end)
}

pub(crate) fn skip_space(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = bytes.get(i) {
        i += 1;
    }
    i
}

/// Index of the `,` or `}` that ends the member (of the document's
/// top-level object) whose key starts at `start`, or `None` if `bytes` ends
/// first. Strings and nesting are only followed, not checked (the member's
/// parser checks them), but nesting is bounded from the document's root,
/// as the parser of a whole document would: the object is level 1.
pub(crate) fn member_end(bytes: &[u8], start: usize) -> Result<Option<usize>, JsonError> {
    let max_depth = MAX_JSON_DEPTH - 1;
    let mut depth = 0usize;
    let mut i = start;
    loop {
        // Runs of plain bytes are skipped a word at a time: this sees every
        // byte of a 1 MB document each cycle.
        let Some(found) = bytes.get(i..).and_then(find_structural) else {
            return Ok(None);
        };
        i += found;
        match bytes[i] {
            b'"' => match string_end(bytes, i) {
                Some(end) => i = end,
                None => return Ok(None),
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(JsonError::NestingTooDeep { at: i });
                }
            }
            b',' | b'}' if depth == 0 => return Ok(Some(i)),
            b'}' | b']' if depth > 0 => depth -= 1,
            b']' => return Err(JsonError::UnexpectedByte { at: i }),
            _ => {}
        }
        i += 1;
    }
}

/// Index of the `"` closing the string whose `"` is at `open`, or `None`
/// if `bytes` ends first. Escapes are only skipped, other bytes not
/// checked: the lexer checks them.
pub(crate) fn string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        i += find_string_special(bytes.get(i..)?)?;
        match bytes[i] {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

pub(crate) fn shifted(error: DocumentError, by: usize) -> DocumentError {
    match error {
        DocumentError::Json(e) => DocumentError::Json(e.shifted(by)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    /// Streams `doc` in parts of `size` bytes as the runner does (the
    /// unused rest kept and added to); the member texts seen, or the error.
    pub(super) fn stream(doc: &[u8], size: usize) -> Result<Vec<String>, DocumentError> {
        let mut splitter = MemberSplitter::new();
        let mut held = Vec::new();
        let mut seen = Vec::new();
        let mut visit = |member: &[u8]| {
            seen.push(String::from_utf8_lossy(member).into_owned());
            Ok(())
        };
        for part in doc.chunks(size) {
            held.extend_from_slice(part);
            let used = splitter.split(&mut held, &mut visit)?;
            held.drain(..used);
        }
        splitter.split(&mut held, &mut visit)?;
        splitter.finish()?;
        Ok(seen)
    }

    #[test]
    fn members_come_whole_whatever_the_part_size() {
        let doc = br#" { "a" : {"x": "},{", "y": [1, {"z": "\"]"}]} ,"b":2,"c\"d": "e" }
 "#;
        for size in 1..=doc.len() {
            assert_eq!(
                stream(doc, size).unwrap(),
                [
                    r#"{ "a" : {"x": "},{", "y": [1, {"z": "\"]"}]} }"#,
                    r#"{"b":2}"#,
                    r#"{"c\"d": "e" }"#,
                ],
                "part size {size}"
            );
        }
    }

    #[test]
    fn an_empty_object_has_no_members() {
        for doc in [&b"{}"[..], b" {\n} ", b"{ }"] {
            for size in 1..=doc.len() {
                assert_eq!(stream(doc, size), Ok(Vec::new()));
            }
        }
    }

    #[test]
    fn a_broken_object_is_an_error_at_its_stream_offset() {
        let json = |e| Err(DocumentError::Json(e));
        type Case<'a> = (&'a [u8], Result<Vec<String>, DocumentError>);
        let cases: [Case<'_>; 6] = [
            (br#"{"a":1,}"#, json(JsonError::UnexpectedByte { at: 7 })),
            (br#"{"a":1} x"#, json(JsonError::TrailingData { at: 8 })),
            (br#"{"a":1"#, json(JsonError::UnexpectedEnd)),
            (b"", json(JsonError::UnexpectedEnd)),
            (b"[1]", Err(DocumentError::NotAnObject)),
            // Nesting is only counted here (the members' parser checks
            // which bracket closes what): the stray `]` is what it sees.
            (
                br#"{"a": [1}, "b": 2]}"#,
                json(JsonError::UnexpectedByte { at: 17 }),
            ),
        ];
        for (doc, expected) in cases {
            for size in 1..=doc.len().max(1) {
                assert_eq!(stream(doc, size), expected, "{doc:?} in parts of {size}");
            }
        }
    }

    #[test]
    fn nesting_is_bounded_before_the_member_ends() {
        let mut doc = Vec::from(&b"{\"a\": "[..]);
        doc.extend(core::iter::repeat_n(b'[', 100_000));
        // Level 65 from the document's root (the object is level 1): the
        // 64th `[`.
        let first_too_deep = 6 + MAX_JSON_DEPTH - 1;
        assert_eq!(
            MemberSplitter::new().split(&mut doc, |_| Ok(())),
            Err(DocumentError::Json(JsonError::NestingTooDeep {
                at: first_too_deep
            }))
        );
    }
}
