//! The polling service's `GET /deploy/api/io/polled-values` body:
//! `{device: {tag_id: {value, status, tag_name?, name?, ...}}}`.
//!
//! [`parse_document`] validates the whole body first and only then walks it,
//! so a truncated or broken body yields an error and no entries at all.

use core::fmt;

use super::json::{JsonError, JsonStr, Lexer, Token};

/// Why a whole document was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DocumentError {
    /// Not well-formed JSON (truncated, broken, nested too deep).
    Json(JsonError),
    /// Well-formed, but the top level is not an object of devices.
    NotAnObject,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentError::Json(e) => write!(f, "invalid JSON: {e}"),
            DocumentError::NotAnObject => f.write_str("top level is not an object of devices"),
        }
    }
}

impl core::error::Error for DocumentError {}

impl From<JsonError> for DocumentError {
    fn from(e: JsonError) -> Self {
        DocumentError::Json(e)
    }
}

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
}

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

/// Validates `body` whole, then calls `visit` for every entry in document order.
pub fn parse_document<'a, F>(body: &'a [u8], mut visit: F) -> Result<(), DocumentError>
where
    F: FnMut(Entry<'a>),
{
    let mut lexer = open_object(body)?;
    while let Some(Token::Key(device)) = lexer.next_token()? {
        match lexer.next_value()? {
            Token::BeginObject => walk_device(&mut lexer, device, &mut visit)?,
            other => {
                lexer.skip_value(other)?;
                visit(Entry::DeviceNotObject { device });
            }
        }
    }
    Ok(())
}

fn walk_device<'a, F>(
    lexer: &mut Lexer<'a>,
    device: JsonStr<'a>,
    visit: &mut F,
) -> Result<(), JsonError>
where
    F: FnMut(Entry<'a>),
{
    while let Some(Token::Key(tag_id)) = lexer.next_token()? {
        match lexer.next_value()? {
            Token::BeginObject => {
                let fields = read_tag(lexer)?;
                visit(Entry::Tag {
                    device,
                    tag_id,
                    fields,
                });
            }
            other => {
                lexer.skip_value(other)?;
                visit(Entry::TagNotObject { device, tag_id });
            }
        }
    }
    Ok(())
}

fn read_tag<'a>(lexer: &mut Lexer<'a>) -> Result<TagFields<'a>, JsonError> {
    let mut fields = TagFields::default();
    while let Some(Token::Key(name)) = lexer.next_token()? {
        let token = lexer.next_value()?;
        let raw = match token {
            Token::BeginArray | Token::BeginObject => {
                lexer.skip_container()?;
                RawValue::Container
            }
            scalar => RawValue::Scalar(scalar),
        };
        let slot = match name.raw() {
            "value" => &mut fields.value,
            "status" => &mut fields.status,
            "tag_name" => &mut fields.tag_name,
            "name" => &mut fields.name,
            "timestamp" => &mut fields.timestamp,
            _ => continue,
        };
        *slot = Some(raw);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(body: &[u8]) -> Result<heapless::Vec<Entry<'_>, 32>, DocumentError> {
        let mut out = heapless::Vec::new();
        parse_document(body, |e| {
            out.push(e).unwrap();
        })?;
        Ok(out)
    }

    #[test]
    fn walks_devices_and_tags_in_order() {
        let entries =
            collect(br#"{"d": {"t1": {"value": 1, "status": "ok", "x": [1]}, "t2": 5}, "e": []}"#)
                .unwrap();
        assert_eq!(entries.len(), 3);
        let Entry::Tag {
            device,
            tag_id,
            fields,
        } = entries[0]
        else {
            panic!("{:?}", entries[0]);
        };
        assert!(device.eq_str("d") && tag_id.eq_str("t1"));
        assert_eq!(fields.value, Some(RawValue::Scalar(Token::Number("1"))));
        assert!(matches!(entries[1], Entry::TagNotObject { .. }));
        assert!(matches!(entries[2], Entry::DeviceNotObject { .. }));
    }

    #[test]
    fn a_broken_document_yields_no_entry() {
        let mut seen = 0;
        let result = parse_document(
            br#"{"d": {"t1": {"value": 1, "status": "ok"}, "t2": {"#,
            |_| seen += 1,
        );
        assert_eq!(result, Err(DocumentError::Json(JsonError::UnexpectedEnd)));
        assert_eq!(seen, 0);
        assert_eq!(collect(b"[1]"), Err(DocumentError::NotAnObject));
    }
}
