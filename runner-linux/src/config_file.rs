//! The configuration file (`--config PATH`, TOML): every command-line
//! option by its flag's name (`interval = 0.5`, `socket-path = "…"`), plus
//! `[filter]`, `[validation]` and `[[rule]]` tables. The command line
//! overrides the file. Every error names the file, the line and the field.
//!
//! Options are checked by the command line's own parsers: each one becomes
//! `--name value` and goes through clap, so the file and the command line
//! cannot disagree on what a value means.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dataservice_sync_core::KeyTemplate;
use dataservice_sync_core::config::{MAX_KEY_LEN, MAX_STRING_VALUE_LEN};
use dataservice_sync_core::rules::{
    Cast, Deadband, MAX_PATTERNS, MAX_RULES, MAX_STATUSES, Pattern, PatternList, Rule, RuleSet,
    Status, parse_char_ranges,
};
use toml::{Table, Value};

/// Largest configuration file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A configuration file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// The line (1-based), when known.
    pub line: Option<usize>,
    /// The field, e.g. `interval` or `rule[2].scale`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

/// What a file says: options as command-line arguments, and the rules.
#[derive(Clone, Debug, Default)]
pub struct FileSettings {
    /// `--name value` pairs (or a lone `--flag`), with their line.
    pub args: Vec<(String, Option<String>, usize)>,
    /// Filters, mapping rules and validation (boxed, as in `SyncOptions`).
    pub rules: Box<RuleSet>,
}

/// Reads and checks `path`. `flags` names every option the command line
/// has and whether it takes a value (`false` for a switch like
/// `--no-logging`).
pub fn load(path: &Path, flags: &[(String, bool)]) -> Result<FileSettings, FileError> {
    let error = |line: Option<usize>, field: Option<String>, message: String| FileError {
        path: path.to_path_buf(),
        line,
        field,
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| error(None, None, format!("cannot read: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(error(
            None,
            None,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| error(None, None, format!("cannot read: {e}")))?;
    parse(&text, path, flags)
}

/// Checks the text of a configuration file (`path` only names it in errors).
pub fn parse(text: &str, path: &Path, flags: &[(String, bool)]) -> Result<FileSettings, FileError> {
    let error = |line: Option<usize>, field: Option<String>, message: String| FileError {
        path: path.to_path_buf(),
        line,
        field,
        message,
    };
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|span| line_at(text, span.start));
        error(line, None, e.message().trim().to_string())
    })?;
    let mut settings = FileSettings::default();
    for (name, value) in &table {
        let line_number = find_line(text, None, name);
        let line = Some(line_number);
        let field = || Some(name.clone());
        match name.as_str() {
            "filter" => parse_filter(text, value, &mut settings.rules)
                .map_err(|(field, line, message)| error(line, Some(field), message))?,
            "validation" => parse_validation(text, value, &mut settings.rules)
                .map_err(|(field, line, message)| error(line, Some(field), message))?,
            "rule" => parse_rules(text, value, &mut settings.rules)
                .map_err(|(field, line, message)| error(line, Some(field), message))?,
            "config" => {
                return Err(error(
                    line,
                    field(),
                    "a file cannot name another file".into(),
                ));
            }
            _ => {
                let Some((_, takes_value)) = flags.iter().find(|(flag, _)| flag == name) else {
                    return Err(error(line, field(), "unknown setting".into()));
                };
                let line = line_number;
                match (value, takes_value) {
                    (Value::Boolean(true), false) => settings.args.push((name.clone(), None, line)),
                    (Value::Boolean(false), false) => {}
                    (_, false) => {
                        return Err(error(Some(line), field(), "must be true or false".into()));
                    }
                    (Value::String(s), true) => {
                        settings.args.push((name.clone(), Some(s.clone()), line))
                    }
                    (Value::Integer(n), true) => {
                        settings
                            .args
                            .push((name.clone(), Some(n.to_string()), line))
                    }
                    (Value::Float(x), true) => {
                        settings
                            .args
                            .push((name.clone(), Some(x.to_string()), line))
                    }
                    (_, true) => {
                        return Err(error(
                            Some(line),
                            field(),
                            "must be a string or a number".into(),
                        ));
                    }
                }
            }
        }
    }
    Ok(settings)
}

/// (field, line, message) of a table's error.
type FieldError = (String, Option<usize>, String);

