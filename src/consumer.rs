//! The consumer: claims `.ready` lots, appends their lines to the output
//! (JSON lines, or binary records with [`OutputFormat::Binary`]) and
//! archives them.
//!
//! Exactly-once rests on the claim's name. A lot is claimed by renaming
//! `incoming/<lot>` to `processing/<lot>~<output file>~<offset>`, where
//! `<offset>` is the output file's length before the lot's lines. Until
//! the lot is renamed into `archive/`, that name says which bytes of which
//! output file may hold a partial copy of it. A consumer restarted after a
//! crash (or `diskq recover`) cuts the output back to the offset and
//! returns the lot to `incoming/`, so its lines end up in the output once.
//! If the output already contains the whole lot at that offset, recovery
//! archives the claim instead. Each consumer appends to its own output
//! files, one lot after another. A durable consumer may claim several
//! waiting lots together to share their syncs (see the `group` module).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::archive::{self, Retention};
use crate::binary;
use crate::config::{ConsumerOptions, OutputFormat};
use crate::error::{Error, ErrorKind, Result};
use crate::fsio;
use crate::json::{encode_transition, validate_line};
use crate::lot::{ClaimName, QueuePaths, ReadyName, DONE_SUFFIX, PART_SUFFIX, READY_SUFFIX};
use crate::output::{append_json_as_record, OutputFile};
use crate::recovery;
use crate::watch::Watch;

mod group;

/// Lot failures in a row after which a poll stops and waits.
const MAX_FAILURES_IN_A_ROW: u32 = 3;

/// Size of the buffer in front of an output file, and of the lot reader.
const IO_BUFFER: usize = 256 * 1024;

/// Consolidates the lots of one queue into output files, JSON lines or
/// binary.
///
/// A consumer is used by one thread at a time. Several consumer processes
/// may share a queue if each has its own `consumer_id`; a second one with
/// a taken id fails to open with [`ErrorKind::Locked`].
#[derive(Debug)]
pub struct Consumer {
    paths: QueuePaths,
    opts: ConsumerOptions,
    output_dir: PathBuf,

    // Held until close; the flock on it marks the id taken.
    lock: Option<File>,
    output: Option<OutputFile>,
    closed: bool,

    // Set when a failure left a claimed lot or the output in a state that
    // only recovery can sort out; the next poll runs it first.
    needs_recovery: bool,
    last_part_scan: Option<Instant>,

    // Archived lots waiting for compression, and when retention last ran.
    to_compress: Vec<PathBuf>,
    last_retention: Option<Instant>,
    backlog: u64,
    warned_names: std::collections::HashSet<String>,

    line: Vec<u8>,
    out_buf: Vec<u8>,
    stats: ConsumerStats,
}

/// What one [`Consumer::poll`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Lots appended to the output and archived.
    pub lots: u64,
    /// Lines appended.
    pub lines: u64,
    /// Bytes appended.
    pub bytes: u64,
    /// Lots set aside in `quarantine/`.
    pub quarantined: u64,
    /// Output files that were finished (renamed to `.jsonl` or `.dqb`).
    pub finished_files: Vec<PathBuf>,
    /// The output file being appended to, if any.
    pub current_output: Option<PathBuf>,
}

/// Counters of one consumer since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Lots appended and archived.
    pub lots: u64,
    /// Lines appended.
    pub lines: u64,
    /// Bytes appended.
    pub bytes: u64,
    /// Lots set aside in `quarantine/`.
    pub quarantined: u64,
    /// Output files finished.
    pub finished_files: u64,
}

/// The result of copying one lot into the output.
struct LotCopy {
    lines: u64,
    bytes: u64,
    /// The output received the lot's bytes exactly as they are in the
    /// lot file.
    unchanged: bool,
}

/// A lot whose lines are in the output after its committed bytes, not yet
/// archived.
struct CopiedLot {
    name: String,
    claimed: PathBuf,
    lines: u64,
    bytes: u64,
}

/// Why a lot could not be consumed.
enum LotError {
    /// The lot itself is bad; it goes to quarantine with this reason.
    Invalid(String),
    /// A system call failed; the lot can be retried later.
    Io(Error),
}

