//! Counts of what a queue holds and how fast it drains, for `diskq stat`,
//! the Prometheus exposition and `dq_queue_stat`.
//!
//! Everything here is read from the disk, so any process can inspect a
//! queue that others produce into and consume from:
//!
//! * backlog: the `.ready` lots in `incoming/`, with their lines (from the
//!   names) and bytes, and the age of the oldest by modification time;
//! * throughput: the lots that entered `archive/` within a window. A
//!   rename sets a file's status-change time (`ctime`), so the `ctime` of
//!   `archive/<lot>.done` is when its consumer committed it;
//! * lots being written, claimed, quarantined, and the consumers with
//!   their lock state.
//!
//! [`stat`] lists `archive/`, which grows by one file per lot until a
//! retention policy prunes it. A monitor that samples often uses
//! [`crate::Monitor`], which lists it once and then follows an inotify
//! watch. Neither ever runs inside a consumer.

use std::collections::HashSet;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::archive::DONE_GZ_SUFFIX;
use crate::config::OutputFormat;
use crate::consumer::recorded_output_dir;
use crate::error::{Error, ErrorKind, Result};
use crate::lot::{QueuePaths, ReadyName, DONE_SUFFIX, PART_SUFFIX, READY_SUFFIX};
use crate::output::split_output_name;

/// Default length of the throughput window.
pub const DEFAULT_STAT_WINDOW: Duration = Duration::from_secs(60);

/// What [`stat_with`] and [`crate::Monitor`] measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatOptions {
    /// Throughput and average lot size cover the lots archived within
    /// this window before the snapshot.
    pub window: Duration,
    /// Count the lines of every output file. This reads the whole
    /// dataset, so a monitor that samples often turns it off.
    pub count_output: bool,
}

impl Default for StatOptions {
    fn default() -> StatOptions {
        StatOptions {
            window: DEFAULT_STAT_WINDOW,
            count_output: true,
        }
    }
}

/// A snapshot of one queue directory and its consumers' output folders.
///
/// Line counts come from lot names, which record them; lots without the
/// count (made by hand or by another tool) add to the lot counts only.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QueueStats {
    /// `.ready` lots waiting in `incoming/`.
    pub ready_lots: u64,
    /// Bytes in those lots.
    pub ready_bytes: u64,
    /// Age of the oldest waiting lot, by its modification time.
    pub oldest_ready_age_ms: Option<u64>,
    /// `.part` lots being written (or left by dead producers).
    pub part_lots: u64,
    /// Lots claimed by a consumer and not yet archived.
    pub processing_lots: u64,
    /// Lots in `archive/`, plain and compressed.
    pub archived_lots: u64,
    /// Lines in archived lots whose names record a line count.
    pub archived_lines: u64,
    /// Lots in `quarantine/`.
    pub quarantined_lots: u64,
    /// Finished output files in the consumers' output folders; 0 unless
    /// `output_counted`.
    pub output_files: u64,
    /// Lines in finished and open output files, with the records of
    /// binary ones; 0 unless `output_counted`.
    pub output_lines: u64,
    /// The output folders recorded by consumers of this queue.
    pub output_dirs: Vec<PathBuf>,

    /// Lines in the waiting lots.
    pub ready_lines: u64,
    /// File name of the oldest waiting lot.
    pub oldest_ready_lot: Option<String>,
    /// Time since the oldest claim in `processing/` was made. A claim
    /// that stays old belongs to a stuck or dead consumer.
    pub oldest_processing_age_ms: Option<u64>,
    /// Length of the throughput window, in milliseconds.
    pub window_ms: u64,
    /// Lots archived within the window.
    pub window_lots: u64,
    /// Lines of those lots.
    pub window_lines: u64,
    /// Bytes of those lots, uncompressed.
    pub window_bytes: u64,
    /// Lines archived per second over the window.
    pub lines_per_sec: f64,
    /// Lots archived per second over the window.
    pub lots_per_sec: f64,
    /// Bytes archived per second over the window, uncompressed.
    pub bytes_per_sec: f64,
    /// Mean lines per lot over the recent lots: those archived within
    /// the window and those waiting. 0 when there are none.
    pub avg_lot_lines: f64,
    /// Mean bytes per lot over the same recent lots.
    pub avg_lot_bytes: f64,
    /// Every consumer id that has opened this queue.
    pub consumers: Vec<ConsumerState>,
    /// False when the output files were not read (see
    /// [`StatOptions::count_output`]).
    pub output_counted: bool,
}

