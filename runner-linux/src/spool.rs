//! The spool: undelivered `history` changes in append-only segment files
//! (`changes-<first seq>.spool`) of CRC-framed records (framing in the
//! core's `wire::spool`), so that a restart or a crash does not lose them.
//!
//! Flash-friendly: only appends, never a rewrite in place; a segment is
//! deleted once every change in it was acknowledged (an acknowledgement
//! watermark is appended as a record of its own). A new process never
//! appends to an old segment, so a torn last record stays the last. The
//! total is bounded: past `max_bytes` the oldest segment is deleted and
//! counted. Reading streams through a 64 KiB buffer, never a whole file.

use std::collections::VecDeque;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dataservice_sync_core::wire::spool::{self, Frame, FrameError, MAX_FRAME_LEN};

/// When appended records are forced to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpoolSync {
    /// `fdatasync` after every batch of records: a crash loses nothing
    /// that was spooled.
    Always,
    /// At most this long after a record was written.
    Every(Duration),
    /// Left to the kernel's write-back (typically up to 30 s).
    Never,
}

/// Counters of the spool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Change records appended.
    pub records_written_total: u64,
    /// Bytes appended (changes and acknowledgements).
    pub bytes_written_total: u64,
    /// Failed file operations (each disables the spool for a while).
    pub errors_total: u64,
    /// Damaged records skipped when reading (bad CRC, bad payload).
    pub corrupt_records_total: u64,
    /// Incomplete records at the end of a segment (a write cut short).
    pub torn_records_total: u64,
    /// Segments deleted to stay under the size limit while holding
    /// unacknowledged changes.
    pub segments_dropped_total: u64,
    /// Bytes in the spool's segment files now.
    pub bytes_on_disk: u64,
}

struct Segment {
    path: PathBuf,
    last_seq: u64,
    bytes: u64,
}

/// The spool directory.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    sync: SpoolSync,
    segments: VecDeque<Segment>,
    current: Option<File>,
    unsynced_since: Option<Instant>,
    acked_written: u64,
    disabled_until: Option<Instant>,
    stats: SpoolStats,
}

/// What the first reading of the spool found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolScan {
    /// Segment files.
    pub segments: usize,
    /// Every change up to this was acknowledged.
    pub acked_through: u64,
    /// The highest change number seen.
    pub max_seq: u64,
    /// Change records not acknowledged: to replay.
    pub unacked: u64,
}

const SEGMENT_PREFIX: &str = "changes-";
const SEGMENT_SUFFIX: &str = ".spool";
/// After a failed file operation, the spool rests this long.
const ERROR_PAUSE: Duration = Duration::from_secs(30);