impl Consumer {
    /// Opens a consumer on the queue directory `dir`. Takes the lock of
    /// `opts.consumer_id`, then undoes what a crashed consumer with the
    /// same id left unfinished.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for a bad directory or option, `Locked` if another
    /// process holds the id, `Io` if recovery fails.
    pub fn open(dir: impl AsRef<Path>, opts: ConsumerOptions) -> Result<Consumer> {
        let dir = dir.as_ref();
        check_options(&opts)?;
        let paths = QueuePaths::prepare(dir)?;
        if let Err(e) = std::fs::create_dir_all(&opts.output_dir) {
            let out = opts.output_dir.display();
            if crate::lot::is_unusable_path(&e) || e.kind() == io::ErrorKind::AlreadyExists {
                let msg = format!("output folder {out} is unusable: {e}");
                return Err(Error::new(ErrorKind::InvalidConfig, msg));
            }
            return Err(Error::io("create output folder", &opts.output_dir, e));
        }
        let output_dir = std::fs::canonicalize(&opts.output_dir)
            .map_err(|e| Error::io("resolve output folder", &opts.output_dir, e))?;

        let id = &opts.consumer_id;
        let lock_path = paths.consumers.join(format!("{id}.lock"));
        let lock = open_lock(&lock_path)?;
        if !take_lock(&lock, &lock_path)? {
            let msg = format!(
                "consumer id `{id}` is in use by another process on queue {}; \
                 stop that consumer (or wait for a running `diskq recover`) or \
                 choose another id",
                dir.display()
            );
            return Err(Error::new(ErrorKind::Locked, msg));
        }

        // Claims of an earlier run point into the folder it recorded; repair
        // that one first if the folder changed since.
        let mut report = recovery::ConsumerReport::default();
        if let Some(old) = recorded_output_dir(&paths, id).filter(|old| *old != output_dir) {
            if old.is_dir() {
                report = recovery::recover_consumer(&paths, id, &old, opts.durable)?;
            }
        }
        record_output_dir(&paths, id, &output_dir)?;
        archive::remove_temp_files(&paths.processing, &temp_prefix(id))?;

        let now = recovery::recover_consumer(&paths, id, &output_dir, opts.durable)?;
        report.returned += now.returned;
        report.completed += now.completed;
        if report.returned > 0 || report.completed > 0 {
            log::warn!(
                target: "queue_consumer",
                "returned {} and archived {} unfinished lots of an earlier run of consumer id={id}",
                report.returned,
                report.completed
            );
        }
        log::info!(
            target: "queue_consumer",
            "opened consumer id={id} queue={} output={}",
            dir.display(),
            output_dir.display()
        );
        Ok(Consumer {
            paths,
            opts,
            output_dir,
            lock: Some(lock),
            output: None,
            closed: false,
            needs_recovery: false,
            to_compress: Vec::new(),
            last_retention: None,
            backlog: 0,
            last_part_scan: None,
            warned_names: Default::default(),
            line: Vec::new(),
            out_buf: Vec::with_capacity(IO_BUFFER),
            stats: ConsumerStats::default(),
        })
    }

    /// Runs one poll cycle: consumes every `.ready` lot found, oldest
    /// first.
    ///
    /// # Errors
    ///
    /// `Io` when a system call fails: the failed lot goes back to
    /// `incoming/` for the next poll, the lots after it are still
    /// consumed (their counts show in [`Consumer::stats`]), and the first
    /// error is returned. `Closed` after [`Consumer::close`].
    pub fn poll(&mut self) -> Result<PollReport> {
        self.poll_until(&AtomicBool::new(false))
    }

