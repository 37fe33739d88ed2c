//! From one polled entry to a reading: a good value under its key, a failed
//! read, or a rejection with a reason.

use crate::key::{Key, KeyTemplate};
use crate::reject::{KeyPreview, RejectReason};
use crate::rules::RuleSet;
use crate::text::Truncating;
use crate::value::{StringValue, Value, parse_number};
use crate::wire::json::{JsonStr, Token};
use crate::wire::polled::{Entry, RawValue};

/// What one entry turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum Reading {
    /// A good read to deliver.
    Good {
        /// The Data-Service key.
        key: Key,
        /// The value.
        value: Value,
        /// The polling service's `timestamp`, in ms since the Unix epoch
        /// (0: none).
        source_time_ms: u64,
        /// The mapping rule that applied.
        rule: Option<u8>,
    },
    /// A read the polling service marked as failed (not an error of ours).
    FailedRead {
        /// Its key, when one can be built (a deadband restarts after it).
        key: Option<Key>,
    },
    /// An entry the filters leave out.
    Filtered,
    /// An entry that cannot be written.
    Rejected {
        /// Why.
        reason: RejectReason,
        /// Which tag.
        tag: KeyPreview,
    },
}

/// Classifies one entry: status, filters, value, rule, key, validation.
pub fn classify(entry: &Entry<'_>, template: &KeyTemplate, rules: &RuleSet) -> Reading {
    let rejected = |reason, device, tag_id| Reading::Rejected {
        reason,
        tag: KeyPreview::of_entry(device, tag_id),
    };
    let (device, tag_id, fields) = match *entry {
        Entry::DeviceNotObject { device } => {
            return rejected(RejectReason::DeviceNotObject, device, None);
        }
        Entry::TagNotObject { device, tag_id } => {
            return rejected(RejectReason::TagNotObject, device, Some(tag_id));
        }
        Entry::DeviceNameTooLong { start, len } => {
            let mut tag = KeyPreview::of_entry(start, None);
            tag.full_len = len;
            return Reading::Rejected {
                reason: RejectReason::KeyTooLong,
                tag,
            };
        }
        Entry::Tag {
            device,
            tag_id,
            fields,
        } => (device, tag_id, fields),
    };
    let reject = |reason| rejected(reason, device, Some(tag_id));
    let status = match fields.status {
        None => return reject(RejectReason::MissingStatus),
        Some(RawValue::Scalar(Token::Str(status))) => status,
        Some(_) => return reject(RejectReason::StatusNotString),
    };
    let tag = match (fields.tag_name, fields.name) {
        (Some(RawValue::Scalar(Token::Str(name))), _) => Ok(name),
        (Some(_), _) => Err(RejectReason::NameNotString),
        (None, Some(RawValue::Scalar(Token::Str(name)))) => Ok(name),
        (None, Some(_)) => Err(RejectReason::NameNotString),
        (None, None) => Ok(tag_id),
    };
    // Names as text, for the filters and the rules (only when there are some).
    let mut names = Names::default();
    let named = rules.filters_names() || !rules.rules.is_empty();
    if named {
        names.fill(device, tag.unwrap_or(tag_id), tag_id);
        if rules.filters_names() && !rules.admits(&names.device, &names.tag, &names.tag_id) {
            return Reading::Filtered;
        }
    }
    let good = &rules.filters.good_statuses;
    if !good.iter().any(|g| status.eq_ignore_ascii_case(g)) {
        let key = tag.ok().and_then(|tag| {
            let mut key = Key::new();
            template.render(device, tag, tag_id, &mut key).ok()?;
            Some(key)
        });
        return Reading::FailedRead { key };
    }
    let value = match fields.value {
        None => return reject(RejectReason::MissingValue),
        Some(raw) => match convert_value(raw) {
            Ok(value) => value,
            Err(reason) => return reject(reason),
        },
    };
    let tag = match tag {
        Ok(tag) => tag,
        Err(reason) => return reject(reason),
    };
    let rule = if named {
        rules.rule_for(&names.device, &names.tag, &names.tag_id)
    } else {
        None
    };
    let template = rule
        .and_then(|(_, r)| r.key_template.as_ref())
        .unwrap_or(template);
    let mut key = Key::new();
    if template.render(device, tag, tag_id, &mut key).is_err() {
        return reject(RejectReason::KeyTooLong);
    }
    if let Err(reason) = rules.validate_key(&key) {
        return reject(reason);
    }
    let value = match rule {
        Some((_, r)) => match r.map(value) {
            Ok(value) => value,
            Err(reason) => return reject(reason),
        },
        None => value,
    };
    if let Value::Str(s) = &value
        && s.len() > rules.validation.string_max_bytes
    {
        return reject(RejectReason::StringTooLong);
    }
    Reading::Good {
        key,
        value,
        source_time_ms: source_time_ms(fields.timestamp),
        rule: rule.map(|(i, _)| i),
    }
}

/// Unescaped names, bounded like keys (longer names are cut for matching).
#[derive(Default)]
struct Names {
    device: Key,
    tag: Key,
    tag_id: Key,
}