impl Spool {
    /// Opens (creating it, mode 0700) `dir` and reads what it holds.
    pub fn open(dir: &Path, max_bytes: u64, sync: SpoolSync) -> io::Result<(Spool, SpoolScan)> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let mut names: Vec<String> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(SEGMENT_PREFIX) && n.ends_with(SEGMENT_SUFFIX))
            .collect();
        names.sort();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 4).max(64 * 1024),
            sync,
            segments: VecDeque::new(),
            current: None,
            unsynced_since: None,
            acked_written: 0,
            disabled_until: None,
            stats: SpoolStats::default(),
        };
        let mut scan = SpoolScan {
            segments: names.len(),
            ..SpoolScan::default()
        };
        let mut per_segment_unacked = Vec::new();
        for name in &names {
            let path = dir.join(name);
            let mut last_seq = 0;
            let mut seqs = Vec::new();
            let counts = for_each_frame(&path, |frame| match frame {
                Frame::Change(change) => {
                    last_seq = last_seq.max(change.seq);
                    seqs.push(change.seq);
                }
                Frame::Acked(seq) => scan.acked_through = scan.acked_through.max(seq),
            })?;
            spool.stats.corrupt_records_total += counts.corrupt;
            spool.stats.torn_records_total += counts.torn;
            scan.max_seq = scan.max_seq.max(last_seq);
            per_segment_unacked.push(seqs);
            let bytes = fs::metadata(&path)?.len();
            spool.stats.bytes_on_disk += bytes;
            spool.segments.push_back(Segment {
                path,
                last_seq,
                bytes,
            });
        }
        scan.unacked = per_segment_unacked
            .iter()
            .flatten()
            .filter(|&&seq| seq > scan.acked_through)
            .count() as u64;
        spool.acked_written = scan.acked_through;
        Ok((spool, scan))
    }

    /// Streams every unacknowledged change to `replay`, oldest segment first.
    pub fn replay(
        &mut self,
        acked_through: u64,
        mut replay: impl FnMut(&spool::Change<'_>),
    ) -> io::Result<()> {
        for segment in &self.segments {
            for_each_frame(&segment.path, |frame| {
                if let Frame::Change(change) = frame
                    && change.seq > acked_through
                {
                    replay(&change);
                }
            })?;
        }
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> SpoolStats {
        self.stats
    }

    /// Whether the spool is resting after an error.
    pub fn is_paused(&self, now: Instant) -> bool {
        self.disabled_until.is_some_and(|until| now < until)
    }

    /// Appends one change frame (numbered `seq`).
    pub fn append_change(&mut self, frame: &[u8], seq: u64, now: Instant) -> io::Result<()> {
        self.append(frame, now)?;
        self.stats.records_written_total += 1;
        if let Some(segment) = self.segments.back_mut() {
            segment.last_seq = segment.last_seq.max(seq);
        }
        Ok(())
    }

    /// Records that every change up to `seq` was acknowledged, and deletes
    /// the segments that hold nothing else.
    pub fn acknowledge(&mut self, seq: u64, now: Instant) -> io::Result<()> {
        if seq <= self.acked_written {
            return Ok(());
        }
        let fully_acked = self.segments.iter().all(|s| s.last_seq <= seq);
        if fully_acked {
            // Nothing left to keep: start clean.
            self.current = None;
            while let Some(segment) = self.segments.pop_front() {
                self.remove(&segment)?;
            }
            self.acked_written = seq;
            return Ok(());
        }
        let mut buf = [0u8; 32];
        if let Some(len) = spool::encode_acked(seq, &mut buf) {
            self.append(&buf[..len], now)?;
        }
        self.acked_written = seq;
        while self.segments.len() > 1 && self.segments[0].last_seq <= seq {
            if let Some(segment) = self.segments.pop_front() {
                self.remove(&segment)?;
            }
        }
        Ok(())
    }

    /// Forces written records to the disk as the sync policy says; `force`
    /// at exit.
    pub fn sync(&mut self, now: Instant, force: bool) -> io::Result<()> {
        let Some(since) = self.unsynced_since else {
            return Ok(());
        };
        let due = match self.sync {
            SpoolSync::Always => true,
            SpoolSync::Every(period) => now.duration_since(since) >= period,
            SpoolSync::Never => false,
        };
        if !(due || force) {
            return Ok(());
        }
        if let Some(file) = &self.current {
            file.sync_data().map_err(|e| self.failed(e, now))?;
        }
        self.unsynced_since = None;
        Ok(())
    }

    /// When the sync policy next wants a `sync` call.
    pub fn next_sync(&self) -> Option<Instant> {
        match (self.sync, self.unsynced_since) {
            (SpoolSync::Every(period), Some(since)) => Some(since + period),
            _ => None,
        }
    }

    fn append(&mut self, frame: &[u8], now: Instant) -> io::Result<()> {
        if self.is_paused(now) {
            return Err(io::Error::other("spool paused after an error"));
        }
        self.disabled_until = None;
        let rotate = self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= self.segment_bytes);
        if self.current.is_none() || rotate {
            self.start_segment(now)?;
        }
        let Some(file) = self.current.as_mut() else {
            return Err(io::Error::other("no segment open"));
        };
        if let Err(e) = file.write_all(frame) {
            // A partial record stays torn at the end: start a new segment.
            self.current = None;
            return Err(self.failed(e, now));
        }
        self.stats.bytes_written_total += frame.len() as u64;
        self.stats.bytes_on_disk += frame.len() as u64;
        if let Some(segment) = self.segments.back_mut() {
            segment.bytes += frame.len() as u64;
        }
        self.unsynced_since.get_or_insert(now);
        if self.sync == SpoolSync::Always {
            self.sync(now, true)?;
        }
        self.enforce_limit()
    }

    fn start_segment(&mut self, now: Instant) -> io::Result<()> {
        let first = self.segments.back().map_or(0, |s| s.last_seq) + 1;
        let mut n = first;
        let path = loop {
            let path = self
                .dir
                .join(format!("{SEGMENT_PREFIX}{n:020}{SEGMENT_SUFFIX}"));
            if !path.exists() {
                break path;
            }
            n += 1;
        };
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| self.failed(e, now))?;
        self.current = Some(file);
        self.segments.push_back(Segment {
            path,
            last_seq: first - 1,
            bytes: 0,
        });
        Ok(())
    }

    fn enforce_limit(&mut self) -> io::Result<()> {
        while self.stats.bytes_on_disk > self.max_bytes && self.segments.len() > 1 {
            if let Some(segment) = self.segments.pop_front() {
                if segment.last_seq > self.acked_written {
                    self.stats.segments_dropped_total += 1;
                }
                self.remove(&segment)?;
            }
        }
        Ok(())
    }

    fn remove(&mut self, segment: &Segment) -> io::Result<()> {
        self.stats.bytes_on_disk = self.stats.bytes_on_disk.saturating_sub(segment.bytes);
        match fs::remove_file(&segment.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                self.stats.errors_total += 1;
                Err(e)
            }
            _ => Ok(()),
        }
    }

    fn failed(&mut self, error: io::Error, now: Instant) -> io::Error {
        self.stats.errors_total += 1;
        self.disabled_until = Some(now + ERROR_PAUSE);
        error
    }
}