impl QueueStats {
    /// Returns the number of consumers whose lock is held now.
    pub fn consumers_running(&self) -> u64 {
        self.consumers
            .iter()
            .filter(|c| c.running == Some(true))
            .count() as u64
    }
}

/// One consumer id of a queue, from `consumers/<id>.lock`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsumerState {
    /// The consumer id.
    pub id: String,
    /// True while a process holds the id's lock; `None` when the system
    /// lock table (`/proc/locks`) cannot be read.
    pub running: Option<bool>,
    /// The output folder the consumer recorded, if any.
    pub output_dir: Option<PathBuf>,
}

/// Counts the lots and output lines of the queue at `dir`, with a
/// throughput window of [`DEFAULT_STAT_WINDOW`].
///
/// # Errors
///
/// `InvalidConfig` if `dir` is not a directory, `Io` if a folder of the
/// queue cannot be listed.
pub fn stat(dir: &Path) -> Result<QueueStats> {
    stat_with(dir, &StatOptions::default())
}

/// Counts what the queue at `dir` holds, as `opts` asks. Lists every
/// folder of the queue, `archive/` included.
///
/// # Errors
///
/// As [`stat`].
pub fn stat_with(dir: &Path, opts: &StatOptions) -> Result<QueueStats> {
    let paths = checked_paths(dir)?;
    let now = SystemTime::now();
    let mut stats = scan_live(&paths, now, opts)?;
    let archive = scan_archive(&paths.archive, now, opts.window, None)?;
    stats.archived_lots = archive.lots;
    stats.archived_lines = archive.lines;
    fill_window(&mut stats, &archive.recent, now, opts.window);
    Ok(stats)
}

/// Returns the layout of `dir` after checking that it is a directory.
pub(crate) fn checked_paths(dir: &Path) -> Result<QueuePaths> {
    if !dir.is_dir() {
        let msg = format!(
            "queue directory {} does not exist or is not a directory",
            dir.display()
        );
        return Err(Error::new(ErrorKind::InvalidConfig, msg));
    }
    Ok(QueuePaths::new(dir))
}

/// Scans every folder but `archive/`: the parts that a monitor lists at
/// each sample.
pub(crate) fn scan_live(
    paths: &QueuePaths,
    now: SystemTime,
    opts: &StatOptions,
) -> Result<QueueStats> {
    let mut stats = QueueStats {
        window_ms: opts.window.as_millis() as u64,
        output_counted: opts.count_output,
        ..QueueStats::default()
    };

    for (name, meta) in list(&paths.incoming)? {
        if name.ends_with(READY_SUFFIX) {
            stats.ready_lots += 1;
            stats.ready_bytes += meta.len();
            stats.ready_lines += ReadyName::parse(&name)
                .and_then(|r| r.checksum)
                .map_or(0, |(lines, _)| lines);
            let Ok(modified) = meta.modified() else {
                continue;
            };
            let age = age_ms(now, modified);
            if stats
                .oldest_ready_age_ms
                .map_or(true, |oldest| age > oldest)
            {
                stats.oldest_ready_age_ms = Some(age);
                stats.oldest_ready_lot = Some(name);
            }
        } else if name.ends_with(PART_SUFFIX) {
            stats.part_lots += 1;
        }
    }

    // A claim is a rename, so the claim's ctime is when it was made.
    for (_, meta) in list(&paths.processing)? {
        stats.processing_lots += 1;
        let age = age_ms(now, ctime(&meta));
        stats.oldest_processing_age_ms =
            Some(stats.oldest_processing_age_ms.map_or(age, |a| a.max(age)));
    }

    stats.quarantined_lots = list(&paths.quarantine)?
        .iter()
        .filter(|(name, _)| !name.ends_with(".reason"))
        .count() as u64;

    stats.consumers = scan_consumers(paths)?;
    for consumer in &stats.consumers {
        if let Some(out) = &consumer.output_dir {
            if !stats.output_dirs.contains(out) {
                stats.output_dirs.push(out.clone());
            }
        }
    }
    if opts.count_output {
        for out in stats.output_dirs.clone() {
            for (name, _) in list(&out)? {
                let finished = split_output_name(&name, false);
                let Some((format, _)) = finished.or_else(|| split_output_name(&name, true)) else {
                    continue;
                };
                stats.output_files += u64::from(finished.is_some());
                let path = out.join(&name);
                stats.output_lines += match format {
                    OutputFormat::JsonLines => count_lines(&path)?,
                    OutputFormat::Binary => count_records(&path)?,
                };
            }
        }
    }
    Ok(stats)
}