    /// Like [`Consumer::poll`], but stops between two lots once `stop` is
    /// set.
    pub fn poll_until(&mut self, stop: &AtomicBool) -> Result<PollReport> {
        if self.closed {
            return Err(Error::new(ErrorKind::Closed, "consumer is closed"));
        }
        let mut report = PollReport::default();
        if self.needs_recovery {
            self.recover_self()?;
        }
        self.scan_parts_if_due();

        let names = self.list_ready()?;
        self.backlog = names.len() as u64;
        let mut first_error = None;
        let mut failures_in_a_row = 0;
        let mut next = 0;
        while next < names.len() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let waiting = &names[next..];
            let name = &waiting[0];
            let (count, result) = match self.group_len(waiting) {
                1 => (1, self.consume(name, &mut report)),
                len => self.consume_group(&waiting[..len], &mut report),
            };
            next += count;
            match result {
                Ok(()) => {
                    failures_in_a_row = 0;
                    self.backlog = self.backlog.saturating_sub(count as u64);
                }
                // Part of a lot may be in the output: nothing more is
                // appended until recovery has cut it.
                Err(e) if self.needs_recovery => return Err(e),
                Err(e) => {
                    // The lot went back to incoming/; the lots after it
                    // still get their turn in this poll.
                    if count > 1 {
                        log::error!(target: "queue_consumer", "group of lots from lot={name} failed, will retry: {e}");
                    } else {
                        log::error!(target: "queue_consumer", "lot={name} failed, will retry: {e}");
                    }
                    first_error.get_or_insert(e);
                    failures_in_a_row += 1;
                    // Several failures in a row point at the disk, not at
                    // the lots: wait for the next poll.
                    if failures_in_a_row >= MAX_FAILURES_IN_A_ROW {
                        break;
                    }
                }
            }
        }
        if let Some(e) = first_error {
            self.compress_archived();
            return Err(e);
        }
        report.current_output = self.output.as_ref().map(OutputFile::path);
        self.compress_archived();
        self.apply_retention_if_due();
        Ok(report)
    }

    /// Polls every `poll_interval` until `stop` is set, then finishes the
    /// current output file. Errors of one poll are logged and retried at
    /// the next.
    ///
    /// # Errors
    ///
    /// Only what [`Consumer::close`] returns.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<ConsumerStats> {
        let watch = if self.opts.watch {
            self.start_watch()
        } else {
            None
        };
        let mut summary = (Instant::now(), self.stats);
        while !stop.load(Ordering::Relaxed) {
            let failed = match self.poll_until(stop) {
                Ok(_) => false,
                Err(e) => {
                    log::error!(target: "queue_consumer", "poll failed, will retry: {e}");
                    true
                }
            };
            if let Some(interval) = self.opts.summary_interval {
                if summary.0.elapsed() >= interval {
                    self.log_summary(summary.0.elapsed(), &summary.1);
                    summary = (Instant::now(), self.stats);
                }
            }
            // After a failure, returned lots would wake the watch at once:
            // wait the full interval instead of retrying in a busy loop.
            match &watch {
                Some(watch) if !failed => wait_for_lot(watch, stop, self.opts.poll_interval),
                _ => sleep_unless(stop, self.opts.poll_interval),
            }
        }
        self.close()?;
        Ok(self.stats)
    }

    /// Finishes the current output file, closes the consumer and releases
    /// its id, so another consumer may open with it.
    ///
    /// # Errors
    ///
    /// `Io` if the output file cannot be finished; `Closed` if the
    /// consumer is already closed.
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Err(Error::new(ErrorKind::Closed, "consumer is already closed"));
        }
        if self.needs_recovery {
            // A failed copy may have left part of a lot in the output file:
            // recovery cuts it off and returns the lot before it finishes
            // the file.
            self.recover_self()?;
        } else if let Some(output) = self.output.take() {
            if output.finish(self.opts.durable)?.is_some() {
                self.stats.finished_files += 1;
            }
        }
        self.compress_archived();
        self.closed = true;
        self.lock = None;
        log::info!(
            target: "queue_consumer",
            "closed consumer id={} lots={} lines={}",
            self.opts.consumer_id,
            self.stats.lots,
            self.stats.lines
        );
        Ok(())
    }

    /// Returns the number of `.ready` lots the last poll found and did
    /// not consume.
    pub fn backlog(&self) -> u64 {
        self.backlog
    }

    fn log_summary(&self, elapsed: Duration, before: &ConsumerStats) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let lines = self.stats.lines - before.lines;
        let lots = self.stats.lots - before.lots;
        log::info!(
            target: "queue_consumer",
            "summary: {:.0} lines/s, {:.1} lots/s, backlog {} lots, {} lines in total, {} quarantined",
            lines as f64 / secs,
            lots as f64 / secs,
            self.backlog,
            self.stats.lines,
            self.stats.quarantined
        );
    }

    /// Returns the consumer's counters.
    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }

    /// Returns the folder the output files are written to.
    pub fn output_dir(&self) -> &Path {
        &self.output_dir
    }

    /// Compresses the lots archived since the last call. A failure is
    /// logged and leaves the plain `.done` file, which is still complete.
    fn compress_archived(&mut self) {
        #[cfg(feature = "gzip")]
        for done in std::mem::take(&mut self.to_compress) {
            let prefix = temp_prefix(&self.opts.consumer_id);
            if let Err(e) =
                archive::compress(&done, &self.paths.processing, &prefix, self.opts.durable)
            {
                log::error!(target: "queue_consumer", "compressing an archived lot failed, keeping it plain: {e}");
            }
        }
    }

    fn apply_retention_if_due(&mut self) {
        let policy = self.opts.retention;
        if policy == Retention::default() {
            return;
        }
        if self
            .last_retention
            .is_some_and(|t| t.elapsed() < self.opts.retention_interval)
        {
            return;
        }
        self.last_retention = Some(Instant::now());
        match archive::apply_retention(&self.paths.archive, &policy, SystemTime::now()) {
            Ok(r) if r.deleted > 0 => log::info!(
                target: "queue_consumer",
                "retention deleted {} archived lots ({} bytes)",
                r.deleted,
                r.bytes
            ),
            Ok(_) => {}
            Err(e) => {
                log::error!(target: "queue_consumer", "applying archive retention failed: {e}")
            }
        }
    }

    fn start_watch(&self) -> Option<Watch> {
        match Watch::new(&self.paths.incoming) {
            Ok(watch) => Some(watch),
            Err(e) => {
                log::warn!(
                    target: "queue_consumer",
                    "cannot watch {}, polling every {:?} instead: {e}",
                    self.paths.incoming.display(),
                    self.opts.poll_interval
                );
                None
            }
        }
    }

    fn recover_self(&mut self) -> Result<()> {
        // Recovery finishes every open file of this id, including ours.
        self.output = None;
        let id = &self.opts.consumer_id;
        let rec = recovery::recover_consumer(&self.paths, id, &self.output_dir, self.opts.durable)?;
        self.stats.finished_files += rec.finished;
        self.needs_recovery = false;
        Ok(())
    }

    fn scan_parts_if_due(&mut self) {
        let Some(interval) = self.opts.recover_interval else {
            return;
        };
        if self.last_part_scan.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        self.last_part_scan = Some(Instant::now());
        match recovery::recover_parts(&self.paths, self.opts.durable) {
            Ok(r) if r.published > 0 => log::warn!(
                target: "queue_consumer",
                "published {} lots of dead producers ({} lines)",
                r.published,
                r.lines
            ),
            Ok(_) => {}
            Err(e) => {
                log::error!(target: "queue_consumer", "recovering dead producers' lots failed: {e}")
            }
        }
    }

    /// Lists `incoming/` and returns the `.ready` names, oldest first.
    fn list_ready(&mut self) -> Result<Vec<String>> {
        let dir = &self.paths.incoming;
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            let name = match entry.file_name().into_string() {
                Ok(name) => name,
                Err(raw) => {
                    let shown = raw.to_string_lossy().into_owned();
                    if self.warned_names.insert(shown.clone()) {
                        log::warn!(target: "queue_consumer", "ignoring file with a non-UTF-8 name in {}: {shown}", dir.display());
                    }
                    continue;
                }
            };
            if name.starts_with('.') {
                // Hidden names belong to tools still writing the file.
                continue;
            }
            if name.ends_with(PART_SUFFIX) {
                let kind = match entry.file_type() {
                    Ok(t) if t.is_symlink() => Some("is a symbolic link"),
                    Ok(t) if !t.is_file() => Some("is not a regular file"),
                    _ => None,
                };
                if let Some(kind) = kind.filter(|_| self.warned_names.insert(name.clone())) {
                    log::warn!(
                        target: "queue_consumer",
                        "ignoring {}: it {kind}",
                        dir.join(&name).display()
                    );
                }
            }
            if name.ends_with(READY_SUFFIX) {
                names.push(name);
            } else if !name.ends_with(PART_SUFFIX)
                && !name.starts_with('.')
                && self.warned_names.insert(name.clone())
            {
                log::warn!(target: "queue_consumer", "ignoring foreign file {}", dir.join(&name).display());
            }
        }
        names.sort_unstable();
        Ok(names)
    }

    /// Claims, copies and archives one lot.
    fn consume(&mut self, name: &str, report: &mut PollReport) -> Result<()> {
        let Some(ready) = ReadyName::parse(name) else {
            let from = self.paths.incoming.join(name);
            return self.quarantine(&from, name, "invalid lot name", report);
        };
        self.prepare_output(&ready, report)?;
        let offset = self.output.as_ref().map_or(0, |out| out.len);
        let Some(claimed) = self.claim(name, offset)? else {
            return Ok(());
        };
        if self.opts.durable {
            self.sync_claims()?;
        }
        self.settle(name, &ready, claimed, report)
    }

    /// Rolls the output over if `ready`'s lines would take it past its
    /// limit, and opens an output file if none is open.
    fn prepare_output(&mut self, ready: &ReadyName, report: &mut PollReport) -> Result<()> {
        let expected_lines = ready.checksum.map(|(lines, _)| lines);
        if let (Some(out), Some(lines)) = (&self.output, expected_lines) {
            if out.lines > 0 && out.lines + lines > self.opts.max_output_lines {
                self.finish_output(report)?;
            }
        }
        if self.output.is_none() {
            let id = &self.opts.consumer_id;
            let format = self.opts.output_format;
            let out = OutputFile::create(&self.output_dir, id, format, self.opts.durable)?;
            self.output = Some(out);
        }
        Ok(())
    }

    /// Claims lot `name` by renaming it into `processing/` under a name
    /// that records the output file and the `offset` where its lines will
    /// start. Returns the claimed path, or `None` if another consumer took
    /// the lot first.
    fn claim(&self, name: &str, offset: u64) -> Result<Option<PathBuf>> {
        let out = self
            .output
            .as_ref()
            .expect("prepare_output opens the output first");
        let claim = ClaimName {
            ready: name.to_string(),
            output: out.name.clone(),
            offset,
        };
        let source = self.paths.incoming.join(name);
        let claimed = self.paths.processing.join(claim.format());
        match fsio::rename_noreplace(&source, &claimed) {
            Ok(()) => Ok(Some(claimed)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("claim lot", &source, e)),
        }
    }

    /// Makes the claims so far durable. No byte of a lot may reach the
    /// output before its claim is durable: otherwise power loss could
    /// bring the lot back to `incoming/` while the output kept its lines.
    fn sync_claims(&mut self) -> Result<()> {
        if let Err(e) = self.sync_dirs(&[&self.paths.processing, &self.paths.incoming]) {
            // The claims remain, so recovery returns the lots.
            self.needs_recovery = true;
            return Err(e);
        }
        Ok(())
    }

    /// Copies a claimed lot to the end of the committed output and
    /// archives it, or sets it aside if it is bad.
    fn settle(
        &mut self,
        name: &str,
        ready: &ReadyName,
        claimed: PathBuf,
        report: &mut PollReport,
    ) -> Result<()> {
        if archive::is_archived(&self.paths.archive, name) {
            let reason =
                "a lot with this name is already archived, so its lines were consumed before";
            return self.quarantine(&claimed, name, reason, report);
        }

        // From here on a crash leaves the claim in processing/. Recovery
        // cuts the output back to the claim's offset, unless it finds the
        // lot complete there.
        let start = self.output.as_ref().map_or(0, |out| out.len);
        let copied = match self.copy_lot(&claimed, ready, start) {
            Ok(copied) => copied,
            Err(LotError::Invalid(reason)) => {
                self.cut_output()?;
                return self.quarantine(&claimed, name, &reason, report);
            }
            Err(LotError::Io(e)) => {
                // Undo the copy and the claim here, so one unreadable lot
                // or a full disk does not hold up the lots after it; if
                // either step fails, recovery does it at the next poll.
                let source = self.paths.incoming.join(name);
                if self.cut_output().is_err() || fsio::rename_noreplace(&claimed, &source).is_err()
                {
                    self.needs_recovery = true;
                }
                return Err(e);
            }
        };
        let lot = CopiedLot {
            name: name.to_string(),
            claimed,
            lines: copied.lines,
            bytes: copied.bytes,
        };
        self.commit(std::slice::from_ref(&lot), report)
    }

    /// Archives lots whose lines were appended after the committed bytes
    /// of the output, in order, and counts them as committed. In durable
    /// mode the output is synced before the first archive rename, since
    /// an archived lot is never consumed again.
    fn commit(&mut self, lots: &[CopiedLot], report: &mut PollReport) -> Result<()> {
        if lots.is_empty() {
            return Ok(());
        }
        let out = self
            .output
            .as_mut()
            .expect("the output file stays open while copying");
        if self.opts.durable {
            if let Err(e) = out.file.sync_data() {
                self.needs_recovery = true;
                return Err(Error::io("fsync output file", &out.path(), e));
            }
        }
        for lot in lots {
            // The commit point: once archived, the lot is never consumed
            // again.
            let archived = self
                .paths
                .archive
                .join(format!("{}{DONE_SUFFIX}", lot.name));
            if let Err(e) = fsio::rename_noreplace(&lot.claimed, &archived) {
                self.needs_recovery = true;
                return Err(Error::io("archive lot as", &archived, e));
            }
            if self.opts.compress_archive {
                self.to_compress.push(archived);
            }
            out.len += lot.bytes;
            out.lines += lot.lines;
            log::info!(
                target: "queue_consumer",
                "appended {} lines -> {}",
                lot.lines,
                out.name.trim_end_matches(".open")
            );
            report.lots += 1;
            report.lines += lot.lines;
            report.bytes += lot.bytes;
            self.stats.lots += 1;
            self.stats.lines += lot.lines;
            self.stats.bytes += lot.bytes;
        }
        let full = out.lines >= self.opts.max_output_lines;
        if self.opts.durable {
            if let Err(e) = self.sync_dirs(&[&self.paths.archive, &self.paths.processing]) {
                // Lots of a broken group may be claimed past the committed
                // bytes: recovery settles them before anything else.
                self.needs_recovery = true;
                return Err(e);
            }
        }
        if full {
            self.finish_output(report)?;
        }
        Ok(())
    }

    /// Streams a claimed lot into the output after the committed bytes,
    /// checking every line and the checksum. Returns (lines, bytes).
    fn copy_lot(
        &mut self,
        claimed: &Path,
        ready: &ReadyName,
        start: u64,
    ) -> std::result::Result<LotCopy, LotError> {
        let file = match fsio::open_regular(claimed, false) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                return Err(LotError::Invalid(e.to_string()))
            }
            Err(e) => return Err(LotError::Io(Error::io("open lot", claimed, e))),
        };
        let mut reader = BufReader::with_capacity(IO_BUFFER, file);
        let head = reader.fill_buf();
        let head = head.map_err(|e| LotError::Io(Error::io("read lot", claimed, e)))?;
        if head.starts_with(binary::MAGIC) {
            return self.copy_binary_lot(reader, claimed, ready, start);
        }

        let out = self
            .output
            .as_ref()
            .expect("consume opens the output first");
        let out_path = out.path();
        let max_line = self.opts.max_line_bytes;
        let mut crc = crc32fast::Hasher::new();
        let mut offset = start;
        let mut lines = 0u64;
        let mut ends_in_newline = true;
        // True while every line goes to the output exactly as it is in
        // the lot.
        let mut unchanged = true;
        self.out_buf.clear();

        // Unless `full_validation` is off, every line is parsed: a checksum
        // in a name proves the bytes are intact, not who wrote them.
        // Binary output parses every line anyway, to encode it.
        let full_check = self.opts.full_validation || ready.checksum.is_none();
        let binary_out = out.format == OutputFormat::Binary;

        loop {
            self.line.clear();
            // TODO: a line is held whole while it is checked, so the peak
            // memory grows with `max_line_bytes` (16 MiB by default). A
            // check that resumes across chunks would bound it for larger
            // limits too.
            match read_line(&mut reader, &mut self.line, max_line + 1) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Err(LotError::Invalid(format!("line {}: {e}", lines + 1)));
                }
                Err(e) => return Err(LotError::Io(Error::io("read lot", claimed, e))),
            }
            crc.update(&self.line);
            ends_in_newline = self.line.last() == Some(&b'\n');
            let body = if ends_in_newline {
                &self.line[..self.line.len() - 1]
            } else {
                &self.line[..]
            };
            if binary_out {
                let record = if body.len() > max_line {
                    Err(format!(
                        "line of {} bytes exceeds the maximum of {max_line} bytes",
                        body.len()
                    ))
                } else {
                    append_json_as_record(body, &mut self.out_buf)
                };
                if let Err(e) = record {
                    return Err(LotError::Invalid(format!("line {}: {e}", lines + 1)));
                }
                lines += 1;
                if self.out_buf.len() >= IO_BUFFER {
                    flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
                }
                continue;
            }
            let body = if full_check {
                validate_line(body, max_line)
            } else {
                check_line_form(body).map(Cow::Borrowed)
            };
            let body = match body {
                Ok(body) => body,
                Err(e) => return Err(LotError::Invalid(format!("line {}: {e}", lines + 1))),
            };
            unchanged &= matches!(body, Cow::Borrowed(_)) && ends_in_newline;
            lines += 1;
            if body.len() >= IO_BUFFER {
                // A long line is written from where it lies rather than
                // copied into the buffer, so memory contains it only once.
                flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
                write_out(out, &body, offset, &out_path)?;
                offset += body.len() as u64;
            } else {
                self.out_buf.extend_from_slice(&body);
            }
            self.out_buf.push(b'\n');
            if self.out_buf.len() >= IO_BUFFER {
                flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
            }
        }

        if lines == 0 {
            return Err(LotError::Invalid("empty lot".into()));
        }
        if let Some((want_lines, want_crc)) = ready.checksum {
            let got_crc = crc.finalize();
            if !ends_in_newline {
                return Err(LotError::Invalid("last line has no newline".into()));
            }
            if want_lines != lines || want_crc != got_crc {
                let msg = format!(
                    "checksum mismatch: name records {want_lines} lines and crc32 {want_crc:08x}, \
                     file holds {lines} lines and crc32 {got_crc:08x}"
                );
                return Err(LotError::Invalid(msg));
            }
        }
        flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
        Ok(LotCopy {
            lines,
            bytes: offset - start,
            unchanged: unchanged && !binary_out,
        })
    }

    /// Streams a claimed binary lot into the output, checking each record's
    /// checksum and the lot's. Records become JSON lines, or are copied as
    /// they are into a binary output. Returns (records, bytes).
    fn copy_binary_lot(
        &mut self,
        mut reader: BufReader<File>,
        claimed: &Path,
        ready: &ReadyName,
        start: u64,
    ) -> std::result::Result<LotCopy, LotError> {
        let out = self
            .output
            .as_ref()
            .expect("consume opens the output first");
        let out_path = out.path();
        let max_len = self.opts.max_line_bytes;
        let binary_out = out.format == OutputFormat::Binary;
        let full_check = self.opts.full_validation || ready.checksum.is_none();
        let mut crc = crc32fast::Hasher::new();
        crc.update(binary::MAGIC);
        reader.consume(binary::MAGIC.len());
        let mut offset = start;
        let mut records = 0u64;
        self.out_buf.clear();

        loop {
            let invalid = |msg: String| LotError::Invalid(format!("record {}: {msg}", records + 1));
            let io_error = |e| LotError::Io(Error::io("read lot", claimed, e));
            let mut header = [0u8; binary::RECORD_HEADER];
            match read_full(&mut reader, &mut header).map_err(io_error)? {
                0 => break,
                binary::RECORD_HEADER => {}
                n => return Err(invalid(format!("torn header of {n} bytes"))),
            }
            let (len, record_crc) = binary::parse_header(&header);
            if len > max_len {
                return Err(invalid(format!(
                    "{len} bytes exceed the maximum of {max_len}"
                )));
            }
            self.line.resize(len, 0);
            if read_full(&mut reader, &mut self.line).map_err(io_error)? < len {
                return Err(invalid("ends before its payload does".into()));
            }
            crc.update(&header);
            crc.update(&self.line);
            if crc32fast::hash(&self.line) != record_crc {
                return Err(invalid("checksum mismatch".into()));
            }
            if binary_out {
                // Unless `full_validation` is off, each record is decoded
                // first, so the output holds only records that decode to
                // JSON lines.
                if full_check {
                    let decoded = binary::decode_payload(&self.line).map_err(invalid)?;
                    decoded.check_finite().map_err(invalid)?;
                }
                records += 1;
                if header.len() + len >= IO_BUFFER {
                    // A long record is written from where it lies rather
                    // than copied into the buffer.
                    flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
                    write_out(out, &header, offset, &out_path)?;
                    offset += header.len() as u64;
                    write_out(out, &self.line, offset, &out_path)?;
                    offset += len as u64;
                } else {
                    self.out_buf.extend_from_slice(&header);
                    self.out_buf.extend_from_slice(&self.line);
                }
                if self.out_buf.len() >= IO_BUFFER {
                    flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
                }
                continue;
            }
            let decoded = binary::decode_payload(&self.line).map_err(invalid)?;
            encode_transition(&decoded.as_ref(), &mut self.out_buf)
                .map_err(|e| invalid(e.to_string()))?;
            records += 1;
            if self.out_buf.len() >= IO_BUFFER {
                flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
            }
        }

        if records == 0 {
            return Err(LotError::Invalid("empty lot".into()));
        }
        if let Some((want_records, want_crc)) = ready.checksum {
            let got_crc = crc.finalize();
            if want_records != records || want_crc != got_crc {
                let msg = format!(
                    "checksum mismatch: name records {want_records} records and crc32 \
                     {want_crc:08x}, file holds {records} records and crc32 {got_crc:08x}"
                );
                return Err(LotError::Invalid(msg));
            }
        }
        flush_out(out, &mut self.out_buf, &mut offset, &out_path)?;
        Ok(LotCopy {
            lines: records,
            bytes: offset - start,
            unchanged: false,
        })
    }

    /// Cuts the output back to its committed length after a rejected lot.
    fn cut_output(&mut self) -> Result<()> {
        let out = self
            .output
            .as_ref()
            .expect("consume opens the output first");
        if let Err(e) = out.file.set_len(out.len) {
            self.needs_recovery = true;
            return Err(Error::io("truncate output file", &out.path(), e));
        }
        Ok(())
    }

    /// Moves a bad lot to `quarantine/` with a `.reason` file beside it.
    fn quarantine(
        &mut self,
        from: &Path,
        name: &str,
        reason: &str,
        report: &mut PollReport,
    ) -> Result<()> {
        let dir = &self.paths.quarantine;
        let mut target = dir.join(name);
        let mut n = 0;
        loop {
            match fsio::rename_noreplace(from, &target) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    n += 1;
                    target = dir.join(format!("{name}.{n}"));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    // A claimed lot stays in processing/, where only
                    // recovery returns it and cuts what it left in the
                    // output.
                    self.needs_recovery = true;
                    return Err(Error::io("quarantine lot as", &target, e));
                }
            }
        }
        let mut reason_path = target.clone().into_os_string();
        reason_path.push(".reason");
        if let Err(e) = std::fs::write(&reason_path, format!("{reason}\n")) {
            log::error!(target: "queue_consumer", "failed to write {}: {e}", Path::new(&reason_path).display());
        }
        if self.opts.durable {
            self.sync_dirs(&[dir, from.parent().unwrap_or(dir)])?;
        }
        log::error!(target: "queue_consumer", "quarantined lot={name} as {}: {reason}", target.display());
        report.quarantined += 1;
        self.stats.quarantined += 1;
        Ok(())
    }

    fn finish_output(&mut self, report: &mut PollReport) -> Result<()> {
        if let Some(output) = self.output.take() {
            if let Some(path) = output.finish(self.opts.durable)? {
                report.finished_files.push(path);
                self.stats.finished_files += 1;
            }
        }
        Ok(())
    }

    fn sync_dirs(&self, dirs: &[&Path]) -> Result<()> {
        for dir in dirs {
            fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
        }
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = self.close() {
                log::error!(target: "queue_consumer", "closing consumer on drop failed: {e}");
            }
        }
    }
}

