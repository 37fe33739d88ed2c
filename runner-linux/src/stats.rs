//! Statistics as the library hands them out: the core's counters with
//! wall-clock times.

use std::time::SystemTime;

use dataservice_sync_core::Stats;

/// A copy of the service's statistics at one moment.
#[derive(Clone, Debug, Default)]
pub struct StatsSnapshot {
    /// Whether the sync loop is running.
    pub running: bool,
    /// Tags in the tag table.
    pub tags: usize,
    /// Tags whose latest value the Data-Service has not acknowledged.
    pub pending: usize,
    /// Every counter.
    pub counters: Stats,
    /// End of the last cycle whose fetch succeeded.
    pub last_sync_time: Option<SystemTime>,
    /// The last 100 errors, oldest first.
    pub recent_errors: Vec<(SystemTime, String)>,
}

impl StatsSnapshot {
    /// Completed sync cycles (the seed's "total syncs").
    pub fn total_syncs(&self) -> u64 {
        self.counters.sync_cycles_total
    }

    /// Acknowledged writes (the seed's "successful writes").
    pub fn successful_writes(&self) -> u64 {
        self.counters.writes_ok_total
    }

    /// Failed write attempts (the seed's "failed writes").
    pub fn failed_writes(&self) -> u64 {
        self.counters.writes_failed_total
    }
}
