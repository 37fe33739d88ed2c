//! The polling service's `GET /deploy/api/io/polled-values` body:
//! `{device: {tag_id: {value, status, tag_name?, name?, ...}}}`.
//!
//! [`DocumentStream`] reads it one tag at a time as it streams in (1 MB at
//! 10,000 tags need never be held whole): each tag object is validated
//! whole and handed over; the structure around them is checked as it
//! passes. A broken body yields the entries before the break, then the
//! error: whoever must not use a broken document's entries holds them back
//! until [`DocumentStream::finish`] says it was whole.

use super::json::{JsonError, JsonStr, Lexer, Token, utf8_prefix};
pub use super::members::DocumentError;
use super::members::{
    member_end, only_space_after, opening_brace, shifted, skip_space, string_end,
};
use crate::config::MAX_KEY_LEN;

/// A tag's `value` field as found; containers are not kept, only noted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawValue<'a> {
    /// A scalar token (string, number, bool, null or a non-finite literal).
    Scalar(Token<'a>),
    /// An object or an array.
    Container,
}

/// The fields of one tag object that the sync reads; others are skipped.
/// A field given twice keeps its last occurrence, as Python's parser does.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TagFields<'a> {
    /// `value`, if present.
    pub value: Option<RawValue<'a>>,
    /// `status`, if present (any JSON type).
    pub status: Option<RawValue<'a>>,
    /// `tag_name`, if present.
    pub tag_name: Option<RawValue<'a>>,
    /// `name`, if present.
    pub name: Option<RawValue<'a>>,
    /// `timestamp` (Unix seconds), if present.
    pub timestamp: Option<RawValue<'a>>,
}

/// One entry met while walking a document.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Entry<'a> {
    /// A tag object.
    Tag {
        /// The device's name.
        device: JsonStr<'a>,
        /// The tag's id (its key in the device object).
        tag_id: JsonStr<'a>,
        /// What the tag object holds.
        fields: TagFields<'a>,
    },
    /// A device whose value is not an object.
    DeviceNotObject {
        /// The device's name.
        device: JsonStr<'a>,
    },
    /// A tag whose value is not an object.
    TagNotObject {
        /// The device's name.
        device: JsonStr<'a>,
        /// The tag's id.
        tag_id: JsonStr<'a>,
    },
    /// A device whose name is longer than [`MAX_DEVICE_NAME_RAW`]: its tags
    /// are checked but not handed over.
    DeviceNameTooLong {
        /// The name's start (up to its first escape).
        start: JsonStr<'a>,
        /// The whole name's length in bytes, as sent.
        len: usize,
    },
}

/// Longest device name kept while its tags stream in, in bytes as sent
/// (escapes included): six times the longest key, so that any name a key
/// can hold fits.
pub const MAX_DEVICE_NAME_RAW: usize = 6 * MAX_KEY_LEN;

/// How much of a too-long device name is kept to name it in a report.
const DEVICE_NAME_SHOWN: usize = 64;

/// Validates `body` whole (so that nothing is used from a broken text) and
/// returns a lexer just inside its top-level object.
pub(crate) fn open_object(body: &[u8]) -> Result<Lexer<'_>, DocumentError> {
    super::json::validate(body)?;
    let mut lexer = Lexer::new(body);
    if lexer.next_token()? != Some(Token::BeginObject) {
        return Err(DocumentError::NotAnObject);
    }
    Ok(lexer)
}

/// Calls `visit` for every entry of a whole `body` in document order, then
/// says whether it was whole and well-formed (entries before a break are
/// visited all the same).
pub fn parse_document<F>(body: &[u8], visit: F) -> Result<(), DocumentError>
where
    F: FnMut(Entry<'_>),
{
    let mut stream = DocumentStream::new();
    let used = stream.feed(body, visit)?;
    if used < body.len() {
        // The rest does not make a whole tag: the body was cut off.
        return Err(DocumentError::Json(JsonError::UnexpectedEnd));
    }
    stream.finish()
}

/// Where a [`DocumentStream`] is in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Before the opening `{`.
    Before,
    /// Among the devices; the next unused byte is the `{` or `,` before one.
    Devices { first: bool },
    /// Inside a device's object, before its first tag or after one.
    InDevice { first: bool },
    /// After a device's object: a `,` or the closing `}` follows.
    AfterDevice,
    /// After the closing `}`: only white space may follow.
    After,
}

