//! The registry check: `/detailed` read as it arrives, missing keys
//! registered, ids learnt; invalidation when the Data-Service restarts.

use crate::backlog::BacklogEntry;
use crate::event::Event;
use crate::peer::{ApiError, Change};
use crate::reject::KeyPreview;
use crate::table::{
    DATA_TYPES, PointMeta, Registration, RegistryData, TableStorage, TagSlot, UNKNOWN_TYPE,
    data_type_index,
};
use crate::text::Truncating;
use crate::time::Instant;
use crate::wire::id::parse_id;
use crate::wire::json::JsonError;
use crate::wire::polled::DocumentError;
use crate::wire::registry::{
    Address, DetailedStream, PointSpec, RegisterEncoder, parse_register_bulk,
};

use super::{ApiStep, BacklogPolicy, DetailedRead, Engine, Phase, RegisterMode};

impl<S: TableStorage> Engine<S> {
    pub(super) fn start_registry_check_if_wanted(&mut self, now: Instant) {
        let wanted = self.config.registry_checks
            && self.registry_dirty
            && self.api_step == ApiStep::None
            && !self.shutting_down
            && (!self.api.is_down() || now >= self.api_retry_at);
        if wanted {
            self.registry_dirty = false;
            self.registry_check_started = now;
            self.api_step = ApiStep::DetailedDue;
            self.check_holds_every_tag = self
                .table
                .slots()
                .iter()
                .all(|slot| unchecked(slot.registry.registration));
        }
    }

    /// While a check that every tag waits for runs, a fetch could deliver
    /// nothing, and with `--backlog latest` it would keep nothing the
    /// fetch after the check does not bring: ticks skip it, leaving the
    /// Data-Service (and the CPU) to the check, and a cycle follows the
    /// check at once. With `history` every change is kept, so cycles go on.
    pub(super) fn fetch_waits_for_check(&self) -> bool {
        self.api_step != ApiStep::None
            && self.check_holds_every_tag
            && self.config.backlog == BacklogPolicy::Latest
    }

    /// Every tag is registered or known: the check is done.
    pub(super) fn finish_registry_check(&mut self, now: Instant) {
        self.api_step = ApiStep::None;
        self.stats
            .record_registry_check(now - self.registry_check_started);
        self.registry_check_ended(now);
    }

    /// The check is over (done, or failed: then unchecked tags go by key).
    pub(super) fn registry_check_ended(&mut self, now: Instant) {
        if core::mem::take(&mut self.skipped_tick)
            && self.phase == Phase::Idle
            && !self.shutting_down
        {
            // Ticks skipped their fetch meanwhile: a cycle now, with fresh values.
            self.phase = Phase::FetchDue;
        } else {
            self.deliver_what_became_ready(now);
        }
    }

    /// Whether a tag in this state waits for a registry check (running, or
    /// to start when this cycle has delivered) rather than going by key: a
    /// key the Data-Service does not have would drop its value without a
    /// word. While the API is down, unchecked tags go by key.
    pub(super) fn waits_for_check(&self, slot: &TagSlot) -> bool {
        self.check_coming() && unchecked(slot.registry.registration)
    }

    pub(super) fn check_coming(&self) -> bool {
        let running = self.api_step != ApiStep::None;
        let wanted = self.config.registry_checks && self.registry_dirty && !self.api.is_down();
        (running || wanted) && !self.shutting_down
    }

    /// Starts reading a `/detailed` answer (once per answer).
    pub(super) fn begin_detailed(&mut self, now: Instant) {
        if self.detailed.is_some() {
            return;
        }
        if self.api.is_down() && self.api_down_epoch == self.registry_epoch {
            // The API came back: the Data-Service may have restarted (unless
            // that was seen already during the outage). This answer is the
            // fresh look at its registry.
            self.invalidate_registry(now, "its HTTP API came back");
            self.registry_dirty = false;
        }
        self.detailed = Some(DetailedRead::Reading(DetailedStream::default()));
        self.detailed_covers = self.table.len();
    }

