//! The producer: appends lines to a locked `.part` lot and publishes it
//! as `.ready` by an atomic no-replace rename.
//!
//! Acknowledgement: a line that `push` accepted is safe from a crash of
//! the process once it has been written to the `.part` file, which
//! happens at every push with `write_through`, and otherwise whenever the
//! write buffer fills and at every rotation. `flush` and `close` return
//! only after every accepted line is in a published `.ready` lot. With
//! `durable`, the lot and its directory are fsynced around the rename, so
//! what `flush` acknowledged survives power loss too.
//!
//! An `Err` from `push` means the transition was not accepted: nothing of
//! it stays in the lot, and pushing it again does not duplicate it.

use std::cell::RefCell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::binary;
use crate::config::{LotFormat, ProducerOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::fsio;
use crate::json::{encode_transition, validate_line, Transition, TransitionRef};
use crate::lot::{ready_name, LotNamer, QueuePaths, PART_SUFFIX};
use crate::recovery;

/// Writes transitions into a queue directory.
///
/// All methods take `&self`: an internal lock lets the threads of one
/// bot share a producer (for example through an `Arc`). Many producers,
/// in any number of processes, may write to the same queue.
///
/// Dropping a producer closes it; an error from that last rotation is
/// logged at error level, since the caller can no longer see it.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
    ager: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    paths: QueuePaths,
    opts: ProducerOptions,
    namer: LotNamer,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    closed: bool,
    poisoned: bool,
    lot: Option<OpenLot>,

    // Accepted lines not yet written to the lot's file.
    buf: Vec<u8>,
    buf_lines: u64,

    stats: ProducerStats,
}

/// The `.part` file being filled. Its `flock` marks it as live.
#[derive(Debug)]
struct OpenLot {
    file: File,
    id: String,
    path: PathBuf,
    written: u64,
    lines: u64,
    crc: crc32fast::Hasher,
    created: Instant,
}

