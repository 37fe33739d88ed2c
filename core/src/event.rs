//! What the engine tells the runner to log: one event per change of state,
//! never one per tag per cycle.

use core::fmt;

use crate::peer::{ApiError, SinkError, SourceProblem};
use crate::reject::{KeyPreview, RejectReason};
use crate::time::Duration;

/// How loud an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// One tag's decision, for a closer look.
    Debug,
    /// Normal operation.
    Info,
    /// Something is degraded, or some of it is refused.
    Warn,
    /// Data is not flowing, or is changed or dropped on its way.
    Error,
}

/// The kinds of event about a single tag: many can come at once (a
/// document of 50 unregistered keys), so past the queue's room they are
/// summed up ([`Event::MoreTagReports`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagReport {
    /// [`Event::TagRejected`].
    Rejected,
    /// [`Event::WriteRejected`].
    WriteRejected,
    /// [`Event::TagNotRegistered`].
    NotRegistered,
    /// [`Event::RegistrationFailed`].
    RegistrationFailed,
    /// [`Event::TypeMismatch`].
    TypeMismatch,
    /// [`Event::TagStale`].
    Stale,
    /// [`Event::TagFresh`].
    Fresh,
}

impl TagReport {
    /// Every kind, in summary order.
    pub const ALL: [TagReport; 7] = [
        TagReport::Rejected,
        TagReport::WriteRejected,
        TagReport::NotRegistered,
        TagReport::RegistrationFailed,
        TagReport::TypeMismatch,
        TagReport::Stale,
        TagReport::Fresh,
    ];

    /// "N more …" and where the operator finds them all.
    fn summary(self) -> (&'static str, &'static str) {
        match self {
            TagReport::Rejected => ("tags rejected", "/api/tags"),
            TagReport::WriteRejected => (
                "writes rejected by the Data-Service",
                "the recent errors in /api/stats",
            ),
            TagReport::NotRegistered => ("keys not registered in the Data-Service", "/api/tags"),
            TagReport::RegistrationFailed => {
                ("registrations failed", "the recent errors in /api/stats")
            }
            TagReport::TypeMismatch => ("type mismatches", "/api/tags"),
            TagReport::Stale => ("tags stale", "/api/tags"),
            TagReport::Fresh => ("tags fresh again", "/api/tags"),
        }
    }
}

/// What became of a good reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Changed: to be written.
    Write,
    /// Unchanged, its heartbeat due: to be written again.
    Heartbeat,
    /// Unchanged: not written.
    Unchanged,
    /// Within its rule's deadband: not written.
    WithinDeadband,
    /// Within its rule's minimum interval: held back.
    HeldBack,
    /// Its source timestamp stands still: not written.
    Stale,
}

impl Decision {
    /// In words, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Write => "changed, written",
            Decision::Heartbeat => "unchanged, heartbeat due: written",
            Decision::Unchanged => "unchanged, not written",
            Decision::WithinDeadband => "within its deadband, not written",
            Decision::HeldBack => "within its minimum interval, held back",
            Decision::Stale => "stale, not written",
        }
    }
}

