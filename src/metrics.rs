//! [`Monitor`]: samples a queue every second or so for `diskq stat
//! --watch` and `diskq metrics`, without listing `archive/` each time.
//!
//! `archive/` gains one file per consumed lot, so after days of self-play
//! it contains millions; listing it with metadata then takes seconds. The
//! monitor lists it once, then follows an inotify watch on it: a lot
//! renamed in is an arrival (its name gives the lines, one `stat` gives
//! the bytes and the time), a file renamed out or deleted (compression,
//! retention) leaves the totals. It lists again when the kernel reports
//! lost events and every `resync_interval`, which also catches files that
//! were copied in rather than renamed.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::archive::DONE_GZ_SUFFIX;
use crate::error::Result;
use crate::lot::QueuePaths;
use crate::stat::{
    archived_bytes, archived_lot_name, checked_paths, ctime, fill_window, lot_lines, scan_archive,
    scan_live, Arrival, QueueStats, StatOptions,
};

/// Default time between two full listings of `archive/` in a [`Monitor`].
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(600);

/// Samples one queue repeatedly, keeping the `archive/` totals and the
/// throughput window up to date from an inotify watch.
///
/// Each [`Monitor::sample`] lists `incoming/`, `processing/`,
/// `quarantine/` and `consumers/`, which stay small while the queue
/// drains. Without inotify (the per-user limit of instances reached), it
/// lists `archive/` at every sample, like [`crate::stat`].
#[derive(Debug)]
pub struct Monitor {
    paths: QueuePaths,
    opts: StatOptions,
    watch: Option<ArchiveWatch>,
    // Set once a failure to set up the watch was logged.
    warned: bool,
    resync_interval: Duration,
    last_listing: Option<Instant>,

    // Totals of archive/, kept between listings from the watch's events.
    archived_lots: u64,
    archived_lines: u64,
    // Lots archived within the window, oldest first by ctime.
    arrivals: Vec<Arrival>,
    // Recent files that the last listing counted. Their rename events may
    // still be queued, and are skipped once.
    listed_recent: HashSet<String>,
}

/// Lots archived over a span of time, from [`Monitor::window`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throughput {
    /// Lots archived.
    pub lots: u64,
    /// Their lines.
    pub lines: u64,
    /// Their uncompressed bytes.
    pub bytes: u64,
    /// The span, in seconds.
    pub seconds: f64,
}

impl Throughput {
    /// Returns lines per second over the span.
    pub fn lines_per_sec(&self) -> f64 {
        per_second(self.lines, self.seconds)
    }