    /// Takes the points complete at the start of `part`; returns the bytes
    /// used. After an error, takes everything (the answer is useless).
    pub(super) fn feed_detailed(&mut self, part: &mut [u8]) -> usize {
        let stream = match self.detailed.as_mut() {
            None => return 0,
            Some(DetailedRead::Failed(_)) => return part.len(),
            Some(DetailedRead::Reading(stream)) => stream,
        };
        let mut key = crate::key::Key::new();
        let table = &mut self.table;
        let fed = stream.feed(part, |point| {
            key.clear();
            if point.key.write_unescaped(&mut key).is_err() {
                return;
            }
            let Some(position) = table.find(&key) else {
                return;
            };
            let Some(slot) = table.slot_mut(position) else {
                return;
            };
            if slot.registry.registration != Registration::Unknown {
                return;
            }
            slot.registry.registered_type = point
                .data_type
                .and_then(|t| DATA_TYPES.iter().position(|d| t.eq_str(d)))
                .map_or(UNKNOWN_TYPE, |i| i as u8);
            slot.registry.registration = match point_meta(&point) {
                Some(meta) => {
                    slot.registry.data = RegistryData::Meta(meta);
                    Registration::Found
                }
                None => Registration::ByKeyOnly,
            };
        });
        fed.unwrap_or_else(|error| {
            self.detailed = Some(DetailedRead::Failed(error));
            part.len()
        })
    }

    /// The whole `/detailed` answer was read, its last bytes in `rest`.
    pub(super) fn finish_detailed(
        &mut self,
        now: Instant,
        rest: &mut [u8],
    ) -> Result<(), DocumentError> {
        let used = self.feed_detailed(rest);
        let whole = match self.detailed.take() {
            Some(DetailedRead::Failed(error)) => Err(error),
            Some(DetailedRead::Reading(stream)) if used == rest.len() => stream.finish(),
            // Bytes left that do not make a member: the body was cut off.
            _ => Err(DocumentError::Json(JsonError::UnexpectedEnd)),
        };
        if whole.is_err() {
            // Points came before the error: forget what they said.
            self.unmark_detailed();
            return whole;
        }
        let register = self.config.register;
        // Tags that came in while the answer was read (a cycle runs beside
        // it) may have come after their key went by: they stay unknown, and
        // another check looks again (`decide_write` asked for it).
        for position in 0..self.detailed_covers {
            if self.table.slots()[position].registry.registration != Registration::Unknown {
                self.check_type(now, position);
                continue;
            }
            let key = KeyPreview::of_key(self.table.key(position));
            let slot = &mut self.table.slots_mut()[position];
            slot.registry.registration = match register {
                RegisterMode::Missing => Registration::Missing,
                RegisterMode::Off => Registration::NotRegistered,
            };
            if register == RegisterMode::Off && self.first_report_of(&key) {
                self.push_event(Event::TagNotRegistered { key });
            }
        }
        self.register_cursor = 0;
        Ok(())
    }

    /// A `/detailed` answer failed part way: the tags it marked are checked
    /// again with the next one.
    pub(super) fn unmark_detailed(&mut self) {
        self.detailed = None;
        for slot in self.table.slots_mut() {
            if matches!(
                slot.registry.registration,
                Registration::Found | Registration::ByKeyOnly
            ) {
                slot.registry.registration = Registration::Unknown;
                slot.registry.data = RegistryData::None;
                slot.registry.registered_type = UNKNOWN_TYPE;
                slot.registry.type_mismatch = false;
            }
        }
    }