/// A lot that entered `archive/`, as throughput counts it.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    /// When it was archived: the ctime of its archived file.
    pub at: SystemTime,
    /// Its `.ready` name, the same for the plain and compressed file.
    pub lot: String,
    /// Lines, from the name.
    pub lines: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
}

/// What one listing of `archive/` found.
#[derive(Debug, Default)]
pub(crate) struct ArchiveScan {
    /// Archived files, plain and compressed.
    pub lots: u64,
    /// Lines of those whose names record a count.
    pub lines: u64,
    /// Files archived within the window.
    pub recent: Vec<Arrival>,
}

/// Lists `archive/`. Files whose ctime falls within `window` before `now`
/// become arrivals; their names also go into `seen_recent` when given.
pub(crate) fn scan_archive(
    archive: &Path,
    now: SystemTime,
    window: Duration,
    mut seen_recent: Option<&mut HashSet<String>>,
) -> Result<ArchiveScan> {
    let mut scan = ArchiveScan::default();
    let since = now.checked_sub(window).unwrap_or(UNIX_EPOCH);
    for_each_entry(archive, |name, meta| {
        let Some(lot) = archived_lot_name(name) else {
            return;
        };
        scan.lots += 1;
        let lines = lot_lines(lot);
        scan.lines += lines;
        let at = ctime(meta);
        if at < since {
            return;
        }
        let bytes = archived_bytes(&archive.join(name), meta);
        scan.recent.push(Arrival {
            at,
            lot: lot.to_string(),
            lines,
            bytes,
        });
        if let Some(seen) = seen_recent.as_deref_mut() {
            seen.insert(name.to_string());
        }
    })?;
    Ok(scan)
}

/// Returns the `.ready` name inside an archived file's name, or `None`
/// for a file that is not an archived lot.
pub(crate) fn archived_lot_name(name: &str) -> Option<&str> {
    if name.starts_with('.') {
        return None;
    }
    name.strip_suffix(DONE_SUFFIX)
        .or_else(|| name.strip_suffix(DONE_GZ_SUFFIX))
}

/// Returns the line count that a `.ready` name records, or 0.
pub(crate) fn lot_lines(ready: &str) -> u64 {
    ReadyName::parse(ready)
        .and_then(|r| r.checksum)
        .map_or(0, |(lines, _)| lines)
}

/// Returns the uncompressed size of an archived file: its length, or for
/// a gzip file the size that its trailer records.
pub(crate) fn archived_bytes(path: &Path, meta: &Metadata) -> u64 {
    if !path.as_os_str().to_string_lossy().ends_with(".gz") {
        return meta.len();
    }
    gzip_size(path, meta.len()).unwrap_or(0)
}

