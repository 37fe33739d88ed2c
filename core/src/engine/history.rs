//! The history backlog: every change in order, delivered oldest first,
//! superseded changes dropped when the backlog cannot drain in time.

use crate::backlog::{
    Backlog, BacklogEntry, EntryState, EntryTooLarge, read_entry, seq_of, slot_of, state_of,
};
use crate::event::Event;
use crate::peer::SinkError;
use crate::table::{Registration, TableStorage};
use crate::time::{Duration, Instant};
use crate::value::value_hash;
use crate::wire::ipc::{BulkEncoder, Response, encode_write};

use super::registry::unchecked;
use super::{BacklogPolicy, DeliveryMode, Engine, InFlight, Phase, RequestId, Transmit};

impl<S: TableStorage> Engine<S> {
    /// `history`: when what waits would take the Data-Service, at
    /// `per_second`, longer than `max_drain`, every change
    /// that a newer one of its tag follows and that is not in flight is
    /// dropped (counted), so that each tag's newest value arrives within
    /// two intervals: said once per overrun episode, with the rate seen.
    pub(super) fn drop_superseded_changes(&mut self, now: Instant, per_second: u64) {
        if self.config.backlog != BacklogPolicy::History || self.backlog.is_empty() {
            return;
        }
        // No answer yet says nothing of the Data-Service's rate.
        if per_second == 0 {
            return;
        }
        let waiting = self.backlog.unacked();
        let drain_ms = (waiting as u64).saturating_mul(1000) / per_second;
        let limit = self.config.max_drain.map_or(
            self.config.interval.total_millis() * 3 / 2,
            Duration::total_millis,
        );
        if drain_ms <= limit {
            return;
        }
        let mut dropped = 0u64;
        let (slots, ring) = self.table.slots_and_backlog_mut();
        let mut at = self.backlog.head();
        while let Some(offset) = at {
            at = self.backlog.next(ring, offset);
            if state_of(ring, offset) != EntryState::Unsent {
                continue;
            }
            let Some(slot) = slots.get_mut(slot_of(ring, offset) as usize) else {
                continue;
            };
            if slot.history.queued > 1 {
                slot.history.queued -= 1;
                self.backlog.set_state(ring, offset, EntryState::Acked);
                dropped += 1;
            }
        }
        if dropped == 0 {
            return;
        }
        let (_, ring) = self.table.slots_and_backlog_mut();
        self.backlog.reclaim(ring);
        self.after_backlog_change();
        self.stats.backlog_dropped_total += dropped;
        self.backlog_drain_ms = drain_ms;
        if !core::mem::replace(&mut self.drain_reported, true) {
            self.stats.record_error(
                now,
                format_args!("backlog cannot drain: {dropped} superseded changes dropped"),
            );
            self.push_event(Event::BacklogCannotDrain {
                per_second,
                waiting,
                drain: Duration::from_millis(self.backlog_drain_ms.min(u64::MAX / 2)),
            });
        }
    }

    /// Appends to the backlog, dropping the oldest entries while it is full.
    pub(super) fn queue_entry(&mut self, now: Instant, entry: &BacklogEntry) {
        loop {
            let (slots, buf) = self.table.slots_and_backlog_mut();
            match self.backlog.push(buf, entry) {
                Ok(true) => {
                    if let Some(slot) = slots.get_mut(entry.slot as usize) {
                        slot.history.queued += 1;
                        slot.history.queued_hash = value_hash(&entry.value);
                        slot.history.queued_number = entry.value.number().unwrap_or(f64::NAN);
                    }
                    return;
                }
                Ok(false) => {
                    let Some((gone, state)) = self.backlog.pop(buf) else {
                        return;
                    };
                    if state != EntryState::Acked {
                        if let Some(slot) = slots.get_mut(gone.slot as usize) {
                            slot.history.queued = slot.history.queued.saturating_sub(1);
                        }
                        self.note_backlog_drop(now, gone.seq);
                    }
                }
                Err(EntryTooLarge) => {
                    self.note_backlog_drop(now, entry.seq);
                    return;
                }
            }
        }
    }

    pub(super) fn note_backlog_drop(&mut self, now: Instant, seq: u64) {
        self.stats.backlog_dropped_total += 1;
        if !self.backlog_full_reported {
            self.backlog_full_reported = true;
            let bytes = self.table.backlog_bytes().len();
            self.stats.record_error(
                now,
                format_args!("backlog full ({bytes} bytes): oldest changes dropped, from #{seq}"),
            );
            self.push_event(Event::BacklogFull { bytes });
        }
    }

