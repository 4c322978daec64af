//! What happens to lots after they are consumed: optional gzip
//! compression (`<lot>.done` becomes `<lot>.done.gz`) and a retention
//! policy that deletes the oldest archived lots.
//!
//! Only files in `archive/` are ever compressed or deleted, so a lot is
//! never removed before its lines are in the output.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::lot::DONE_SUFFIX;

/// Suffix of a compressed archived lot.
pub const DONE_GZ_SUFFIX: &str = ".done.gz";

/// Returns true if `archive/` holds lot `ready_name`, plain or compressed.
pub(crate) fn is_archived(archive: &Path, ready_name: &str) -> bool {
    archive.join(format!("{ready_name}{DONE_SUFFIX}")).exists()
        || archive
            .join(format!("{ready_name}{DONE_GZ_SUFFIX}"))
            .exists()
}

/// Compresses `archive/<lot>.done` into `archive/<lot>.done.gz`. The
/// compressed file is written under a temporary name in `work_dir`, then
/// renamed into place, then the plain file is removed: a crash leaves
/// either the plain file alone, or both (the same lines twice over, which
/// retention removes in time), or a temporary file that
/// [`remove_temp_files`] deletes.
#[cfg(feature = "gzip")]
pub(crate) fn compress(
    done: &Path,
    work_dir: &Path,
    temp_prefix: &str,
    durable: bool,
) -> Result<std::path::PathBuf> {
    use crate::fsio;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    let name = done
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let temp = work_dir.join(format!("{temp_prefix}{name}.gz"));
    let target = done.with_file_name(format!("{name}.gz"));

    let mut input =
        fsio::open_regular(done, false).map_err(|e| Error::io("open archived lot", done, e))?;
    let output = fsio::create_new(&temp).map_err(|e| Error::io("create", &temp, e))?;
    let result = (|| {
        let mut encoder = GzEncoder::new(io::BufWriter::new(output), Compression::fast());
        io::copy(&mut input, &mut encoder)?;
        let file = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        if durable {
            file.sync_all()?;
        }
        Ok::<(), io::Error>(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io("compress archived lot into", &temp, e));
    }
    if let Err(e) = fsio::rename_noreplace(&temp, &target) {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io("rename compressed lot to", &target, e));
    }
    std::fs::remove_file(done).map_err(|e| Error::io("remove", done, e))?;
    if durable {
        let dir = target.parent().unwrap_or(Path::new("."));
        fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    Ok(target)
}

/// Removes the temporary files whose names start with `prefix` in `dir`:
/// leftovers of a compression that a crash interrupted.
pub(crate) fn remove_temp_files(dir: &Path, prefix: &str) -> Result<u64> {
    let mut removed = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix))
        {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Limits on what `archive/` keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Archived lots modified longer ago than this are deleted.
    pub max_age: Option<Duration>,
    /// The oldest archived lots are deleted until the rest fit in this
    /// many bytes.
    pub max_bytes: Option<u64>,
}

/// What [`apply_retention`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Archived lots deleted.
    pub deleted: u64,
    /// Their size in bytes.
    pub bytes: u64,
}

/// Deletes archived lots, oldest first by modification time, until
/// `policy` holds. Only `*.done` and `*.done.gz` files in `archive` are
/// considered.
///
/// # Errors
///
/// `Io` if the folder cannot be listed. A file that vanished meanwhile
/// (another consumer applying the same policy) is skipped.
pub fn apply_retention(
    archive: &Path,
    policy: &Retention,
    now: SystemTime,
) -> Result<RetentionReport> {
    let mut report = RetentionReport::default();
    if policy.max_age.is_none() && policy.max_bytes.is_none() {
        return Ok(report);
    }
    let mut lots = Vec::new();
    let mut total = 0u64;
    let entries = std::fs::read_dir(archive).map_err(|e| Error::io("list", archive, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", archive, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') || !(name.ends_with(DONE_SUFFIX) || name.ends_with(DONE_GZ_SUFFIX))
        {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(now);
        total += meta.len();
        lots.push((modified, name, meta.len()));
    }
    lots.sort();

    for (modified, name, len) in lots {
        let too_old = policy
            .max_age
            .is_some_and(|age| now.duration_since(modified).unwrap_or_default() > age);
        let too_big = policy.max_bytes.is_some_and(|max| total > max);
        if !too_old && !too_big {
            break;
        }
        let path = archive.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                report.deleted += 1;
                report.bytes += len;
                total -= len;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => total -= len,
            Err(e) => return Err(Error::io("remove archived lot", &path, e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn touch(dir: &Path, name: &str, len: usize, age: Duration) {
        let path = dir.join(name);
        std::fs::write(&path, vec![b'x'; len]).unwrap();
        let file = File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn retention_deletes_oldest_until_size_fits() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.ready.done", "b.ready.done.gz", "c.ready.done"]
            .iter()
            .enumerate()
        {
            touch(
                dir.path(),
                name,
                100,
                Duration::from_secs(100 - 10 * i as u64),
            );
        }
        touch(dir.path(), "notes.txt", 1000, Duration::from_secs(1000));
        let policy = Retention {
            max_bytes: Some(150),
            ..Retention::default()
        };
        let report = apply_retention(dir.path(), &policy, SystemTime::now()).unwrap();
        assert_eq!(report.deleted, 2);
        assert!(dir.path().join("c.ready.done").exists());
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn retention_deletes_by_age() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "old.ready.done", 10, Duration::from_secs(3600));
        touch(dir.path(), "new.ready.done", 10, Duration::from_secs(1));
        let policy = Retention {
            max_age: Some(Duration::from_secs(60)),
            ..Retention::default()
        };
        let report = apply_retention(dir.path(), &policy, SystemTime::now()).unwrap();
        assert_eq!(report.deleted, 1);
        assert!(!dir.path().join("old.ready.done").exists());
        assert!(dir.path().join("new.ready.done").exists());
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn compress_replaces_plain_lot() {
        use std::io::Read;

        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("x.1.00000000.ready.done");
        std::fs::write(&done, b"{\"a\":1}\n").unwrap();
        let gz = compress(&done, dir.path(), ".gz-test-", false).unwrap();
        assert!(!done.exists());
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(gz).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\":1}\n");
    }
}