/// Counters of one producer since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Lots published as `.ready`.
    pub lots_published: u64,
    /// Lines in those lots.
    pub lines_published: u64,
    /// Lines accepted but not yet published.
    pub lines_pending: u64,
    /// `.part` files of dead producers that this producer published.
    pub lots_recovered: u64,
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Producer {
    /// Opens a producer on the queue directory `dir`, creating its
    /// sub-folders if needed. With `recover_on_open`, first publishes the
    /// `.part` lots that dead producers left behind.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` if `dir` is missing, not a directory or not
    /// writable, or an option is zero; `Io` if recovery fails.
    pub fn open(dir: impl AsRef<Path>, opts: ProducerOptions) -> Result<Producer> {
        let dir = dir.as_ref();
        check_options(&opts)?;
        let paths = QueuePaths::prepare(dir)?;

        let mut stats = ProducerStats::default();
        if opts.recover_on_open {
            let report = recovery::recover_parts(&paths, opts.durable)?;
            stats.lots_recovered = report.published;
        }

        let shared = Arc::new(Shared {
            paths,
            namer: LotNamer::new(),
            state: Mutex::new(State {
                stats,
                ..State::default()
            }),
            wake: Condvar::new(),
            opts,
        });
        let ager = match shared.opts.max_lot_age {
            Some(age) => Some(spawn_ager(Arc::clone(&shared), age)?),
            None => None,
        };
        log::info!(target: "diskq::producer", "opened producer dir={}", dir.display());
        Ok(Producer {
            shared,
            ager: Mutex::new(ager),
        })
    }

    /// Pushes one typed transition.
    ///
    /// # Errors
    ///
    /// `NonFinite` or `InvalidField` for a bad field (named in the
    /// message), `LineTooLong`, `Closed`, `Poisoned`, or `Io` if a write
    /// or rotation failed. On error the transition was not accepted.
    pub fn push(&self, t: &Transition) -> Result<()> {
        self.push_ref(&t.as_ref())
    }

    /// Pushes one transition from borrowed fields; see [`Producer::push`].
    pub fn push_ref(&self, t: &TransitionRef<'_>) -> Result<()> {
        SCRATCH.with(|scratch| {
            let mut line = scratch.borrow_mut();
            line.clear();
            match self.shared.opts.format {
                LotFormat::Json => encode_transition(t, &mut line)?,
                LotFormat::Binary => binary::encode_record(t, &mut line)?,
            }
            self.check_len(line.len() - 1)?;
            self.shared.accept(&line, b"")
        })
    }

    /// Pushes one already-serialized JSON object. Whitespace and line
    /// breaks around and between tokens are allowed; line breaks are
    /// removed. With [`LotFormat::Binary`] the object must be a
    /// [`Transition`].
    ///
    /// # Errors
    ///
    /// `InvalidJson` if `line` is not exactly one JSON object in UTF-8,
    /// `NonFinite` for a NaN or infinity token, `LineTooLong`, and the
    /// errors of [`Producer::push`].
    pub fn push_json(&self, line: &[u8]) -> Result<()> {
        let max = self.shared.opts.max_line_bytes;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let body = validate_line(line, max)?;
        self.check_len(body.len())?;
        if self.shared.opts.format == LotFormat::Binary {
            let t: Transition = serde_json::from_slice(&body).map_err(|e| {
                let msg = format!("invalid JSON line: binary lots hold transitions only: {e}");
                Error::new(ErrorKind::InvalidJson, msg)
            })?;
            return self.push(&t);
        }
        self.shared.accept(&body, b"\n")
    }

    /// Publishes the current lot now, if it holds any line. When this
    /// returns `Ok`, every accepted transition is in a `.ready` lot.
    ///
    /// # Errors
    ///
    /// `Io` if the write or the rename failed (the lines stay pending
    /// and a later call retries), `Closed`, `Poisoned`.
    pub fn flush(&self) -> Result<()> {
        let mut st = self.shared.state.lock();
        st.check_usable()?;
        self.shared.rotate(&mut st)
    }

    /// Publishes what is pending and closes the producer. Later calls
    /// return `Closed`.
    ///
    /// # Errors
    ///
    /// As [`Producer::flush`]; on error the producer stays open, so the
    /// caller may free space and close again. `Closed` if already closed.
    pub fn close(&self) -> Result<()> {
        {
            let mut st = self.shared.state.lock();
            st.check_usable()?;
            self.shared.rotate(&mut st)?;
            self.shared.discard_empty_lot(&mut st);
            st.closed = true;
            self.shared.wake.notify_all();
        }
        if let Some(handle) = self.ager.lock().take() {
            let _ = handle.join();
        }
        log::info!(
            target: "diskq::producer",
            "closed producer dir={}",
            self.shared.paths.root.display()
        );
        Ok(())
    }

    /// Returns the producer's counters.
    pub fn stats(&self) -> ProducerStats {
        let st = self.shared.state.lock();
        let mut stats = st.stats;
        stats.lines_pending = st.pending_lines();
        stats
    }

    /// Returns the maximum length of one line, in bytes.
    pub fn max_line_bytes(&self) -> usize {
        self.shared.opts.max_line_bytes
    }

    /// Returns the queue directory.
    pub fn dir(&self) -> &Path {
        &self.shared.paths.root
    }

    fn check_len(&self, len: usize) -> Result<()> {
        let max = self.shared.opts.max_line_bytes;
        if len > max {
            let msg = format!("line of {len} bytes exceeds the maximum of {max} bytes");
            return Err(Error::new(ErrorKind::LineTooLong, msg));
        }
        Ok(())
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        let closed = self.shared.state.lock().closed;
        if closed {
            return;
        }
        if let Err(e) = self.close() {
            log::error!(
                target: "diskq::producer",
                "producer dropped without a clean close, pending lines may be lost: {e}"
            );
            // Stop the age thread even though the close failed; the .part
            // file's lock goes with its descriptor, so recovery can take
            // the lines that did reach the file.
            self.shared.state.lock().closed = true;
            self.shared.wake.notify_all();
            if let Some(handle) = self.ager.lock().take() {
                let _ = handle.join();
            }
        }
    }
}

fn check_options(opts: &ProducerOptions) -> Result<()> {
    let zero = if opts.max_lot_lines == 0 {
        Some("max_lot_lines")
    } else if opts.max_lot_bytes == 0 {
        Some("max_lot_bytes")
    } else if opts.max_line_bytes == 0 {
        Some("max_line_bytes")
    } else if opts.max_lot_age == Some(Duration::ZERO) {
        Some("max_lot_age")
    } else {
        None
    };
    match zero {
        Some(name) => {
            let msg = format!("invalid producer option: {name} must be greater than 0");
            Err(Error::new(ErrorKind::InvalidConfig, msg))
        }
        None => Ok(()),
    }
}

