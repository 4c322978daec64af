//! Startup and maintenance scans: publish the `.part` lots of dead
//! producers, and return the claimed lots of dead consumers.
//!
//! A producer holds an `flock` on its `.part` file from before the file
//! gets that name until after it is renamed to `.ready`. The kernel drops
//! the lock when the process dies, so a `.part` whose lock can be taken
//! belongs to a dead producer. Pids are never consulted.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::binary;
use crate::config::OutputFormat;
use crate::error::{Error, Result};
use crate::fsio;
use crate::lot::{
    is_safe_name, ready_name, ClaimName, QueuePaths, ReadyName, DONE_SUFFIX, PART_SUFFIX,
};
use crate::output::{finish_open_file, open_file_owner, split_output_name};

/// What [`recover_parts`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartReport {
    /// `.part` lots of dead producers published as `.ready`.
    pub published: u64,
    /// Lines in those lots.
    pub lines: u64,
    /// Torn last lines dropped from them.
    pub torn_lines_dropped: u64,
    /// Empty `.part` and temporary files removed.
    pub removed: u64,
    /// `.part` lots left alone because their producer is alive.
    pub live: u64,
}

/// Publishes every `.part` lot in `incoming/` whose producer has died:
/// complete lines are kept, a torn last line is cut off, and a lot with
/// no complete line is removed. Live producers' lots are not touched.
///
/// # Errors
///
/// `Io` if `incoming/` cannot be listed or a lot cannot be repaired or
/// renamed. Files that are not regular are skipped with a warning.
pub fn recover_parts(paths: &QueuePaths, durable: bool) -> Result<PartReport> {
    let mut report = PartReport::default();
    let dir = &paths.incoming;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let temp_id = name.strip_prefix('.').and_then(|n| n.strip_suffix(".new"));
        let part_id = name.strip_suffix(PART_SUFFIX).filter(|id| is_safe_name(id));
        if temp_id.is_none() && part_id.is_none() {
            continue;
        }
        let path = dir.join(&name);
        let file = match fsio::open_regular(&path, true) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                // The consumer warns about such names once as it lists
                // incoming/; repeating it at every scan would flood the log.
                log::debug!(target: "diskq::recovery", "skipping {}: {e}", path.display());
                continue;
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        if !fsio::try_lock(&file).map_err(|e| Error::io("lock", &path, e))? {
            report.live += 1;
            continue;
        }

        // The producer may have renamed the file between our open and
        // our lock; then the lock we hold is on a lot it published.
        if !fsio::same_inode(&file, &path).map_err(|e| Error::io("stat", &path, e))? {
            continue;
        }
        if temp_id.is_some() {
            std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            report.removed += 1;
            continue;
        }
        let id = part_id.expect("a name that is not a temp file is a part file");
        publish_dead_part(paths, &file, &path, id, durable, &mut report)?;
    }
    Ok(report)
}

fn publish_dead_part(
    paths: &QueuePaths,
    file: &File,
    path: &Path,
    id: &str,
    durable: bool,
    report: &mut PartReport,
) -> Result<()> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let binary = is_binary(file).map_err(|e| Error::io("read", path, e))?;
    let (keep, records) = if binary {
        binary::complete_prefix(file, len).map_err(|e| Error::io("read", path, e))?
    } else {
        let end = end_of_last_line(file, len).map_err(|e| Error::io("read", path, e))?;
        (end, 0)
    };
    if keep < len {
        // What the dead producer was writing when it died; the caller
        // never saw that push acknowledged.
        log::warn!(
            target: "diskq::recovery",
            "dropping torn last line of {} bytes from lot={id}",
            len - keep
        );
        file.set_len(keep)
            .map_err(|e| Error::io("truncate", path, e))?;
        report.torn_lines_dropped += 1;
    }
    if keep == 0 || (binary && records == 0) {
        std::fs::remove_file(path).map_err(|e| Error::io("remove", path, e))?;
        report.removed += 1;
        return Ok(());
    }

    let (newlines, crc) = checksum(file, keep).map_err(|e| Error::io("read", path, e))?;
    let lines = if binary { records } else { newlines };
    if durable {
        file.sync_data().map_err(|e| Error::io("fsync", path, e))?;
    }
    let ready = paths.incoming.join(ready_name(id, lines, crc));
    fsio::rename_noreplace(path, &ready).map_err(|e| Error::io("publish lot as", &ready, e))?;
    if durable {
        let dir = &paths.incoming;
        fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    log::warn!(target: "diskq::recovery", "published lot={id} lines={lines} of a dead producer");
    report.published += 1;
    report.lines += lines;
    Ok(())
}