/// Something the operator should hear about once.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The polling service answered after failing (or for the first time).
    SourceUp {
        /// Good reads in the document.
        good_reads: u32,
        /// Failed cycles before this one.
        after_failures: u32,
    },
    /// The polling service failed, or failed differently than before.
    SourceDown(SourceProblem),
    /// The Data-Service accepted a write after failing (or for the first time).
    SinkUp {
        /// Failed attempts before this one.
        after_failures: u32,
        /// How long it was down.
        down_for: Duration,
    },
    /// The Data-Service failed, or failed differently than before.
    SinkDown(SinkError),
    /// A tag was rejected (once per tag).
    TagRejected {
        /// Why.
        reason: RejectReason,
        /// Which tag.
        tag: KeyPreview,
    },
    /// The Data-Service answered a write with `ok: false` (once per tag).
    WriteRejected {
        /// Which key.
        key: KeyPreview,
        /// Its error text.
        error: heapless::String<64>,
    },
    /// The `history` backlog was full: its oldest changes are being dropped
    /// (once per episode, until it has emptied).
    BacklogFull {
        /// The backlog's size in bytes.
        bytes: usize,
    },
    /// `history`: the Data-Service takes changes slower than they come;
    /// superseded ones are dropped so that each tag's newest value goes
    /// (once per overrun episode).
    BacklogCannotDrain {
        /// Changes the Data-Service acknowledged per second in the cycle.
        per_second: u64,
        /// Changes waiting before the drop.
        waiting: usize,
        /// The time they would have taken at that rate.
        drain: Duration,
    },
    /// Good reads found no room in the tag table (once per change of the
    /// count).
    TableFull {
        /// The table's capacity.
        capacity: usize,
        /// Tags left out in this cycle.
        left_out: u32,
    },
    /// Every tag fits in the table again.
    TableFullCleared,
    /// The Data-Service's HTTP API answered after failing (or for the first time).
    ApiUp {
        /// Failed requests before.
        after_failures: u32,
    },
    /// The Data-Service's HTTP API failed: registry checks wait, values go by key.
    ApiDown(ApiError),
    /// A key the Data-Service does not have, with `--register off` (once per tag).
    TagNotRegistered {
        /// Which key.
        key: KeyPreview,
    },
    /// Registering a key failed (once per tag).
    RegistrationFailed {
        /// Which key.
        key: KeyPreview,
        /// The Data-Service's error.
        error: heapless::String<64>,
    },
    /// More registrations failed in one answer than are named one by one.
    MoreRegistrationsFailed {
        /// How many more.
        count: u32,
    },
    /// The Data-Service lost its registrations: every tag is checked and
    /// written again.
    DataServiceRestarted {
        /// What showed it.
        reason: &'static str,
    },
    /// A tick found the cycle done again after overruns.
    CycleOverrunsEnded {
        /// Ticks that found a cycle running in the episode.
        overruns: u64,
    },
    /// The Data-Service's type of a key would change its values on the way
    /// in (once per tag).
    TypeMismatch {
        /// Which key.
        key: KeyPreview,
        /// The value's type.
        value_type: &'static str,
        /// The key's registered type.
        registered: &'static str,
    },
    /// A reading's source timestamp stood still for `max_age` (once, until
    /// it advances again).
    TagStale {
        /// Which key.
        key: KeyPreview,
        /// How long it stood still.
        frozen_for: Duration,
    },
    /// A stale reading's source timestamp advanced again.
    TagFresh {
        /// Which key.
        key: KeyPreview,
    },
    /// More reports of one kind than the event queue had room for.
    MoreTagReports {
        /// Which kind.
        kind: TagReport,
        /// How many were not logged one by one.
        count: u32,
    },
    /// What the engine decided about one tag's reading (only with
    /// `EngineConfig::trace_decisions`, and while the queue has room).
    Decision {
        /// Which key.
        key: KeyPreview,
        /// What was decided.
        decision: Decision,
    },
    /// Decisions of the last document not shown for want of queue room.
    DecisionsNotShown {
        /// How many.
        count: u32,
    },
    /// An interval tick came while a cycle was still running.
    CycleOverrun {
        /// How long the running cycle has taken so far.
        running_for: Duration,
    },
}

impl Event {
    /// The kind of report about a single tag, if it is one.
    pub fn tag_report(&self) -> Option<TagReport> {
        Some(match self {
            Event::TagRejected { .. } => TagReport::Rejected,
            Event::WriteRejected { .. } => TagReport::WriteRejected,
            Event::TagNotRegistered { .. } => TagReport::NotRegistered,
            Event::RegistrationFailed { .. } => TagReport::RegistrationFailed,
            Event::TypeMismatch { .. } => TagReport::TypeMismatch,
            Event::TagStale { .. } => TagReport::Stale,
            Event::TagFresh { .. } => TagReport::Fresh,
            _ => return None,
        })
    }