    /// Encodes the next `/register/bulk` body; `None` when nothing is left.
    pub(super) fn encode_registrations(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        let mut encoder = RegisterEncoder::new(buf).ok()?;
        let mut first = None;
        while self.register_cursor < self.table.len() {
            let position = self.register_cursor;
            let slot = &self.table.slots()[position];
            let spec = match (slot.registry.registration, &slot.registry.data) {
                (Registration::Found, RegistryData::Meta(meta)) => PointSpec::Existing {
                    address: meta.address(),
                    default: meta.default(),
                    data_type: meta.data_type(),
                    units: meta.units(),
                },
                (Registration::Missing, _) => PointSpec::New {
                    data_type: self
                        .config
                        .rules
                        .rules
                        .get(usize::from(slot.source.rule))
                        .and_then(|rule| rule.data_type)
                        .map_or_else(
                            || self.table.value_of(slot).registration_type(),
                            |t| t.as_str(),
                        ),
                },
                _ => {
                    self.register_cursor += 1;
                    continue;
                }
            };
            let new_type = match spec {
                PointSpec::New { data_type } => data_type_index(data_type),
                PointSpec::Existing { .. } => None,
            };
            let pushed = encoder.push(self.table.key_of(slot), spec);
            let slot = &mut self.table.slots_mut()[position];
            if pushed.is_err() {
                if encoder.count() == 0 {
                    // Cannot fit even alone: keep it on write by key.
                    slot.registry.registration = Registration::ByKeyOnly;
                    self.register_cursor += 1;
                    continue;
                }
                break;
            }
            slot.registry.registration = Registration::Registering;
            if let Some(new_type) = new_type {
                slot.registry.registered_type = new_type;
            }
            first.get_or_insert(position);
            self.register_cursor += 1;
        }
        let first = first?;
        Some((first, encoder.finish()))
    }

    pub(super) fn apply_registrations(
        &mut self,
        now: Instant,
        first: usize,
        body: &[u8],
    ) -> Result<(), crate::wire::polled::DocumentError> {
        // Results come by index into the request: the n-th slot in state
        // Registering from `first` on. Indexes only go up; a point the
        // answer passes over stays Registering and fails below.
        let mut positions = first..self.table.len();
        let mut next_index = 0usize;
        let mut failures: heapless::Vec<(usize, heapless::String<64>), 8> = heapless::Vec::new();
        let mut failed_total = 0u64;
        let mut unlisted_failures = 0u32;
        let mut registered = 0u64;
        let table = &mut self.table;
        parse_register_bulk(body, |result| {
            let index = result.index.unwrap_or(next_index);
            if index < next_index {
                return;
            }
            let mut registering = || {
                positions
                    .by_ref()
                    .find(|&p| table.slots()[p].registry.registration == Registration::Registering)
            };
            for _ in next_index..index {
                registering();
            }
            let Some(position) = registering() else {
                return;
            };
            next_index = index + 1;
            let slot = &mut table.slots_mut()[position];
            slot.registry.data = RegistryData::None;
            match (result.ok, result.id.and_then(|id| parse_id(id.raw()))) {
                (true, Some(id)) => {
                    slot.registry.data = RegistryData::Id(id);
                    slot.registry.registration = Registration::Registered;
                    registered += 1;
                }
                _ => {
                    slot.registry.registration = Registration::Failed;
                    failed_total += 1;
                    let mut text = heapless::String::new();
                    if let Some(error) = result.error {
                        error.write_unescaped(&mut Truncating::new(&mut text)).ok();
                    }
                    if failures.push((position, text)).is_err() {
                        unlisted_failures += 1;
                    }
                }
            }
        })?;
        // Points the answer did not mention failed too.
        for position in first..self.table.len() {
            let slot = &mut self.table.slots_mut()[position];
            if slot.registry.registration == Registration::Registering {
                slot.registry.registration = Registration::Failed;
                failed_total += 1;
            }
        }
        self.stats.registrations_total += registered;
        self.stats.registrations_failed_total += failed_total;
        for (position, error) in failures {
            let key = self.preview_of(position);
            self.stats
                .record_error(now, format_args!("registration failed: {key}: {error}"));
            if self.first_report_of(&key) {
                self.push_event(Event::RegistrationFailed { key, error });
            }
        }
        if unlisted_failures > 0 {
            // Named one by one above up to a few per answer; the rest in one line.
            self.stats.record_error(
                now,
                format_args!("{unlisted_failures} more registrations failed in the same answer"),
            );
            self.push_event(Event::MoreRegistrationsFailed {
                count: unlisted_failures,
            });
        }
        Ok(())
    }

