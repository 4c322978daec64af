//! Lot names and the queue's directory layout.
//!
//! A lot's life, as file names inside the queue directory:
//!
//! ```text
//! incoming/.<id>.new                      created and locked, still empty
//! incoming/<id>.part                      being written by a live producer
//! incoming/<id>.<lines>.<crc32>.ready     published, waiting for a consumer
//! processing/<ready>~<output>~<offset>    claimed by the consumer writing <output>
//! archive/<ready>.done                    its lines are in the output
//! quarantine/<ready>, <ready>.reason      rejected, with the reason as text
//! ```
//!
//! `<id>` is `<nanoseconds since 1970, 20 digits>-<host>-<pid>-<random>-<n>`,
//! so names sort by creation time and never collide across threads,
//! processes or hosts. `<lines>` and `<crc32>` (8 lowercase hex digits) are
//! the line count and the CRC-32 of the lot's bytes, so the consumer can
//! check the lot while `cat` still shows plain JSON lines. A `.ready` file
//! without them (made by hand or by another tool) is accepted as an
//! unchecked lot: its lines are validated, but it has no checksum.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Suffix of a lot being written.
pub const PART_SUFFIX: &str = ".part";
/// Suffix of a published lot.
pub const READY_SUFFIX: &str = ".ready";
/// Suffix of an archived lot.
pub const DONE_SUFFIX: &str = ".done";
/// Separator between a claimed lot's name and the consumer's record of
/// where its lines go. Lot names never contain it.
pub(crate) const CLAIM_SEPARATOR: char = '~';
/// Longest lot name accepted from the queue, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 160;

/// The sub-folders of one queue directory.
#[derive(Debug, Clone)]
pub struct QueuePaths {
    /// The queue directory itself.
    pub root: PathBuf,
    /// Lots being written and lots waiting for a consumer.
    pub incoming: PathBuf,
    /// Lots claimed by a consumer.
    pub processing: PathBuf,
    /// Lots whose lines are in the output.
    pub archive: PathBuf,
    /// Lots that failed validation, each with a `.reason` file.
    pub quarantine: PathBuf,
    /// Consumer lock files and their output folder records.
    pub consumers: PathBuf,
}

impl QueuePaths {
    /// Returns the layout under `root`, without touching the disk.
    pub fn new(root: &Path) -> QueuePaths {
        QueuePaths {
            root: root.to_path_buf(),
            incoming: root.join("incoming"),
            processing: root.join("processing"),
            archive: root.join("archive"),
            quarantine: root.join("quarantine"),
            consumers: root.join("consumers"),
        }
    }

    /// Checks that `root` is a writable directory and creates the
    /// sub-folders that are missing.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` naming the path if `root` is missing, not a
    /// directory or not writable; `Io` if a sub-folder cannot be made.
    pub fn prepare(root: &Path) -> Result<QueuePaths> {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                let msg = format!("queue path {} is not a directory", root.display());
                return Err(Error::new(ErrorKind::InvalidConfig, msg));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let msg = format!(
                    "queue directory {} does not exist; create it first",
                    root.display()
                );
                return Err(Error::new(ErrorKind::InvalidConfig, msg));
            }
            // A path that cannot name a directory at all is the caller's
            // mistake, like a missing one, not a failing disk.
            Err(e) if is_unusable_path(&e) => {
                let msg = format!("queue path {} is unusable: {e}", root.display());
                return Err(Error::new(ErrorKind::InvalidConfig, msg));
            }
            Err(e) => return Err(Error::io("open queue directory", root, e)),
        }
        let paths = QueuePaths::new(root);
        for dir in paths.all() {
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(e) => return Err(Error::io("create queue folder", dir, e)),
            }
            if !is_writable(dir) {
                let msg = format!("queue folder {} is not writable", dir.display());
                return Err(Error::new(ErrorKind::InvalidConfig, msg));
            }
        }
        Ok(paths)
    }

    pub(crate) fn all(&self) -> [&Path; 5] {
        [
            &self.incoming,
            &self.processing,
            &self.archive,
            &self.quarantine,
            &self.consumers,
        ]
    }
}

/// What a published lot's name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyName {
    /// The whole file name, ending in `.ready`.
    pub name: String,
    /// Line count and CRC-32 recorded by the producer, if any.
    pub checksum: Option<(u64, u32)>,
}