/// Damaged and torn records met while reading one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Valid records.
    pub valid: u64,
    /// Damaged regions skipped (each counted as one record lost).
    pub corrupt: u64,
    /// An incomplete record at the end.
    pub torn: u64,
}

/// Reads `path` frame by frame through a 64 KiB buffer.
pub fn for_each_frame(path: &Path, mut visit: impl FnMut(Frame<'_>)) -> io::Result<FrameCounts> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024 + MAX_FRAME_LEN];
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    let mut counts = FrameCounts::default();
    let mut in_damage = false;
    loop {
        match spool::decode(&buf[start..end]) {
            Ok((frame, len)) => {
                visit(frame);
                counts.valid += 1;
                start += len;
                in_damage = false;
            }
            Err(FrameError::Corrupt { skip }) => {
                if !in_damage {
                    counts.corrupt += 1;
                    in_damage = true;
                }
                start += skip;
            }
            Err(FrameError::Incomplete) if eof => {
                if start < end {
                    counts.torn += 1;
                }
                return Ok(counts);
            }
            Err(FrameError::Incomplete) => {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
                let n = file.read(&mut buf[end..])?;
                if n == 0 {
                    eof = true;
                }
                end += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataservice_sync_core::Value;

    fn change(seq: u64, value: i64) -> Vec<u8> {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let len = spool::encode_change(
            &spool::Change {
                seq,
                source_time_ms: 0,
                key: "d.a",
                value: Value::Int(value),
            },
            &mut buf,
        )
        .unwrap();
        buf[..len].to_vec()
    }

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dss-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn replayed(spool: &mut Spool, acked: u64) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        spool
            .replay(acked, |c| out.push((c.seq, format!("{}", c.value))))
            .unwrap();
        out
    }

    #[test]
    fn changes_survive_a_reopen_and_acknowledged_ones_are_not_replayed() {
        let dir = dir("reopen");
        let now = Instant::now();
        let (mut spool, scan) = Spool::open(&dir, 1 << 20, SpoolSync::Always).unwrap();
        assert_eq!(scan, SpoolScan::default());
        for seq in 1..=4 {
            spool
                .append_change(&change(seq, seq as i64 * 10), seq, now)
                .unwrap();
        }
        spool.acknowledge(2, now).unwrap();
        drop(spool);
        let (mut spool, scan) = Spool::open(&dir, 1 << 20, SpoolSync::Always).unwrap();
        assert_eq!(
            scan,
            SpoolScan {
                segments: 1,
                acked_through: 2,
                max_seq: 4,
                unacked: 2
            }
        );
        assert_eq!(
            replayed(&mut spool, 2),
            [(3, "30".into()), (4, "40".into())]
        );
        // Everything acknowledged: the directory is emptied.
        spool.acknowledge(4, now).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        assert_eq!(spool.stats().bytes_on_disk, 0);
    }

    #[test]
    fn a_corrupt_byte_and_a_torn_tail_lose_only_those_records() {
        let dir = dir("damage");
        fs::create_dir_all(&dir).unwrap();
        let mut bytes = Vec::new();
        for seq in 1..=5 {
            bytes.extend(change(seq, seq as i64));
        }
        let one = change(1, 1).len();
        bytes[one + 15] ^= 0xff; // inside record 2
        bytes.truncate(bytes.len() - 3); // record 5 torn
        fs::write(dir.join("changes-00000000000000000001.spool"), &bytes).unwrap();
        let (mut spool, scan) = Spool::open(&dir, 1 << 20, SpoolSync::Never).unwrap();
        assert_eq!(scan.unacked, 3);
        assert_eq!(spool.stats().corrupt_records_total, 1);
        assert_eq!(spool.stats().torn_records_total, 1);
        assert_eq!(
            replayed(&mut spool, 0),
            [(1, "1".into()), (3, "3".into()), (4, "4".into())]
        );
    }

    #[test]
    fn the_size_limit_drops_the_oldest_segment_and_counts_it() {
        let dir = dir("limit");
        let now = Instant::now();
        let (mut spool, _) = Spool::open(&dir, 64 * 1024, SpoolSync::Never).unwrap();
        let frame_len = change(1, 1).len() as u64;
        let n = 2 * 64 * 1024 / frame_len;
        for seq in 1..=n {
            spool.append_change(&change(seq, 1), seq, now).unwrap();
        }
        assert!(spool.stats().bytes_on_disk <= 64 * 1024 + frame_len);
        assert!(spool.stats().segments_dropped_total >= 1);
        assert_eq!(spool.stats().records_written_total, n);
    }
}