    /// Returns lots per second over the span.
    pub fn lots_per_sec(&self) -> f64 {
        per_second(self.lots, self.seconds)
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

impl Monitor {
    /// Starts watching the queue at `dir` and lists its `archive/` once.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` if `dir` is not a directory, `Io` if a folder
    /// cannot be listed. A watch that cannot be set up is logged once and
    /// replaced by a listing at each sample.
    pub fn open(dir: &Path, opts: StatOptions) -> Result<Monitor> {
        let paths = checked_paths(dir)?;
        let mut monitor = Monitor {
            paths,
            opts,
            watch: None,
            warned: false,
            resync_interval: DEFAULT_RESYNC_INTERVAL,
            last_listing: None,
            archived_lots: 0,
            archived_lines: 0,
            arrivals: Vec::new(),
            listed_recent: HashSet::new(),
        };
        monitor.start_watch();
        monitor.list_archive(SystemTime::now())?;
        Ok(monitor)
    }

    /// Sets the time between two full listings of `archive/`.
    pub fn set_resync_interval(&mut self, interval: Duration) {
        self.resync_interval = interval;
    }

    /// Returns true while `archive/` is followed by inotify rather than
    /// listed at every sample.
    pub fn is_watching(&self) -> bool {
        self.watch.is_some()
    }

    /// Takes a snapshot of the queue.
    ///
    /// # Errors
    ///
    /// `Io` if a folder cannot be listed or the watch cannot be read.
    pub fn sample(&mut self) -> Result<QueueStats> {
        if self.watch.is_none() && self.start_watch() {
            // Files may have arrived before the watch began.
            self.last_listing = None;
        }
        let now = SystemTime::now();
        let due = self
            .last_listing
            .map_or(true, |t| t.elapsed() >= self.resync_interval);
        // The events keep the totals current unless some were lost.
        let current = self.watch.is_some() && !due && self.apply_events()?;
        if !current {
            self.list_archive(now)?;
        }

        let since = now.checked_sub(self.opts.window).unwrap_or(UNIX_EPOCH);
        self.arrivals.retain(|a| a.at >= since);
        let mut stats = scan_live(&self.paths, now, &self.opts)?;
        stats.archived_lots = self.archived_lots;
        stats.archived_lines = self.archived_lines;
        fill_window(&mut stats, &self.arrivals, now, self.opts.window);
        Ok(stats)
    }

    /// Returns what was archived during the last `span` before the last
    /// sample, up to the length of the window.
    pub fn window(&self, span: Duration) -> Throughput {
        let span = span.min(self.opts.window);
        let mut stats = QueueStats::default();
        fill_window(&mut stats, &self.arrivals, SystemTime::now(), span);
        Throughput {
            lots: stats.window_lots,
            lines: stats.window_lines,
            bytes: stats.window_bytes,
            seconds: span.as_secs_f64(),
        }
    }

    /// Sets up the watch on `archive/`; returns true if it is new. A
    /// queue that no consumer has opened yet has no `archive/`, and gets
    /// its watch at a later sample.
    fn start_watch(&mut self) -> bool {
        match ArchiveWatch::new(&self.paths.archive) {
            Ok(watch) => {
                self.watch = Some(watch);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                if !self.warned {
                    self.warned = true;
                    log::warn!(
                        target: "diskq_stat",
                        "cannot watch {}, listing it at every sample instead: {e}",
                        self.paths.archive.display()
                    );
                }
                false
            }
        }
    }

    /// Lists `archive/` and resets the totals and the window from it.
    fn list_archive(&mut self, now: SystemTime) -> Result<()> {
        // Events queued until now describe files that the listing counts.
        if let Some(watch) = &mut self.watch {
            let mut events = Vec::new();
            if let Err(e) = watch.drain(&mut events) {
                return Err(crate::error::Error::io(
                    "read inotify watch of",
                    &self.paths.archive,
                    e,
                ));
            }
        }
        // NOTE: a file deleted while the listing runs, before the listing
        // reached it, is subtracted by its event without having been
        // counted; the totals stay low by one until the next listing.
        let mut listed = HashSet::new();
        let scan = scan_archive(
            &self.paths.archive,
            now,
            self.opts.window,
            Some(&mut listed),
        )?;
        self.archived_lots = scan.lots;
        self.archived_lines = scan.lines;
        self.arrivals = scan.recent;
        self.arrivals.sort_by_key(|a| a.at);
        self.listed_recent = listed;
        self.last_listing = Some(Instant::now());
        Ok(())
    }

    /// Applies the watch's queued events to the totals and the window.
    /// Returns false when events were lost and a listing is needed.
    fn apply_events(&mut self) -> Result<bool> {
        let Some(watch) = &mut self.watch else {
            return Ok(false);
        };
        let mut events = Vec::new();
        if let Err(e) = watch.drain(&mut events) {
            return Err(crate::error::Error::io(
                "read inotify watch of",
                &self.paths.archive,
                e,
            ));
        }
        let listed_recent = std::mem::take(&mut self.listed_recent);
        for event in events {
            match event {
                ArchiveEvent::Lost => return Ok(false),
                ArchiveEvent::Added(name) => {
                    if listed_recent.contains(&name) {
                        continue;
                    }
                    let Some(lot) = archived_lot_name(&name) else {
                        continue;
                    };
                    let lines = lot_lines(lot);
                    self.archived_lots += 1;
                    self.archived_lines += lines;
                    let arrival = self.arrival(&name, lot, lines);
                    self.arrivals.push(arrival);
                }
                ArchiveEvent::Removed(name) => {
                    let Some(lot) = archived_lot_name(&name) else {
                        continue;
                    };
                    self.archived_lots = self.archived_lots.saturating_sub(1);
                    self.archived_lines = self.archived_lines.saturating_sub(lot_lines(lot));
                }
            }
        }
        Ok(true)
    }

    /// Describes the archived file `name` of lot `lot`. A plain file that
    /// was compressed (or deleted) since its event is looked up under its
    /// compressed name.
    fn arrival(&self, name: &str, lot: &str, lines: u64) -> Arrival {
        let archive = &self.paths.archive;
        let candidates = [name.to_string(), format!("{lot}{DONE_GZ_SUFFIX}")];
        for candidate in candidates {
            let path = archive.join(&candidate);
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                return Arrival {
                    at: ctime(&meta),
                    lot: lot.to_string(),
                    lines,
                    bytes: archived_bytes(&path, &meta),
                };
            }
        }
        Arrival {
            at: SystemTime::now(),
            lot: lot.to_string(),
            lines,
            bytes: 0,
        }
    }
}

/// A change to one file in `archive/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ArchiveEvent {
    /// A file was renamed into the folder.
    Added(String),
    /// A file was renamed out of the folder or deleted.
    Removed(String),
    /// The kernel dropped events, or the folder itself went away.
    Lost,
}

