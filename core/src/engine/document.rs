//! A polled document: read a tag at a time as it arrives, held back until
//! it is known whole, then applied to the tag table, each tag's write
//! decided (report by exception, deadband, heartbeat, staleness).

use crate::backlog::BacklogEntry;
use crate::event::{Decision, Event};
use crate::reading::classify;
use crate::reject::{KeyPreview, RejectReason};
use crate::rules::{RuleSet, within_deadband};
use crate::staging::{
    Staged, StagedTag, Staging, StagingFull, staged_key, staged_preview, staged_text, unstage,
};
use crate::table::{NO_RULE, Registration, TableStorage};
use crate::time::{Duration, Instant};
use crate::value::value_hash;
use crate::wire::polled::DocumentError;

use super::{ApiStep, BacklogPolicy, DocumentRead, Engine};

impl<S: TableStorage> Engine<S> {
    /// Reads the entries complete at the start of `part`; returns how many
    /// bytes were used. After an error, takes everything (the rest is
    /// useless).
    pub(super) fn feed_document(&mut self, part: &[u8]) -> usize {
        let Some(DocumentRead::Reading { stream, staging }) = self.document.as_mut() else {
            return part.len();
        };
        let (template, rules) = (&self.config.key_template, &self.config.rules);
        let table = &mut self.table;
        let mut overflow = None;
        let fed = stream.feed(part, |entry| {
            if overflow.is_none()
                && let Err(StagingFull) = staging.stage(table, classify(&entry, template, rules))
            {
                overflow = Some(table.staging().len());
            }
        });
        let error = match (fed, overflow) {
            (_, Some(room)) => DocumentError::ReadingsOverflow { room },
            (Ok(used), None) => return used,
            (Err(error), None) => error,
        };
        self.document = Some(DocumentRead::Failed(error));
        part.len()
    }

    /// Applies a whole document's held-back readings, in document order.
    /// Applies a whole document's readings; returns how many good reads
    /// found no room in the table.
    pub(super) fn apply_document(&mut self, now: Instant, staging: &Staging) -> u32 {
        // Out of the config while the readings are applied (they borrow self).
        let rules = core::mem::take(&mut self.config.rules);
        let mut at = 0;
        let mut left_out = 0u32;
        while at < staging.len {
            let Some((record, next)) = unstage(self.table.staging(), at) else {
                break;
            };
            at = next;
            match record {
                Staged::Good {
                    tag,
                    value,
                    source_time_ms,
                    rule,
                } => {
                    let stored = match tag {
                        StagedTag::Held(position) => {
                            let position = position as usize;
                            self.table.update(position, value).map(|()| position)
                        }
                        StagedTag::New(at) => {
                            let Some(key) = staged_key(self.table.staging(), at) else {
                                break;
                            };
                            self.table.upsert(&key, value)
                        }
                    };
                    let Ok(position) = stored else {
                        left_out += 1;
                        continue;
                    };
                    if let Some(slot) = self.table.slot_mut(position) {
                        slot.source.rule = rule.unwrap_or(NO_RULE);
                    }
                    self.decide_write(now, position, source_time_ms, &rules);
                }
                Staged::FailedRead(tag) => {
                    let position = match tag {
                        StagedTag::Held(position) => Some(position as usize),
                        StagedTag::New(at) => {
                            self.table.find(staged_text(self.table.staging(), at))
                        }
                    };
                    if let Some(slot) = position.and_then(|p| self.table.slot_mut(p)) {
                        slot.source.after_failed_read = true;
                    }
                }
                Staged::Rejected {
                    reason,
                    shown,
                    full_len,
                } => {
                    let tag = staged_preview(self.table.staging(), shown, full_len);
                    self.reject_tag(now, reason, tag);
                }
            }
        }
        self.config.rules = rules;
        self.stats.reads_good_total += u64::from(staging.good_reads);
        self.stats.reads_failed_total += u64::from(staging.failed_reads);
        self.stats.tags_filtered_total += u64::from(staging.filtered);
        for (total, unnamed) in self
            .stats
            .tags_rejected_total
            .iter_mut()
            .zip(staging.unnamed_rejections)
        {
            *total += u64::from(unnamed);
        }
        left_out
    }

    pub(super) fn reject_tag(&mut self, now: Instant, reason: RejectReason, tag: KeyPreview) {
        self.stats.tags_rejected_total[reason.index()] += 1;
        self.rejected.record(&tag, reason, now);
        if self.first_report_of(&tag) {
            self.stats
                .record_error(now, format_args!("tag rejected ({reason}): {tag}"));
            self.push_event(Event::TagRejected { reason, tag });
        }
    }

    // ---- report by exception ----