/// The name of the device whose tags are streaming in, as sent.
#[derive(Clone, Debug, Default)]
struct DeviceName {
    /// The whole raw name, or (too long) its start up to its first escape.
    raw: heapless::String<MAX_DEVICE_NAME_RAW>,
    escaped: bool,
    /// The whole name's raw length when it is too long to keep.
    too_long: Option<usize>,
}

impl DeviceName {
    /// Keeps the name that `quoted` (a JSON string, quotes included) spells.
    fn set(&mut self, quoted: &[u8]) -> Result<(), JsonError> {
        let mut lexer = Lexer::new(quoted);
        let Token::Str(name) = lexer.next_value()? else {
            return Err(JsonError::UnexpectedByte { at: 0 });
        };
        self.raw.clear();
        if self.raw.push_str(name.raw()).is_ok() {
            self.escaped = name.is_escaped();
            self.too_long = None;
            return Ok(());
        }
        let start = name.raw().split('\\').next().unwrap_or("");
        let mut end = start.len().min(DEVICE_NAME_SHOWN);
        while !start.is_char_boundary(end) {
            end -= 1;
        }
        // Fits: DEVICE_NAME_SHOWN < MAX_DEVICE_NAME_RAW.
        let _ = self.raw.push_str(&start[..end]);
        self.escaped = false;
        self.too_long = Some(name.raw().len());
        Ok(())
    }

    fn as_json(&self) -> JsonStr<'_> {
        JsonStr::from_parts(&self.raw, self.escaped)
    }
}

/// Reads the polled document as it streams in, one tag at a time, in the
/// memory of one tag object.
#[derive(Clone, Debug)]
pub struct DocumentStream {
    place: Place,
    /// Stream offset of the next part's first byte (for error offsets).
    offset: usize,
    device: DeviceName,
}

impl Default for DocumentStream {
    fn default() -> Self {
        Self::new()
    }
}

impl DocumentStream {
    /// A stream at the start of a document.
    pub fn new() -> Self {
        DocumentStream {
            place: Place::Before,
            offset: 0,
            device: DeviceName::default(),
        }
    }

