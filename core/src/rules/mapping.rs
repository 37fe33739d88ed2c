//! Mapping rules: how a matched tag's value is transformed, in this order:
//! scale and offset, rounding, clamp (so the bounds hold exactly), cast,
//! then the valid range. Every
//! step works in fixed memory and cannot panic or overflow silently: a
//! result that is not finite or does not fit its type is a rejection.

use core::fmt::Write;

use crate::key::KeyTemplate;
use crate::reject::RejectReason;
use crate::time::Duration;
use crate::value::{StringValue, Value};

use super::Pattern;

/// The type a rule casts values to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cast {
    /// A float.
    Float,
    /// An integer (rounded half away from zero).
    Int,
    /// A bool (numbers: not zero; strings: true/false, 1/0, on/off).
    Bool,
    /// A string (numbers as JSON spells them).
    String,
}

impl Cast {
    /// The Data-Service's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Cast::Float => "float",
            Cast::Int => "int",
            Cast::Bool => "bool",
            Cast::String => "string",
        }
    }
}

/// A deadband: changes smaller than this (against the last value
/// delivered) are not written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Deadband {
    /// An absolute difference.
    Absolute(f64),
    /// A percentage of the last delivered value.
    Percent(f64),
}

/// One mapping rule; the first whose patterns match a tag applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Device name pattern.
    pub device: Pattern,
    /// Tag pattern (matched against the tag's name and its id).
    pub tag: Pattern,
    /// A key template for these tags instead of the global one.
    pub key_template: Option<KeyTemplate>,
    /// Multiply numbers by this.
    pub scale: Option<f64>,
    /// Then add this.
    pub offset: Option<f64>,
    /// Then round floats to this many decimals (0..=9).
    pub round: Option<u8>,
    /// Then keep numbers within these bounds.
    pub clamp: Option<(f64, f64)>,
    /// Then cast.
    pub cast: Option<Cast>,
    /// Then reject numbers outside this range (`value_out_of_range`).
    pub valid_range: Option<(f64, f64)>,
    /// Changes smaller than this are not written (ignored after a failed read).
    pub deadband: Option<Deadband>,
    /// No two writes of a tag closer than this; later values wait.
    pub min_interval: Option<Duration>,
    /// Re-send an unchanged value after this long (instead of `--heartbeat`).
    pub heartbeat: Option<Duration>,
    /// The data type a missing key is registered with (instead of the
    /// value's: `float` for every number).
    pub data_type: Option<Cast>,
}

impl Rule {
    /// A rule matching every tag that changes nothing.
    pub fn any() -> Rule {
        let mut star = Pattern::new();
        star.push('*').ok();
        Rule {
            device: star.clone(),
            tag: star,
            key_template: None,
            scale: None,
            offset: None,
            clamp: None,
            round: None,
            cast: None,
            valid_range: None,
            deadband: None,
            min_interval: None,
            heartbeat: None,
            data_type: None,
        }
    }

    /// A rule matching `device` and `tag` that changes nothing.
    pub fn matching(device: &str, tag: &str) -> Option<Rule> {
        Some(Rule {
            device: Pattern::try_from(device).ok()?,
            tag: Pattern::try_from(tag).ok()?,
            ..Rule::any()
        })
    }

    /// Applies the rule's transformation to `value`.
    pub fn map(&self, value: Value) -> Result<Value, RejectReason> {
        let mut value = value;
        if (self.scale.is_some() || self.offset.is_some())
            && let Some(x) = value.number()
        {
            value = finite(x * self.scale.unwrap_or(1.0) + self.offset.unwrap_or(0.0))?;
        }
        if let (Some(decimals), Value::Float(x)) = (self.round, &value) {
            value = finite(round_to(*x, decimals))?;
        }
        if let (Some((low, high)), Some(x)) = (self.clamp, value.number()) {
            let clamped = if x < low {
                low
            } else if x > high {
                high
            } else {
                x
            };
            value = match value {
                Value::Int(_) if clamped == x => value,
                // An integer stays one when the bound is a whole number.
                Value::Int(_) if clamped == round_half_away(clamped) => int_of(clamped)?,
                _ => Value::Float(clamped),
            };
        }
        if let Some(cast) = self.cast {
            value = cast_value(value, cast)?;
        }
        if let (Some((low, high)), Some(x)) = (self.valid_range, value.number())
            && !(low..=high).contains(&x)
        {
            return Err(RejectReason::ValueOutOfRange);
        }
        Ok(value)
    }
}

fn finite(x: f64) -> Result<Value, RejectReason> {
    if x.is_finite() {
        Ok(Value::Float(x))
    } else {
        Err(RejectReason::NonFiniteNumber)
    }
}