    /// The next request from the `history` backlog: oldest changes first, a
    /// tag's changes in order and never in two requests at once; changes of
    /// tags with ids in one `bulk_write_by_id` line (the Data-Service applies
    /// its updates in order), the others one `write` each.
    pub(super) fn next_from_backlog(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        self.walk_id = self.walk_id.wrapping_add(1);
        let walk = self.walk_id;
        let request = RequestId(self.next_request);
        // At shutdown the whole backlog goes, within the shutdown timeout.
        let budget = if self.shutting_down {
            u32::MAX
        } else {
            self.config.replay_per_cycle()
        };
        let bulk_mode = self.config.delivery == DeliveryMode::Bulk;
        let check_coming = self.check_coming();
        let limit = buf.len().min(self.config.bulk_max_bytes);
        let mut encoder = BulkEncoder::new(&mut buf[..limit]).ok()?;
        let mut first = None;
        let mut count = 0usize;
        let mut replayed = 0u32;
        let mut single: Option<(usize, usize)> = None;
        let table = &mut self.table;
        let mut at = self.backlog.head();
        while let Some(offset) = at {
            let (slots, ring) = table.slots_and_backlog_mut();
            at = self.backlog.next(ring, offset);
            if state_of(ring, offset) != EntryState::Unsent {
                continue;
            }
            let position = slot_of(ring, offset) as usize;
            let Some(slot) = slots.get_mut(position) else {
                continue;
            };
            let ours = slot.delivery.in_flight && slot.delivery.request == request.0;
            if (slot.delivery.in_flight && !ours) || slot.history.walk_mark == walk {
                continue;
            }
            if check_coming && unchecked(slot.registry.registration) {
                // Its changes wait, in order, for the check.
                slot.history.walk_mark = walk;
                continue;
            }
            let old = seq_of(ring, offset) < self.cycle_first_seq;
            // The budget holds back replay only: a tag that changed in this
            // cycle sends its older changes now, so that its newest value
            // is not kept waiting behind them.
            let live = slot.history.changed_in_cycle == self.cycle_id;
            if old && !ours && !live && self.replayed_in_cycle + replayed >= budget {
                slot.history.walk_mark = walk;
                continue;
            }
            let entry = read_entry(ring, offset);
            if bulk_mode && slot.registry.registration == Registration::Registered {
                if encoder
                    .push(&slot.registry.data.id(), &entry.value)
                    .is_err()
                {
                    break;
                }
            } else if count == 0 {
                single = Some((offset, position));
                break;
            } else {
                // Its order must hold: nothing of this tag in this line.
                slot.history.walk_mark = walk;
                continue;
            }
            slot.delivery.in_flight = true;
            slot.delivery.request = request.0;
            self.backlog
                .set_state(ring, offset, EntryState::InFlight(request.0));
            first.get_or_insert(offset);
            count += 1;
            replayed += u32::from(old);
        }
        if let Some((offset, position)) = single {
            let ring = table.backlog_bytes();
            let entry = read_entry(ring, offset);
            let len = encode_write(table.key(position), &entry.value, buf).ok()?;
            let old = entry.seq < self.cycle_first_seq;
            let (slots, ring) = table.slots_and_backlog_mut();
            if let Some(slot) = slots.get_mut(position) {
                slot.delivery.in_flight = true;
                slot.delivery.request = request.0;
            }
            self.backlog
                .set_state(ring, offset, EntryState::InFlight(request.0));
            self.replayed_in_cycle += u32::from(old);
            self.next_request_id();
            self.in_flight
                .push(InFlight {
                    request,
                    first: offset,
                    count: 1,
                    bulk: false,
                    backlog: true,
                    epoch: self.registry_epoch,
                })
                .ok();
            return Some(Transmit { request, len });
        }
        let Some(first) = first else {
            self.walk_done = true;
            return None;
        };
        let len = encoder.finish();
        self.replayed_in_cycle += replayed;
        Some(self.bulk_sent(request, first, count, true, len))
    }

