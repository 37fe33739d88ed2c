//! Data-Service keys and the template that builds them from a device and a tag.

use core::fmt::{self, Write};

use crate::config::MAX_KEY_LEN;
use crate::wire::json::JsonStr;

/// A Data-Service key of bounded length.
pub type Key = heapless::String<MAX_KEY_LEN>;

/// The documented default template (product documentation).
pub const DEFAULT_KEY_TEMPLATE: &str = "{device}.{tag}";
/// The template older deployments use (the deployed Python sync).
pub const COLON_KEY_TEMPLATE: &str = "{device}:{tag}";

const MAX_TEMPLATE_LEN: usize = 64;

/// Why a key template is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TemplateError {
    /// Longer than 64 bytes.
    TooLong,
    /// A `{` without its `}`, or a stray `}`.
    UnbalancedBrace,
    /// A placeholder other than `{device}`, `{tag}` or `{tag_id}`.
    UnknownPlaceholder,
    /// Neither `{tag}` nor `{tag_id}`: every tag of a device would share one key.
    NoTagPlaceholder,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TemplateError::TooLong => "key template longer than 64 bytes",
            TemplateError::UnbalancedBrace => "key template has an unbalanced brace",
            TemplateError::UnknownPlaceholder => {
                "key template placeholder must be {device}, {tag} or {tag_id}"
            }
            TemplateError::NoTagPlaceholder => "key template needs {tag} or {tag_id}",
        })
    }
}

impl core::error::Error for TemplateError {}

/// One piece of a key template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece<'t> {
    Literal(&'t str),
    Device,
    Tag,
    TagId,
}

/// A validated key template such as `{device}.{tag}`.
///
/// `{device}` is the device name, `{tag}` the tag's `tag_name`, else its
/// `name`, else its id, and `{tag_id}` always the id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    text: heapless::String<MAX_TEMPLATE_LEN>,
    /// The pieces, found once: a key is built for every tag of every
    /// document. Each piece takes at least a byte of the text.
    parts: heapless::Vec<Part, MAX_TEMPLATE_LEN>,
}

/// A piece of the template, its literals as byte ranges of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Literal { start: u8, end: u8 },
    Device,
    Tag,
    TagId,
}

impl KeyTemplate {
    /// Validates `text` as a template.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut stored = heapless::String::new();
        stored.push_str(text).map_err(|_| TemplateError::TooLong)?;
        let mut parts = heapless::Vec::new();
        let mut has_tag = false;
        let mut rest = text;
        while !rest.is_empty() {
            let (piece, next) = next_piece(rest)?;
            has_tag |= matches!(piece, Piece::Tag | Piece::TagId);
            let part = match piece {
                Piece::Literal(literal) => {
                    // Offsets within the 64 bytes checked above.
                    let start = (text.len() - rest.len()) as u8;
                    Part::Literal {
                        start,
                        end: start + literal.len() as u8,
                    }
                }
                Piece::Device => Part::Device,
                Piece::Tag => Part::Tag,
                Piece::TagId => Part::TagId,
            };
            parts.push(part).map_err(|_| TemplateError::TooLong)?;
            rest = next;
        }
        if !has_tag {
            return Err(TemplateError::NoTagPlaceholder);
        }
        Ok(KeyTemplate {
            text: stored,
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Writes the key for one tag into `out` (cleared first); fails when it
    /// does not fit in [`MAX_KEY_LEN`] bytes.
    pub fn render(
        &self,
        device: JsonStr<'_>,
        tag: JsonStr<'_>,
        tag_id: JsonStr<'_>,
        out: &mut Key,
    ) -> Result<(), crate::wire::json::Overflow> {
        out.clear();
        for part in &self.parts {
            match *part {
                Part::Literal { start, end } => {
                    let literal = crate::text::between(&self.text, start.into(), end.into());
                    out.write_str(literal.unwrap_or(""))
                        .map_err(|_| crate::wire::json::Overflow)?
                }
                Part::Device => device.write_unescaped(out)?,
                Part::Tag => tag.write_unescaped(out)?,
                Part::TagId => tag_id.write_unescaped(out)?,
            }
        }
        Ok(())
    }
}

impl Default for KeyTemplate {
    fn default() -> Self {
        // A valid constant (`renders_both_documented_forms` renders it).
        Self::parse(DEFAULT_KEY_TEMPLATE).unwrap_or(KeyTemplate {
            text: heapless::String::new(),
            parts: heapless::Vec::new(),
        })
    }
}

fn next_piece(text: &str) -> Result<(Piece<'_>, &str), TemplateError> {
    if let Some(after) = text.strip_prefix('{') {
        let end = after.find('}').ok_or(TemplateError::UnbalancedBrace)?;
        let piece = match &after[..end] {
            "device" => Piece::Device,
            "tag" => Piece::Tag,
            "tag_id" => Piece::TagId,
            name if name.contains('{') => return Err(TemplateError::UnbalancedBrace),
            _ => return Err(TemplateError::UnknownPlaceholder),
        };
        return Ok((piece, &after[end + 1..]));
    }
    let end = text.find(['{', '}']).unwrap_or(text.len());
    if text[end..].starts_with('}') {
        return Err(TemplateError::UnbalancedBrace);
    }
    Ok((Piece::Literal(&text[..end]), &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::json::{Lexer, Token};

    fn json_str(text: &'static str) -> JsonStr<'static> {
        match Lexer::new(text.as_bytes()).next_token() {
            Ok(Some(Token::Str(s))) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn renders_both_documented_forms() {
        let mut key = Key::new();
        let (dev, tag, id) = (
            json_str(r#""Boiler-1""#),
            json_str(r#""Mode""#),
            json_str(r#""t-5""#),
        );
        KeyTemplate::default()
            .render(dev, tag, id, &mut key)
            .unwrap();
        assert_eq!(key.as_str(), "Boiler-1.Mode");
        KeyTemplate::parse(COLON_KEY_TEMPLATE)
            .unwrap()
            .render(dev, tag, id, &mut key)
            .unwrap();
        assert_eq!(key.as_str(), "Boiler-1:Mode");
        KeyTemplate::parse("site/{device}/{tag_id}")
            .unwrap()
            .render(dev, tag, id, &mut key)
            .unwrap();
        assert_eq!(key.as_str(), "site/Boiler-1/t-5");
    }

    #[test]
    fn rejects_bad_templates() {
        assert_eq!(
            KeyTemplate::parse("{device}"),
            Err(TemplateError::NoTagPlaceholder)
        );
        assert_eq!(
            KeyTemplate::parse("{dev}.{tag}"),
            Err(TemplateError::UnknownPlaceholder)
        );
        assert_eq!(
            KeyTemplate::parse("{device.{tag}"),
            Err(TemplateError::UnbalancedBrace)
        );
        assert_eq!(
            KeyTemplate::parse("{tag}}"),
            Err(TemplateError::UnbalancedBrace)
        );
        assert_eq!(
            KeyTemplate::parse(&"x{tag}".repeat(20)),
            Err(TemplateError::TooLong)
        );
    }

    #[test]
    fn a_key_that_does_not_fit_is_an_overflow() {
        let mut key = Key::new();
        let long = json_str(
            r#""LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL""#,
        );
        let short = json_str(r#""d""#);
        assert!(
            KeyTemplate::default()
                .render(short, long, short, &mut key)
                .is_err()
        );
    }
}
