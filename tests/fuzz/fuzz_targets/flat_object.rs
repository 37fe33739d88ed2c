//! The one-pass readings (a member whose value is an object, an object of
//! scalars) against the same text read token by token, everywhere in any
//! text: the same result and the lexer left where the tokens leave it, or
//! declined with the lexer untouched; and objects matched by their shape
//! (a backend tag, an applied result) against objects of scalars.
#![no_main]

use dataservice_sync_core::wire::ipc::read_applied_result;
use dataservice_sync_core::wire::json::{JsonStr, Lexer, Token};
use dataservice_sync_core::wire::polled::{RawValue, read_backend_tag};
use libfuzzer_sys::fuzz_target;

type Members<'a> = Vec<(JsonStr<'a>, Token<'a>)>;

/// The members of the object whose `{` was just returned and the lexer
/// after its `}`, or `None` where a container or an error comes first.
fn by_tokens(mut lexer: Lexer<'_>) -> Option<(Members<'_>, Lexer<'_>)> {
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

/// The name of the next member and the lexer inside its value, when that
/// value is an object.
fn member_by_tokens(mut lexer: Lexer<'_>) -> Option<(JsonStr<'_>, Lexer<'_>)> {
    let Ok(Some(Token::Key(name))) = lexer.next_token() else {
        return None;
    };
    (lexer.next_token() == Ok(Some(Token::BeginObject))).then_some((name, lexer))
}

/// Checks the objects read by their shape (a backend tag, an applied
/// result) against the object read as a flat object at `lexer`, just after
/// a `{`: the same values and the lexer after, or declined untouched.
fn check_shaped(lexer: Lexer<'_>) {
    let mut flat = lexer;
    let mut members = Vec::new();
    let read = flat.flat_object(|name, value| members.push((name, value)));
    let names: Vec<&str> = members.iter().map(|(name, _)| name.raw()).collect();
    let value = |i: usize| Some(RawValue::Scalar(members[i].1));
    let mut shaped = lexer;
    match read_backend_tag(&mut shaped) {
        Some(fields) => {
            assert!(read);
            assert_eq!(shaped, flat);
            // OPC UA and IEC 104 reads add `error_details`.
            let details = names.get(3) == Some(&"error_details");
            let mut fields_read = vec!["value", "status", "error"];
            fields_read.extend(details.then_some("error_details"));
            fields_read.extend(["timestamp", "last_successful_timestamp"]);
            assert_eq!(names, fields_read);
            let timestamp = if details { 4 } else { 3 };
            assert_eq!(
                (fields.value, fields.status, fields.timestamp),
                (value(0), value(1), value(timestamp))
            );
            assert_eq!((fields.tag_name, fields.name), (None, None));
        }
        None => assert_eq!(shaped, lexer),
    }
    let mut shaped = lexer;
    match read_applied_result(&mut shaped) {
        Some(result) => {
            assert!(read);
            assert_eq!(shaped, flat);
            assert_eq!(names, ["id", "ok", "key"]);
            let string = |i: usize| match members[i].1 {
                Token::Str(text) => Some(text),
                _ => None,
            };
            assert_eq!(
                (result.id, result.key, result.error),
                (string(0), string(2), None)
            );
            assert_eq!(result.ok, members[1].1 == Token::Bool(true));
        }
        None => assert_eq!(shaped, lexer),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lexer = Lexer::new(data);
    loop {
        let mut fast = lexer;
        let expected = member_by_tokens(lexer);
        match fast.object_member() {
            Some(name) => assert_eq!(Some((name, fast)), expected),
            None => {
                assert_eq!(fast, lexer);
                assert_eq!(expected, None);
            }
        }
        let Ok(Some(token)) = lexer.next_token() else {
            break;
        };
        if token != Token::BeginObject {
            let mut fast = lexer;
            assert!(!fast.flat_object(|_, _| {}));
            assert_eq!(fast, lexer);
            continue;
        }
        check_shaped(lexer);
        let mut fast = lexer;
        let mut members = Vec::new();
        let expected = by_tokens(lexer);
        if fast.flat_object(|name, value| members.push((name, value))) {
            assert_eq!(Some((members, fast)), expected);
        } else {
            assert_eq!(fast, lexer);
            assert_eq!(expected, None);
        }
    }
});
