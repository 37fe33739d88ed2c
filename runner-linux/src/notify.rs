//! systemd notifications (`Type=notify`): READY when the loop runs, STATUS
//! with the key counters, WATCHDOG while the loop makes progress, STOPPING
//! on shutdown. Without `NOTIFY_SOCKET` every call is a no-op.

use dataservice_sync_core::{Duration, Instant};
use sd_notify::NotifyState;

use crate::options::core_duration;

/// How often STATUS may be updated.
const STATUS_EVERY: Duration = Duration::from_millis(1000);

/// Talks to the service manager.
pub(crate) struct Notifier {
    enabled: bool,
    watchdog_every: Option<Duration>,
    next_ping: Option<Instant>,
    next_status: Instant,
}

impl Notifier {
    pub(crate) fn from_env(now: Instant) -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        // Ping at half the watchdog timeout, as sd_watchdog_enabled(3) advises.
        let watchdog_every = sd_notify::watchdog_enabled()
            .filter(|_| enabled)
            .map(|timeout| core_duration(timeout / 2).max(Duration::from_millis(1)));
        Notifier {
            enabled,
            watchdog_every,
            next_ping: watchdog_every.map(|_| now),
            next_status: now,
        }
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if self.enabled {
            // A service manager that went away must not stop the sync.
            let _ = sd_notify::notify(states);
        }
    }

    pub(crate) fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub(crate) fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// Whether a STATUS update is due (at most one per second); if so, the
    /// caller sends it with [`Notifier::status`].
    pub(crate) fn status_due(&mut self, now: Instant) -> bool {
        if !self.enabled || now < self.next_status {
            return false;
        }
        self.next_status = now + STATUS_EVERY;
        true
    }

    pub(crate) fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// WATCHDOG=1 when due and the caller saw progress since the last
    /// ping; returns whether it pinged.
    pub(crate) fn watchdog(&mut self, now: Instant, progressing: bool) -> bool {
        let (Some(every), Some(due)) = (self.watchdog_every, self.next_ping) else {
            return false;
        };
        if now < due || !progressing {
            return false;
        }
        self.next_ping = Some(now + every);
        self.send(&[NotifyState::Watchdog]);
        true
    }

    /// When the loop must wake to ping; none while overdue, so that a loop
    /// without progress does not spin (progress wakes it anyway).
    pub(crate) fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        self.next_ping.filter(|due| *due > now)
    }
}