fn check_options(opts: &ConsumerOptions) -> Result<()> {
    let id = &opts.consumer_id;
    let id_ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        let msg =
            format!("invalid consumer id `{id}`: use 1 to 32 ASCII letters, digits, `-` or `_`");
        return Err(Error::new(ErrorKind::InvalidConfig, msg));
    }
    if opts.poll_interval.is_zero() {
        let msg = "invalid consumer option: poll_interval must be greater than 0";
        return Err(Error::new(ErrorKind::InvalidConfig, msg));
    }
    if opts.compress_archive && !cfg!(feature = "gzip") {
        let msg =
            "invalid consumer option: compress_archive needs diskq built with the `gzip` feature";
        return Err(Error::new(ErrorKind::InvalidConfig, msg));
    }
    if opts.max_output_lines == 0 || opts.max_line_bytes == 0 {
        let msg =
            "invalid consumer option: max_output_lines and max_line_bytes must be greater than 0";
        return Err(Error::new(ErrorKind::InvalidConfig, msg));
    }
    Ok(())
}

fn open_lock(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;

    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("open consumer lock", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("stat consumer lock", path, e))?;
    if !meta.is_file() {
        let msg = format!("consumer lock {} is not a regular file", path.display());
        return Err(Error::new(ErrorKind::InvalidConfig, msg));
    }
    Ok(file)
}