    /// Whether the value just stored at `position` must be written: it
    /// differs from what the Data-Service acknowledged (`history`: from the
    /// newest change queued) beyond the rule's deadband and the rule's
    /// minimum interval has passed, or the heartbeat is due.
    pub(super) fn decide_write(
        &mut self,
        now: Instant,
        position: usize,
        source_time_ms: u64,
        rules: &RuleSet,
    ) {
        let history = self.config.backlog == BacklogPolicy::History;
        self.check_type(now, position);
        if self.note_source_time(now, position, source_time_ms) {
            // Frozen at the source: what the Data-Service holds must not
            // look fresh, so nothing new goes out (an undelivered value
            // from before still does).
            self.stats.writes_stale_total += 1;
            self.trace(position, Decision::Stale);
            return;
        }
        let Some(value) = self.table.value(position) else {
            return;
        };
        let Some(slot) = self.table.slot_mut(position) else {
            return;
        };
        if !history && slot.delivery.pending && !slot.delivery.in_flight {
            // The value before this one was never sent.
            self.stats.writes_superseded_total += 1;
        }
        let rule = rules.rules.get(usize::from(slot.source.rule));
        let heartbeat = rule
            .and_then(|r| r.heartbeat)
            .unwrap_or(self.config.heartbeat);
        let hash = value_hash(&value);
        let queued = history && slot.history.queued > 0;
        let (reference, reference_number) = if queued {
            (Some(slot.history.queued_hash), slot.history.queued_number)
        } else {
            (slot.delivery.acked_hash, slot.delivery.acked_number)
        };
        let mut changed = reference != Some(hash);
        let mut decision = Decision::Unchanged;
        let after_failed_read = core::mem::take(&mut slot.source.after_failed_read);
        if changed
            && !after_failed_read
            && let (Some(band), Some(now_number)) = (rule.and_then(|r| r.deadband), value.number())
            && !reference_number.is_nan()
            && within_deadband(band, reference_number, now_number)
        {
            changed = false;
            self.stats.writes_deadband_total += 1;
            decision = Decision::WithinDeadband;
        }
        if changed
            && let Some(min) = rule.and_then(|r| r.min_interval)
            && slot.delivery.acked_hash.is_some()
            && (queued || now - slot.delivery.acked_at < min)
        {
            // Held back: the value is looked at again next cycle.
            slot.delivery.pending = false;
            self.stats.writes_deferred_total += 1;
            self.trace(position, Decision::HeldBack);
            return;
        }
        let heartbeat_due = !changed && !queued && now - slot.delivery.acked_at >= heartbeat;
        let covered = match self.api_step {
            ApiStep::DetailedDue => true,
            ApiStep::Detailed => self.detailed.is_none() || position < self.detailed_covers,
            _ => false,
        };
        if slot.registry.registration == Registration::Unknown && !covered {
            // Not in the running check's `/detailed` answer: one more check.
            self.registry_dirty = true;
        }
        if heartbeat_due {
            self.stats.heartbeats_total += 1;
            decision = Decision::Heartbeat;
        } else if changed {
            decision = Decision::Write;
        } else {
            self.stats.writes_suppressed_total += 1;
        }
        self.trace(position, decision);
        let Some(slot) = self.table.slot_mut(position) else {
            return;
        };
        if !history {
            slot.delivery.pending = changed || heartbeat_due;
            return;
        }
        if !(changed || heartbeat_due) {
            return;
        }
        slot.history.changed_in_cycle = self.cycle_id;
        let entry = BacklogEntry {
            slot: position as u32,
            seq: self.next_seq,
            source_time_ms,
            value,
            on_disk: false,
        };
        self.next_seq += 1;
        self.queue_entry(now, &entry);
    }

    /// Reports, once per tag, a registered type that would change the
    /// tag's latest value on the way into the Data-Service.
    pub(super) fn check_type(&mut self, now: Instant, position: usize) {
        let Some(slot) = self.table.slots().get(position) else {
            return;
        };
        let Some(registered) = slot.registered_type() else {
            return;
        };
        if slot.registry.type_mismatch {
            return;
        }
        let value = self.table.value_of(slot);
        if value.fits_data_type(registered) {
            return;
        }
        self.table.slots_mut()[position].registry.type_mismatch = true;
        self.stats.type_mismatches_total += 1;
        let key = self.preview_of(position);
        let value_type = value.data_type();
        self.stats.record_error(
            now,
            format_args!("type mismatch: {key}: a {value_type} value into a {registered} key"),
        );
        self.push_event(Event::TypeMismatch {
            key,
            value_type,
            registered,
        });
    }

    /// Follows the reading's source timestamp; true while it is stale (it
    /// stood still for `max_age` in the sync's own clock, so that skew
    /// between the clocks cannot fake it). A reading without a timestamp
    /// is never stale.
    pub(super) fn note_source_time(
        &mut self,
        now: Instant,
        position: usize,
        source_time_ms: u64,
    ) -> bool {
        let max_age = self.config.max_age;
        let Some(slot) = self.table.slot_mut(position) else {
            return false;
        };
        let stamp = source_time_ms as u32;
        let now_ms = now.total_millis() as u32;
        if source_time_ms == 0 || stamp != slot.source.stamp {
            slot.source.stamp = stamp;
            slot.source.since = now_ms;
            if core::mem::take(&mut slot.source.stale) {
                let key = self.preview_of(position);
                self.push_event(Event::TagFresh { key });
            }
            return false;
        }
        if slot.source.stale {
            return true;
        }
        let frozen_for = Duration::from_millis(u64::from(now_ms.wrapping_sub(slot.source.since)));
        match max_age {
            Some(max_age) if frozen_for >= max_age => {
                slot.source.stale = true;
                self.stats.tags_stale_total += 1;
                let key = self.preview_of(position);
                self.stats.record_error(
                    now,
                    format_args!("tag stale: {key}: source timestamp unchanged for {frozen_for}"),
                );
                self.push_event(Event::TagStale { key, frozen_for });
                true
            }
            _ => false,
        }
    }
}
