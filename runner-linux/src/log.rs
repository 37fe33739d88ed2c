//! Log lines on stderr. Under systemd (`JOURNAL_STREAM` set) each line gets
//! a `<N>` priority prefix and no timestamp, since the journal adds one.

use std::fmt::Arguments;
use std::io::Write;
use std::time::SystemTime;

use crate::clock::rfc3339;

/// How loud a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Normal operation.
    Info,
    /// Something is not flowing.
    Warn,
    /// The service cannot run.
    Fatal,
}

/// Writes log lines; `--no-logging` keeps only fatal ones.
#[derive(Clone, Copy, Debug)]
pub struct Logger {
    quiet: bool,
    journal: bool,
}

impl Logger {
    /// A logger; `quiet` keeps only fatal errors.
    pub fn new(quiet: bool) -> Self {
        Logger {
            quiet,
            journal: std::env::var_os("JOURNAL_STREAM").is_some(),
        }
    }

    /// Writes one line.
    pub fn line(&self, severity: Severity, message: Arguments<'_>) {
        if self.quiet && severity != Severity::Fatal {
            return;
        }
        let mut err = std::io::stderr().lock();
        // A closed stderr must not stop the sync.
        let _ = if self.journal {
            let priority = match severity {
                Severity::Info => 6,
                Severity::Warn => 4,
                Severity::Fatal => 2,
            };
            writeln!(err, "<{priority}>{message}")
        } else {
            let label = match severity {
                Severity::Info => "INFO ",
                Severity::Warn => "WARN ",
                Severity::Fatal => "FATAL",
            };
            writeln!(err, "{} {label} {message}", rfc3339(SystemTime::now()))
        };
    }

    /// An informational line.
    pub fn info(&self, message: Arguments<'_>) {
        self.line(Severity::Info, message);
    }

    /// A warning.
    pub fn warn(&self, message: Arguments<'_>) {
        self.line(Severity::Warn, message);
    }
}
