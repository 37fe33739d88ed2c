//! How an option's text becomes its value and back: the parsers and
//! formatters the option table's entries name.

use std::net::SocketAddr;
use std::time::Duration;

use dataservice_sync_core::Duration as CoreDuration;

use crate::spool::SpoolSync;

/// The one of `all` that `name` calls `text`.
pub(super) fn one_of<T: Copy>(
    text: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|&choice| name(choice) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|&choice| name(choice)).collect();
            not_one_of(text, &names)
        })
}

pub(super) fn quoted(text: &str) -> String {
    format!("{text:?}")
}

pub(super) fn secs(d: Duration) -> String {
    d.as_secs_f64().to_string()
}

pub(super) fn core_secs(d: CoreDuration) -> String {
    secs(Duration::from_millis(d.total_millis()))
}

pub(super) fn not_one_of(text: &str, words: &[&str]) -> String {
    format!("{text:?} is not one of {}", words.join(", "))
}

pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

pub(super) fn integer<T: std::str::FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| format!("{text:?}: {e}"))
}

pub(super) fn integer_in<T>(text: &str, low: T, high: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value: T = integer(text)?;
    if value < low || value > high {
        return Err(format!("{value} is not in {low}..={high}"));
    }
    Ok(value)
}

/// Seconds, zero included, at most a year.
pub fn seconds_or_zero(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !value.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&value) {
        return Err(format!("{text:?} is not between 0 and one year of seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// Seconds, at least 0.01, at most a year.
pub fn seconds(text: &str) -> Result<Duration, String> {
    let value = seconds_or_zero(text)?;
    if value < Duration::from_millis(10) {
        return Err(format!("{text:?} is less than 0.01 seconds"));
    }
    Ok(value)
}

/// An address to listen on, or `off`.
pub fn listen_address(text: &str) -> Result<Option<SocketAddr>, String> {
    if text == "off" {
        return Ok(None);
    }
    text.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| format!("{text:?} is not ADDRESS:PORT (e.g. 127.0.0.1:9108) or 'off'"))
}

pub(super) fn spool_sync(text: &str) -> Result<SpoolSync, String> {
    match text {
        "always" => Ok(SpoolSync::Always),
        "never" => Ok(SpoolSync::Never),
        ms => match ms.parse::<u64>() {
            Ok(ms) if (1..=3_600_000).contains(&ms) => {
                Ok(SpoolSync::Every(Duration::from_millis(ms)))
            }
            _ => Err(format!(
                "{text:?} is not 'always', 'never' or 1..3600000 milliseconds"
            )),
        },
    }
}