/// Takes the consumer lock, waiting up to two seconds: `diskq recover`
/// holds a dead consumer's lock briefly while it repairs its files.
fn take_lock(lock: &File, path: &Path) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if fsio::try_lock(lock).map_err(|e| Error::io("lock", path, e))? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `consumers/<id>.out` with the output folder, so that recovery
/// run from the command line finds the files to repair.
fn record_output_dir(paths: &QueuePaths, id: &str, output_dir: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;

    let record = paths.consumers.join(format!("{id}.out"));
    let temp = paths.consumers.join(format!(".{id}.out.tmp"));
    let mut text = output_dir.as_os_str().as_bytes().to_vec();
    text.push(b'\n');
    // Unchanged records are not rewritten, so a consumer can start on a
    // queue disk that is full.
    if std::fs::read(&record).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(&temp, text).map_err(|e| Error::io("write", &temp, e))?;
    std::fs::rename(&temp, &record).map_err(|e| Error::io("rename", &record, e))
}

/// Returns the prefix of the temporary files consumer `id` writes while
/// compressing, in `processing/`.
fn temp_prefix(id: &str) -> String {
    format!(".gz-{id}-")
}

/// Reads the output folder recorded for consumer `id`, if any.
pub fn recorded_output_dir(paths: &QueuePaths, id: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;

    let bytes = std::fs::read(paths.consumers.join(format!("{id}.out"))).ok()?;
    let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(text)))
}