fn parse_filter(text: &str, value: &Value, rules: &mut RuleSet) -> Result<(), FieldError> {
    let table = as_table(text, "filter", value)?;
    for (name, value) in table {
        let field = format!("filter.{name}");
        let line = Some(find_line(text, Some(("[filter]", 0)), name));
        let list = strings(value)
            .ok_or_else(|| (field.clone(), line, "must be a list of strings".to_string()))?;
        let filters = &mut rules.filters;
        match name.as_str() {
            "include-devices" => filters.include_devices = patterns(&list, &field, line)?,
            "exclude-devices" => filters.exclude_devices = patterns(&list, &field, line)?,
            "include-tags" => filters.include_tags = patterns(&list, &field, line)?,
            "exclude-tags" => filters.exclude_tags = patterns(&list, &field, line)?,
            "good-statuses" => {
                if list.is_empty() || list.len() > MAX_STATUSES {
                    return Err((field, line, format!("needs 1 to {MAX_STATUSES} statuses")));
                }
                filters.good_statuses.clear();
                for status in list {
                    let status = Status::try_from(status.as_str()).map_err(|_| {
                        (
                            field.clone(),
                            line,
                            format!("{status:?} is longer than 32 bytes"),
                        )
                    })?;
                    filters.good_statuses.push(status).ok();
                }
            }
            _ => return Err((field, line, "unknown setting".into())),
        }
    }
    Ok(())
}

fn parse_validation(text: &str, value: &Value, rules: &mut RuleSet) -> Result<(), FieldError> {
    let table = as_table(text, "validation", value)?;
    for (name, value) in table {
        let field = format!("validation.{name}");
        let line = Some(find_line(text, Some(("[validation]", 0)), name));
        let bad = |message: String| (field.clone(), line, message);
        let v = &mut rules.validation;
        match name.as_str() {
            "key-max-bytes" => {
                v.key_max_bytes = integer_in(value, 1, MAX_KEY_LEN as i64)
                    .ok_or_else(|| bad(format!("must be an integer from 1 to {MAX_KEY_LEN}")))?
                    as usize
            }
            "string-max-bytes" => {
                v.string_max_bytes =
                    integer_in(value, 1, MAX_STRING_VALUE_LEN as i64).ok_or_else(|| {
                        bad(format!(
                            "must be an integer from 1 to {MAX_STRING_VALUE_LEN}"
                        ))
                    })? as usize
            }
            "key-allowed-characters" => {
                let set = value
                    .as_str()
                    .ok_or_else(|| bad("must be a string like \"A-Za-z0-9_.-\"".into()))?;
                v.key_allowed = parse_char_ranges(set).map_err(|e| bad(e.to_string()))?;
            }
            _ => return Err(bad("unknown setting".into())),
        }
    }
    Ok(())
}