/// Reads ISIZE, the last four bytes of a gzip member: the uncompressed
/// length modulo 2^32, exact for lots under 4 GiB.
fn gzip_size(path: &Path, len: u64) -> Option<u64> {
    use std::os::unix::fs::FileExt;

    // A gzip member has a 10-byte header and an 8-byte trailer.
    if len < 18 {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut trailer = [0u8; 4];
    file.read_exact_at(&mut trailer, len - 4).ok()?;
    Some(u64::from(u32::from_le_bytes(trailer)))
}

/// Fills the window fields of `stats` from the arrivals. A lot counts
/// once even when both its plain and compressed files are in the window.
pub(crate) fn fill_window(
    stats: &mut QueueStats,
    arrivals: &[Arrival],
    now: SystemTime,
    window: Duration,
) {
    let since = now.checked_sub(window).unwrap_or(UNIX_EPOCH);
    let mut lots = HashSet::new();
    let (mut window_lots, mut lines, mut bytes) = (0u64, 0u64, 0u64);
    for arrival in arrivals.iter().filter(|a| a.at >= since) {
        if !lots.insert(arrival.lot.as_str()) {
            continue;
        }
        window_lots += 1;
        lines += arrival.lines;
        bytes += arrival.bytes;
    }
    stats.window_ms = window.as_millis() as u64;
    stats.window_lots = window_lots;
    stats.window_lines = lines;
    stats.window_bytes = bytes;
    let secs = window.as_secs_f64();
    if secs > 0.0 {
        stats.lots_per_sec = window_lots as f64 / secs;
        stats.lines_per_sec = lines as f64 / secs;
        stats.bytes_per_sec = bytes as f64 / secs;
    }
    let recent_lots = window_lots + stats.ready_lots;
    if recent_lots > 0 {
        stats.avg_lot_lines = (lines + stats.ready_lines) as f64 / recent_lots as f64;
        stats.avg_lot_bytes = (bytes + stats.ready_bytes) as f64 / recent_lots as f64;
    }
}

/// Lists `consumers/`: one entry per `<id>.lock`, sorted by id.
fn scan_consumers(paths: &QueuePaths) -> Result<Vec<ConsumerState>> {
    let held = held_flocks();
    let mut consumers = Vec::new();
    for (name, meta) in list(&paths.consumers)? {
        let Some(id) = name.strip_suffix(".lock") else {
            continue;
        };
        let running = held
            .as_ref()
            .map(|held| held.contains(&(meta.dev(), meta.ino())));
        consumers.push(ConsumerState {
            id: id.to_string(),
            running,
            output_dir: recorded_output_dir(paths, id),
        });
    }
    // Output records of ids whose lock file was removed still name
    // output folders to count.
    for (name, _) in list(&paths.consumers)? {
        let Some(id) = name.strip_suffix(".out") else {
            continue;
        };
        if !consumers.iter().any(|c| c.id == id) {
            consumers.push(ConsumerState {
                id: id.to_string(),
                running: Some(false),
                output_dir: recorded_output_dir(paths, id),
            });
        }
    }
    consumers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(consumers)
}

/// Returns the (device, inode) of every file that holds an `flock`,
/// from `/proc/locks`, or `None` when it cannot be read. Reading it takes
/// no lock, unlike a trial `flock`, which could make a consumer that
/// starts at that moment fail with `Locked`.
fn held_flocks() -> Option<HashSet<(u64, u64)>> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    Some(parse_proc_locks(&text))
}

/// Parses lines such as `1: FLOCK  ADVISORY  WRITE 27125 fe:00:5349378 0 EOF`,
/// where the device is `major:minor` in hexadecimal.
fn parse_proc_locks(text: &str) -> HashSet<(u64, u64)> {
    let mut held = HashSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A lock that a process waits for is listed as `-> FLOCK ...`.
        if fields.get(1) != Some(&"FLOCK") {
            continue;
        }
        let Some(file) = fields.get(5) else { continue };
        let mut parts = file.split(':');
        let (Some(major), Some(minor), Some(inode)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(inode)) = (
            u32::from_str_radix(major, 16),
            u32::from_str_radix(minor, 16),
            inode.parse::<u64>(),
        ) else {
            continue;
        };
        held.insert((libc::makedev(major, minor), inode));
    }
    held
}

