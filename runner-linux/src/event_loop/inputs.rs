//! Readiness of an fd becomes the engine's `handle_*` call.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use dataservice_sync_core::Instant;
use dataservice_sync_core::report::ReportContext;
use mio::Token;
use nix::sys::signal::Signal;

use crate::clock::unix_millis;
use crate::sink::WriteOutcome;
use crate::source::FetchOutcome;
use crate::spool::Spool;
use crate::status_routes;

use super::{Runner, StopSource};

impl Runner {
    pub(super) fn on_api(&mut self, now: Instant) {
        let Some(fetch) = self.api.as_mut() else {
            return;
        };
        let engine = &mut self.engine;
        let outcome = fetch.on_ready(&mut self.scratch, |status, part| {
            engine.handle_api_body_part(now, status, part)
        });
        match outcome {
            FetchOutcome::Pending => return,
            FetchOutcome::Done { status } => {
                self.engine.handle_api_response(now, status, fetch.body())
            }
            FetchOutcome::Failed(error) => self
                .engine
                .handle_api_error(now, dataservice_sync_core::ApiError::Fetch(error)),
        }
        if let Some(fetch) = self.api.take() {
            fetch.close(self.poll.registry());
        }
    }

    pub(super) fn on_source(&mut self, now: Instant) {
        let Some(fetch) = self.fetch.as_mut() else {
            return;
        };
        let engine = &mut self.engine;
        let outcome = fetch.on_ready(&mut self.scratch, |status, part| match status {
            200 => engine.handle_source_body_part(part),
            // Not a document: only its status is used.
            _ => part.len(),
        });
        match outcome {
            FetchOutcome::Pending => return,
            FetchOutcome::Done { status: 200 } => self.engine.handle_source_body(now, fetch.body()),
            FetchOutcome::Done { status } => self
                .engine
                .handle_source_error(now, dataservice_sync_core::SourceError::HttpStatus(status)),
            FetchOutcome::Failed(error) => self.engine.handle_source_error(now, error),
        }
        if let Some(fetch) = self.fetch.take() {
            fetch.close(self.poll.registry());
        }
    }

    pub(super) fn on_sink(&mut self, now: Instant, slot: usize) {
        let socket = &self.settings.options.socket_path;
        let Some(sink) = self.sinks.get_mut(slot) else {
            return;
        };
        let Some(request) = sink.request() else {
            return;
        };
        match sink.on_ready(socket) {
            WriteOutcome::Pending => return,
            WriteOutcome::Answered => self.engine.handle_sink_response(now, request, sink.line()),
            WriteOutcome::Failed(error) => self.engine.handle_sink_error(now, request, error),
        }
        sink.close(self.poll.registry());
    }

    pub(super) fn on_status_accept(&mut self, now: Instant) {
        if let Some(status) = self.status.as_mut() {
            status.on_accept(self.poll.registry(), now);
        }
    }

    pub(super) fn on_status(&mut self, now: Instant, token: Token) {
        let ctx = ReportContext {
            version: env!("CARGO_PKG_VERSION"),
            commit: env!("DSS_COMMIT"),
            target: env!("DSS_TARGET"),
            process: crate::process::figures(),
            now,
            unix_millis: unix_millis(SystemTime::now()),
            started_at: self.started_at,
            stopping: self.shutdown_deadline.is_some(),
        };
        let engine = &self.engine;
        let health_cycles = self.settings.options.health_cycles;
        let Some(status) = self.status.as_mut() else {
            return;
        };
        let runner = status_routes::RunnerFigures {
            server: status.stats(),
            spool: self.spool.as_ref().map(Spool::stats),
        };
        status.on_ready(self.poll.registry(), token, |request| {
            status_routes::respond(request, engine, &ctx, health_cycles, &runner)
        });
    }

    pub(super) fn on_timer(&mut self, now: Instant) {
        let mut expirations = [0u8; 8];
        // Reading clears readiness; EAGAIN means another wakeup got there first.
        if nix::unistd::read(&self.timer, &mut expirations).is_ok() {
            self.engine.handle_tick(now);
        }
    }

    pub(super) fn on_signals(&mut self, now: Instant) {
        let StopSource::Signals(signals) = &self.stop else {
            return;
        };
        let mut received = Vec::new();
        while let Ok(Some(info)) = signals.read_signal() {
            received.push(info.ssi_signo as i32);
        }
        for signo in received {
            match Signal::try_from(signo) {
                Ok(Signal::SIGHUP) => self.reload(now),
                Ok(signal) => self.begin_shutdown(now, signal.as_str()),
                Err(_) => {}
            }
        }
    }

    pub(super) fn on_wake(&mut self, now: Instant) {
        if let StopSource::Flag(flag) = &self.stop
            && flag.load(Ordering::SeqCst)
        {
            self.begin_shutdown(now, "stop()");
        }
    }
}
