//! Helpers shared by the crash and fault-injection tests.
//!
//! * [`lots`]: hand-made lots and exactly-once checks by `seq`, for the
//!   group commit tests.
//! * [`keys`]: transition keys, the payload each key stands for, and the
//!   "pushed" and "acked" logs that workers keep.
//! * [`scan`]: output and queue scans, and the exactly-once verdict.
//! * [`worker`]: Rust worker roles run in a re-executed test binary.
//! * [`procs`]: spawning, tracing and killing child processes, and the
//!   C producer worker.
//! * [`tmpfs`]: tiny tmpfs mounts in a private mount namespace.
//! * [`trace`]: strace logs, and the order of syncs around renames.
//!
//! A test binary that spawns Rust workers defines this entry point:
//!
//! ```ignore
//! #[test]
//! #[ignore = "entry point of worker child processes"]
//! fn worker_process() {
//!     common::worker::run_if_requested();
//! }
//! ```

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod keys;
pub mod lots;
pub mod procs;
pub mod rng;
pub mod scan;
pub mod tmpfs;
pub mod trace;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diskq::{Consumer, ConsumerOptions};

/// A consumer id with its output folder.
#[derive(Debug, Clone)]
pub struct ConsumerSlot {
    /// Consumer id.
    pub id: String,
    /// Output folder.
    pub out: PathBuf,
}

/// Consumes everything left in `queue` in this process: publishes the
/// lots of dead producers, then for each consumer (which must not be
/// running) repairs its id and polls until no lot is waiting. Panics if
/// lots keep appearing after 50 rounds.
pub fn drain_queue(queue: &Path, consumers: &[ConsumerSlot]) {
    diskq::recover_queue(queue, false).expect("recover the queue before draining");
    for round in 0..50 {
        let mut consumed = 0;
        for slot in consumers {
            let opts = ConsumerOptions {
                output_dir: slot.out.clone(),
                consumer_id: slot.id.clone(),
                recover_interval: None,
                ..ConsumerOptions::default()
            };
            let mut c = open_consumer_retrying(queue, opts);
            loop {
                let report = c
                    .poll()
                    .unwrap_or_else(|e| panic!("drain poll of {}: {e}", slot.id));
                consumed += report.lots + report.quarantined;
                if report.lots == 0 && report.quarantined == 0 {
                    break;
                }
            }
            c.close().expect("close the draining consumer");
        }
        let waiting = scan::files_ending(&queue.join("incoming"), ".ready").len();
        if consumed == 0 && waiting == 0 {
            return;
        }
        assert!(round < 49, "the queue did not drain after 50 rounds");
    }
}

/// Opens a consumer, retrying for up to 5 s while its id is locked.
///
/// NOTE: the lock is an `flock`, and a child that another test thread
/// forks shares the parent's open files until it calls exec. A lock
/// that this process just released can therefore look taken for a
/// moment, which is not what these tests are about.
fn open_consumer_retrying(queue: &Path, opts: ConsumerOptions) -> Consumer {
    let start = std::time::Instant::now();
    loop {
        match Consumer::open(queue, opts.clone()) {
            Ok(c) => return c,
            Err(e)
                if e.kind() == diskq::ErrorKind::Locked
                    && start.elapsed() < Duration::from_secs(5) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("open consumer {} to drain: {e}", opts.consumer_id),
        }
    }
}

