//! The IPC codec: requests as the Data-Service reads them, every answer
//! form, the line framer, and applied results read as bytes against the
//! flat-object reading.

use super::*;
use crate::value::StringValue;
use crate::wire::json::one_pass_proptests::{bulk_answer, check_shaped_reading};
use std::{format, vec};

fn text(buf: &[u8]) -> &str {
    core::str::from_utf8(buf).unwrap()
}

#[test]
fn encodes_write_with_json_types_and_escaping() {
    let mut buf = [0u8; 256];
    let n = encode_write("Kühl \"N\"\n\u{1}", &Value::Int(3), &mut buf).unwrap();
    assert_eq!(
        text(&buf[..n]),
        "{\"action\":\"write\",\"key\":\"Kühl \\\"N\\\"\\n\\u0001\",\"value\":3}\n"
    );
    let n = encode_write("k", &Value::Float(-0.0005), &mut buf).unwrap();
    assert_eq!(
        text(&buf[..n]),
        "{\"action\":\"write\",\"key\":\"k\",\"value\":-0.0005}\n"
    );
    let n = encode_write("k", &Value::Float(3.0), &mut buf).unwrap();
    assert_eq!(
        text(&buf[..n]),
        "{\"action\":\"write\",\"key\":\"k\",\"value\":3.0}\n"
    );
    let s = Value::Str(StringValue::try_from("a\\b").unwrap());
    let n = encode_write("k", &s, &mut buf).unwrap();
    assert_eq!(
        text(&buf[..n]),
        "{\"action\":\"write\",\"key\":\"k\",\"value\":\"a\\\\b\"}\n"
    );
    let n = encode_write_by_id("00ff", &Value::Bool(false), &mut buf).unwrap();
    assert_eq!(
        text(&buf[..n]),
        "{\"action\":\"write_by_id\",\"id\":\"00ff\",\"value\":false}\n"
    );
    assert_eq!(
        encode_write("k", &Value::Int(1), &mut buf[..20]),
        Err(BufferTooSmall)
    );
}

#[test]
fn bulk_encoder_stops_at_the_buffer_size() {
    let mut buf = [0u8; 165];
    let mut bulk = BulkEncoder::new(&mut buf).unwrap();
    let a1 = [0xa1; 16];
    let mut b2 = [0; 16];
    b2[15] = 0xb2;
    bulk.push(&a1, &Value::Int(1)).unwrap();
    bulk.push(&b2, &Value::Float(2.5)).unwrap();
    assert_eq!(bulk.push(&a1, &Value::Int(3)), Err(BufferTooSmall));
    assert_eq!(bulk.count(), 2);
    let n = bulk.finish();
    assert_eq!(
        text(&buf[..n]),
        "{\"action\":\"bulk_write_by_id\",\"updates\":[\
         {\"id\":\"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\",\"value\":1},\
         {\"id\":\"000000000000000000000000000000b2\",\"value\":2.5}]}\n"
    );
}

