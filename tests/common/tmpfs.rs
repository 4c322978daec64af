//! Tiny tmpfs mounts in a private mount namespace, files that fill them
//! up, and a logger that keeps the library's log records for checks.
//!
//! The mounts exist only inside the namespace, so the whole scenario
//! (producers, consumer and checks) runs in a worker process started
//! there. The host's mount table never shows them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Size of the queue's tmpfs.
pub const QUEUE_TMPFS: &str = "2m";
/// Size of the output folder's tmpfs.
pub const OUT_TMPFS: &str = "1m";

/// Returns the `unshare` arguments that give a private mount namespace
/// in which `mount -t tmpfs` works: `unshare -m` as root, else
/// `unshare -r -m` in a user namespace. None if neither works.
pub fn namespace_prefix(scratch: &Path) -> Option<Vec<String>> {
    let probe = scratch.join("mount-probe");
    std::fs::create_dir_all(&probe).ok()?;
    let candidates: [&[&str]; 2] = [&["unshare", "-m"], &["unshare", "-r", "-m"]];
    for prefix in candidates {
        let status = Command::new(prefix[0])
            .args(&prefix[1..])
            .args([
                "--",
                "sh",
                "-c",
                r#"mount -t tmpfs -o size=64k none "$1""#,
                "sh",
            ])
            .arg(&probe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            return Some(prefix.iter().map(|s| s.to_string()).collect());
        }
    }
    None
}

/// Returns `cmd` run in a private mount namespace where `queue` is a
/// [`QUEUE_TMPFS`] tmpfs and `out` an [`OUT_TMPFS`] one.
pub fn in_namespace(prefix: &[String], queue: &Path, out: &Path, cmd: &Command) -> Command {
    let script = format!(
        r#"mount -t tmpfs -o size={QUEUE_TMPFS} none "$1" && mount -t tmpfs -o size={OUT_TMPFS} none "$2" && shift 2 && exec "$@""#
    );
    let mut outer = Command::new(&prefix[0]);
    outer
        .args(&prefix[1..])
        .args(["--", "sh", "-c", &script, "sh"])
        .arg(queue)
        .arg(out)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    outer
}

/// Creates `dir/name` and writes to it until the file system is full,
/// in 64 KiB then 1-byte writes, so not even a page is left. Returns
/// the file's path and size.
pub fn fill(dir: &Path, name: &str) -> (PathBuf, u64) {
    let path = dir.join(name);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut size = 0u64;
    let chunk = vec![0u8; 64 * 1024];
    for piece in [&chunk[..], &chunk[..1]] {
        loop {
            match file.write(piece) {
                Ok(0) => break,
                Ok(n) => size += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("fill {}: {e}", path.display()),
            }
        }
    }
    (path, size)
}

/// Like [`fill`], then frees `leave` bytes of the file again.
pub fn fill_leaving(dir: &Path, name: &str, leave: u64) -> PathBuf {
    let (path, size) = fill(dir, name);
    let file = File::options()
        .write(true)
        .open(&path)
        .expect("reopen a filler");
    file.set_len(size.saturating_sub(leave))
        .expect("shrink a filler");
    path
}

/// One log record kept by [`CaptureLogger`].
#[derive(Debug, Clone)]
pub struct Record {
    /// Its level.
    pub level: log::Level,
    /// Its target, such as `diskq::producer`.
    pub target: String,
    /// Its formatted message.
    pub message: String,
}

/// A logger that keeps every record in memory.
#[derive(Debug, Default)]
pub struct CaptureLogger {
    records: Mutex<Vec<Record>>,
}

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let entry = Record {
            level: record.level(),
            target: record.target().to_string(),
            message: record.args().to_string(),
        };
        self.records.lock().expect("log lock").push(entry);
    }

    fn flush(&self) {}
}

impl CaptureLogger {
    /// Returns the records kept so far.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().expect("log lock").clone()
    }
}

/// Installs a [`CaptureLogger`] as this process's logger (once) and
/// returns it.
pub fn capture_logs() -> &'static CaptureLogger {
    static LOGGER: OnceLock<&'static CaptureLogger> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let logger: &'static CaptureLogger = Box::leak(Box::default());
        log::set_logger(logger).expect("no other logger is installed in a worker");
        log::set_max_level(log::LevelFilter::Trace);
        logger
    })
}