/// Rounds half away from zero to an integer value.
fn round_half_away(x: f64) -> f64 {
    // Beyond 2^52 every float is an integer already.
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    let truncated = x as i64 as f64;
    let rest = x - truncated;
    if rest >= 0.5 {
        truncated + 1.0
    } else if rest <= -0.5 {
        truncated - 1.0
    } else {
        truncated
    }
}

fn round_to(x: f64, decimals: u8) -> f64 {
    let mut factor = 1.0;
    for _ in 0..decimals.min(9) {
        factor *= 10.0;
    }
    let scaled = x * factor;
    if !scaled.is_finite() || scaled.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    round_half_away(scaled) / factor
}

fn int_of(x: f64) -> Result<Value, RejectReason> {
    let rounded = round_half_away(x);
    // i64::MAX as f64 rounds up to 2^63, which does not fit: strict bound.
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&rounded) {
        Ok(Value::Int(rounded as i64))
    } else {
        Err(RejectReason::NumberOutOfRange)
    }
}

fn cast_value(value: Value, cast: Cast) -> Result<Value, RejectReason> {
    match (cast, value) {
        (Cast::Float, Value::Int(v)) => Ok(Value::Float(v as f64)),
        (Cast::Float, Value::Bool(b)) => Ok(Value::Float(if b { 1.0 } else { 0.0 })),
        (Cast::Float, Value::Str(s)) => match s.trim().parse::<f64>() {
            Ok(x) => finite(x),
            Err(_) => Err(RejectReason::CastFailed),
        },
        (Cast::Int, Value::Float(x)) => int_of(x),
        (Cast::Int, Value::Bool(b)) => Ok(Value::Int(i64::from(b))),
        (Cast::Int, Value::Str(s)) => match s.trim().parse::<i64>() {
            Ok(v) => Ok(Value::Int(v)),
            Err(_) => match s.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => int_of(x),
                _ => Err(RejectReason::CastFailed),
            },
        },
        (Cast::Bool, Value::Int(v)) => Ok(Value::Bool(v != 0)),
        (Cast::Bool, Value::Float(x)) => Ok(Value::Bool(x != 0.0)),
        (Cast::Bool, Value::Str(s)) => match s.trim() {
            "true" | "1" | "on" | "TRUE" | "True" | "ON" => Ok(Value::Bool(true)),
            "false" | "0" | "off" | "FALSE" | "False" | "OFF" => Ok(Value::Bool(false)),
            _ => Err(RejectReason::CastFailed),
        },
        (Cast::String, Value::Str(s)) => Ok(Value::Str(s)),
        (Cast::String, other) => {
            let mut text = StringValue::new();
            match &other {
                Value::Str(_) => {}
                Value::Bool(b) => write!(text, "{b}").map_err(|_| RejectReason::StringTooLong)?,
                // As JSON spells it: 3, 71.25, -0.0005.
                number => write!(text, "{number}").map_err(|_| RejectReason::StringTooLong)?,
            }
            Ok(Value::Str(text))
        }
        (_, same) => Ok(same),
    }
}