    /// Applies the answers to a backlog request, in order: `results` for a
    /// bulk, or `None` for a single write answered `ok`.
    pub(super) fn settle_backlog(
        &mut self,
        now: Instant,
        flight: InFlight,
        response: Option<&Response<'_>>,
    ) {
        let request = flight.request.0;
        let mut outcomes = BacklogOutcomes::default();
        let table = &mut self.table;
        let backlog = &mut self.backlog;
        let mut cursor = if backlog.is_live(flight.first) {
            Some(flight.first)
        } else {
            backlog.head()
        };
        let mut settle = |ok: bool, id_not_found: bool| {
            let (slots, ring) = table.slots_and_backlog_mut();
            let Some(offset) = cursor.and_then(|c| find_in_flight(backlog, ring, c, request))
            else {
                return;
            };
            cursor = backlog.next(ring, offset);
            let position = slot_of(ring, offset) as usize;
            let slot = slots.get_mut(position);
            if ok {
                let value = read_entry(ring, offset).value;
                backlog.set_state(ring, offset, EntryState::Acked);
                if let Some(slot) = slot {
                    slot.acknowledge_change(now, &value);
                }
                outcomes.ok += 1;
            } else {
                backlog.set_state(ring, offset, EntryState::Unsent);
                if let Some(slot) = slot {
                    slot.delivery.in_flight = false;
                }
                outcomes.failed += 1;
                outcomes.id_not_found |= id_not_found;
            }
        };
        let read = match response {
            None => {
                settle(true, false);
                Ok(())
            }
            Some(response) => response.for_each_result(|result| {
                settle(
                    result.ok,
                    result.error.is_some_and(|e| e.eq_str("id not found")),
                )
            }),
        };
        // Updates the answer did not mention failed too.
        let answered = outcomes.ok + outcomes.failed;
        let unanswered = (flight.count as u64).saturating_sub(answered);
        match read {
            Ok(()) if unanswered > 0 => {
                self.release_backlog_flight(flight);
                outcomes.failed += unanswered;
            }
            Ok(()) => {}
            // Broken after the results read: those stand, the rest go again.
            Err(_) => self.sink_failed(
                now,
                InFlight {
                    count: unanswered as usize,
                    ..flight
                },
                SinkError::BadResponse,
            ),
        }
        let (_, ring) = self.table.slots_and_backlog_mut();
        self.backlog.reclaim(ring);
        self.after_backlog_change();
        self.stats.writes_ok_total += outcomes.ok;
        self.acked_in_cycle += outcomes.ok;
        self.acked_in_pass += outcomes.ok;
        self.stats.writes_failed_total += outcomes.failed;
        if outcomes.id_not_found {
            self.stats.ids_not_found_total += 1;
            self.restart_if_news(now, flight.epoch, "a write answered \"id not found\"");
        }
    }

    /// Puts a backlog request's entries back to be sent again.
    pub(super) fn release_backlog_flight(&mut self, flight: InFlight) {
        let request = flight.request.0;
        let (slots, ring) = self.table.slots_and_backlog_mut();
        let mut at = if self.backlog.is_live(flight.first) {
            Some(flight.first)
        } else {
            self.backlog.head()
        };
        while let Some(offset) = at {
            at = self.backlog.next(ring, offset);
            if state_of(ring, offset) == EntryState::InFlight(request) {
                self.backlog.set_state(ring, offset, EntryState::Unsent);
                if let Some(slot) = slots.get_mut(slot_of(ring, offset) as usize) {
                    slot.delivery.in_flight = false;
                }
            }
        }
    }

    /// Something was acknowledged or released: more may be sendable now.
    pub(super) fn after_backlog_change(&mut self) {
        if self.backlog.is_empty() {
            self.backlog_full_reported = false;
        }
        if self.phase == Phase::Delivering && !self.sink.is_down() {
            self.walk_done = false;
        }
    }
}

/// What the answers to a backlog request came to.
#[derive(Default)]
pub(super) struct BacklogOutcomes {
    ok: u64,
    failed: u64,
    id_not_found: bool,
}

/// The first entry from `from` on that is in flight in `request`.
pub(super) fn find_in_flight(
    backlog: &Backlog,
    ring: &[u8],
    from: usize,
    request: u32,
) -> Option<usize> {
    let mut at = Some(from);
    while let Some(offset) = at {
        if state_of(ring, offset) == EntryState::InFlight(request) {
            return Some(offset);
        }
        at = backlog.next(ring, offset);
    }
    None
}