/// Returns the milliseconds from `then` to `now`, 0 if `then` is later.
fn age_ms(now: SystemTime, then: SystemTime) -> u64 {
    now.duration_since(then)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// Returns the status-change time of a file.
pub(crate) fn ctime(meta: &Metadata) -> SystemTime {
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
    UNIX_EPOCH + Duration::new(secs, nanos)
}

/// Calls `f` with the name and metadata of each entry of `dir` whose name
/// is UTF-8 and does not start with a dot. A missing folder has none.
/// Entries that vanish while listed are skipped.
fn for_each_entry(dir: &Path, mut f: impl FnMut(&str, &Metadata)) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        match entry.metadata() {
            Ok(meta) => f(&name, &meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", &dir.join(&name), e)),
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<(String, Metadata)>> {
    let mut out = Vec::new();
    for_each_entry(dir, |name, meta| out.push((name.to_string(), meta.clone())))?;
    Ok(out)
}

/// Counts the whole records of a binary output file from their headers.
fn count_records(path: &Path) -> Result<u64> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let (records, _) =
        crate::binary::count_records(&file).map_err(|e| Error::io("read", path, e))?;
    Ok(records)
}

fn count_lines(path: &Path) -> Result<u64> {
    use std::io::Read;

    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut lines = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            return Ok(lines);
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_parse() {
        let text = "1: FLOCK  ADVISORY  WRITE 27125 fe:00:5349378 0 EOF\n\
                    2: POSIX  ADVISORY  WRITE 1 08:01:77 0 EOF\n\
                    3: FLOCK  ADVISORY  WRITE 9 103:0a:12 0 EOF\n\
                    3: -> FLOCK  ADVISORY  WRITE 10 103:0a:12 0 EOF\n";
        let held = parse_proc_locks(text);
        assert!(held.contains(&(libc::makedev(0xfe, 0), 5349378)));
        assert!(held.contains(&(libc::makedev(0x103, 0x0a), 12)));
        assert_eq!(held.len(), 2, "POSIX and waiting locks are not held flocks");
    }

    #[test]
    fn held_flock_is_found_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let file = std::fs::File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let Some(before) = held_flocks() else {
            eprintln!("/proc/locks is not readable here; skipping");
            return;
        };
        assert!(!before.contains(&(meta.dev(), meta.ino())));
        assert!(crate::fsio::try_lock(&file).unwrap());
        let during = held_flocks().unwrap();
        assert!(during.contains(&(meta.dev(), meta.ino())));
    }

    #[test]
    fn archived_names_map_to_lots() {
        assert_eq!(
            archived_lot_name("a.3.0000000f.ready.done"),
            Some("a.3.0000000f.ready")
        );
        assert_eq!(
            archived_lot_name("a.3.0000000f.ready.done.gz"),
            Some("a.3.0000000f.ready")
        );
        assert_eq!(archived_lot_name(".gz-main-a.ready.done.gz"), None);
        assert_eq!(archived_lot_name("notes.txt"), None);
        assert_eq!(lot_lines("a.3.0000000f.ready"), 3);
        assert_eq!(lot_lines("handmade.ready"), 0);
    }

    #[test]
    fn window_counts_a_lot_once() {
        let now = SystemTime::now();
        let arrival = |lot: &str, secs_ago: u64, bytes| Arrival {
            at: now - Duration::from_secs(secs_ago),
            lot: lot.to_string(),
            lines: 10,
            bytes,
        };
        let arrivals = [
            arrival("a", 5, 100),
            arrival("a", 4, 100),
            arrival("b", 10, 300),
            arrival("c", 120, 999),
        ];
        let mut stats = QueueStats::default();
        fill_window(&mut stats, &arrivals, now, Duration::from_secs(60));
        assert_eq!(stats.window_lots, 2);
        assert_eq!(stats.window_lines, 20);
        assert_eq!(stats.window_bytes, 400);
        assert!((stats.lines_per_sec - 20.0 / 60.0).abs() < 1e-9);
        assert!((stats.avg_lot_bytes - 200.0).abs() < 1e-9);
    }
}
