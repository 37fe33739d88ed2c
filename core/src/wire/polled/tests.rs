//! The polled document read whole and in parts of every size, and the
//! backend's tags read as bytes against the flat-object reading.

use super::*;
use crate::wire::json::one_pass_proptests::{backend_document, check_shaped_reading};
use std::format;
use std::string::String;
use std::vec::Vec;

/// An entry as text: `device/tag_id: value`, or what it is instead.
fn describe(entry: &Entry<'_>) -> String {
    match entry {
        Entry::Tag {
            device,
            tag_id,
            fields,
        } => format!("{}/{}: {:?}", device.raw(), tag_id.raw(), fields.value),
        Entry::DeviceNotObject { device } => format!("{}: not an object", device.raw()),
        Entry::TagNotObject { device, tag_id } => {
            format!("{}/{}: not an object", device.raw(), tag_id.raw())
        }
        Entry::DeviceNameTooLong { start, len } => {
            format!("{}…: {len} bytes", start.raw())
        }
    }
}

/// Streams `doc` in parts of `size` bytes as the runner does (the
/// unused rest kept and added to): the entries seen, and the outcome.
fn stream(doc: &[u8], size: usize) -> (Vec<String>, Result<(), DocumentError>) {
    let mut stream = DocumentStream::new();
    let mut held = Vec::new();
    let mut seen = Vec::new();
    for part in doc.chunks(size) {
        held.extend_from_slice(part);
        match stream.feed(&held, |e| seen.push(describe(&e))) {
            Ok(used) => drop(held.drain(..used)),
            Err(error) => return (seen, Err(error)),
        }
    }
    let whole = parse_rest(&mut stream, &held, &mut seen);
    (seen, whole)
}

fn parse_rest(
    stream: &mut DocumentStream,
    held: &[u8],
    seen: &mut Vec<String>,
) -> Result<(), DocumentError> {
    let used = stream.feed(held, |e| seen.push(describe(&e)))?;
    if used < held.len() {
        return Err(DocumentError::Json(JsonError::UnexpectedEnd));
    }
    stream.finish()
}

#[test]
fn entries_come_in_order_whatever_the_part_size() {
    // Parts cut anywhere: in strings, escapes, numbers, literals and
    // between the two bytes of "ö".
    let doc =
        r#" { "d\"1" : {"t1": {"value": 1, "status": "ok", "x": [1, {"y": "},{"}]}, "tö": 5} ,
            "e": [], "empty": { }, "f": {"t,}": {"value": "a\"}b"}} }