/// Cuts an open output file back to its last complete line, or a binary
/// one to its last whole record. diskq itself never leaves a partial line
/// or record past its claims' offsets, but power loss without `durable`,
/// or a person editing the file, can; a finished file must hold whole
/// lines or records only.
///
/// NOTE: a binary file is cut at its first record whose checksum fails,
/// since the lengths after it cannot be trusted, and a file without the
/// whole magic is cut to nothing. That reads the whole file, where a JSON
/// file is read backwards from its end only.
fn cut_torn_tail(path: &Path, format: OutputFormat, durable: bool) -> Result<()> {
    let file = match fsio::open_regular(path, true) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let keep = match format {
        OutputFormat::JsonLines => end_of_last_line(&file, len),
        OutputFormat::Binary => match is_binary(&file) {
            Ok(true) => binary::complete_prefix(&file, len).map(|(keep, _)| keep),
            Ok(false) => Ok(0),
            Err(e) => Err(e),
        },
    };
    let keep = keep.map_err(|e| Error::io("read", path, e))?;
    if keep < len {
        log::warn!(
            target: "diskq::recovery",
            "cutting a torn tail of {} bytes from output file {}",
            len - keep,
            path.display()
        );
        file.set_len(keep)
            .map_err(|e| Error::io("truncate", path, e))?;
        if durable {
            file.sync_all().map_err(|e| Error::io("fsync", path, e))?;
        }
    }
    Ok(())
}

/// Returns true if the file starts with the binary lot magic.
fn is_binary(file: &File) -> io::Result<bool> {
    let mut head = [0u8; 4];
    match file.read_exact_at(&mut head, 0) {
        Ok(()) => Ok(&head == binary::MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Returns the length of the file up to and including its last `\n`.
fn end_of_last_line(file: &File, len: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Returns the line count and CRC-32 of the first `len` bytes of `file`.
pub(crate) fn checksum(file: &File, len: u64) -> io::Result<(u64, u32)> {
    let mut reader = io::BufReader::with_capacity(256 * 1024, file.take(len));
    let mut hasher = crc32fast::Hasher::new();
    let mut lines = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
    Ok((lines, hasher.finalize()))
}

/// What [`recover_consumer`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerReport {
    /// Claimed lots returned to `incoming/`.
    pub returned: u64,
    /// Claimed lots whose bytes were all in the output already, and
    /// which were archived instead.
    pub completed: u64,
    /// Open output files renamed to their finished names.
    pub finished: u64,
}

/// Undoes or completes the unfinished work of consumer `id`, which must
/// not be running (the caller holds its lock). Each lot it claimed but did
/// not archive is archived if the output contains a byte-for-byte copy of it
/// at the claim's offset. Otherwise its partial copy is cut from the
/// output, and the lot goes back to `incoming/`. Then its open output
/// files (`.jsonl.open` and `.dqb.open`) are finished.
///
/// Claims are settled in the order of their offsets, so a cut also
/// removes the bytes of every later lot of that file, and those lots are
/// returned too.
///
/// # Errors
///
/// `Io` if a folder cannot be listed or a file cannot be read, cut or
/// renamed.
pub fn recover_consumer(
    paths: &QueuePaths,
    id: &str,
    output_dir: &Path,
    durable: bool,
) -> Result<ConsumerReport> {
    let mut report = ConsumerReport::default();
    let processing = &paths.processing;
    let entries = std::fs::read_dir(processing).map_err(|e| Error::io("list", processing, e))?;
    let mut claims = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", processing, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(claim) = ClaimName::parse(&name) else {
            continue;
        };
        if open_file_owner(&claim.output) != Some(id) {
            continue;
        }
        claims.push((claim, name));
    }
    claims.sort_by(|(a, _), (b, _)| (&a.output, a.offset).cmp(&(&b.output, b.offset)));

    for (claim, name) in claims {
        let from = processing.join(&name);
        let output = output_dir.join(&claim.output);
        match fsio::open_regular(&output, true) {
            Ok(file) => {
                if complete_in_output(&file, &output, &from, &claim)? {
                    // A durable consumer syncs the output before it
                    // archives, so these bytes may still be in the page
                    // cache only.
                    if durable {
                        file.sync_data()
                            .map_err(|e| Error::io("fsync", &output, e))?;
                    }
                    if archive_completed(paths, &from, &claim.ready, durable)? {
                        log::warn!(
                            target: "diskq::recovery",
                            "archived lot={} of consumer id={id}: its lines were in {} already",
                            claim.ready,
                            claim.output
                        );
                        report.completed += 1;
                        continue;
                    }
                }
                // The output contains the committed lots up to `offset`, then
                // maybe part of this one: cut it there, then hand the lot
                // back.
                let len = file
                    .metadata()
                    .map_err(|e| Error::io("stat", &output, e))?
                    .len();
                if len > claim.offset {
                    file.set_len(claim.offset)
                        .map_err(|e| Error::io("truncate", &output, e))?;
                    if durable {
                        file.sync_all()
                            .map_err(|e| Error::io("fsync", &output, e))?;
                    }
                }
            }
            // NOTE: the lot is returned even so. If someone moved the file
            // elsewhere, the lines it already contains come out twice.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::warn!(
                    target: "diskq::recovery",
                    "output file {} of claimed lot={} is missing",
                    output.display(),
                    claim.ready
                );
            }
            Err(e) => return Err(Error::io("open", &output, e)),
        }
        let to = paths.incoming.join(&claim.ready);
        fsio::rename_noreplace(&from, &to).map_err(|e| Error::io("return lot to", &to, e))?;
        if durable {
            for dir in [&paths.incoming, processing] {
                fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
            }
        }
        log::warn!(target: "diskq::recovery", "returned lot={} of consumer id={id}", claim.ready);
        report.returned += 1;
    }

    if output_dir.is_dir() {
        let entries =
            std::fs::read_dir(output_dir).map_err(|e| Error::io("list", output_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", output_dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if open_file_owner(&name) == Some(id) {
                // A locked file belongs to a live consumer with the same
                // id on another queue that writes to the same folder.
                let path = output_dir.join(&name);
                let Some(_lock) = lock_if_free(&path)? else {
                    continue;
                };
                let (format, _) =
                    split_output_name(&name, true).expect("an owned name is an open output name");
                cut_torn_tail(&output_dir.join(&name), format, durable)?;
                finish_open_file(output_dir, &name, durable)?;
                report.finished += 1;
            }
        }
    }
    Ok(report)
}

