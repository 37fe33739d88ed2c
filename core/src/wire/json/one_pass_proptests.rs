//! The one-pass readings ([`Lexer::flat_object`], [`Lexer::object_member`])
//! against the same text read token by token: for any text, each either
//! reads exactly what the tokens say and leaves the lexer exactly where
//! they would, or it leaves the lexer untouched. The texts of bulk answers
//! and backend documents serve the tests of the objects read by their
//! shape ([`Lexer::shaped_object`]) too.

use proptest::prelude::*;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::{JsonStr, Lexer, Token};

/// How the token path reads the object whose `{` was just returned: its
/// members and the lexer after its `}`, or `None` where it meets a
/// container or an error (the fast path must then decline).
fn by_tokens<'a>(mut lexer: Lexer<'a>) -> Option<(Vec<(JsonStr<'a>, Token<'a>)>, Lexer<'a>)> {
    let mut members = Vec::new();
    loop {
        match lexer.next_token() {
            Ok(Some(Token::Key(name))) => match lexer.next_token() {
                Ok(Some(Token::BeginObject | Token::BeginArray)) | Ok(None) | Err(_) => {
                    return None;
                }
                Ok(Some(value)) => members.push((name, value)),
            },
            Ok(Some(Token::EndObject)) => return Some((members, lexer)),
            _ => return None,
        }
    }
}

/// How the token path reads the next member when its value is an object:
/// its name and the lexer just inside that object.
fn member_by_tokens<'a>(mut lexer: Lexer<'a>) -> Option<(JsonStr<'a>, Lexer<'a>)> {
    let Ok(Some(Token::Key(name))) = lexer.next_token() else {
        return None;
    };
    (lexer.next_token() == Ok(Some(Token::BeginObject))).then_some((name, lexer))
}

/// Checks [`Lexer::object_member`] before every token of `text`, and
/// [`Lexer::flat_object`] at every object (and that it declines untouched
/// anywhere else); returns how many objects and members the fast paths read.
pub(crate) fn check_every_object(text: &[u8]) -> (usize, usize) {
    let mut lexer = Lexer::new(text);
    let mut read_fast = 0;
    let mut members_fast = 0;
    loop {
        let mut fast = lexer;
        let expected = member_by_tokens(lexer);
        match fast.object_member() {
            Some(name) => {
                members_fast += 1;
                assert_eq!(Some((name, fast)), expected, "{text:?}");
            }
            None => {
                assert_eq!(fast, lexer, "declined but moved: {text:?}");
                assert_eq!(expected, None, "declined a member: {text:?}");
            }
        }
        let Ok(Some(token)) = lexer.next_token() else {
            break;
        };
        if token != Token::BeginObject {
            let mut fast = lexer;
            assert!(!fast.flat_object(|_, _| {}), "not after a `{{`: {text:?}");
            assert_eq!(fast, lexer, "declined but moved: {text:?}");
            continue;
        }
        let mut fast = lexer;
        let mut members = Vec::new();
        let expected = by_tokens(lexer);
        if fast.flat_object(|name, value| members.push((name, value))) {
            read_fast += 1;
            assert_eq!(Some((members, fast)), expected, "{text:?}");
        } else {
            assert_eq!(fast, lexer, "declined but moved: {text:?}");
            assert_eq!(expected, None, "declined an object of scalars: {text:?}");
        }
    }
    (read_fast, members_fast)
}