/// Runs `diskq recover <queue>` to completion and returns its stdout.
pub fn cli_recover(queue: &Path) -> String {
    let out = procs::diskq_cli()
        .arg("recover")
        .arg(queue)
        .output()
        .expect("run diskq recover");
    assert!(
        out.status.success(),
        "diskq recover failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates a fresh temporary folder with `queue/`, `logs/` and `out/`.
#[derive(Debug)]
pub struct Scene {
    /// Owns the folder; removed on drop unless `DISKQ_KEEP_TMP` is set.
    pub root: tempfile::TempDir,
    /// The queue directory.
    pub queue: PathBuf,
    /// Bookkeeping logs and process output.
    pub logs: PathBuf,
    /// The default consumer's output folder.
    pub out: PathBuf,
}

impl Scene {
    /// Creates the folders.
    pub fn new() -> Scene {
        let root = tempfile::Builder::new()
            .prefix("diskq-crash-")
            .tempdir()
            .expect("create a temp dir");
        let path = root.path();
        let scene = Scene {
            queue: path.join("queue"),
            logs: path.join("logs"),
            out: path.join("out"),
            root,
        };
        for dir in [&scene.queue, &scene.logs, &scene.out] {
            std::fs::create_dir(dir).expect("create a test folder");
        }
        scene
    }

    /// Keeps the folder on disk (for inspection after a failure) if
    /// `DISKQ_KEEP_TMP` is set, and prints where it is.
    pub fn keep_if_requested(self) {
        if std::env::var_os("DISKQ_KEEP_TMP").is_some() {
            let path = self.root.keep();
            println!("kept {}", path.display());
        }
    }

    /// Returns the default consumer slot: id `main`, output `out/`.
    pub fn main_consumer(&self) -> ConsumerSlot {
        ConsumerSlot {
            id: "main".into(),
            out: self.out.clone(),
        }
    }
}

impl Default for Scene {
    fn default() -> Scene {
        Scene::new()
    }
}

/// Default timeout for a worker that should end by itself.
pub const WORKER_TIMEOUT: Duration = Duration::from_secs(60);

/// The result of [`check_drained`].
#[derive(Debug)]
pub struct Checked {
    /// Output compared with the bookkeeping.
    pub verdict: scan::Verdict,
    /// The output scan.
    pub output: scan::OutputScan,
}

/// Checks a queue that was drained: nothing left in it, every finished
/// output file made of whole JSON lines, no unfinished output file, and
/// every acknowledged key exactly once. `destroyed` lists keys whose
/// lines the test cut by hand: they count as never acknowledged and
/// must be absent.
pub fn check_drained<P: AsRef<Path>>(
    queue: &Path,
    logs: &Path,
    outs: &[P],
    destroyed: &[keys::Key],
    context: &str,
) -> Checked {
    let output = scan::scan_outputs(outs);
    assert!(
        output.problems.is_empty(),
        "{context}: bad output: {:#?}",
        output.problems
    );
    assert!(
        output.open_files.is_empty(),
        "{context}: unfinished output files: {:?}",
        output.open_files
    );
    let left = scan::leftovers(queue);
    assert!(left.is_empty(), "{context}: left in the queue: {left:#?}");
    let bad_lots = scan::unterminated_lots(queue);
    assert!(bad_lots.is_empty(), "{context}: {bad_lots:#?}");

    let mut ledger = keys::Ledger::read(logs);
    for key in destroyed {
        ledger.acked.remove(key);
        assert!(
            !output.counts.contains_key(key),
            "{context}: the cut line of {key} reached the output"
        );
    }
    let verdict = scan::Verdict::new(&ledger, &output);
    verdict.assert_exactly_once(context);
    Checked { verdict, output }
}

/// Cuts the last `bytes` bytes off `path` with the `truncate` tool and
/// returns the keys of the lines that are no longer whole.
pub fn cut_tail(path: &Path, bytes: u64) -> Vec<keys::Key> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let keep = (data.len() as u64).saturating_sub(bytes) as usize;
    let mut cut = Vec::new();
    let mut start = 0;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let end = start + line.len();
        if end > keep {
            if let Ok(t) = serde_json::from_slice::<diskq::Transition>(line) {
                cut.push(keys::Key {
                    game: t.game_id,
                    player: t.player_id,
                    seq: t.seq,
                });
            }
        }
        start = end;
    }
    let status = std::process::Command::new("truncate")
        .args(["-s", &format!("-{bytes}")])
        .arg(path)
        .status()
        .expect("run truncate");
    assert!(status.success(), "truncate failed on {}", path.display());
    cut
}

/// Publishes one lot per entry of `sizes` (that many transitions each,
/// with obs length `big` for every 16th) from this process, and logs
/// every key as pushed and acknowledged in `logs`.
pub fn publish_lots(queue: &Path, logs: &Path, game: &str, sizes: &[u64], big: usize) {
    let opts = diskq::ProducerOptions {
        max_lot_lines: u64::MAX,
        max_lot_bytes: u64::MAX,
        max_lot_age: None,
        ..diskq::ProducerOptions::default()
    };
    let producer = diskq::Producer::open(queue, opts).expect("open a producer");
    let mut book = keys::Bookkeeping::open(logs, game);
    let mut seq = 0;
    for &lines in sizes {
        let mut lot = Vec::new();
        for _ in 0..lines {
            let key = keys::Key::nth(game, seq);
            book.pushed(&key);
            producer
                .push(&keys::transition_for(&key, big))
                .expect("push");
            lot.push(key);
            seq += 1;
        }
        producer.flush().expect("flush");
        book.acked(&lot);
    }
    producer.close().expect("close");
}