/// An inotify watch that reports the names of files renamed into and out
/// of one folder.
#[derive(Debug)]
struct ArchiveWatch {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// Size of `struct inotify_event` before its name.
const EVENT_HEADER: usize = std::mem::size_of::<libc::inotify_event>();

impl ArchiveWatch {
    fn new(dir: &Path) -> io::Result<ArchiveWatch> {
        use std::os::unix::ffi::OsStrExt;

        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: inotify_init1 takes only flags and returns a new
        // descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor that was just opened and that
        // nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mask = libc::IN_MOVED_TO
            | libc::IN_MOVED_FROM
            | libc::IN_DELETE
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF
            | libc::IN_ONLYDIR;
        // SAFETY: `fd` is a live inotify descriptor and `path` a live
        // NUL-terminated string.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ArchiveWatch {
            fd,
            // Room for many events per read; one event is at most the
            // header plus NAME_MAX + 1 bytes.
            buf: vec![0u8; 64 * 1024],
        })
    }

    /// Reads every queued event into `out` without waiting.
    fn drain(&mut self, out: &mut Vec<ArchiveEvent>) -> io::Result<()> {
        loop {
            // SAFETY: the pointer and length describe `self.buf`, which
            // lives across the call.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock => Ok(()),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(err),
                };
            }
            if n == 0 {
                return Ok(());
            }
            parse_events(&self.buf[..n as usize], out);
        }
    }
}

/// Decodes the `struct inotify_event` records that one read returned.
fn parse_events(mut bytes: &[u8], out: &mut Vec<ArchiveEvent>) {
    let field =
        |b: &[u8], at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    while bytes.len() >= EVENT_HEADER {
        // The record is: int wd, uint32 mask, uint32 cookie, uint32 len,
        // then `len` bytes of NUL-padded name.
        let mask = field(bytes, 4);
        let len = field(bytes, 12) as usize;
        let end = (EVENT_HEADER + len).min(bytes.len());
        let raw_name = &bytes[EVENT_HEADER..end];
        let name_end = memchr::memchr(0, raw_name).unwrap_or(raw_name.len());
        let name = String::from_utf8_lossy(&raw_name[..name_end]).into_owned();
        bytes = &bytes[end..];

        let lost =
            libc::IN_Q_OVERFLOW | libc::IN_IGNORED | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;
        if mask & lost != 0 {
            out.push(ArchiveEvent::Lost);
        } else if mask & libc::IN_MOVED_TO != 0 {
            out.push(ArchiveEvent::Added(name));
        } else if mask & (libc::IN_MOVED_FROM | libc::IN_DELETE) != 0 {
            out.push(ArchiveEvent::Removed(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(mask: u32, name: &str) -> Vec<u8> {
        let padded = (name.len() + 1).next_multiple_of(4);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1i32.to_ne_bytes());
        bytes.extend_from_slice(&mask.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&(padded as u32).to_ne_bytes());
        bytes.extend_from_slice(name.as_bytes());
        bytes.resize(bytes.len() + padded - name.len(), 0);
        bytes
    }

    #[test]
    fn inotify_records_decode() {
        let mut bytes = record(libc::IN_MOVED_TO, "a.ready.done");
        bytes.extend(record(libc::IN_DELETE, "b.ready.done"));
        bytes.extend(record(libc::IN_Q_OVERFLOW, ""));
        let mut events = Vec::new();
        parse_events(&bytes, &mut events);
        assert_eq!(
            events,
            [
                ArchiveEvent::Added("a.ready.done".into()),
                ArchiveEvent::Removed("b.ready.done".into()),
                ArchiveEvent::Lost,
            ]
        );
    }

    #[test]
    fn watch_reports_renames_in_and_out() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        std::fs::create_dir(&archive).unwrap();
        let mut watch = ArchiveWatch::new(&archive).unwrap();
        std::fs::write(dir.path().join("x"), b"{}\n").unwrap();
        std::fs::rename(
            dir.path().join("x"),
            archive.join("x.1.00000000.ready.done"),
        )
        .unwrap();
        std::fs::remove_file(archive.join("x.1.00000000.ready.done")).unwrap();
        let mut events = Vec::new();
        watch.drain(&mut events).unwrap();
        assert_eq!(
            events,
            [
                ArchiveEvent::Added("x.1.00000000.ready.done".into()),
                ArchiveEvent::Removed("x.1.00000000.ready.done".into()),
            ]
        );
    }
}