fn spawn_ager(shared: Arc<Shared>, age: Duration) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("diskq-lot-age".into())
        .spawn(move || shared.publish_aged_lots(age))
        .map_err(|e| {
            Error::io(
                "start the lot age thread for",
                &PathBuf::from("producer"),
                e,
            )
        })
}

impl State {
    fn check_usable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::new(ErrorKind::Closed, "producer is closed"));
        }
        if self.poisoned {
            let msg = "producer is unusable after a failed fsync; open a new one";
            return Err(Error::new(ErrorKind::Poisoned, msg));
        }
        Ok(())
    }

    fn pending_lines(&self) -> u64 {
        self.lot.as_ref().map_or(0, |l| l.lines) + self.buf_lines
    }

    fn pending_bytes(&self) -> u64 {
        self.lot.as_ref().map_or(0, |l| l.written) + self.buf.len() as u64
    }
}

impl Shared {
    /// Appends one encoded line (ending in `\n`) to the current lot.
    /// Appends `line` and then `end` (its newline, when `line` has none)
    /// to the current lot.
    fn accept(&self, line: &[u8], end: &[u8]) -> Result<()> {
        let opts = &self.opts;
        let mut st = self.state.lock();
        st.check_usable()?;
        let len = (line.len() + end.len()) as u64;

        // A lot that is already full, or that this line would take past
        // the byte limit, is published first. If that fails, the line is
        // rejected and the lot stays as it was.
        let lines = st.pending_lines();
        let bytes = st.pending_bytes();
        if lines >= opts.max_lot_lines || (lines > 0 && bytes + len > opts.max_lot_bytes) {
            self.rotate(&mut st)?;
        }
        if st.lot.is_none() {
            st.lot = Some(self.start_lot()?);
            if opts.format == LotFormat::Binary {
                st.buf.extend_from_slice(binary::MAGIC);
            }
        }

        let mark = st.buf.len();
        st.buf.extend_from_slice(line);
        st.buf.extend_from_slice(end);
        st.buf_lines += 1;
        if opts.write_through || st.buf.len() >= opts.write_buffer_bytes {
            if let Err(e) = self.write_buffer(&mut st) {
                st.buf.truncate(mark);
                st.buf_lines -= 1;
                return Err(e);
            }
        }

        // The line is accepted from here on, so a failed rotation is only
        // logged: the next push or flush retries it. The age thread
        // publishes a lot that reaches `max_lot_age`: it sleeps at most
        // that long, and the lot is younger than the sleep. So the push
        // itself reads no clock.
        let full =
            st.pending_lines() >= opts.max_lot_lines || st.pending_bytes() >= opts.max_lot_bytes;
        if full {
            if let Err(e) = self.rotate(&mut st) {
                log::warn!(target: "diskq::producer", "publishing a full lot failed, will retry: {e}");
            }
        }
        Ok(())
    }

    /// Creates a new `.part` file that is locked before it is visible
    /// under its `.part` name, so recovery never mistakes it for the
    /// leftover of a dead producer.
    fn start_lot(&self) -> Result<OpenLot> {
        let incoming = &self.paths.incoming;
        let mut last_err = None;
        for _ in 0..8 {
            let id = self.namer.next_id();
            let temp = incoming.join(format!(".{id}.new"));
            let file = match fsio::create_new(&temp) {
                Ok(f) => f,
                Err(e) => {
                    last_err = Some(Error::io("create lot file", &temp, e));
                    continue;
                }
            };

            // Recovery may lock and delete an unnamed temp file between its
            // creation and our lock; then start over with a new id.
            let locked = fsio::try_lock(&file).map_err(|e| Error::io("lock lot file", &temp, e))?;
            if !locked {
                continue;
            }
            let path = incoming.join(format!("{id}{PART_SUFFIX}"));
            match fsio::rename_noreplace(&temp, &path) {
                Ok(()) => {}
                Err(e) => {
                    let _ = std::fs::remove_file(&temp);
                    last_err = Some(Error::io("rename lot file to", &path, e));
                    continue;
                }
            }
            log::debug!(target: "diskq::producer", "started lot={id}");
            return Ok(OpenLot {
                file,
                id,
                path,
                written: 0,
                lines: 0,
                crc: crc32fast::Hasher::new(),
                created: Instant::now(),
            });
        }
        Err(last_err.unwrap_or_else(|| {
            let msg = format!("could not create a lot in {}", incoming.display());
            Error::new(ErrorKind::Io, msg)
        }))
    }

