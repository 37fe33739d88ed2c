//! The hand-written request encoder writes exactly what `serde-json-core`
//! writes for the same request, for any key, id and value.

use proptest::prelude::*;
use serde::Serialize;

use super::id::write_id_hex;
use super::ipc::{BulkEncoder, encode_write, encode_write_by_id};
use crate::value::{StringValue, Value};

#[derive(Serialize)]
struct WriteRequest<'a> {
    action: &'static str,
    key: &'a str,
    value: &'a Value,
}

#[derive(Serialize)]
struct BulkUpdate<'a> {
    id: &'a str,
    value: &'a Value,
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        prop_oneof![Just(0.1), Just(-0.0), Just(1e21), Just(5e-324), Just(3.0)]
            .prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        "\\PC{0,16}|[\\x00-\\x1f\"\\\\]{0,8}"
            .prop_map(|s| Value::Str(StringValue::try_from(s.as_str()).unwrap_or_default())),
    ]
}

fn text() -> impl Strategy<Value = std::string::String> {
    "\\PC{0,24}|[\\x00-\\x1f\"\\\\a-z]{0,24}"
}

fn reference<T: Serialize>(request: &T) -> std::vec::Vec<u8> {
    let mut buf = [0u8; 1024];
    let n = serde_json_core::to_slice(request, &mut buf).unwrap();
    buf[..n].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases()))]

    #[test]
    fn write_requests_match_serde_json_core(key in text(), value in value()) {
        let mut buf = [0u8; 1024];
        let n = encode_write(&key, &value, &mut buf).unwrap();
        let mut expected = reference(&WriteRequest { action: "write", key: &key, value: &value });
        expected.push(b'\n');
        prop_assert_eq!(&buf[..n], &expected[..]);
        let n = encode_write_by_id(&key, &value, &mut buf).unwrap();
        let expected = reference(&WriteRequest { action: "write_by_id", key: &key, value: &value });
        // Same shape with "id" for "key".
        let expected = std::string::String::from_utf8(expected).unwrap().replacen("\"key\":", "\"id\":", 1) + "\n";
        prop_assert_eq!(&buf[..n], expected.as_bytes());
    }

    #[test]
    fn bulk_updates_match_serde_json_core(id in any::<[u8; 16]>(), value in value()) {
        let mut buf = [0u8; 1024];
        let mut bulk = BulkEncoder::new(&mut buf).unwrap();
        bulk.push(&id, &value).unwrap();
        let n = bulk.finish();
        let mut hex = [0u8; 32];
        write_id_hex(&id, &mut hex);
        let id = std::str::from_utf8(&hex).unwrap();
        let update = std::string::String::from_utf8(reference(&BulkUpdate { id, value: &value })).unwrap();
        let expected = std::format!("{{\"action\":\"bulk_write_by_id\",\"updates\":[{update}]}}\n");
        prop_assert_eq!(&buf[..n], expected.as_bytes());
    }

    #[test]
    fn a_request_that_does_not_fit_is_refused(key in text(), value in value(), room in 0usize..64) {
        let mut buf = [0u8; 1024];
        let full = encode_write(&key, &value, &mut buf).unwrap();
        let room = room.min(full - 1);
        prop_assert!(encode_write(&key, &value, &mut buf[..room]).is_err());
    }
}