fn parse_rules(text: &str, value: &Value, rules: &mut RuleSet) -> Result<(), FieldError> {
    let Value::Array(list) = value else {
        return Err((
            "rule".into(),
            Some(find_line(text, None, "rule")),
            "must be [[rule]] tables".into(),
        ));
    };
    if list.len() > MAX_RULES {
        return Err((
            "rule".into(),
            None,
            format!("{} rules; at most {MAX_RULES}", list.len()),
        ));
    }
    for (index, value) in list.iter().enumerate() {
        let header = Some(("[[rule]]", index));
        let Value::Table(table) = value else {
            return Err((
                format!("rule[{}]", index + 1),
                None,
                "must be a table".into(),
            ));
        };
        let mut rule = Rule::any();
        let (mut clamp_min, mut clamp_max, mut min, mut max) = (None, None, None, None);
        for (name, value) in table {
            let field = format!("rule[{}].{name}", index + 1);
            let line = Some(find_line(text, header, name));
            let bad = |message: &str| (field.clone(), line, message.to_string());
            let number = || value_number(value).ok_or_else(|| bad("must be a number"));
            let seconds = || {
                value_number(value)
                    .filter(|s| (0.0..=31_536_000.0).contains(s))
                    .map(Duration::from_secs_f64)
                    .map(|d| dataservice_sync_core::Duration::from_millis(d.as_millis() as u64))
                    .ok_or_else(|| bad("must be seconds from 0 to one year"))
            };
            match name.as_str() {
                "device" | "tag" => {
                    let pattern = value
                        .as_str()
                        .and_then(|p| Pattern::try_from(p).ok())
                        .ok_or_else(|| bad("must be a pattern of at most 64 bytes"))?;
                    if name == "device" {
                        rule.device = pattern;
                    } else {
                        rule.tag = pattern;
                    }
                }
                "key-template" => {
                    let template = value.as_str().ok_or_else(|| bad("must be a string"))?;
                    rule.key_template =
                        Some(KeyTemplate::parse(template).map_err(|e| bad(&e.to_string()))?);
                }
                "scale" => rule.scale = Some(number()?),
                "offset" => rule.offset = Some(number()?),
                "clamp-min" => clamp_min = Some(number()?),
                "clamp-max" => clamp_max = Some(number()?),
                "min" => min = Some(number()?),
                "max" => max = Some(number()?),
                "round" => {
                    rule.round = Some(
                        integer_in(value, 0, 9).ok_or_else(|| bad("must be 0 to 9 decimals"))?
                            as u8,
                    )
                }
                "cast" | "data-type" => {
                    let cast = match value.as_str() {
                        Some("float") => Cast::Float,
                        Some("int") => Cast::Int,
                        Some("bool") => Cast::Bool,
                        Some("string") => Cast::String,
                        _ => return Err(bad("must be \"float\", \"int\", \"bool\" or \"string\"")),
                    };
                    if name == "cast" {
                        rule.cast = Some(cast);
                    } else {
                        rule.data_type = Some(cast);
                    }
                }
                "deadband" | "deadband-percent" => {
                    if rule.deadband.is_some() {
                        return Err(bad("give deadband or deadband-percent, not both"));
                    }
                    let band = number()?;
                    if band < 0.0 {
                        return Err(bad("must not be negative"));
                    }
                    rule.deadband = Some(if name == "deadband" {
                        Deadband::Absolute(band)
                    } else {
                        Deadband::Percent(band)
                    });
                }
                "min-interval" => rule.min_interval = Some(seconds()?),
                "heartbeat" => {
                    let heartbeat = seconds()?;
                    if heartbeat.total_millis() < 10 {
                        return Err(bad("must be at least 0.01 seconds"));
                    }
                    rule.heartbeat = Some(heartbeat);
                }
                _ => return Err(bad("unknown setting")),
            }
        }
        let field = |name: &str| format!("rule[{}].{name}", index + 1);
        let line = |name: &str| Some(find_line(text, header, name));
        rule.clamp = match (clamp_min, clamp_max) {
            (Some(low), Some(high)) if low <= high => Some((low, high)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err((
                    field("clamp-max"),
                    line("clamp-max"),
                    "is below clamp-min".into(),
                ));
            }
            _ => {
                return Err((
                    field("clamp-min"),
                    line(if clamp_min.is_some() {
                        "clamp-min"
                    } else {
                        "clamp-max"
                    }),
                    "clamp-min and clamp-max go together".into(),
                ));
            }
        };
        rule.valid_range = match (min, max) {
            (None, None) => None,
            (low, high) if low.unwrap_or(f64::MIN) <= high.unwrap_or(f64::MAX) => {
                Some((low.unwrap_or(f64::MIN), high.unwrap_or(f64::MAX)))
            }
            _ => return Err((field("max"), line("max"), "is below min".into())),
        };
        rules.rules.push(rule).ok();
    }
    Ok(())
}

fn as_table<'v>(text: &str, name: &str, value: &'v Value) -> Result<&'v Table, FieldError> {
    value.as_table().ok_or_else(|| {
        (
            name.to_string(),
            Some(find_line(text, None, name)),
            format!("must be a [{name}] table"),
        )
    })
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn patterns(list: &[String], field: &str, line: Option<usize>) -> Result<PatternList, FieldError> {
    if list.len() > MAX_PATTERNS {
        return Err((
            field.into(),
            line,
            format!("at most {MAX_PATTERNS} patterns"),
        ));
    }
    list.iter()
        .map(|p| {
            Pattern::try_from(p.as_str()).map_err(|_| {
                (
                    field.to_string(),
                    line,
                    format!("{p:?} is longer than 64 bytes"),
                )
            })
        })
        .collect()
}

fn value_number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(n) => Some(*n as f64),
        Value::Float(x) if x.is_finite() => Some(*x),
        _ => None,
    }
}

fn integer_in(value: &Value, low: i64, high: i64) -> Option<i64> {
    value.as_integer().filter(|n| (low..=high).contains(n))
}

