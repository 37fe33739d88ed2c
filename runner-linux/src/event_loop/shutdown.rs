//! Stopping: SIGTERM/SIGINT or `stop()`, the deadline, and what is said
//! and kept at exit.

use dataservice_sync_core::{BacklogPolicy, Instant};

use crate::options::core_duration;
use crate::stats::StatsSnapshot;

use super::Runner;

impl Runner {
    pub(super) fn begin_shutdown(&mut self, now: Instant, why: &str) {
        if self.shutdown_deadline.is_some() {
            self.log.warn(format_args!("{why} again: stopping now"));
            self.shutdown_deadline = Some(now);
            return;
        }
        let timeout = self.settings.options.shutdown_timeout;
        self.log.info(format_args!(
            "{why} received: stopping; finishing in-flight writes (at most {:.1}s)",
            timeout.as_secs_f64()
        ));
        self.notifier
            .stopping(&format!("stopping on {why}: {}", self.status_line()));
        // Disarming a valid timerfd cannot fail; if it did, ticks are ignored anyway.
        let _ = self.timer.unset();
        self.engine.handle_shutdown(now);
        if let Some(fetch) = self.fetch.take() {
            fetch.close(self.poll.registry());
        }
        if let Some(api) = self.api.take() {
            api.close(self.poll.registry());
        }
        self.shutdown_deadline = Some(now + core_duration(timeout));
    }

    /// After the loop: what waits goes to the spool, and the last line says
    /// what was delivered and what was not.
    pub(super) fn finish(&mut self) -> StatsSnapshot {
        if let Some(spool) = self.spool.as_ref() {
            let before = spool.stats().records_written_total;
            self.engine.flush_to_spool();
            self.pump_spool(true);
            if let Some(spool) = self.spool.as_ref() {
                self.log.info(format_args!(
                    "spool: {} undelivered changes written at exit, {} bytes on disk",
                    spool.stats().records_written_total - before,
                    spool.stats().bytes_on_disk
                ));
            }
        }
        let pending = self.engine.pending();
        let pending_tags = self.engine.pending_tags();
        let stats = self.engine.stats();
        self.log.info(format_args!(
            "stopped: tags={} pending={pending} unregistered={} {stats}",
            self.engine.table().len(),
            self.engine.unregistered(),
        ));
        if pending > 0 && self.spool.is_none() {
            if self.settings.options.backlog == BacklogPolicy::History {
                self.log.error(format_args!(
                    "{pending} undelivered changes of {pending_tags} tags are lost at exit \
                     (no --spool-dir)"
                ));
            } else {
                self.log.warn(format_args!(
                    "{pending_tags} tags had values the Data-Service had not acknowledged at exit"
                ));
            }
        }
        self.publish(false);
        self.snapshot(false)
    }
}
