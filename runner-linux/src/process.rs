//! The process's own figures from the kernel, for `/metrics`.

use dataservice_sync_core::report::ProcessFigures;
use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{SysconfVar, sysconf};

/// Resident memory, open descriptors and CPU time of this process; `None`
/// where `/proc` cannot be read.
pub(crate) fn figures() -> Option<ProcessFigures> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let millis = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1000 + t.tv_usec() as u64 / 1000;
    Some(ProcessFigures {
        resident_memory_bytes: resident_pages * page,
        // The directory read itself holds one descriptor.
        open_fds: open_fds.saturating_sub(1),
        cpu_millis: millis(usage.user_time()) + millis(usage.system_time()),
    })
}