/// At every object of `text`: `shaped` reads what `flat` (the object read
/// as a flat object) reads and leaves the lexer where that leaves it, or
/// declines with the lexer untouched. Returns how many objects it read.
pub(crate) fn check_shaped_reading<'a, T>(
    text: &'a [u8],
    shaped: impl Fn(&mut Lexer<'a>) -> Option<T>,
    flat: impl Fn(&mut Lexer<'a>) -> Option<T>,
) -> usize
where
    T: PartialEq + core::fmt::Debug,
{
    let mut lexer = Lexer::new(text);
    let mut read = 0;
    while let Ok(Some(token)) = lexer.next_token() {
        if token != Token::BeginObject {
            continue;
        }
        let mut fast = lexer;
        let Some(value) = shaped(&mut fast) else {
            assert_eq!(fast, lexer, "declined but moved: {text:?}");
            continue;
        };
        read += 1;
        let mut plain = lexer;
        let expected = flat(&mut plain);
        assert_eq!((Some(value), fast), (expected, plain), "{text:?}");
    }
    read
}

/// `text` as bytes, cut at `cut` when there is one.
fn cut_off(text: String, cut: Option<prop::sample::Index>) -> Vec<u8> {
    let mut bytes = text.into_bytes();
    if let Some(cut) = cut {
        bytes.truncate(cut.index(bytes.len() + 1));
    }
    bytes
}

/// The contents of a result's string, plain or not.
fn contents() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("0123456789abcdef0123456789abcdef"),
        4 => Just("Boiler-1.tag-1764300000107"),
        1 => Just(""),
        1 => Just(r#"a\"b"#),
        1 => Just(r#"\u0041"#),
        1 => Just("ctl\\u0001"),
        1 => Just("ctl\u{1}"),
        1 => Just("K\u{fc}hl"),
        1 => Just(r#"a"b"#),
        1 => Just(r#"a\x"#),
    ]
}

/// One entry of a bulk answer's `results`: mostly as the Data-Service
/// writes an applied or a failed update, with the usual ways of not being.
fn result() -> impl Strategy<Value = String> {
    (contents(), contents(), 0..9u8).prop_map(|(id, key, form)| match form {
        0..=3 => format!(r#"{{"id": "{id}", "ok": true, "key": "{key}"}}"#),
        4 => format!(r#"{{"id":"{id}","ok":true,"key":"{key}"}}"#),
        5 => format!(r#"{{"id": "{id}", "ok": false, "error": "id not found"}}"#),
        6 => format!(r#"{{"id": "{id}", "ok": true, "key": "{key}", "ok": false}}"#),
        7 => format!(r#"{{"id": "{id}", "ok": true, "key": {{"k": "{key}"}}}}"#),
        _ => String::from(r#"[1, "x"]"#),
    })
}

/// A bulk answer, mostly well formed, maybe cut off.
pub(crate) fn bulk_answer() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((result(), separator(), space()), 0..6),
        prop_oneof![4 => Just("]}"), 1 => Just("}"), 1 => Just(r#"], "ok": false}"#)],
        any::<prop::sample::Index>(),
        prop_oneof![4 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(results, close, cut, truncate)| {
            let mut text = String::from(r#"{"ok": true, "results": ["#);
            let count = results.len();
            for (i, (result, separator, space)) in results.into_iter().enumerate() {
                text.push_str(&result);
                if i + 1 < count {
                    text.push_str(separator);
                    text.push_str(space);
                }
            }
            text.push_str(close);
            cut_off(text, truncate.then_some(cut))
        })
}

/// A tag object as the deployed backend writes it, mostly, with the usual
/// ways of not being: other members or order, white space, containers,
/// broken values, cut off.
fn backend_tag() -> impl Strategy<Value = String> {
    (value(), value(), value(), 0..9u8).prop_map(|(value, status, error, form)| match form {
        0..=3 => format!(
            r#"{{"value":{value},"status":{status},"error":{error},"timestamp":1764318000,"last_successful_timestamp":{value}}}"#
        ),
        4 => format!(r#"{{"value":{value},"status":{status},"error":{error},"timestamp":1}}"#),
        5 => format!(
            r#"{{"value":{value},"status":{status},"error":{error},"error_details":null,"timestamp":1,"last_successful_timestamp":null}}"#
        ),
        6 => format!(
            r#"{{"value":{value},"status":{status},"error":null,"error_details":{error},"timestamp":1,"last_successful_timestamp":1}}"#
        ),
        7 => format!(
            r#"{{"value": {value}, "status": {status}, "error": {error}, "timestamp": 1, "last_successful_timestamp": 1}}"#
        ),
        _ => format!(
            r#"{{"value":{value},"status":{status},"error":{error},"timestamp":1,"last_successful_timestamp":1,"value":2}}"#
        ),
    })
}

/// A polled document of such tags, maybe cut off.
pub(crate) fn backend_document() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(backend_tag(), 1..5),
        any::<prop::sample::Index>(),
        prop_oneof![4 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(tags, cut, truncate)| {
            let mut text = String::from(r#"{"Dev":{"#);
            for (i, tag) in tags.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!(r#""tag-{i}":{tag}"#));
            }
            text.push_str("}}");
            cut_off(text, truncate.then_some(cut))
        })
}

fn space() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" "), Just("\n\t "), Just("\r")]
}

fn name() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(r#""value""#),
        Just(r#""status""#),
        Just(r#""timestamp""#),
        Just(r#""va\u006cue""#),
        Just(r#""""#),
        Just(r#""a\"b""#),
        Just(r#""bad\x""#),
        Just("\"ctl\u{1}\""),
        Just("\"K\u{fc}hl\""),
        Just("value"),
    ]
}

fn value() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("1"),
        Just("-0.5e3"),
        Just("1.0"),
        Just("01"),
        Just("1."),
        Just("-"),
        Just(r#""ok""#),
        Just(r#""a\"}b""#),
        Just(r#""\ud83d\ude00""#),
        Just("true"),
        Just("false"),
        Just("null"),
        Just("tru"),
        Just("NaN"),
        Just("Infinity"),
        Just("-Infinity"),
        Just("[1, {\"a\": 2}]"),
        Just("{}"),
        Just(r#"{"x": 1}"#),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(","), 1 => Just(""), 1 => Just(",,"), 1 => Just(";")]
}

/// An object text, mostly well formed, with the usual ways of not being.
fn object() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            (space(), name(), space(), value(), space(), separator()),
            0..6,
        ),
        prop_oneof![4 => Just("}"), 1 => Just(""), 1 => Just("]"), 1 => Just("} x")],
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(members, close, cut, truncate)| {
            let mut text = String::from("{");
            let count = members.len();
            for (i, (a, name, b, value, c, separator)) in members.into_iter().enumerate() {
                text.push_str(a);
                text.push_str(name);
                text.push_str(b);
                text.push(':');
                text.push_str(value);
                text.push_str(c);
                if i + 1 < count {
                    text.push_str(separator);
                }
            }
            text.push_str(close);
            cut_off(text, truncate.then_some(cut))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases()))]

    #[test]
    fn reads_what_the_tokens_read_or_declines_untouched(text in object()) {
        check_every_object(&text);
    }

    #[test]
    fn inside_a_document_too(tags in prop::collection::vec(object(), 1..4)) {
        let mut text = Vec::from(&br#"{"d": {"#[..]);
        for (i, tag) in tags.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            text.extend_from_slice(format!(r#""t{i}": "#).as_bytes());
            text.extend_from_slice(tag);
        }
        text.extend_from_slice(b"}}");
        check_every_object(&text);
    }

    #[test]
    fn any_bytes(text in prop::collection::vec(any::<u8>(), 0..64)) {
        check_every_object(&text);
    }

    #[test]
    fn in_bulk_answers(text in bulk_answer()) {
        check_every_object(&text);
    }

    #[test]
    fn in_backend_documents(text in backend_document()) {
        check_every_object(&text);
    }
}

#[test]
fn objects_of_scalars_are_read_fast_and_others_declined() {
    let tag = br#"{"value": 21.5, "status": "ok", "error": null, "timestamp": 1764318000}"#;
    assert_eq!(check_every_object(tag), (1, 0));
    // The outer object holds one: declined; the inner one is read fast,
    // and the member that holds it too.
    assert_eq!(check_every_object(br#"{"a": {"b": 1}, "c": 2}"#), (1, 1));
    assert_eq!(
        check_every_object(br#"{"d": {"t1": {}, "t2" : { }, "t3": [], "t4": 1}}"#),
        (2, 3)
    );
    assert_eq!(check_every_object(b"{ }"), (1, 0));
    // Broken or cut off: declined.
    assert_eq!(check_every_object(br#"{"value": tru}"#), (0, 0));
    assert_eq!(check_every_object(br#"{"value": 1"#), (0, 0));
    assert_eq!(check_every_object(br#"{"t": {"#), (0, 1));
    // Invalid UTF-8 after a whole object does not concern it.
    assert_eq!(check_every_object(b"[{\"a\": 1}, \"\xff\"]"), (1, 0));
    assert_eq!(check_every_object(b"[{\"a\": \"\xff\"}]"), (0, 0));
}
