//! What the engine tells about itself: figures, health, the tag table
//! and its rejections for reports, and the events it queues for the log.

use crate::backlog::slot_of;
use crate::event::{Decision, Event};
use crate::peer::{ApiError, Health, SinkError, SourceProblem};
use crate::reject::KeyPreview;
use crate::rejections::RejectedTags;
use crate::stats::Stats;
use crate::table::{Registration, TableStorage, TagTable};
use crate::time::Duration;

use super::{BacklogPolicy, Engine, EngineConfig, InFlight, TRACE_QUEUE_ROOM};

impl<S: TableStorage> Engine<S> {
    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The tag table.
    pub fn table(&self) -> &TagTable<S> {
        &self.table
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The tags whose readings were rejected, with the reason.
    pub fn rejected_tags(&self) -> &RejectedTags {
        &self.rejected
    }

    /// The polling service's health.
    pub fn source_health(&self) -> Health<SourceProblem> {
        self.source
    }

    /// The Data-Service IPC's health.
    pub fn sink_health(&self) -> Health<SinkError> {
        self.sink
    }

    /// The Data-Service HTTP API's health.
    pub fn api_health(&self) -> Health<ApiError> {
        self.api
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Tags whose latest value still has to be written (`history`: changes
    /// in the backlog not yet acknowledged).
    pub fn pending(&self) -> usize {
        match self.config.backlog {
            BacklogPolicy::Latest => self
                .table
                .slots()
                .iter()
                .filter(|s| s.delivery.pending)
                .count(),
            BacklogPolicy::History => self.backlog.unacked(),
        }
    }

    /// Tags with a value the Data-Service has not acknowledged (with
    /// `history`, tags with changes in the backlog).
    pub fn pending_tags(&self) -> usize {
        self.table.slots().iter().filter(|s| s.is_pending()).count()
    }

    /// Bytes of the `history` backlog in use, and its size.
    pub fn backlog_bytes(&self) -> (usize, usize) {
        let capacity = self.table.backlog_bytes().len();
        (self.backlog.used_bytes(capacity), capacity)
    }

    /// `history`: how long the backlog would take to drain at the rate the
    /// Data-Service took changes, when it last could not keep up (zero
    /// before that, and once a tick finds the cycle done again).
    pub fn backlog_drain_estimate(&self) -> Duration {
        Duration::from_millis(self.backlog_drain_ms.min(u64::MAX / 2))
    }

    /// Good reads of the last document that found no room in the tag
    /// table (its capacity, or its key arena, was full).
    pub fn tags_over_capacity(&self) -> u32 {
        self.over_capacity
    }

    /// Tags whose keys the Data-Service does not have (`--register off`).
    pub fn unregistered(&self) -> usize {
        self.table
            .slots()
            .iter()
            .filter(|s| s.registry.registration == Registration::NotRegistered)
            .count()
    }

    /// The key of a request's first tag, to name it in a log line.
    pub(super) fn flight_preview(&self, flight: InFlight) -> KeyPreview {
        if !flight.backlog {
            return self.preview_of(flight.first);
        }
        if !self.backlog.is_live(flight.first) {
            return KeyPreview::default();
        }
        self.preview_of(slot_of(self.table.backlog_bytes(), flight.first) as usize)
    }

    pub(super) fn preview_of(&self, position: usize) -> KeyPreview {
        self.table
            .slots()
            .get(position)
            .map(|s| KeyPreview::of_key(self.table.key_of(s)))
            .unwrap_or_default()
    }

    /// True the first time a tag is reported; remembers up to
    /// `REJECTED_KEYS_LOGGED` tags, then stays quiet (counters still count).
    pub(super) fn first_report_of(&mut self, tag: &KeyPreview) -> bool {
        matches!(self.logged_keys.insert(tag.hash()), Ok(true))
    }

    pub(super) fn push_event(&mut self, event: Event) {
        if !self.events.push(event) {
            self.stats.events_dropped_total += 1;
        }
    }

    /// With `trace_decisions`, the decision about a reading as an event,
    /// while the queue keeps room for state changes; counted otherwise.
    pub(super) fn trace(&mut self, position: usize, decision: Decision) {
        if !self.config.trace_decisions {
            return;
        }
        if self.events.len() >= TRACE_QUEUE_ROOM {
            self.decisions_not_shown += 1;
            return;
        }
        let key = self.preview_of(position);
        self.events.push(Event::Decision { key, decision });
    }

    /// Good reads of the last document left out for want of room: a log
    /// line on each change of the count.
    pub(super) fn note_table_room(&mut self, left_out: u32) {
        self.stats.tags_over_capacity_total += u64::from(left_out);
        if left_out == self.over_capacity {
            return;
        }
        self.over_capacity = left_out;
        if left_out > 0 {
            self.push_event(Event::TableFull {
                capacity: self.table.capacity(),
                left_out,
            });
        } else {
            self.push_event(Event::TableFullCleared);
        }
    }
}