/// Returns true if the output contains the whole claimed lot, byte for byte,
/// starting at the claim's offset, and the lot matches the line count and
/// CRC-32 in its name if it has them. Only a lot copied unchanged can
/// pass; a lot whose lines were rewritten (binary records, escaped
/// separators) never does, and is cut and returned instead. The checksum
/// and the final newline matter because the consumer copies a lot's
/// lines before it checks them, and a crash can come in between.
fn complete_in_output(
    output: &File,
    output_path: &Path,
    lot: &Path,
    claim: &ClaimName,
) -> Result<bool> {
    let offset = claim.offset;
    let lot_file = match fsio::open_regular(lot, false) {
        Ok(file) => file,
        // Not a regular file: the consumer rejects it on the next claim.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Ok(false),
        Err(e) => return Err(Error::io("open", lot, e)),
    };
    let lot_len = lot_file
        .metadata()
        .map_err(|e| Error::io("stat", lot, e))?
        .len();
    let out_len = output
        .metadata()
        .map_err(|e| Error::io("stat", output_path, e))?
        .len();
    let fits = matches!(offset.checked_add(lot_len), Some(end) if end <= out_len);
    if lot_len == 0 || !fits {
        return Ok(false);
    }

    let mut lot_buf = vec![0u8; 64 * 1024];
    let mut out_buf = vec![0u8; 64 * 1024];
    let mut crc = crc32fast::Hasher::new();
    let mut lines = 0u64;
    let mut last = 0u8;
    let mut done = 0u64;
    while done < lot_len {
        let n = (lot_len - done).min(lot_buf.len() as u64) as usize;
        lot_file
            .read_exact_at(&mut lot_buf[..n], done)
            .map_err(|e| Error::io("read", lot, e))?;
        output
            .read_exact_at(&mut out_buf[..n], offset + done)
            .map_err(|e| Error::io("read", output_path, e))?;
        if lot_buf[..n] != out_buf[..n] {
            return Ok(false);
        }
        crc.update(&lot_buf[..n]);
        lines += memchr::memchr_iter(b'\n', &lot_buf[..n]).count() as u64;
        last = lot_buf[n - 1];
        done += n as u64;
    }
    // The consumer ends an unterminated last line with a newline, or
    // rejects the lot if it has a checksum, so a lot that does not end
    // in one was never copied unchanged: the bytes are a partial copy.
    if last != b'\n' {
        return Ok(false);
    }
    let checksum = ReadyName::parse(&claim.ready).and_then(|ready| ready.checksum);
    Ok(match checksum {
        Some((want_lines, want_crc)) => want_lines == lines && want_crc == crc.finalize(),
        None => true,
    })
}

