//! The runner's clock: monotonic time for the engine, wall time for people.

use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use dataservice_sync_core::Instant;
use dataservice_sync_core::report::Rfc3339;

/// Maps the monotonic clock to the core's millisecond [`Instant`].
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: StdInstant,
    origin_wall: SystemTime,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Clock {
            origin: StdInstant::now(),
            origin_wall: SystemTime::now(),
        }
    }

    /// Now, for the engine.
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.origin.elapsed().as_millis() as u64)
    }

    /// The wall-clock time of an engine instant.
    pub fn wall(&self, at: Instant) -> SystemTime {
        self.origin_wall + StdDuration::from_millis(at.total_millis())
    }
}

/// Formats a wall-clock time as RFC 3339 UTC with milliseconds.
pub fn rfc3339(time: SystemTime) -> String {
    Rfc3339(unix_millis(time)).to_string()
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn unix_millis(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        let t = UNIX_EPOCH + StdDuration::from_millis(1_764_318_000_123);
        assert_eq!(rfc3339(t), "2025-11-28T08:20:00.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + StdDuration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