#[test]
fn decodes_every_response_form() {
    let ok = Response::decode(br#"{"ok": true}"#).unwrap();
    assert!(ok.ok && ok.error.is_none() && !ok.has_results());
    let by_id = Response::decode(br#"{"ok": true, "key": "Boiler-1.temp"}"#).unwrap();
    assert!(by_id.key.unwrap().eq_str("Boiler-1.temp"));
    let err = Response::decode(br#"{"ok": false, "error": "id not found"}"#).unwrap();
    assert!(!err.ok && err.error.unwrap().eq_str("id not found"));
    let bulk = Response::decode(
        br#"{"ok": true, "results": [{"id": "a", "ok": true, "key": "K\u00fc"}, {"id": "b", "ok": false, "error": "id not found"}, 7]}"#,
    )
    .unwrap();
    let mut seen: heapless::Vec<(bool, bool), 4> = heapless::Vec::new();
    bulk.for_each_result(|r| {
        let id_ok = match r.id {
            Some(id) => id.eq_str(if r.ok { "a" } else { "b" }),
            None => true,
        };
        seen.push((r.ok, id_ok)).unwrap();
    })
    .unwrap();
    assert_eq!(
        seen.as_slice(),
        &[(true, true), (false, true), (false, true)]
    );
    assert_eq!(
        Response::decode(br#"{"status": "ok"}"#),
        Err(ResponseError::MissingOk)
    );
    assert_eq!(
        Response::decode(br#"{"ok": tru"#),
        Err(ResponseError::Json(JsonError::UnexpectedEnd))
    );
}

/// Each result's `ok` and `error`.
type Seen<'a> = std::vec::Vec<(bool, Option<&'a str>)>;

/// The results of `line` as a bulk answer, and how reading them ended.
fn results_of(line: &str) -> (Seen<'_>, Result<(), ResponseError>) {
    let response = Response::decode_bulk(line.as_bytes()).unwrap();
    let mut seen = std::vec::Vec::new();
    let read = response.for_each_result(|r| seen.push((r.ok, r.error.map(|e| e.raw()))));
    (seen, read)
}

#[test]
fn results_after_ok_are_checked_as_they_are_read() {
    let good = r#"{"id": "a", "ok": true}"#;
    let failed = r#"{"id": "b", "ok": false, "error": "id not found"}"#;
    // Whole, with a member after the results.
    assert_eq!(
        results_of(&format!(
            r#"{{"ok": true, "results": [{good}, {failed}], "n": [2]}}"#
        )),
        (vec![(true, None), (false, Some("id not found"))], Ok(()))
    );
    // Broken in the second entry: the first stands. Decoded as any
    // other answer, the line is refused whole.
    let broken = format!(r#"{{"ok": true, "results": [{good}, {{"id": "b", "ok": tru}}]}}"#);
    let at_tru = ResponseError::Json(JsonError::UnexpectedByte { at: 68 });
    assert_eq!(results_of(&broken), (vec![(true, None)], Err(at_tru)));
    assert_eq!(Response::decode(broken.as_bytes()), Err(at_tru));
    // Whole results, then a break, a second "ok", or trailing bytes.
    let results = format!(r#""results": [{good}]"#);
    for (line, error) in [
        (
            format!(r#"{{"ok": true, {results}, "n": }}"#),
            ResponseError::Json(JsonError::UnexpectedByte { at: 56 }),
        ),
        (
            format!(r#"{{"ok": true, {results}, "ok": false}}"#),
            ResponseError::RepeatedMember,
        ),
        (
            format!(r#"{{"ok": true, {results}}} x"#),
            ResponseError::Json(JsonError::TrailingData { at: 51 }),
        ),
    ] {
        assert_eq!(
            results_of(&line),
            (vec![(true, None)], Err(error)),
            "{line}"
        );
    }
}

#[test]
fn results_before_ok_are_checked_whole_when_decoded() {
    assert_eq!(
        results_of(r#"{"results": [{"id": "a", "ok": true}], "ok": true}"#),
        (vec![(true, None)], Ok(()))
    );
    assert_eq!(
        Response::decode(br#"{"results": [{"id": "a", "ok": tru}], "ok": true}"#),
        Err(ResponseError::Json(JsonError::UnexpectedByte { at: 31 }))
    );
    // Refused: the results are there, but the caller does not read them.
    let refused = Response::decode(br#"{"ok": false, "results": [], "error": "busy"}"#).unwrap();
    assert!(!refused.ok && refused.has_results());
    assert!(refused.error.unwrap().eq_str("busy"));
}

#[test]
fn framer_copes_with_partial_reads_and_long_lines() {
    /// One read of `data`, as a socket gives it: at most the room left.
    fn read(framer: &mut LineFramer, storage: &mut [u8], data: &[u8]) -> Result<bool, FrameError> {
        let room = framer.unfilled(storage);
        let n = room.len().min(data.len());
        room[..n].copy_from_slice(&data[..n]);
        framer.filled(storage, n)
    }
    let mut storage = [0u8; 16];
    let mut framer = LineFramer::new();
    assert_eq!(read(&mut framer, &mut storage, b"{\"ok\""), Ok(false));
    assert_eq!(
        read(&mut framer, &mut storage, b": true}\r\nextra"),
        Ok(true)
    );
    assert_eq!(framer.line(&storage), b"{\"ok\": true}");
    framer.clear();
    assert_eq!(read(&mut framer, &mut storage, b"0123456789"), Ok(false));
    assert_eq!(
        read(&mut framer, &mut storage, b"0123456789"),
        Err(FrameError::LineTooLong)
    );
    // Read in place: 15 bytes and the newline fit in 16, 16 do not.
    framer.clear();
    framer.unfilled(&mut storage)[..9].copy_from_slice(b"{\"ok\": tr");
    assert_eq!(framer.filled(&storage, 9), Ok(false));
    let room = framer.unfilled(&mut storage);
    assert_eq!(room.len(), 7);
    room.copy_from_slice(b"ue}   \n");
    assert_eq!(framer.filled(&storage, 7), Ok(true));
    assert_eq!(framer.line(&storage), b"{\"ok\": true}   ");
    assert!(framer.unfilled(&mut storage).is_empty());
    framer.clear();
    storage.copy_from_slice(b"0123456789abcdef");
    assert_eq!(framer.filled(&storage, 16), Err(FrameError::LineTooLong));
    // In larger storage holding the same bytes, the line goes on.
    let mut larger = [0u8; 32];
    larger[..16].copy_from_slice(&storage);
    let room = framer.unfilled(&mut larger);
    assert_eq!(room.len(), 16);
    room[..3].copy_from_slice(b"gh\n");
    assert_eq!(framer.filled(&larger, 3), Ok(true));
    assert_eq!(framer.line(&larger), b"0123456789abcdefgh");
}

#[test]
fn an_applied_result_is_read_whole() {
    let id = "0123456789abcdef0123456789abcdef";
    let line = format!(
        r#"{{"ok": true, "results": [{{"id": "{id}", "ok": true, "key": "d.a"}}, {{"id": "{id}", "ok": false, "error": "id not found"}}]}}"#
    );
    let applied = BulkResult {
        id: Some(JsonStr::from_parts(id, false)),
        ok: true,
        key: Some(JsonStr::from_parts("d.a", false)),
        error: None,
    };
    let failed = BulkResult {
        id: Some(JsonStr::from_parts(id, false)),
        ok: false,
        key: None,
        error: Some(JsonStr::from_parts("id not found", false)),
    };
    let response = Response::decode_bulk(line.as_bytes()).unwrap();
    let mut results = vec::Vec::new();
    assert_eq!(response.for_each_result(|r| results.push(r)), Ok(()));
    assert_eq!(results, vec![applied, failed]);
}

/// [`read_applied_result`] against the result read as a flat object
/// at every object of `text`; how many it read.
fn check_applied_results(text: &[u8]) -> usize {
    check_shaped_reading(text, read_applied_result, BulkResult::read_flat)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::proptest_cases()))]

    #[test]
    fn applied_results_read_as_bytes_are_read_as_flat_objects(text in bulk_answer()) {
        check_applied_results(&text);
    }
}

#[test]
fn applied_results_are_read_as_bytes_and_others_are_not() {
    let id = "0123456789abcdef0123456789abcdef";
    let applied = format!(r#"{{"id": "{id}", "ok": true, "key": "Boiler-1.t"}}"#);
    let answer = format!(r#"{{"ok": true, "results": [{applied}, {applied} ,{applied}]}}"#);
    assert_eq!(check_applied_results(answer.as_bytes()), 3);
    // Any scalars, escaped strings too.
    let odd = r#"[{"id": "a\"b", "ok": true, "key": null}]"#;
    assert_eq!(check_applied_results(odd.as_bytes()), 1);
    let others = [
        r#"[{"id":"a","ok":true,"key":"k"}]"#,
        r#"[{"id": "a", "ok": false, "error": "id not found"}]"#,
        r#"[{"id": "a", "ok": true, "key": "k", "n": 1}]"#,
        r#"[{"id": "a", "ok": true, "key": {"k": 1}}]"#,
        r#"[{"id": "a", "ok": true, "key": "k""#,
        r#"[{"id": "a", "ok": tru, "key": "k"}]"#,
        r#"[{"id": "a", "ok": 1, "key": "k"}]"#,
    ];
    for text in others {
        assert_eq!(check_applied_results(text.as_bytes()), 0, "{text}");
    }
}
