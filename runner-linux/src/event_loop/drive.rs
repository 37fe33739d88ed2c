//! Carries out what the engine's `poll_*` calls hand out: fetches, API
//! requests, writes, log lines and spool frames.

use dataservice_sync_core::{Action, Instant, Level};
use mio::Token;

use crate::endpoint::HttpUrl;
use crate::http::BodyLimit;
use crate::log::Severity;
use crate::options::core_duration;
use crate::sink::SinkSlot;
use crate::source::Fetch;

use super::{API, Runner, SINK_BASE, SOURCE};

impl Runner {
    /// Carries out the engine's outputs in their documented order until a
    /// round hands out nothing. A decision a `poll_*` call left (its
    /// `poll_timeout` is now) goes back at once, and the round starts over.
    pub(super) fn drive(&mut self, now: Instant) {
        loop {
            let mut handed_out = false;
            while let Some(Action::FetchSource) = self.engine.poll_action(now) {
                self.start_fetch(now);
                handed_out = true;
            }
            if self.api.is_none() && self.engine.is_registering() {
                // The body buffer exists only while registry checks run.
                if self.api_buf.is_empty() {
                    self.api_buf.resize(self.settings.options.bulk_max_bytes, 0);
                }
                if let Some(request) = self.engine.poll_api_request(now, &mut self.api_buf) {
                    handed_out = true;
                    self.start_api(now, request);
                }
            }
            if self.engine.handle_timeout(now) {
                continue;
            }
            if !self.engine.is_registering() && !self.api_buf.is_empty() {
                self.api_buf = Vec::new();
            }
            while let Some(slot) = self.sinks.iter().position(SinkSlot::is_free) {
                let sink = &mut self.sinks[slot];
                let buffer = sink.request_buffer(&mut self.spare_request);
                let Some(tx) = self.engine.poll_transmit(now, buffer) else {
                    // Nothing to send: the slot's request buffer waits for
                    // the next pass, which then needs no new zeroed one.
                    self.spare_request = sink.release_buffers();
                    break;
                };
                handed_out = true;
                let deadline = now + core_duration(self.settings.options.write_timeout);
                let registry = self.poll.registry();
                let socket = &self.settings.options.socket_path;
                if let Err(error) = sink.start(
                    socket,
                    tx.len,
                    tx.request,
                    deadline,
                    registry,
                    Token(SINK_BASE + slot),
                ) {
                    self.engine.handle_sink_error(now, tx.request, error);
                }
            }
            if self.engine.handle_timeout(now) {
                continue;
            }
            while let Some(event) = self.engine.poll_event() {
                let severity = match event.level() {
                    Level::Debug => Severity::Debug,
                    Level::Info => Severity::Info,
                    Level::Warn => Severity::Warn,
                    Level::Error => Severity::Error,
                };
                self.log.line(severity, format_args!("{event}"));
            }
            self.pump_spool(false);
            if !handed_out {
                break;
            }
        }
    }

    /// Opens an HTTP exchange that must end within `--source-timeout`.
    pub(super) fn open_exchange(
        &self,
        now: Instant,
        url: &HttpUrl,
        path: Option<&str>,
        body: Option<&[u8]>,
        token: Token,
        body_limit: BodyLimit,
    ) -> Result<Fetch, dataservice_sync_core::SourceError> {
        let deadline = now + core_duration(self.settings.options.source_timeout);
        Fetch::start(
            url,
            path,
            body,
            body_limit,
            deadline,
            self.poll.registry(),
            token,
        )
    }

    pub(super) fn start_fetch(&mut self, now: Instant) {
        // The document is taken as it arrives (the engine says how much it
        // used, and applies nothing from a cut-off one).
        let limit = BodyLimit::Streamed(self.settings.options.max_body_bytes);
        match self.open_exchange(now, &self.settings.source, None, None, SOURCE, limit) {
            Ok(fetch) => self.fetch = Some(fetch),
            Err(error) => self.engine.handle_source_error(now, error),
        }
    }

    pub(super) fn start_api(&mut self, now: Instant, request: dataservice_sync_core::ApiRequest) {
        let Some(url) = &self.settings.api else {
            self.engine.handle_api_error(
                now,
                dataservice_sync_core::ApiError::Fetch(dataservice_sync_core::SourceError::Refused),
            );
            return;
        };
        let body = (request.method == "POST").then(|| &self.api_buf[..request.body_len]);
        // `/detailed` is taken as it arrives (the engine says how much it used).
        let limit = BodyLimit::Held(self.settings.options.max_body_bytes);
        match self.open_exchange(now, url, Some(request.path), body, API, limit) {
            Ok(fetch) => self.api = Some(fetch),
            Err(error) => self
                .engine
                .handle_api_error(now, dataservice_sync_core::ApiError::Fetch(error)),
        }
    }

    /// Appends what the engine hands to the spool, the acknowledgement
    /// watermark, and syncs as the policy says (`exiting`: all of it, now).
    pub(super) fn pump_spool(&mut self, exiting: bool) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        let now = std::time::Instant::now();
        let mut result = Ok(());
        while let Some(frame) = self.engine.poll_spool(&mut self.spool_buf) {
            let bytes = &self.spool_buf[..frame.len];
            result = result.and(spool.append_change(bytes, frame.seq, now));
        }
        result = result
            .and_then(|()| spool.acknowledge(self.engine.spool_acked_through(), now))
            .and_then(|()| spool.sync(now, exiting));
        match result {
            Err(e) if !self.spool_failing => {
                self.spool_failing = true;
                self.log.warn(format_args!(
                    "spool: {e}: undelivered changes stay in memory only (retried in 30 s; spool_errors_total counts)"
                ));
            }
            Ok(()) if self.spool_failing && !spool.is_paused(now) => {
                self.spool_failing = false;
                self.log.info(format_args!("spool: writing again"));
            }
            _ => {}
        }
    }
}