impl Names {
    fn fill(&mut self, device: JsonStr<'_>, tag: JsonStr<'_>, tag_id: JsonStr<'_>) {
        device
            .write_unescaped(&mut Truncating::new(&mut self.device))
            .ok();
        tag.write_unescaped(&mut Truncating::new(&mut self.tag))
            .ok();
        tag_id
            .write_unescaped(&mut Truncating::new(&mut self.tag_id))
            .ok();
    }
}

/// The entry's `timestamp` (Unix seconds, integer or not) in ms; 0 when
/// absent or not a plausible time.
fn source_time_ms(timestamp: Option<RawValue<'_>>) -> u64 {
    let Some(RawValue::Scalar(Token::Number(text))) = timestamp else {
        return 0;
    };
    // The backend sends whole seconds: parsed as an integer, exactly as
    // the float parse gives them below 1e11 s, and cheaper.
    match text.parse::<u64>() {
        Ok(secs) if secs < 100_000_000_000 => secs * 1000,
        Ok(_) => 0,
        Err(_) => float_seconds_ms(text),
    }
}

/// Seconds in any JSON number form, as milliseconds; 0 if out of range.
fn float_seconds_ms(text: &str) -> u64 {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..1.0e11).contains(&secs) => (secs * 1000.0) as u64,
        _ => 0,
    }
}