    /// How loud the event is.
    pub fn level(&self) -> Level {
        match self {
            Event::MoreTagReports {
                kind: TagReport::Fresh,
                ..
            } => Level::Info,
            Event::Decision { .. } | Event::DecisionsNotShown { .. } => Level::Debug,
            Event::SourceDown(_)
            | Event::SinkDown(_)
            | Event::BacklogFull { .. }
            | Event::BacklogCannotDrain { .. }
            | Event::TypeMismatch { .. } => Level::Error,
            Event::SourceUp { .. }
            | Event::SinkUp { .. }
            | Event::ApiUp { .. }
            | Event::TableFullCleared
            | Event::TagFresh { .. }
            | Event::CycleOverrunsEnded { .. }
            | Event::DataServiceRestarted { .. } => Level::Info,
            _ => Level::Warn,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::SourceUp {
                good_reads,
                after_failures,
            } => {
                write!(
                    f,
                    "source up: document accepted with {good_reads} good reads"
                )?;
                if *after_failures > 0 {
                    write!(f, " (after {after_failures} failed fetches)")?;
                }
                Ok(())
            }
            Event::SourceDown(problem) => {
                write!(f, "source down: {problem}; retrying every interval")
            }
            Event::SinkUp {
                after_failures,
                down_for,
            } => {
                f.write_str("sink up: Data-Service accepted a write")?;
                if *after_failures > 0 {
                    write!(
                        f,
                        " (after {after_failures} failed attempts, down for {down_for})"
                    )?;
                }
                Ok(())
            }
            Event::SinkDown(error) => write!(
                f,
                "sink down: {error}; values stay pending and are retried with backoff"
            ),
            Event::TagRejected { reason, tag } => {
                write!(f, "tag rejected ({reason}), not written: {tag}")
            }
            Event::WriteRejected { key, error } => {
                write!(f, "write rejected by the Data-Service: {key}: {error}")
            }
            Event::TableFull { capacity, left_out } => write!(
                f,
                "tag table full ({capacity} tags): {left_out} tags left out of the last document \
                 (counted in tags_over_capacity_total, gauge tags_over_capacity); the others keep \
                 syncing; raise --max-tags"
            ),
            Event::TableFullCleared => f.write_str("tag table: every tag fits again"),
            Event::BacklogFull { bytes } => write!(
                f,
                "backlog full ({bytes} bytes): dropping the oldest undelivered changes (counted in backlog_dropped_total); raise --backlog-bytes or add --spool-dir"
            ),
            Event::BacklogCannotDrain {
                per_second,
                waiting,
                drain,
            } => write!(
                f,
                "backlog cannot drain: the Data-Service took {per_second} changes/s, {waiting} wait \
                 (about {drain} to drain, more than one and a half intervals); dropping the changes that newer \
                 ones of their tag follow, so that every tag's newest value goes \
                 (counted in backlog_dropped_total)"
            ),
            Event::ApiUp { after_failures } => {
                f.write_str("Data-Service HTTP API up")?;
                if *after_failures > 0 {
                    write!(f, " (after {after_failures} failed requests)")?;
                }
                Ok(())
            }
            Event::ApiDown(error) => write!(
                f,
                "Data-Service HTTP API down: {error}; writing by key until it answers"
            ),
            Event::TagNotRegistered { key } => write!(
                f,
                "key not registered in the Data-Service, its writes are dropped there \
                 (--register missing would register it): {key}"
            ),
            Event::RegistrationFailed { key, error } => {
                write!(f, "registration failed, writing by key: {key}: {error}")
            }
            Event::MoreRegistrationsFailed { count } => write!(
                f,
                "registration failed for {count} more keys in the same answer, writing them by key \
                 (counted in registrations_failed_total)"
            ),
            Event::DataServiceRestarted { reason } => write!(
                f,
                "Data-Service restart assumed ({reason}): checking registrations and writing every value again"
            ),
            Event::TypeMismatch {
                key,
                value_type,
                registered,
            } => write!(
                f,
                "type mismatch: {key} is registered as {registered} in the Data-Service, which \
                 coerces this tag's {value_type} values to it (a fraction into int is truncated, \
                 what does not convert becomes the key's default with quality BAD); \
                 register the key with the right data_type"
            ),
            Event::TagStale { key, frozen_for } => write!(
                f,
                "tag stale: {key}: its source timestamp has not advanced for {frozen_for}; \
                 not rewritten until it does (device removed or not polled?)"
            ),
            Event::TagFresh { key } => {
                write!(f, "tag fresh again: {key}: its source timestamp advanced")
            }
            Event::CycleOverrun { running_for } => write!(
                f,
                "cycle overrun: previous cycle still running after {running_for}; \
                 cycles run back to back until they fit the interval again"
            ),
            Event::MoreTagReports { kind, count } => {
                let (what, where_) = kind.summary();
                write!(f, "and {count} more {what}: see {where_}")
            }
            Event::Decision { key, decision } => write!(f, "tag {key}: {}", decision.as_str()),
            Event::DecisionsNotShown { count } => write!(
                f,
                "and {count} more tag decisions of this document not shown"
            ),
            Event::CycleOverrunsEnded { overruns } => write!(
                f,
                "cycles fit the interval again after {overruns} overrun ticks"
            ),
        }
    }
}