    /// Calls `visit` for each entry complete at the start of `part` (the
    /// body's bytes not used yet) and returns how many bytes were used; the
    /// rest must be offered again, with what follows it.
    pub fn feed<F>(&mut self, part: &[u8], mut visit: F) -> Result<usize, DocumentError>
    where
        F: FnMut(Entry<'_>),
    {
        // Checked once: the tags' lexers take their text from it.
        let (text, invalid_utf8_at) = utf8_prefix(part);
        let mut used = 0;
        let result = loop {
            match self.place {
                Place::Before => {
                    // Its only error, `NotAnObject`, has no offset to move.
                    let Some(at) = opening_brace(part)? else {
                        break Ok(());
                    };
                    used = at;
                    self.place = Place::Devices { first: true };
                }
                Place::Devices { first } => match self.next_device(part, used, first, &mut visit) {
                    Ok(Some(next)) => used = next,
                    Ok(None) => break Ok(()),
                    Err(error) => break Err(error),
                },
                Place::InDevice { first } => {
                    // `used` follows ASCII punctuation: a character boundary.
                    let rest = text.get(used..).unwrap_or("");
                    let invalid = invalid_utf8_at.map(|at| at.saturating_sub(used));
                    match read_tags(rest, invalid, first, &self.device, &mut visit) {
                        Ok((n, closed)) => {
                            used += n;
                            self.place = if closed {
                                Place::AfterDevice
                            } else {
                                Place::InDevice {
                                    first: first && n == 0,
                                }
                            };
                            if !closed {
                                break Ok(());
                            }
                        }
                        Err(error) => break Err(DocumentError::Json(error.shifted(used))),
                    }
                }
                Place::AfterDevice => {
                    let next = skip_space(part, used);
                    match part.get(next) {
                        None => break Ok(()),
                        Some(b',') => {
                            used = next;
                            self.place = Place::Devices { first: false };
                        }
                        Some(b'}') => {
                            used = next + 1;
                            self.place = Place::After;
                        }
                        Some(_) => {
                            break Err(DocumentError::Json(JsonError::UnexpectedByte { at: next }));
                        }
                    }
                }
                Place::After => break only_space_after(part, used).map(|end| used = end),
            }
        };
        result.map_err(|error| shifted(error, self.offset))?;
        self.offset += used;
        Ok(used)
    }

    /// The body ended: the document must have been closed.
    pub fn finish(&self) -> Result<(), DocumentError> {
        match self.place {
            Place::After => Ok(()),
            _ => Err(DocumentError::Json(JsonError::UnexpectedEnd)),
        }
    }

    /// At the `{` or `,` at `at`, before a device: takes the device whole if
    /// its value is not an object, else keeps its name and enters it.
    /// Returns where the unused bytes start, or `None` if more are needed.
    fn next_device<F>(
        &mut self,
        part: &[u8],
        at: usize,
        first: bool,
        visit: &mut F,
    ) -> Result<Option<usize>, DocumentError>
    where
        F: FnMut(Entry<'_>),
    {
        let key = skip_space(part, at + 1);
        match part.get(key) {
            None => return Ok(None),
            Some(b'}') if first => {
                self.place = Place::After;
                return Ok(Some(key + 1));
            }
            Some(b'"') => {}
            Some(_) => return Err(DocumentError::Json(JsonError::UnexpectedByte { at: key })),
        }
        let Some(key_end) = string_end(part, key) else {
            return Ok(None);
        };
        let colon = skip_space(part, key_end + 1);
        match part.get(colon) {
            None => return Ok(None),
            Some(b':') => {}
            Some(_) => return Err(DocumentError::Json(JsonError::UnexpectedByte { at: colon })),
        }
        let value = skip_space(part, colon + 1);
        match part.get(value) {
            None => Ok(None),
            Some(b'{') => {
                self.device
                    .set(&part[key..=key_end])
                    .map_err(|e| DocumentError::Json(e.shifted(key)))?;
                if let Some(len) = self.device.too_long {
                    visit(Entry::DeviceNameTooLong {
                        start: self.device.as_json(),
                        len,
                    });
                }
                self.place = Place::InDevice { first: true };
                Ok(Some(value + 1))
            }
            Some(_) => {
                // Not an object: the whole member, to check it and report it.
                let Some(end) = member_end(part, key)? else {
                    return Ok(None);
                };
                read_device_not_object(&part[key..end], visit)
                    .map_err(|e| DocumentError::Json(e.shifted(key)))?;
                if part[end] == b'}' {
                    self.place = Place::After;
                    Ok(Some(end + 1))
                } else {
                    self.place = Place::Devices { first: false };
                    Ok(Some(end))
                }
            }
        }
    }
}

/// Reads the tags of `device` whole at the start of `bytes` (inside its
/// object: before its first tag, or after one), one lexer over them all;
/// stops before a tag cut off by the end of `bytes`. Returns the bytes used
/// and whether the device's object closed.
fn read_tags<F>(
    text: &str,
    invalid_utf8_at: Option<usize>,
    first: bool,
    device: &DeviceName,
    visit: &mut F,
) -> Result<(usize, bool), JsonError>
where
    F: FnMut(Entry<'_>),
{
    // Levels count from the document's root: it, then the device.
    let mut lexer = Lexer::in_object(text, invalid_utf8_at, 2, first);
    let mut used = 0;
    loop {
        let (tag_id, value) = match lexer.object_member() {
            // The usual tag: its name and `{` in one pass.
            Some(tag_id) => (tag_id, Ok(Token::BeginObject)),
            None => match lexer.next_token() {
                Ok(Some(Token::Key(tag_id))) => (tag_id, lexer.next_value()),
                Ok(Some(Token::EndObject)) => return Ok((lexer.position(), true)),
                Ok(_) => return Err(JsonError::UnexpectedByte { at: used }),
                Err(JsonError::UnexpectedEnd) => return Ok((used, false)),
                Err(error) => return Err(error),
            },
        };
        let read = match value {
            Ok(Token::BeginObject) => read_tag(&mut lexer).map(Some),
            Ok(other) => lexer.skip_value(other).map(|()| None),
            Err(error) => Err(error),
        };
        let fields = match read {
            Ok(fields) => fields,
            Err(JsonError::UnexpectedEnd) => return Ok((used, false)),
            Err(error) => return Err(error),
        };
        // A device name too long to keep: its tags are only checked.
        if device.too_long.is_none() {
            let device = device.as_json();
            visit(match fields {
                Some(fields) => Entry::Tag {
                    device,
                    tag_id,
                    fields,
                },
                None => Entry::TagNotObject { device, tag_id },
            });
        }
        used = lexer.position();
    }
}

/// `"device": value`, from its key to the end of its value, whose value is
/// not an object.
fn read_device_not_object<F>(member: &[u8], visit: &mut F) -> Result<(), JsonError>
where
    F: FnMut(Entry<'_>),
{
    let (text, invalid_utf8_at) = utf8_prefix(member);
    let mut lexer = Lexer::in_object(text, invalid_utf8_at, 1, true);
    let Some(Token::Key(device)) = lexer.next_token()? else {
        return Err(JsonError::UnexpectedByte { at: 0 });
    };
    let value = lexer.next_value()?;
    lexer.skip_value(value)?;
    // The member ends here (`member_end` found its `,` or `}`): the lexer
    // wants one of them next.
    match lexer.next_token() {
        Err(JsonError::UnexpectedEnd) => {}
        Err(error) => return Err(error),
        Ok(_) => {
            return Err(JsonError::UnexpectedByte {
                at: lexer.position(),
            });
        }
    }
    visit(Entry::DeviceNotObject { device });
    Ok(())
}

/// The rest of a tag object whose `{` was just returned, when it is as the
/// deployed backend writes it (compact, these fields in this order, OPC UA
/// and IEC 104 reads with `error_details` after `error`): matched as bytes
/// but for the values. Else `None`, the lexer untouched.
pub fn read_backend_tag<'a>(lexer: &mut Lexer<'a>) -> Option<TagFields<'a>> {
    lexer.shaped_object(|mut tag| {
        let value = tag.value(br#""value":"#)?;
        let status = tag.value(br#","status":"#)?;
        tag.value(br#","error":"#)?;
        tag.optional_value(br#","error_details":"#)?;
        let timestamp = tag.value(br#","timestamp":"#)?;
        tag.value(br#","last_successful_timestamp":"#)?;
        let closed = tag.end()?;
        let fields = TagFields {
            value: Some(RawValue::Scalar(value)),
            status: Some(RawValue::Scalar(status)),
            tag_name: None,
            name: None,
            timestamp: Some(RawValue::Scalar(timestamp)),
        };
        Some((fields, closed))
    })
}

/// The fields of the tag object whose `{` the lexer just returned.
fn read_tag<'a>(lexer: &mut Lexer<'a>) -> Result<TagFields<'a>, JsonError> {
    if let Some(fields) = read_backend_tag(lexer) {
        return Ok(fields);
    }
    if let Some(fields) = read_flat_tag(lexer) {
        return Ok(fields);
    }
    let mut fields = TagFields::default();
    while let Some(Token::Key(name)) = lexer.next_token()? {
        let raw = match lexer.next_value()? {
            Token::BeginArray | Token::BeginObject => {
                lexer.skip_container()?;
                RawValue::Container
            }
            scalar => RawValue::Scalar(scalar),
        };
        fields.keep(name, raw);
    }
    Ok(fields)
}

/// The rest of a tag object whose `{` was just returned, when it holds only
/// scalars (the usual tag): read in one pass. Else `None`, the lexer
/// untouched.
#[inline(always)]
fn read_flat_tag<'a>(lexer: &mut Lexer<'a>) -> Option<TagFields<'a>> {
    let mut fields = TagFields::default();
    lexer
        .flat_object(|name, token| fields.keep(name, RawValue::Scalar(token)))
        .then_some(fields)
}

impl<'a> TagFields<'a> {
    /// Keeps `raw` if `name` is a field the sync reads.
    #[inline(always)]
    fn keep(&mut self, name: JsonStr<'a>, raw: RawValue<'a>) {
        // Byte patterns: compared in place, without a call per name.
        let slot = match name.raw().as_bytes() {
            [b'v', b'a', b'l', b'u', b'e'] => &mut self.value,
            [b's', b't', b'a', b't', b'u', b's'] => &mut self.status,
            [b't', b'a', b'g', b'_', b'n', b'a', b'm', b'e'] => &mut self.tag_name,
            [b'n', b'a', b'm', b'e'] => &mut self.name,
            [b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p'] => &mut self.timestamp,
            _ => return,
        };
        *slot = Some(raw);
    }
}

#[cfg(test)]
mod tests;