/// The line (1-based) of byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `key = …` is set: at the top level (before any table
/// header), or in the `nth` table with `header`.
fn find_line(text: &str, section: Option<(&str, usize)>, key: &str) -> usize {
    let mut seen = 0usize;
    let mut inside = section.is_none();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            inside = match section {
                None => false,
                Some((header, nth)) => {
                    let here = trimmed.starts_with(header);
                    if here {
                        seen += 1;
                    }
                    here && seen == nth + 1
                }
            };
            if section.is_none() && trimmed.starts_with(&format!("[{key}]"))
                || trimmed.starts_with(&format!("[[{key}]]"))
            {
                return number + 1;
            }
            continue;
        }
        let assigned = trimmed
            .strip_prefix(key)
            .or_else(|| trimmed.strip_prefix(&format!("\"{key}\"")))
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if inside && assigned {
            return number + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Vec<(String, bool)> {
        vec![
            ("interval".into(), true),
            ("socket-path".into(), true),
            ("no-logging".into(), false),
        ]
    }

    fn write(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("dss-config-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn options_become_arguments_and_rules_are_read() {
        let path = write(
            "ok",
            "interval = 0.5\nsocket-path = \"/run/ds.sock\"\nno-logging = true\n\n\
             [filter]\nexclude-tags = [\"*_raw\"]\ngood-statuses = [\"ok\"]\n\n\
             [validation]\nkey-allowed-characters = \"A-Za-z0-9._-\"\n\n\
             [[rule]]\ndevice = \"Boiler-*\"\nscale = 0.1\nclamp-min = 0\nclamp-max = 100\n\
             round = 1\ncast = \"float\"\ndeadband-percent = 2\nmin-interval = 5\n",
        );
        let settings = load(&path, &flags()).unwrap();
        assert_eq!(
            settings.args,
            [
                ("interval".to_string(), Some("0.5".to_string()), 1),
                ("no-logging".to_string(), None, 3),
                (
                    "socket-path".to_string(),
                    Some("/run/ds.sock".to_string()),
                    2
                ),
            ]
        );
        let rules = &settings.rules;
        assert_eq!(rules.filters.exclude_tags.len(), 1);
        assert_eq!(rules.filters.good_statuses.as_slice(), ["ok"]);
        assert_eq!(rules.validation.key_allowed.len(), 6);
        let rule = &rules.rules[0];
        assert_eq!((rule.device.as_str(), rule.tag.as_str()), ("Boiler-*", "*"));
        assert_eq!(
            (rule.scale, rule.clamp, rule.round),
            (Some(0.1), Some((0.0, 100.0)), Some(1))
        );
        assert_eq!(rule.deadband, Some(Deadband::Percent(2.0)));
        assert_eq!(
            rule.min_interval,
            Some(dataservice_sync_core::Duration::from_millis(5000))
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        for (text, expected) in [
            ("interval = 1\nfoo = 2\n", ":2: foo: unknown setting"),
            (
                "interval = [1]\n",
                ":1: interval: must be a string or a number",
            ),
            (
                "no-logging = \"yes\"\n",
                ":1: no-logging: must be true or false",
            ),
            ("interval = \n", ":1: "),
            (
                "[[rule]]\nscale = 2\n[[rule]]\ntag = \"x\"\ncast = \"long\"\n",
                ":5: rule[2].cast: must be \"float\", \"int\", \"bool\" or \"string\"",
            ),
            (
                "[[rule]]\nclamp-min = 5\nclamp-max = 1\n",
                ":3: rule[1].clamp-max: is below clamp-min",
            ),
            (
                "[[rule]]\nkey-template = \"{device}\"\n",
                ":2: rule[1].key-template: key template needs {tag} or {tag_id}",
            ),
            (
                "[filter]\ninclude-devices = \"Boiler\"\n",
                ":2: filter.include-devices: must be a list of strings",
            ),
            (
                "[validation]\nstring-max-bytes = 65\n",
                ":2: validation.string-max-bytes: must be an integer from 1 to 64",
            ),
            (
                "[[rule]]\ndeadband = 1\ndeadband-percent = 2\n",
                ":3: rule[1].deadband-percent: give deadband or deadband-percent, not both",
            ),
        ] {
            let path = write("bad", text);
            let error = load(&path, &flags()).unwrap_err().to_string();
            let expected = format!("{}{expected}", path.display());
            assert!(
                error.starts_with(&expected),
                "{text:?}: {error} (wanted {expected})"
            );
        }
    }
}
