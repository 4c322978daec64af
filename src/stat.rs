//! Counts of what a queue holds, for `diskq stat`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::consumer::recorded_output_dir;
use crate::error::{Error, Result};
use crate::lot::{QueuePaths, ReadyName, DONE_SUFFIX, PART_SUFFIX, READY_SUFFIX};
use crate::output::{OPEN_SUFFIX, OUTPUT_PREFIX, OUTPUT_SUFFIX};

/// A snapshot of one queue directory and its consumers' output folders.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Lots in `archive/`.
    pub archived_lots: u64,
    /// Lines in archived lots whose names record a line count.
    pub archived_lines: u64,
    /// Lots in `quarantine/`.
    pub quarantined_lots: u64,
    /// Finished output files in the consumers' output folders.
    pub output_files: u64,
    /// Lines in finished and open output files.
    pub output_lines: u64,
    /// The output folders recorded by consumers of this queue.
    pub output_dirs: Vec<PathBuf>,
}

/// Counts the lots and output lines of the queue at `dir`.
///
/// # Errors
///
/// `Io` if a folder of the queue cannot be listed.
pub fn stat(dir: &Path) -> Result<QueueStats> {
    if !dir.is_dir() {
        let msg = format!(
            "queue directory {} does not exist or is not a directory",
            dir.display()
        );
        return Err(Error::new(crate::error::ErrorKind::InvalidConfig, msg));
    }
    let paths = QueuePaths::new(dir);
    let mut stats = QueueStats::default();
    let now = SystemTime::now();

    for (name, meta) in list(&paths.incoming)? {
        if name.ends_with(READY_SUFFIX) {
            stats.ready_lots += 1;
            stats.ready_bytes += meta.len();
            if let Ok(modified) = meta.modified() {
                let age = now
                    .duration_since(modified)
                    .unwrap_or(Duration::ZERO)
                    .as_millis() as u64;
                stats.oldest_ready_age_ms =
                    Some(stats.oldest_ready_age_ms.map_or(age, |a| a.max(age)));
            }
        } else if name.ends_with(PART_SUFFIX) {
            stats.part_lots += 1;
        }
    }
    stats.processing_lots = list(&paths.processing)?.len() as u64;
    for (name, _) in list(&paths.archive)? {
        let Some(ready) = name.strip_suffix(DONE_SUFFIX) else {
            continue;
        };
        stats.archived_lots += 1;
        if let Some((lines, _)) = ReadyName::parse(ready).and_then(|r| r.checksum) {
            stats.archived_lines += lines;
        }
    }
    stats.quarantined_lots = list(&paths.quarantine)?
        .iter()
        .filter(|(name, _)| !name.ends_with(".reason"))
        .count() as u64;

    for (name, _) in list(&paths.consumers)? {
        let Some(id) = name.strip_suffix(".out") else {
            continue;
        };
        if let Some(out) = recorded_output_dir(&paths, id) {
            if !stats.output_dirs.contains(&out) {
                stats.output_dirs.push(out);
            }
        }
    }
    for out in stats.output_dirs.clone() {
        for (name, _) in list(&out)? {
            if !name.starts_with(OUTPUT_PREFIX) {
                continue;
            }
            let finished = name.ends_with(OUTPUT_SUFFIX);
            if finished || name.ends_with(OPEN_SUFFIX) {
                stats.output_files += u64::from(finished);
                stats.output_lines += count_lines(&out.join(&name))?;
            }
        }
    }
    Ok(stats)
}

fn list(dir: &Path) -> Result<Vec<(String, std::fs::Metadata)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        match entry.metadata() {
            Ok(meta) => out.push((name, meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", &dir.join(&name), e)),
        }
    }
    Ok(out)
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
