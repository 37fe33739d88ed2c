//! The one-pass readings (a member whose value is an object, an object of
//! scalars) against the same text read token by token, everywhere in any
//! text: the same result and the lexer left where the tokens leave it, or
//! declined with the lexer untouched.
#![no_main]

use dataservice_sync_core::wire::json::{JsonStr, Lexer, Token};
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