impl ReadyName {
    /// Parses a file name from `incoming/`. Returns `None` for anything
    /// that is not a well-formed `.ready` name.
    pub fn parse(name: &str) -> Option<ReadyName> {
        let stem = name.strip_suffix(READY_SUFFIX)?;
        if !is_safe_name(name) || stem.is_empty() {
            return None;
        }
        let checksum = parse_checksum(stem);
        Some(ReadyName {
            name: name.to_string(),
            checksum,
        })
    }
}

fn parse_checksum(stem: &str) -> Option<(u64, u32)> {
    let (rest, crc) = stem.rsplit_once('.')?;
    let (id, lines) = rest.rsplit_once('.')?;
    if id.is_empty() || crc.len() != 8 || !crc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if lines.is_empty() || !lines.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((lines.parse().ok()?, u32::from_str_radix(crc, 16).ok()?))
}

/// Returns true for errors that say a path cannot be used as given:
/// a file where a directory is expected, a name too long, a symlink loop.
pub(crate) fn is_unusable_path(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP)
    )
}

fn is_writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;

    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c_path is a live NUL-terminated string; access only reads it.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

/// Returns true for names a lot may have: printable ASCII without path
/// separators, a leading dot or the claim separator, and not too long.
pub(crate) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Returns the published name of lot `id` holding `lines` lines with the
/// given CRC-32.
pub(crate) fn ready_name(id: &str, lines: u64, crc: u32) -> String {
    format!("{id}.{lines}.{crc:08x}{READY_SUFFIX}")
}

/// A claimed lot's name in `processing/`, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimName {
    pub ready: String,
    pub output: String,
    pub offset: u64,
}

impl ClaimName {
    pub fn format(&self) -> String {
        let sep = CLAIM_SEPARATOR;
        format!("{}{sep}{}{sep}{}", self.ready, self.output, self.offset)
    }

    pub fn parse(name: &str) -> Option<ClaimName> {
        let mut parts = name.rsplitn(3, CLAIM_SEPARATOR);
        let offset = parts.next()?.parse().ok()?;
        let output = parts.next()?.to_string();
        let ready = parts.next()?.to_string();
        ReadyName::parse(&ready)?;
        Some(ClaimName {
            ready,
            output,
            offset,
        })
    }
}

/// Makes lot ids for one producer.
#[derive(Debug)]
pub(crate) struct LotNamer {
    host: String,
    pid: u32,
    token: u32,
}

static NEXT_LOT: AtomicU64 = AtomicU64::new(0);

impl LotNamer {
    pub fn new() -> LotNamer {
        let mut bytes = [0u8; 4];
        // A failed draw leaves zeros; the name stays unique through the
        // time, the pid and the counter, and creation is exclusive anyway.
        let _ = getrandom::getrandom(&mut bytes);
        LotNamer {
            host: host_label(),
            pid: std::process::id(),
            token: u32::from_le_bytes(bytes),
        }
    }

    /// Returns a fresh id: creation time first, so ids sort by age.
    pub fn next_id(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = NEXT_LOT.fetch_add(1, Ordering::Relaxed);
        format!(
            "{nanos:020}-{}-{}-{:08x}-{n}",
            self.host, self.pid, self.token
        )
    }
}

/// Returns the host name cut to 24 safe characters, or `host`.
fn host_label() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which lives across
    // the call; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let raw = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let label: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(24)
        .collect();
    if label.is_empty() {
        "host".to_string()
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_name_round_trips() {
        let name = ready_name("00000000000000000001-h-1-0000abcd-0", 500, 0xdead_beef);
        let parsed = ReadyName::parse(&name).unwrap();
        assert_eq!(parsed.checksum, Some((500, 0xdead_beef)));
    }

    #[test]
    fn hand_made_ready_is_unchecked() {
        let parsed = ReadyName::parse("mine.ready").unwrap();
        assert_eq!(parsed.checksum, None);
    }

    #[test]
    fn unsafe_names_are_rejected() {
        for name in [
            ".hidden.ready",
            "a~b.ready",
            "a/b.ready",
            ".ready",
            "x.part",
            "é.ready",
        ] {
            assert!(ReadyName::parse(name).is_none(), "{name}");
        }
    }

    #[test]
    fn claim_name_round_trips() {
        let claim = ClaimName {
            ready: "a.3.0000000f.ready".into(),
            output: "queue_transitions_x_main.jsonl.open".into(),
            offset: 12345,
        };
        assert_eq!(ClaimName::parse(&claim.format()), Some(claim));
    }

    #[test]
    fn ids_sort_by_creation() {
        let namer = LotNamer::new();
        let a = namer.next_id();
        let b = namer.next_id();
        assert!(a < b, "{a} !< {b}");
    }
}