    /// Writes the buffered lines to the lot's file. On failure, cuts off
    /// any part of them that reached the file and keeps them buffered.
    fn write_buffer(&self, st: &mut State) -> Result<()> {
        let State {
            lot,
            buf,
            buf_lines,
            poisoned,
            ..
        } = st;
        let Some(lot) = lot.as_mut() else {
            return Ok(());
        };
        if buf.is_empty() {
            return Ok(());
        }
        if let Err((done, e)) = fsio::write_all_at(&lot.file, buf, lot.written) {
            if done > 0 {
                if let Err(cut) = lot.file.set_len(lot.written) {
                    // The file now ends in a fragment that cannot be
                    // removed; recovery drops a torn last line, but this
                    // producer must not append after it.
                    *poisoned = true;
                    return Err(Error::io("truncate lot file", &lot.path, cut));
                }
            }
            return Err(Error::io("write lot file", &lot.path, e));
        }
        lot.crc.update(buf);
        lot.written += buf.len() as u64;
        lot.lines += *buf_lines;
        buf.clear();
        *buf_lines = 0;
        Ok(())
    }

    /// Publishes the current lot: write what is buffered, fsync (durable),
    /// rename `.part` to `.ready` without replacing, fsync the folder.
    fn rotate(&self, st: &mut State) -> Result<()> {
        self.write_buffer(st)?;
        let Some(lot) = st.lot.as_ref() else {
            return Ok(());
        };
        if lot.lines == 0 {
            return Ok(());
        }

        // A crash before the rename leaves a `.part` whose lock dies with
        // us: recovery publishes its complete lines.
        if self.opts.durable {
            if let Err(e) = lot.file.sync_data() {
                st.poisoned = true;
                return Err(Error::io("fsync lot file", &lot.path, e));
            }
        }
        let crc = lot.crc.clone().finalize();
        let ready = self
            .paths
            .incoming
            .join(ready_name(&lot.id, lot.lines, crc));
        fsio::rename_noreplace(&lot.path, &ready)
            .map_err(|e| Error::io("publish lot as", &ready, e))?;

        // A crash after the rename leaves a published lot; without the
        // directory fsync, power loss may still take the rename back.
        if self.opts.durable {
            if let Err(e) = fsio::sync_dir(&self.paths.incoming) {
                st.poisoned = true;
                return Err(Error::io("fsync directory", &self.paths.incoming, e));
            }
        }
        let lines = lot.lines;
        log::debug!(target: "diskq::producer", "published lot={} lines={lines}", lot.id);
        st.lot = None;
        st.stats.lots_published += 1;
        st.stats.lines_published += lines;
        Ok(())
    }

    /// Removes a `.part` that holds no line, so closing leaves no litter.
    fn discard_empty_lot(&self, st: &mut State) {
        if let Some(lot) = st.lot.take() {
            if lot.lines == 0 && st.buf_lines == 0 {
                st.buf.clear();
                if let Err(e) = std::fs::remove_file(&lot.path) {
                    log::warn!(
                        target: "diskq::producer",
                        "failed to remove empty lot file {}: {e}",
                        lot.path.display()
                    );
                }
            } else {
                st.lot = Some(lot);
            }
        }
    }

    /// Body of the age thread: publishes the lot once it reaches
    /// `max_age`, so a slow bot's lines do not wait for its next push.
    fn publish_aged_lots(&self, max_age: Duration) {
        let mut st = self.state.lock();
        loop {
            if st.closed || st.poisoned {
                return;
            }
            let wait = match &st.lot {
                Some(lot) if st.pending_lines() > 0 => {
                    max_age.saturating_sub(lot.created.elapsed())
                }
                _ => max_age,
            };
            if wait.is_zero() {
                if let Err(e) = self.rotate(&mut st) {
                    log::warn!(target: "diskq::producer", "publishing an aged lot failed, will retry: {e}");
                    self.wake.wait_for(&mut st, max_age);
                }
                continue;
            }
            self.wake.wait_for(&mut st, wait);
        }
    }
}