    pub(super) fn api_failed(&mut self, now: Instant, error: ApiError) {
        self.stats.api_errors_total += 1;
        self.stats
            .record_error(now, format_args!("Data-Service HTTP API: {error}"));
        if !self.api.is_down() {
            self.api_down_epoch = self.registry_epoch;
        }
        if let Change::WentDown(error) = self.api.record_failure(now, error) {
            self.push_event(Event::ApiDown(error));
        }
        self.api_retry_at = now + self.config.api_retry;
        if self.detailed.is_some() {
            self.unmark_detailed();
        }
        self.abandon_registration();
        // Tags stay unchecked and are written by key meanwhile.
        self.registry_dirty = true;
        self.registry_check_ended(now);
    }

    pub(super) fn abandon_registration(&mut self) {
        self.api_step = ApiStep::None;
        for slot in self.table.slots_mut() {
            if matches!(
                slot.registry.registration,
                Registration::Registering | Registration::Found | Registration::Missing
            ) {
                slot.registry.registration = Registration::Unknown;
                slot.registry.data = RegistryData::None;
            }
        }
    }

    /// A restart shown by what was sent or seen in registry epoch `epoch`:
    /// news only if nothing was invalidated since (a restart answers every
    /// line in flight `id not found`, and its socket and API come back).
    pub(super) fn restart_if_news(&mut self, now: Instant, epoch: u32, why: &'static str) {
        if epoch == self.registry_epoch {
            self.restart_assumed(now, why);
        }
    }

    /// A write showed that the Data-Service restarted: a check that was
    /// running asked the old one, so it starts again.
    pub(super) fn restart_assumed(&mut self, now: Instant, why: &'static str) {
        if self.api_step != ApiStep::None {
            self.detailed = None;
            self.api_step = ApiStep::None;
        }
        self.invalidate_registry(now, why);
        self.start_registry_check_if_wanted(now);
    }

    /// The Data-Service lost its registrations and values (restart): check
    /// every tag again and write every value again.
    pub(super) fn invalidate_registry(&mut self, now: Instant, why: &'static str) {
        let history = self.config.backlog == BacklogPolicy::History;
        for slot in self.table.slots_mut() {
            slot.registry.registration = Registration::Unknown;
            slot.registry.data = RegistryData::None;
            slot.registry.registered_type = UNKNOWN_TYPE;
            slot.registry.type_mismatch = false;
            slot.delivery.acked_hash = None;
            slot.delivery.pending = !history && !slot.source.stale;
        }
        if history {
            // Refill: tags with nothing queued get their current value again.
            for position in 0..self.table.len() {
                let slot = &self.table.slots()[position];
                if slot.history.queued == 0 {
                    let entry = BacklogEntry {
                        slot: position as u32,
                        seq: self.next_seq,
                        source_time_ms: 0,
                        value: self.table.value_of(slot),
                        on_disk: false,
                    };
                    self.next_seq += 1;
                    self.queue_entry(now, &entry);
                }
            }
        }
        self.registry_dirty = true;
        self.registry_epoch = self.registry_epoch.wrapping_add(1);
        self.stats.dataservice_restarts_total += 1;
        self.stats
            .record_error(now, format_args!("Data-Service restart assumed: {why}"));
        self.push_event(Event::DataServiceRestarted { reason: why });
    }
}

/// Not yet known to the registry check: the tag has neither an id nor a
/// reason to go by key.
pub(super) fn unchecked(registration: Registration) -> bool {
    matches!(
        registration,
        Registration::Unknown
            | Registration::Found
            | Registration::Missing
            | Registration::Registering
    )
}

/// What `/detailed` says about a point, if it fits our bounded copy.
pub(super) fn point_meta(point: &crate::wire::registry::DetailedPoint<'_>) -> Option<PointMeta> {
    let data_type = point.data_type?;
    let data_type = DATA_TYPES.iter().position(|t| data_type.eq_str(t))? as u8;
    let Address::Number(address) = point.address else {
        return None;
    };
    PointMeta::new(address, data_type, point.default?, |texts| {
        match point.units {
            Some(units) => units.write_unescaped(texts).ok(),
            None => Some(()),
        }
    })
}