"#
        .as_bytes();
    let mut expected = Vec::from([
        String::from(r#"d\"1/t1: Some(Scalar(Number("1")))"#),
        String::from(r#"d\"1/tö: not an object"#),
        String::from("e: not an object"),
    ]);
    expected.push(String::from(
        r#"f/t,}: Some(Scalar(Str(JsonStr { raw: "a\\\"}b", escaped: true })))"#,
    ));
    for size in 1..=doc.len() {
        assert_eq!(
            stream(doc, size),
            (expected.clone(), Ok(())),
            "part size {size}"
        );
    }
    let mut seen = Vec::new();
    assert_eq!(parse_document(doc, |e| seen.push(describe(&e))), Ok(()));
    assert_eq!(seen, expected);
}

#[test]
fn a_broken_document_gives_the_entries_before_the_break_then_the_error() {
    let json = |e| Err(DocumentError::Json(e));
    let tag = String::from(r#"d/t: Some(Scalar(Number("1")))"#);
    type Case<'a> = (&'a [u8], Vec<String>, Result<(), DocumentError>);
    let cases: [Case<'_>; 10] = [
        (
            br#"{"d": {"t": {"value": 1}, "u": {"#,
            Vec::from([tag.clone()]),
            json(JsonError::UnexpectedEnd),
        ),
        (
            br#"{"d": {"t": {"value": 1}}, "e": {"u": {"value": tru}}}"#,
            Vec::from([tag.clone()]),
            json(JsonError::UnexpectedByte { at: 48 }),
        ),
        (
            br#"{"d": {"t": {"value": 1}}} x"#,
            Vec::from([tag.clone()]),
            json(JsonError::TrailingData { at: 27 }),
        ),
        (
            br#"{"d": {"t": {"value": 1}}"#,
            Vec::from([tag.clone()]),
            json(JsonError::UnexpectedEnd),
        ),
        (
            br#"{"d": {"t": {"value": 1}} "e": {}}"#,
            Vec::from([tag.clone()]),
            json(JsonError::UnexpectedByte { at: 26 }),
        ),
        (
            br#"{"d" {}}"#,
            Vec::new(),
            json(JsonError::UnexpectedByte { at: 5 }),
        ),
        (b"[1]", Vec::new(), Err(DocumentError::NotAnObject)),
        (
            br#"{"d": {"t": {"value": 1}}, "e": [1, tru]}"#,
            Vec::from([tag.clone()]),
            json(JsonError::UnexpectedByte { at: 36 }),
        ),
        (
            b"{\"d\": {\"t\": {\"value\": 1}, \"u\xff\": 2}}",
            Vec::from([tag]),
            json(JsonError::InvalidString { at: 28 }),
        ),
        (b"", Vec::new(), json(JsonError::UnexpectedEnd)),
    ];
    for (doc, seen, outcome) in cases {
        for size in 1..=doc.len().max(1) {
            assert_eq!(
                stream(doc, size),
                (seen.clone(), outcome),
                "{} in parts of {size}",
                String::from_utf8_lossy(doc)
            );
        }
    }
}

#[test]
fn nesting_is_bounded_from_the_root_as_in_the_whole_document() {
    // Level 65: the top object, the device, the tag, then 62 arrays.
    let mut doc = Vec::from(&br#"{"d": {"t": {"value": "#[..]);
    let first_array = doc.len();
    doc.extend(core::iter::repeat_n(b'[', 62));
    let (_, outcome) = stream(&doc, 7);
    assert_eq!(
        outcome,
        Err(DocumentError::Json(JsonError::NestingTooDeep {
            at: first_array + 61
        }))
    );
    // One level less is fine.
    let mut doc = Vec::from(&br#"{"d": {"t": {"value": "#[..]);
    doc.extend(core::iter::repeat_n(b'[', 61));
    doc.extend(core::iter::repeat_n(b']', 61));
    doc.extend(b"}}}");
    assert_eq!(stream(&doc, 7).1, Ok(()));
}

#[test]
fn a_device_name_too_long_to_keep_is_reported_once_its_tags_only_checked() {
    let long = "n".repeat(MAX_DEVICE_NAME_RAW + 1);
    let doc =
        format!(r#"{{"{long}": {{"t": {{"value": 1}}, "u": 2}}, "d": {{"t": {{"value": 1}}}}}}"#);
    let start = "n".repeat(DEVICE_NAME_SHOWN);
    let expected = Vec::from([
        format!("{start}…: {} bytes", MAX_DEVICE_NAME_RAW + 1),
        String::from(r#"d/t: Some(Scalar(Number("1")))"#),
    ]);
    for size in [1, 7, 100, doc.len()] {
        assert_eq!(stream(doc.as_bytes(), size), (expected.clone(), Ok(())));
    }
    // Its tags are still checked.
    let broken = format!(r#"{{"{long}": {{"t": {{"value": tru}}}}}}"#);
    assert!(matches!(
        stream(broken.as_bytes(), 64).1,
        Err(DocumentError::Json(JsonError::UnexpectedByte { .. }))
    ));
    // The longest name kept is kept whole.
    let kept = "k".repeat(MAX_DEVICE_NAME_RAW);
    let doc = format!(r#"{{"{kept}": {{"t": {{"value": 1}}}}}}"#);
    assert_eq!(
        stream(doc.as_bytes(), 50).0,
        [format!(r#"{kept}/t: Some(Scalar(Number("1")))"#)]
    );
}

/// [`read_backend_tag`] against the tag read as a flat object at every
/// object of `text`; how many it read.
fn check_backend_tags(text: &[u8]) -> usize {
    check_shaped_reading(text, read_backend_tag, read_flat_tag)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::proptest_cases()))]

    #[test]
    fn backend_tags_read_as_bytes_are_read_as_flat_objects(text in backend_document()) {
        check_backend_tags(&text);
    }
}

#[test]
fn the_backends_tags_are_read_as_bytes() {
    let later = include_bytes!("../../../../tests/fixtures/polled-values/real-backend-later.json");
    assert_eq!(check_backend_tags(later), 13);
    let spaced = include_bytes!("../../../../tests/fixtures/polled-values/basic.json");
    assert_eq!(check_backend_tags(spaced), 0);
    let odd = [
        r#"{"value":"a\"b","status":1,"error":true,"timestamp":null,"last_successful_timestamp":NaN}"#,
        r#"{"value":1,"status":"ok","error":null,"timestamp":1,"last_successful_timestamp":1}"#,
        r#"{"value":1,"status":"good","error":null,"error_details":null,"timestamp":1,"last_successful_timestamp":1}"#,
    ];
    for text in odd {
        assert_eq!(check_backend_tags(text.as_bytes()), 1, "{text}");
    }
    let others = [
        r#"{"value":1,"status":"ok","error":null,"timestamp":1}"#,
        r#"{"value":1,"status":"ok","error":null,"timestamp":1,"last_successful_timestamp":1,"name":"n"}"#,
        r#"{"value":[1],"status":"ok","error":null,"timestamp":1,"last_successful_timestamp":1}"#,
        r#"{"value":1,"status":"ok","error":null,"timestamp":1,"last_successful_timestamp":1"#,
        r#"{"value":tru,"status":"ok","error":null,"timestamp":1,"last_successful_timestamp":1}"#,
        r#"{"value": 1,"status":"ok","error":null,"timestamp":1,"last_successful_timestamp":1}"#,
        r#"{"value":1,"status":"error","error":"e","error_details":{"code":2},"timestamp":1,"last_successful_timestamp":1}"#,
        r#"{"value":1,"status":"ok","error":null,"error_details":null,"error_details":null,"timestamp":1,"last_successful_timestamp":1}"#,
    ];
    for text in others {
        assert_eq!(check_backend_tags(text.as_bytes()), 0, "{text}");
    }
}
