//! Consolidated output files.
//!
//! A consumer appends to `queue_transitions_<time>_<id>.jsonl.open` and
//! renames it to `queue_transitions_<time>_<id>.jsonl` when it rolls over
//! or closes, so a reader globbing `*.jsonl` only ever sees finished files
//! made of whole lines. `<time>` is UTC, like `20261204T161549.123456Z`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::fsio;

/// Prefix of every output file name.
pub const OUTPUT_PREFIX: &str = "queue_transitions_";
/// Suffix of a finished output file.
pub const OUTPUT_SUFFIX: &str = ".jsonl";
/// Suffix of the output file a consumer is appending to.
pub const OPEN_SUFFIX: &str = ".jsonl.open";

/// The output file a consumer is appending to.
#[derive(Debug)]
pub(crate) struct OutputFile {
    pub file: File,
    pub dir: PathBuf,
    /// File name, ending in [`OPEN_SUFFIX`].
    pub name: String,
    /// Bytes of committed lots; the file holds nothing past this.
    pub len: u64,
    /// Lines of committed lots.
    pub lines: u64,
}

impl OutputFile {
    /// Creates a new, empty output file for consumer `id` in `dir`.
    pub fn create(dir: &Path, id: &str, durable: bool) -> Result<OutputFile> {
        let stamp = timestamp();
        for n in 0u32.. {
            let time = if n == 0 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let base = format!("{OUTPUT_PREFIX}{time}_{id}");
            let name = format!("{base}{OPEN_SUFFIX}");
            let path = dir.join(&name);
            if dir.join(format!("{base}{OUTPUT_SUFFIX}")).exists() {
                continue;
            }
            let file = match fsio::create_new(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create output file", &path, e)),
            };
            if durable {
                fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
            }
            return Ok(OutputFile {
                file,
                dir: dir.to_path_buf(),
                name,
                len: 0,
                lines: 0,
            });
        }
        unreachable!("the name loop only ends by returning")
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Renames the file to its finished name; removes it if it is empty.
    /// Returns the finished path, if any.
    pub fn finish(self, durable: bool) -> Result<Option<PathBuf>> {
        if durable {
            let path = self.path();
            self.file
                .sync_all()
                .map_err(|e| Error::io("fsync output file", &path, e))?;
        }
        finish_open_file(&self.dir, &self.name, durable)
    }
}

/// Renames the open output file `name` in `dir` to its finished name,
/// never over an existing file, or removes it if it is empty.
pub(crate) fn finish_open_file(dir: &Path, name: &str, durable: bool) -> Result<Option<PathBuf>> {
    let path = dir.join(name);
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io("read output file", &path, e))?
        .len();
    if len == 0 {
        std::fs::remove_file(&path).map_err(|e| Error::io("remove empty output file", &path, e))?;
        return Ok(None);
    }
    let base = name.strip_suffix(OPEN_SUFFIX).unwrap_or(name);
    for n in 0u32.. {
        let finished = if n == 0 {
            dir.join(format!("{base}{OUTPUT_SUFFIX}"))
        } else {
            dir.join(format!("{base}-{n}{OUTPUT_SUFFIX}"))
        };
        match fsio::rename_noreplace(&path, &finished) {
            Ok(()) => {
                if durable {
                    fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
                }
                log::info!(target: "queue_consumer", "finished output file {}", finished.display());
                return Ok(Some(finished));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("rename output file to", &finished, e)),
        }
    }
    unreachable!("the name loop only ends by returning")
}

/// Returns the consumer id in an open output file's name, if it is one.
pub(crate) fn open_file_owner(name: &str) -> Option<&str> {
    let middle = name
        .strip_prefix(OUTPUT_PREFIX)?
        .strip_suffix(OPEN_SUFFIX)?;
    let (_time, id) = middle.split_once('_')?;
    Some(id)
}

fn timestamp() -> String {
    humantime::format_rfc3339_micros(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_read_from_open_name() {
        let name = "queue_transitions_20261204T161549.123456Z-1_bot_a.jsonl.open";
        assert_eq!(open_file_owner(name), Some("bot_a"));
        assert_eq!(open_file_owner("queue_transitions_x_a.jsonl"), None);
    }

    #[test]
    fn timestamp_has_no_separators() {
        let stamp = timestamp();
        assert!(!stamp.contains(':') && !stamp.contains('_'), "{stamp}");
        assert!(stamp.ends_with('Z'), "{stamp}");
    }
}