/// Renames a claim whose lines are all in the output into `archive/`, as
/// the consumer would have. Returns false, and leaves the claim, if a lot
/// of that name is archived already: the consumer then sets it aside.
fn archive_completed(paths: &QueuePaths, claim: &Path, ready: &str, durable: bool) -> Result<bool> {
    if crate::archive::is_archived(&paths.archive, ready) {
        return Ok(false);
    }
    let to = paths.archive.join(format!("{ready}{DONE_SUFFIX}"));
    match fsio::rename_noreplace(claim, &to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io("archive lot as", &to, e)),
    }
    if durable {
        for dir in [&paths.archive, &paths.processing] {
            fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
        }
    }
    Ok(true)
}

/// Opens `path` and takes its lock. Returns `None` when a live process
/// holds the lock or the file is gone; the lock lasts while the returned
/// file is open.
fn lock_if_free(path: &Path) -> Result<Option<File>> {
    let file = match fsio::open_regular(path, false) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    if fsio::try_lock(&file).map_err(|e| Error::io("lock", path, e))? {
        Ok(Some(file))
    } else {
        Ok(None)
    }
}

/// What [`recover_queue`] did for one consumer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecovery {
    /// A live process holds the id; nothing was touched.
    Running,
    /// The id has no recorded output folder, so its claims were left.
    NoOutputRecord,
    /// The dead consumer's work was undone.
    Recovered(ConsumerReport),
}

/// What [`recover_queue`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueRecovery {
    /// The producers' side.
    pub parts: PartReport,
    /// Each consumer id found in `consumers/`, with what was done.
    pub consumers: Vec<(String, ConsumerRecovery)>,
}

/// Recovers a whole queue: publishes dead producers' lots, and for every
/// consumer id whose lock is free, returns its claimed lots and finishes
/// its output files. Live producers and consumers are left alone.
///
/// # Errors
///
/// `InvalidConfig` for a bad queue directory, `Io` as for
/// [`recover_parts`] and [`recover_consumer`].
pub fn recover_queue(dir: &Path, durable: bool) -> Result<QueueRecovery> {
    let paths = QueuePaths::prepare(dir)?;
    let mut report = QueueRecovery {
        parts: recover_parts(&paths, durable)?,
        consumers: Vec::new(),
    };
    let consumers = &paths.consumers;
    let mut ids: Vec<String> = std::fs::read_dir(consumers)
        .map_err(|e| Error::io("list", consumers, e))?
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".lock")
                .map(str::to_string)
        })
        .collect();
    ids.sort();

    for id in ids {
        let lock_path = consumers.join(format!("{id}.lock"));
        let lock = match fsio::open_regular(&lock_path, false) {
            Ok(lock) => lock,
            Err(e) => {
                log::warn!(target: "diskq::recovery", "skipping consumer lock {}: {e}", lock_path.display());
                continue;
            }
        };
        let outcome = if !fsio::try_lock(&lock).map_err(|e| Error::io("lock", &lock_path, e))? {
            ConsumerRecovery::Running
        } else {
            match crate::consumer::recorded_output_dir(&paths, &id) {
                None => ConsumerRecovery::NoOutputRecord,
                Some(out) => {
                    ConsumerRecovery::Recovered(recover_consumer(&paths, &id, &out, durable)?)
                }
            }
        };
        // The lock is released when `lock` closes, after the repair.
        drop(lock);
        report.consumers.push((id, outcome));
    }
    Ok(report)
}
