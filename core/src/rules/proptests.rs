//! Property tests of rule evaluation: any rule on any value neither panics
//! nor overflows, and what it promises holds.

use proptest::prelude::*;
use std::format;

use super::{Cast, Deadband, Rule, glob_match, within_deadband};
use crate::reject::RejectReason;
use crate::time::Duration;
use crate::value::{StringValue, Value};

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        -1e6..1e6f64,
        Just(0.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        finite().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        "[ -~]{0,40}"
            .prop_map(|s| Value::Str(StringValue::try_from(s.as_str()).unwrap_or_default())),
        prop_oneof![
            Just("1e400"),
            Just("nan"),
            Just(" 42 "),
            Just("-0"),
            Just("9e18")
        ]
        .prop_map(|s| Value::Str(StringValue::try_from(s).unwrap_or_default())),
    ]
}

fn cast() -> impl Strategy<Value = Option<Cast>> {
    prop_oneof![
        Just(None),
        Just(Some(Cast::Float)),
        Just(Some(Cast::Int)),
        Just(Some(Cast::Bool)),
        Just(Some(Cast::String)),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        proptest::option::of(finite()),
        proptest::option::of(finite()),
        proptest::option::of((finite(), finite())),
        proptest::option::of(0u8..=9),
        cast(),
        proptest::option::of((finite(), finite())),
    )
        .prop_map(|(scale, offset, clamp, round, cast, range)| {
            let order = |(a, b): (f64, f64)| if a <= b { (a, b) } else { (b, a) };
            Rule {
                scale,
                offset,
                clamp: clamp.map(order),
                round,
                cast,
                valid_range: range.map(order),
                deadband: Some(Deadband::Absolute(1.0)),
                min_interval: Some(Duration::from_millis(1)),
                heartbeat: None,
                ..Rule::any()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases()))]

    #[test]
    fn mapping_never_panics_and_numbers_stay_finite(rule in rule(), value in value()) {
        match rule.map(value) {
            Ok(Value::Float(x)) => prop_assert!(x.is_finite()),
            Ok(Value::Str(s)) => prop_assert!(s.len() <= crate::config::MAX_STRING_VALUE_LEN),
            Ok(_) => {}
            Err(reason) => prop_assert!(matches!(
                reason,
                RejectReason::NonFiniteNumber
                    | RejectReason::NumberOutOfRange
                    | RejectReason::CastFailed
                    | RejectReason::ValueOutOfRange
                    | RejectReason::StringTooLong
            )),
        }
    }

    #[test]
    fn a_clamp_without_a_cast_holds_exactly(rule in rule(), value in value()) {
        let rule = Rule { cast: None, valid_range: None, ..rule };
        if let (Some((low, high)), Ok(mapped)) = (rule.clamp, rule.map(value))
            && let Some(x) = mapped.number()
        {
            prop_assert!(low <= x && x <= high, "{x} outside {low}..={high}");
        }
    }

    #[test]
    fn a_valid_range_is_never_left(rule in rule(), value in value()) {
        if let (Some((low, high)), Ok(mapped)) = (rule.valid_range, rule.map(value))
            && let Some(x) = mapped.number()
        {
            prop_assert!(low <= x && x <= high);
        }
    }

    #[test]
    fn rounding_leaves_at_most_the_decimals_asked(x in -1e9..1e9f64, decimals in 0u8..=6) {
        let rule = Rule { round: Some(decimals), ..Rule::any() };
        let Ok(Value::Float(rounded)) = rule.map(Value::Float(x)) else {
            return Err(TestCaseError::fail("a float stays a float"));
        };
        let scaled = rounded * 10f64.powi(i32::from(decimals));
        // Within the float's own precision at that magnitude.
        let tolerance = 1e-3_f64.max(scaled.abs() * 1e-15);
        prop_assert!((scaled - scaled.round()).abs() <= tolerance, "{x} -> {rounded}");
        prop_assert!((rounded - x).abs() <= 0.5 / 10f64.powi(i32::from(decimals)) + x.abs() * 1e-15);
    }

    #[test]
    fn deadbands_never_panic(band in finite(), a in finite(), b in finite(), percent in any::<bool>()) {
        let band = if percent { Deadband::Percent(band.abs()) } else { Deadband::Absolute(band.abs()) };
        let _ = within_deadband(band, a, b);
    }

    #[test]
    fn globs_never_panic_and_star_matches_all(pattern in "[a-c*?é]{0,12}", text in "[a-cé]{0,16}") {
        let _ = glob_match(&pattern, &text);
        prop_assert!(glob_match("*", &text));
        prop_assert!(glob_match(&text, &text));
        let starred = format!("*{text}*");
        prop_assert!(glob_match(&starred, &text));
    }
}
