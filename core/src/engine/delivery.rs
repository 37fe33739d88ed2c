//! Delivery of the latest values: a pass over the table, bulk lines and
//! single writes, the requests in flight and their answers.

use crate::event::Event;
use crate::peer::{Change, SinkError};
use crate::table::{Registration, TableStorage, TagSlot};
use crate::time::{Duration, Instant};
use crate::value::{Value, value_hash};
use crate::wire::ipc::{BulkEncoder, Response, encode_write};

use super::{BacklogPolicy, DeliveryMode, Engine, InFlight, Phase, RequestId, Transmit};

impl<S: TableStorage> Engine<S> {
    pub(super) fn start_delivery(&mut self, now: Instant) {
        self.phase = Phase::Delivering;
        self.catch_up_due = false;
        self.rewind_delivery();
        self.pass_started = now;
        self.acked_in_pass = 0;
        // Back after an outage: what the Data-Service took in the last pass
        // says at once whether the backlog can go within an interval. (While
        // it is down, every change is kept, for the spool.)
        if self.known_rate > 0 && !self.sink.is_down() {
            self.drop_superseded_changes(now, self.known_rate);
        }
        self.try_finish_cycle(now);
    }

    /// Changes the Data-Service acknowledged per second in this cycle.
    pub(super) fn cycle_rate(&self, now: Instant) -> u64 {
        let elapsed_ms = (now - self.cycle_started).total_millis().max(1);
        self.acked_in_cycle.saturating_mul(1000) / elapsed_ms
    }

    /// Tags a registry check was holding back can go now, in a catch-up
    /// pass of their own: at once between cycles, or right after the
    /// running cycle's pass (a cycle about to deliver takes them anyway).
    pub(super) fn deliver_what_became_ready(&mut self, now: Instant) {
        match self.phase {
            Phase::Delivering if self.catching_up => self.rewind_delivery(),
            Phase::Delivering => self.catch_up_due = true,
            Phase::Idle => self.start_catch_up(now),
            Phase::FetchDue | Phase::Fetching => {}
        }
    }

    pub(super) fn start_catch_up(&mut self, now: Instant) {
        self.catching_up = true;
        self.start_delivery(now);
    }

    pub(super) fn rewind_delivery(&mut self) {
        // In write mode there is no bulk pass; with a history backlog the
        // backlog is delivered instead of the table.
        let history = self.config.backlog == BacklogPolicy::History;
        self.bulk_cursor = match self.config.delivery {
            DeliveryMode::Bulk if !history => 0,
            _ => self.table.len(),
        };
        self.single_cursor = if history { self.table.len() } else { 0 };
        self.walk_done = !history;
    }

    pub(super) fn end_delivery_pass(&mut self) {
        self.bulk_cursor = self.table.len();
        self.single_cursor = self.table.len();
        self.walk_done = true;
    }

    pub(super) fn wants_bulk(&self, slot: &TagSlot) -> bool {
        self.config.delivery == DeliveryMode::Bulk
            && slot.registry.registration == Registration::Registered
    }

    pub(super) fn next_request_id(&mut self) -> RequestId {
        let request = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        request
    }

    pub(super) fn next_bulk(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let limit = buf.len().min(self.config.bulk_max_bytes);
        let mut encoder = BulkEncoder::new(&mut buf[..limit]).ok()?;
        let request = RequestId(self.next_request);
        let mut first = None;
        let mut count = 0;
        while self.bulk_cursor < self.table.len() {
            let position = self.bulk_cursor;
            let slot = &self.table.slots()[position];
            if !slot.delivery.pending || slot.delivery.in_flight || !self.wants_bulk(slot) {
                self.bulk_cursor += 1;
                continue;
            }
            let value = self.table.value_of(slot);
            if encoder.push(&slot.registry.data.id(), &value).is_err() {
                break;
            }
            let slot = &mut self.table.slots_mut()[position];
            mark_sent(slot, request.0, &value);
            first.get_or_insert(position);
            count += 1;
            self.bulk_cursor += 1;
        }
        let first = first?;
        let len = encoder.finish();
        Some(self.bulk_sent(request, first, count, false, len))
    }

    /// Books a bulk request that was just encoded.
    pub(super) fn bulk_sent(
        &mut self,
        request: RequestId,
        first: usize,
        count: usize,
        backlog: bool,
        len: usize,
    ) -> Transmit {
        self.next_request_id();
        self.stats.bulk_requests_total += 1;
        // `poll_transmit` checked that a place is free.
        self.in_flight
            .push(InFlight {
                request,
                first,
                count,
                bulk: true,
                backlog,
                epoch: self.registry_epoch,
            })
            .ok();
        Transmit { request, len }
    }

    pub(super) fn next_single(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while self.single_cursor < self.table.len() {
            let position = self.single_cursor;
            self.single_cursor += 1;
            let slot = &self.table.slots()[position];
            if !slot.delivery.pending
                || slot.delivery.in_flight
                || self.wants_bulk(slot)
                || self.waits_for_check(slot)
            {
                continue;
            }
            let value = self.table.value_of(slot);
            let Ok(len) = encode_write(self.table.key_of(slot), &value, buf) else {
                // Keys and strings are bounded so that a line always fits a
                // buffer of `min_transmit_buffer()` bytes; skip defensively.
                continue;
            };
            let request = self.next_request_id();
            mark_sent(&mut self.table.slots_mut()[position], request.0, &value);
            self.in_flight
                .push(InFlight {
                    request,
                    first: position,
                    count: 1,
                    bulk: false,
                    backlog: false,
                    epoch: self.registry_epoch,
                })
                .ok();
            return Some(Transmit { request, len });
        }
        None
    }

