//! What expires when, and when the loop must wake next.

use dataservice_sync_core::Instant;

use crate::options::core_duration;
use crate::sink::SinkSlot;
use crate::spool::Spool;
use crate::status_server::StatusServer;

use super::Runner;

impl Runner {
    pub(super) fn expire(&mut self, now: Instant) {
        if self.api.as_ref().is_some_and(|f| now >= f.deadline) {
            self.engine.handle_api_error(
                now,
                dataservice_sync_core::ApiError::Fetch(dataservice_sync_core::SourceError::Timeout),
            );
            if let Some(api) = self.api.take() {
                api.close(self.poll.registry());
            }
        }
        if self.fetch.as_ref().is_some_and(|f| now >= f.deadline) {
            self.engine
                .handle_source_error(now, dataservice_sync_core::SourceError::Timeout);
            if let Some(fetch) = self.fetch.take() {
                fetch.close(self.poll.registry());
            }
        }
        if let Some(status) = self.status.as_mut() {
            status.expire(self.poll.registry(), now);
        }
        for sink in &mut self.sinks {
            if sink.deadline().is_some_and(|d| now >= d) {
                if let Some(request) = sink.request() {
                    self.engine.handle_sink_error(
                        now,
                        request,
                        dataservice_sync_core::SinkError::Timeout,
                    );
                }
                sink.close(self.poll.registry());
            }
        }
    }

    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        let fetch = self.fetch.as_ref().map(|f| f.deadline);
        let api = self.api.as_ref().map(|f| f.deadline);
        let status = self.status.as_ref().and_then(StatusServer::next_deadline);
        let spool_sync = self.spool.as_ref().and_then(Spool::next_sync).map(|at| {
            let wait = at.saturating_duration_since(std::time::Instant::now());
            self.clock.now() + core_duration(wait)
        });
        let sinks = self.sinks.iter().filter_map(SinkSlot::deadline);
        [
            self.engine.poll_timeout(),
            fetch,
            api,
            self.shutdown_deadline,
            self.next_stats_at,
            status,
            spool_sync,
            self.notifier.next_wakeup(self.clock.now()),
        ]
        .into_iter()
        .flatten()
        .chain(sinks)
        .min()
    }
}
