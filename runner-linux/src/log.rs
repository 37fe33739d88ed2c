//! Log lines on stderr. When stderr is the journal (systemd.exec(5):
//! `JOURNAL_STREAM` names the device and inode of stderr itself, not of a
//! stream the process merely inherited the variable from) each line gets a
//! `<N>` priority prefix and no timestamp, since the journal adds one.

use std::fmt::Arguments;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::SystemTime;

use crate::clock::rfc3339;

/// How loud a line is, quietest last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The service cannot run.
    Fatal,
    /// Data is not flowing, or is being changed or dropped.
    Error,
    /// Something is degraded or refused.
    Warn,
    /// Normal operation.
    Info,
    /// Each tag's decision (bounded per cycle).
    Debug,
}

impl Severity {
    /// The syslog priority journald reads from a `<N>` prefix.
    fn priority(self) -> u8 {
        match self {
            Severity::Fatal => 2,
            Severity::Error => 3,
            Severity::Warn => 4,
            Severity::Info => 6,
            Severity::Debug => 7,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Severity::Fatal => "FATAL",
            Severity::Error => "ERROR",
            Severity::Warn => "WARN ",
            Severity::Info => "INFO ",
            Severity::Debug => "DEBUG",
        }
    }
}

/// Writes log lines of `level` and louder.
#[derive(Clone, Copy, Debug)]
pub struct Logger {
    level: Severity,
    journal: bool,
}

impl Logger {
    /// A logger of lines of `level` and louder.
    pub fn new(level: Severity) -> Self {
        Logger {
            level,
            journal: stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref()),
        }
    }

    /// Whether lines of `severity` are written.
    pub fn enabled(&self, severity: Severity) -> bool {
        severity <= self.level
    }

    /// Writes one line.
    pub fn line(&self, severity: Severity, message: Arguments<'_>) {
        if !self.enabled(severity) {
            return;
        }
        let mut err = std::io::stderr().lock();
        // A closed stderr must not stop the sync.
        let _ = if self.journal {
            writeln!(err, "<{}>{message}", severity.priority())
        } else {
            writeln!(
                err,
                "{} {} {message}",
                rfc3339(SystemTime::now()),
                severity.label()
            )
        };
    }

    /// An error line.
    pub fn error(&self, message: Arguments<'_>) {
        self.line(Severity::Error, message);
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

/// `JOURNAL_STREAM` (`DEVICE:INODE`) names this process's stderr.
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((device, inode)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
        return false;
    };
    // The fields are narrower than u64 on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    nix::sys::stat::fstat(std::io::stderr().as_fd())
        .is_ok_and(|st| st.st_dev as u64 == device && st.st_ino as u64 == inode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_journal_is_stderr_itself_not_an_inherited_variable() {
        let meta = nix::sys::stat::fstat(std::io::stderr().as_fd()).unwrap();
        let own = format!("{}:{}", meta.st_dev, meta.st_ino);
        assert!(stderr_is_journal(Some(&own)));
        // The variable inherited by a process whose stderr is a file.
        let file = std::fs::metadata("/proc/self/exe").unwrap();
        assert!(!stderr_is_journal(Some(&format!(
            "{}:{}",
            file.dev(),
            file.ino()
        ))));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(None));
    }

    #[test]
    fn levels_keep_the_louder_lines() {
        let info = Logger {
            level: Severity::Info,
            journal: false,
        };
        assert!(info.enabled(Severity::Error) && info.enabled(Severity::Info));
        assert!(!info.enabled(Severity::Debug));
        assert_eq!(Severity::Error.priority(), 3);
    }
}
