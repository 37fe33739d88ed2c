//! The end of a fetch and of a cycle, and a failed fetch.

use crate::event::Event;
use crate::peer::{Change, SourceProblem};
use crate::table::TableStorage;
use crate::time::Instant;

use super::{Engine, PendingStep, Phase, RATE_SAMPLE};

impl<S: TableStorage> Engine<S> {
    /// The cycle's fetch ended (with a document, broken or whole, or an
    /// error, or cut short by shutdown): its delivery pass starts.
    pub(super) fn end_fetch(&mut self, now: Instant) {
        self.cycle_fetch_ended = now;
        self.start_delivery(now);
    }

    /// Whether the running cycle has delivered all it will: every pass
    /// done and nothing in flight.
    fn cycle_can_finish(&self) -> bool {
        self.phase == Phase::Delivering
            && self.bulk_cursor >= self.table.len()
            && self.single_cursor >= self.table.len()
            && self.walk_done
            && self.in_flight.is_empty()
    }

    /// From a `poll_*` call: when the cycle can end, leaves its end to
    /// [`Engine::handle_timeout`].
    pub(super) fn finish_cycle_when_due(&mut self, now: Instant) {
        if self.cycle_can_finish() {
            self.pending_step = Some((now, PendingStep::FinishCycle));
        }
    }

    pub(super) fn try_finish_cycle(&mut self, now: Instant) {
        if !self.cycle_can_finish() {
            return;
        }
        if self.acked_in_pass >= RATE_SAMPLE {
            // A pass's delivery runs at the Data-Service's pace: its rate.
            let elapsed_ms = (now - self.pass_started).total_millis().max(1);
            self.known_rate = self.acked_in_pass.saturating_mul(1000) / elapsed_ms;
        }
        if self.backlog.unacked() > 0 && !self.check_coming() {
            // Undelivered at the end of their cycle: keep them in the spool.
            // (Changes held for a registry check are looked at when it ends:
            // at start, that spares the disk a copy of every tag.)
            self.mirror_due = true;
        }
        // A catch-up pass fetched nothing: it is no cycle.
        if !core::mem::take(&mut self.catching_up) {
            self.stats.record_cycle(
                now - self.cycle_started,
                self.cycle_fetch_ended - self.cycle_started,
            );
            if self.cycle_fetch_ok {
                self.stats.last_sync_at = Some(now);
            }
            // A check this cycle wants starts now: the Data-Service does
            // one thing at a time, and its registry work (70 ms for the
            // `/detailed` of 10,000 keys) then falls between deliveries,
            // while the next cycle reads the polling service.
            self.start_registry_check_if_wanted(now);
        }
        let next_cycle = core::mem::take(&mut self.tick_missed) && !self.shutting_down;
        if next_cycle {
            self.phase = Phase::FetchDue;
        } else if self.catch_up_due {
            self.start_catch_up(now);
        } else {
            self.phase = Phase::Idle;
        }
    }

    pub(super) fn source_failed(&mut self, now: Instant, problem: SourceProblem) {
        self.stats
            .record_error(now, format_args!("source: {problem}"));
        if let Change::WentDown(problem) = self.source.record_failure(now, problem) {
            self.push_event(Event::SourceDown(problem));
        }
    }
}