/// Checks that a line of a checked lot has the form the producer writes:
/// UTF-8, `{` first, `}` last, no `\r`.
fn check_line_form(line: &[u8]) -> Result<&[u8]> {
    let invalid = |what: &str| {
        Err(Error::new(
            ErrorKind::InvalidJson,
            format!("invalid JSON line: {what}"),
        ))
    };
    if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
        return invalid("expected a JSON object from `{` to `}`");
    }
    if memchr::memchr(b'\r', line).is_some() {
        return invalid("contains a carriage return");
    }
    if let Err(e) = std::str::from_utf8(line) {
        return invalid(&format!("not valid UTF-8 at byte {}", e.valid_up_to()));
    }
    Ok(line)
}

/// Reads one line, with its `\n` if any, into `buf`. Fails with
/// `InvalidData` once the line passes `limit` bytes, without buffering
/// the rest of it.
fn read_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(buf.len());
        }
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        if buf.len() > limit {
            let msg = format!("line longer than the maximum of {} bytes", limit - 1);
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        if done {
            return Ok(buf.len());
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: io::Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes the buffer at `offset`, advances the offset and empties it.
fn flush_out(
    out: &OutputFile,
    buf: &mut Vec<u8>,
    offset: &mut u64,
    path: &Path,
) -> std::result::Result<(), LotError> {
    write_out(out, buf, *offset, path)?;
    *offset += buf.len() as u64;
    buf.clear();
    Ok(())
}

fn write_out(
    out: &OutputFile,
    buf: &[u8],
    offset: u64,
    path: &Path,
) -> std::result::Result<(), LotError> {
    fsio::write_all_at(&out.file, buf, offset)
        .map_err(|(_, e)| LotError::Io(Error::io("write output file", path, e)))
}

/// Waits until a lot may have arrived, `stop` is set or `total` passed.
/// Checks `stop` at least every 50 ms, since the flag may be set by a
/// thread that cannot interrupt the wait.
fn wait_for_lot(watch: &Watch, stop: &AtomicBool, total: Duration) {
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let left = total.saturating_sub(start.elapsed());
        if left.is_zero() {
            return;
        }
        match watch.wait(left.min(Duration::from_millis(50))) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                log::warn!(target: "queue_consumer", "watch failed, sleeping instead: {e}");
                sleep_unless(stop, left);
                return;
            }
        }
    }
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(20);
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let left = total.saturating_sub(start.elapsed());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(step));
    }
}