fn convert_value(raw: RawValue<'_>) -> Result<Value, RejectReason> {
    match raw {
        RawValue::Container => Err(RejectReason::UnsupportedValueType),
        RawValue::Scalar(token) => match token {
            Token::Null => Err(RejectReason::NullValue),
            Token::Bool(b) => Ok(Value::Bool(b)),
            Token::NonFinite(_) => Err(RejectReason::NonFiniteNumber),
            Token::Number(text) => parse_number(text).map_err(|_| RejectReason::NumberOutOfRange),
            Token::Str(s) => {
                let mut text = StringValue::new();
                s.write_unescaped(&mut text)
                    .map_err(|_| RejectReason::StringTooLong)?;
                Ok(Value::Str(text))
            }
            // A scalar slot never holds a structural token.
            _ => Err(RejectReason::UnsupportedValueType),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::polled::parse_document;

    fn readings(body: &[u8]) -> heapless::Vec<Reading, 32> {
        let template = KeyTemplate::default();
        let mut out = heapless::Vec::new();
        let rules = RuleSet::default();
        parse_document(body, |e| out.push(classify(&e, &template, &rules)).unwrap()).unwrap();
        out
    }

    fn good(key: &str, value: Value) -> Reading {
        good_at(key, value, 0)
    }

    fn good_at(key: &str, value: Value, source_time_ms: u64) -> Reading {
        Reading::Good {
            key: Key::try_from(key).unwrap(),
            value,
            source_time_ms,
            rule: None,
        }
    }

    fn string(text: &str) -> Value {
        Value::Str(StringValue::try_from(text).unwrap())
    }

    #[test]
    fn basic_fixture_gives_exactly_the_expected_rows() {
        let got = readings(include_bytes!(
            "../../tests/fixtures/polled-values/basic.json"
        ));
        let goods: heapless::Vec<&Reading, 16> = got
            .iter()
            .filter(|r| matches!(r, Reading::Good { .. }))
            .collect();
        let expected = [
            good_at("Boiler-1.t-001", Value::Float(71.25), 1_764_318_000_000),
            good_at("Boiler-1.t-002", Value::Int(3), 1_764_318_000_000),
            good_at("Boiler-1.t-003", Value::Bool(true), 1_764_318_000_000),
            good_at("Boiler-1.Mode", string("RUNNING"), 1_764_318_000_000),
            good_at(
                "Pump Station 2.Flow rate",
                Value::Float(-0.0005),
                1_764_318_001_000,
            ),
            good_at(
                "Kühlraum \"Nord\".Temperatur °C",
                Value::Float(-18.4),
                1_764_318_002_000,
            ),
        ];
        assert_eq!(goods.len(), expected.len());
        for (g, e) in goods.iter().zip(expected.iter()) {
            assert_eq!(*g, e);
        }
        let failed = got
            .iter()
            .filter(|r| matches!(r, Reading::FailedRead { .. }))
            .count();
        assert_eq!(failed, 2);
        assert_eq!(got.len(), 8);
    }

    #[test]
    fn hostile_fixture_rejects_each_bad_entry_with_its_reason() {
        let got = readings(include_bytes!(
            "../../tests/fixtures/polled-values/hostile.json"
        ));
        let mut reasons: heapless::Vec<(RejectReason, &str), 32> = heapless::Vec::new();
        let mut goods: heapless::Vec<(&str, &Value), 8> = heapless::Vec::new();
        for r in &got {
            match r {
                Reading::Rejected { reason, tag } => {
                    reasons.push((*reason, tag.text.as_str())).unwrap()
                }
                Reading::Good { key, value, .. } => goods.push((key.as_str(), value)).unwrap(),
                Reading::FailedRead { .. } | Reading::Filtered => {
                    panic!("no failed read in hostile.json")
                }
            }
        }
        assert_eq!(
            goods.as_slice(),
            &[
                ("dev.esc\"apedé\n", &Value::Float(2.5)),
                ("dev.good", &Value::Int(42)),
                ("dev.dup", &Value::Int(1)),
                ("dev.dup", &Value::Int(2)),
            ]
        );
        use RejectReason::*;
        assert_eq!(
            reasons.as_slice(),
            &[
                (NonFiniteNumber, "dev/nan"),
                (NonFiniteNumber, "dev/inf"),
                (NonFiniteNumber, "dev/ninf"),
                (UnsupportedValueType, "dev/obj"),
                (UnsupportedValueType, "dev/arr"),
                (NumberOutOfRange, "dev/big"),
                (NumberOutOfRange, "dev/huge_int"),
                (MissingStatus, "dev/no_status"),
                (StatusNotString, "dev/status_num"),
                (DeviceNotObject, "not_an_object_device"),
                (DeviceNotObject, "list_device"),
                (TagNotObject, "tags_not_objects/x"),
                (TagNotObject, "tags_not_objects/y"),
                (TagNotObject, "tags_not_objects/z"),
            ]
        );
    }

    #[test]
    fn long_key_fixture_rejects_only_the_long_tag() {
        let got = readings(include_bytes!(
            "../../tests/fixtures/polled-values/long-key.json"
        ));
        assert_eq!(got.len(), 2);
        let Reading::Rejected { reason, tag } = &got[0] else {
            panic!("{:?}", got[0]);
        };
        assert_eq!(*reason, RejectReason::KeyTooLong);
        assert_eq!(tag.full_len, "dev-long/".len() + 10_000);
        assert_eq!(got[1], good("ok-dev.t", Value::Float(2.0)));
    }

    #[test]
    fn deep_and_truncated_fixtures_are_errors_after_their_whole_tags() {
        use crate::wire::json::JsonError;
        use crate::wire::polled::DocumentError;
        let template = KeyTemplate::default();
        let mut seen = 0;
        let deep = include_bytes!("../../tests/fixtures/polled-values/deep-nesting.json");
        let result = parse_document(deep, |e| {
            classify(&e, &template, &RuleSet::default());
            seen += 1;
        });
        // At the offset the whole-document parser gave: levels count from
        // the root.
        assert_eq!(
            result,
            Err(DocumentError::Json(JsonError::NestingTooDeep { at: 101 }))
        );
        assert_eq!(seen, 0);
        let truncated = include_bytes!("../../tests/fixtures/polled-values/truncated.json");
        let mut goods = 0;
        let result = parse_document(truncated, |e| {
            goods += usize::from(matches!(
                classify(&e, &template, &RuleSet::default()),
                Reading::Good { .. }
            ));
        });
        assert_eq!(result, Err(DocumentError::Json(JsonError::UnexpectedEnd)));
        // Boiler-1's three good tags before t-005, which is cut, came whole
        // (the engine holds them back: nothing applies from a broken body).
        assert_eq!(goods, 3);
    }

    #[test]
    fn string_values_and_names_are_bounded() {
        let long = [b'x'; 100];
        let mut body: heapless::Vec<u8, 256> = heapless::Vec::new();
        body.extend_from_slice(br#"{"d": {"t": {"status": "ok", "value": ""#)
            .unwrap();
        body.extend_from_slice(&long).unwrap();
        body.extend_from_slice(br#""}, "u": {"status": "ok", "value": 1, "name": 5}}}"#)
            .unwrap();
        let got = readings(&body);
        assert!(matches!(
            got[0],
            Reading::Rejected {
                reason: RejectReason::StringTooLong,
                ..
            }
        ));
        assert!(matches!(
            got[1],
            Reading::Rejected {
                reason: RejectReason::NameNotString,
                ..
            }
        ));
    }

    /// A `timestamp` as its number token.
    fn ms(text: &str) -> u64 {
        source_time_ms(Some(RawValue::Scalar(Token::Number(text))))
    }

    #[test]
    fn whole_seconds_are_read_as_integers_as_the_float_parse_reads_them() {
        assert_eq!(ms("1764318000"), 1_764_318_000_000);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("99999999999"), 99_999_999_999_000);
        // 1e11 seconds and beyond, negatives, fractions: as floats.
        assert_eq!(ms("100000000000"), 0);
        assert_eq!(ms("-1"), 0);
        assert_eq!(ms("1764318000.5"), 1_764_318_000_500);
        assert_eq!(ms("1.7e9"), 1_700_000_000_000);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::proptest_cases()))]

        #[test]
        fn any_timestamp_reads_as_its_float_parse(
            text in "-?(0|[1-9][0-9]{0,13})(\\.[0-9]{1,3})?([eE][-+]?[0-9]{1,2})?"
        ) {
            proptest::prop_assert_eq!(ms(&text), float_seconds_ms(&text));
        }
    }
}