/// Whether a change from `delivered` to `now` is inside the deadband.
pub fn within_deadband(deadband: Deadband, delivered: f64, now: f64) -> bool {
    let difference = (now - delivered).abs();
    match deadband {
        Deadband::Absolute(band) => difference < band,
        Deadband::Percent(percent) => difference < delivered.abs() * percent / 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule::matching("*", "*").unwrap()
    }

    fn s(text: &str) -> Value {
        Value::Str(StringValue::try_from(text).unwrap())
    }

    #[test]
    fn scale_offset_round_clamp_cast_range_in_that_order() {
        let mut r = rule();
        r.scale = Some(0.1);
        r.offset = Some(-40.0);
        assert_eq!(r.map(Value::Int(725)), Ok(Value::Float(32.5)));
        r.clamp = Some((-20.0, 30.0));
        assert_eq!(r.map(Value::Int(725)), Ok(Value::Float(30.0)));
        assert_eq!(r.map(Value::Int(0)), Ok(Value::Float(-20.0)));
        r.clamp = None;
        r.round = Some(1);
        assert_eq!(r.map(Value::Int(723)), Ok(Value::Float(32.3)));
        assert_eq!(r.map(Value::Float(723.45)), Ok(Value::Float(32.3)));
        r.cast = Some(Cast::Int);
        assert_eq!(r.map(Value::Float(725.0)), Ok(Value::Int(33)));
        assert_eq!(r.map(Value::Float(-5.0)), Ok(Value::Int(-41)));
        r.valid_range = Some((-40.0, 30.0));
        assert_eq!(
            r.map(Value::Float(725.0)),
            Err(RejectReason::ValueOutOfRange)
        );
        assert_eq!(r.map(Value::Float(600.0)), Ok(Value::Int(20)));
        // Strings and bools pass the numeric steps untouched.
        r.cast = None;
        assert_eq!(r.map(s("RUNNING")), Ok(s("RUNNING")));
        assert_eq!(r.map(Value::Bool(true)), Ok(Value::Bool(true)));
    }

    #[test]
    fn clamp_keeps_integers_integers() {
        let mut r = rule();
        r.clamp = Some((0.0, 100.0));
        assert_eq!(r.map(Value::Int(50)), Ok(Value::Int(50)));
        assert_eq!(r.map(Value::Int(150)), Ok(Value::Int(100)));
        assert_eq!(r.map(Value::Float(-0.5)), Ok(Value::Float(0.0)));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        let mut r = rule();
        r.round = Some(0);
        assert_eq!(r.map(Value::Float(2.5)), Ok(Value::Float(3.0)));
        assert_eq!(r.map(Value::Float(-2.5)), Ok(Value::Float(-3.0)));
        r.round = Some(2);
        assert_eq!(r.map(Value::Float(1.005_1)), Ok(Value::Float(1.01)));
        assert_eq!(r.map(Value::Float(1e300)), Ok(Value::Float(1e300)));
        // Integers are not rounded.
        assert_eq!(r.map(Value::Int(7)), Ok(Value::Int(7)));
    }

    #[test]
    fn every_cast() {
        let cast = |c, v| {
            let mut r = rule();
            r.cast = Some(c);
            r.map(v)
        };
        assert_eq!(cast(Cast::Float, Value::Int(3)), Ok(Value::Float(3.0)));
        assert_eq!(cast(Cast::Float, Value::Bool(true)), Ok(Value::Float(1.0)));
        assert_eq!(cast(Cast::Float, s(" 2.5 ")), Ok(Value::Float(2.5)));
        assert_eq!(cast(Cast::Float, s("abc")), Err(RejectReason::CastFailed));
        assert_eq!(
            cast(Cast::Float, s("inf")),
            Err(RejectReason::NonFiniteNumber)
        );
        assert_eq!(cast(Cast::Int, Value::Float(2.5)), Ok(Value::Int(3)));
        assert_eq!(
            cast(Cast::Int, Value::Float(1e19)),
            Err(RejectReason::NumberOutOfRange)
        );
        assert_eq!(cast(Cast::Int, Value::Bool(false)), Ok(Value::Int(0)));
        assert_eq!(cast(Cast::Int, s("42")), Ok(Value::Int(42)));
        assert_eq!(cast(Cast::Int, s("4.4")), Ok(Value::Int(4)));
        assert_eq!(cast(Cast::Int, s("x")), Err(RejectReason::CastFailed));
        assert_eq!(cast(Cast::Bool, Value::Int(2)), Ok(Value::Bool(true)));
        assert_eq!(cast(Cast::Bool, Value::Float(0.0)), Ok(Value::Bool(false)));
        assert_eq!(cast(Cast::Bool, s("on")), Ok(Value::Bool(true)));
        assert_eq!(cast(Cast::Bool, s("maybe")), Err(RejectReason::CastFailed));
        assert_eq!(cast(Cast::String, Value::Int(3)), Ok(s("3")));
        assert_eq!(cast(Cast::String, Value::Float(71.25)), Ok(s("71.25")));
        assert_eq!(cast(Cast::String, Value::Bool(false)), Ok(s("false")));
        assert_eq!(cast(Cast::Int, Value::Int(9)), Ok(Value::Int(9)));
    }

    #[test]
    fn overflow_is_a_rejection_not_infinity() {
        let mut r = rule();
        r.scale = Some(1e300);
        assert_eq!(
            r.map(Value::Float(1e300)),
            Err(RejectReason::NonFiniteNumber)
        );
        r.scale = Some(1.0);
        r.offset = Some(f64::MAX);
        assert_eq!(
            r.map(Value::Float(f64::MAX)),
            Err(RejectReason::NonFiniteNumber)
        );
    }

    #[test]
    fn deadbands() {
        assert!(within_deadband(Deadband::Absolute(0.5), 10.0, 10.4));
        assert!(!within_deadband(Deadband::Absolute(0.5), 10.0, 10.5));
        assert!(within_deadband(Deadband::Percent(2.0), 100.0, 101.9));
        assert!(!within_deadband(Deadband::Percent(2.0), 100.0, 97.9));
        assert!(!within_deadband(Deadband::Percent(2.0), 0.0, 0.1));
    }
}
