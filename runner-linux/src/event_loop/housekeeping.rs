//! What the loop tells the outside: systemd, the statistics lines, the
//! library's snapshot.

use dataservice_sync_core::Instant;

use crate::clock::rfc3339;
use crate::options::core_duration;
use crate::stats::StatsSnapshot;

use super::Runner;

impl Runner {
    /// The key counters, for systemd's STATUS.
    pub(super) fn status_line(&self) -> String {
        let stats = self.engine.stats();
        format!(
            "cycles={} writes_ok={} writes_failed={} pending={} source={} sink={}",
            stats.sync_cycles_total,
            stats.writes_ok_total,
            stats.writes_failed_total,
            self.engine.pending(),
            self.engine.source_health().as_str(),
            self.engine.sink_health().as_str(),
        )
    }

    /// STATUS and the watchdog. Progress: a cycle completed since the last
    /// ping, or the engine idles between cycles; a loop stuck mid-cycle
    /// stops pinging and systemd restarts it.
    pub(super) fn notify(&mut self, now: Instant) {
        let cycles = self.engine.stats().sync_cycles_total;
        let progressing = cycles != self.pinged_cycles || self.engine.is_idle();
        if self.notifier.watchdog(now, progressing) {
            self.pinged_cycles = cycles;
        }
        // Once stopping, the STOPPING status stays.
        if self.shutdown_deadline.is_none() && self.notifier.status_due(now) {
            self.notifier.status(&self.status_line());
        }
    }

    pub(super) fn log_stats_if_due(&mut self, now: Instant) {
        let Some(due) = self.next_stats_at else {
            return;
        };
        if now < due {
            return;
        }
        let last_sync = self
            .engine
            .stats()
            .last_sync_at
            .map_or_else(|| "never".to_string(), |at| rfc3339(self.clock.wall(at)));
        // Only the counters that moved since the last line: a quiet gateway
        // writes a short line, not every counter every minute.
        let stats = self.engine.stats();
        let mut moved = String::new();
        for (i, counter) in stats.counters().iter().enumerate() {
            if self.logged_counters.get(i).copied().unwrap_or(0) != counter.value {
                moved.push_str(&format!(" {}={}", counter.name, counter.value));
            }
        }
        self.logged_counters = stats.counters().iter().map(|c| c.value).collect();
        if let (Some(p50), Some(p99)) = (stats.cycle_percentile(50), stats.cycle_percentile(99)) {
            moved.push_str(&format!(" cycle_p50_ms={p50} cycle_p99_ms={p99}"));
        }
        self.log.info(format_args!(
            "stats: tags={} pending={} unregistered={} last_sync={last_sync}{moved}",
            self.engine.table().len(),
            self.engine.pending(),
            self.engine.unregistered(),
        ));
        self.next_stats_at = Some(due + core_duration(self.settings.options.stats_interval));
    }

    /// Hands a copy of the statistics to the library's `stats()`, once per cycle.
    pub(super) fn publish(&mut self, running: bool) {
        let cycles = self.engine.stats().sync_cycles_total;
        if running && cycles == self.published_cycles {
            return;
        }
        self.published_cycles = cycles;
        let snapshot = self.snapshot(running);
        if let Ok(mut shared) = self.shared.lock() {
            *shared = snapshot;
        }
    }

    pub(super) fn snapshot(&self, running: bool) -> StatsSnapshot {
        let counters = self.engine.stats().clone();
        StatsSnapshot {
            running,
            tags: self.engine.table().len(),
            pending: self.engine.pending(),
            last_sync_time: counters.last_sync_at.map(|at| self.clock.wall(at)),
            recent_errors: counters
                .recent_errors
                .oldest_ordered()
                .map(|e| (self.clock.wall(e.at), e.message.to_string()))
                .collect(),
            counters,
        }
    }
}