    pub(super) fn apply_bulk_results(
        &mut self,
        now: Instant,
        flight: InFlight,
        response: &Response<'_>,
    ) {
        let request = flight.request.0;
        let mut cursor = flight.first;
        let mut answered = 0usize;
        let mut id_not_found = false;
        let mut failed = 0u64;
        let table = &mut self.table;
        let stats = &mut self.stats;
        // Results come in request order, and a bulk's slots are in table order.
        let read = response.for_each_result(|result| {
            let slots = table.slots_mut();
            let Some(position) = (cursor..slots.len())
                .find(|&p| slots[p].delivery.in_flight && slots[p].delivery.request == request)
            else {
                return;
            };
            cursor = position + 1;
            answered += 1;
            let slot = &mut slots[position];
            slot.delivery.in_flight = false;
            if result.ok {
                stats.writes_ok_total += 1;
                slot.acknowledge_sent(now);
            } else {
                failed += 1;
                if result.error.is_some_and(|e| e.eq_str("id not found")) {
                    stats.ids_not_found_total += 1;
                    id_not_found = true;
                }
            }
        });
        // Updates the answer did not mention failed too; only they are
        // still marked in flight, after the last answered one.
        let unanswered = InFlight {
            first: cursor,
            count: flight.count - answered.min(flight.count),
            ..flight
        };
        self.stats.writes_failed_total += failed;
        match read {
            Ok(()) => {
                self.stats.writes_failed_total += unanswered.count as u64;
                self.release_flight(unanswered);
            }
            // Broken after the results read: those stand, the rest go again.
            Err(_) => self.sink_failed(now, unanswered, SinkError::BadResponse),
        }
        if id_not_found {
            self.restart_if_news(now, flight.epoch, "a write answered \"id not found\"");
        }
    }

    pub(super) fn take_in_flight(&mut self, request: RequestId) -> Option<InFlight> {
        let index = self.in_flight.iter().position(|f| f.request == request)?;
        Some(self.in_flight.swap_remove(index))
    }

    /// Clears the in-flight mark of a request's slots (a bulk's slots
    /// follow its first one in table order).
    pub(super) fn release_flight(&mut self, flight: InFlight) {
        if flight.backlog {
            self.release_backlog_flight(flight);
            return;
        }
        let request = flight.request.0;
        let mut left = flight.count;
        for slot in self.table.slots_mut().iter_mut().skip(flight.first) {
            if left == 0 {
                break;
            }
            if slot.delivery.in_flight && slot.delivery.request == request {
                slot.delivery.in_flight = false;
                left -= 1;
            }
        }
    }

    pub(super) fn sink_answered(&mut self, now: Instant) {
        self.stats.last_sink_ok_at = Some(now);
        self.consecutive_busy = 0;
        self.backoff = self.config.backoff_initial;
        if let Change::CameUp { failures, down_for } = self.sink.record_success(now) {
            self.push_event(Event::SinkUp {
                after_failures: failures,
                down_for,
            });
            if failures > 0 && self.config.registry_checks {
                // Back after an outage: it may have restarted with new ids.
                let epoch = self.sink_down_epoch;
                self.restart_if_news(now, epoch, "its socket came back after an outage");
            }
        }
    }

    pub(super) fn sink_failed(&mut self, now: Instant, flight: InFlight, error: SinkError) {
        self.stats.writes_failed_total += flight.count as u64;
        self.stats.sink_errors_by_kind[error.kind_index()] += 1;
        let key = self.flight_preview(flight);
        self.release_flight(flight);
        self.mirror_due = true;
        self.stats
            .record_error(now, format_args!("write failed: {key}: {error}"));
        if !self.sink.is_down() {
            self.sink_down_epoch = self.registry_epoch;
        }
        if let Change::WentDown(error) = self.sink.record_failure(now, error) {
            self.push_event(Event::SinkDown(error));
        }
        self.retry_at = now + self.backoff;
        // Down: the rest of this cycle's values wait for the next cycle.
        self.end_delivery_pass();
        let doubled = Duration::from_millis(self.backoff.total_millis().saturating_mul(2));
        self.backoff = doubled.min(self.config.backoff_cap());
        self.consecutive_busy = 0;
    }

    pub(super) fn acknowledge(&mut self, now: Instant, position: usize) {
        self.stats.writes_ok_total += 1;
        if let Some(slot) = self.table.slot_mut(position) {
            slot.acknowledge_sent(now);
        }
    }
}

/// `value` is the slot's latest, now in the request numbered `request`.
pub(super) fn mark_sent(slot: &mut TagSlot, request: u32, value: &Value) {
    slot.delivery.in_flight = true;
    slot.delivery.request = request;
    slot.delivery.sent_seq = slot.delivery.seq;
    slot.delivery.sent_hash = value_hash(value);
}
