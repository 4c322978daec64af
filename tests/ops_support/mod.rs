//! Helpers for the operations tests (`ops_*.rs`, `multi_consumer.rs`):
//! queues in temporary folders, transitions with known keys, hand-made
//! lots and runs of the real `diskq` binary.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use diskq::{Consumer, ConsumerOptions, Producer, ProducerOptions, Transition};

/// A queue and an output folder in a temporary folder.
pub struct TestQueue {
    /// Keeps the folder until the test ends.
    pub root: tempfile::TempDir,
    /// The queue directory.
    pub queue: PathBuf,
    /// The output folder.
    pub out: PathBuf,
}

impl TestQueue {
    /// Creates an empty queue directory and an output folder path.
    pub fn new() -> TestQueue {
        let root = tempfile::tempdir().expect("create a temporary folder");
        let queue = root.path().join("q");
        let out = root.path().join("out");
        std::fs::create_dir(&queue).expect("create the queue directory");
        TestQueue { root, queue, out }
    }

    /// Returns `<queue>/<sub>`.
    pub fn dir(&self, sub: &str) -> PathBuf {
        self.queue.join(sub)
    }

    /// Opens a producer whose lots hold at most `lot_lines` transitions.
    pub fn producer(&self, lot_lines: u64) -> Producer {
        let opts = ProducerOptions {
            max_lot_lines: lot_lines,
            max_lot_age: None,
            ..ProducerOptions::default()
        };
        Producer::open(&self.queue, opts).expect("open a producer")
    }

    /// Consumes every waiting lot as consumer `id`, in this process.
    pub fn consume(&self, id: &str) {
        self.consume_with(id, |_| {});
    }

    /// Consumes every waiting lot as consumer `id` with options changed
    /// by `change`.
    pub fn consume_with(&self, id: &str, change: impl FnOnce(&mut ConsumerOptions)) {
        let mut opts = ConsumerOptions {
            output_dir: self.out.clone(),
            consumer_id: id.to_string(),
            ..ConsumerOptions::default()
        };
        change(&mut opts);
        let mut consumer = Consumer::open(&self.queue, opts).expect("open a consumer");
        consumer.poll().expect("poll");
        consumer.close().expect("close the consumer");
    }

    /// Returns the names in `<queue>/<sub>`, sorted.
    pub fn names(&self, sub: &str) -> Vec<String> {
        names_in(&self.dir(sub))
    }
}

/// Returns the names in `dir`, sorted; none if it is missing.
pub fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The transition `seq` of player `player` in game `game`, with `done`
/// as given.
pub fn transition(game: &str, player: &str, seq: u64, done: bool) -> Transition {
    Transition {
        obs: vec![0.5, -1.0, seq as f32],
        mask: vec![1, 0, 1],
        action: (seq % 3) as i64,
        reward: if done { 1.0 } else { 0.0 },
        done,
        game_id: game.to_string(),
        player_id: player.to_string(),
        seq,
    }
}

/// Pushes a whole episode: seq 0 to `len - 1`, done on the last.
pub fn push_episode(producer: &Producer, game: &str, player: &str, len: u64) {
    for seq in 0..len {
        producer
            .push(&transition(game, player, seq, seq + 1 == len))
            .expect("push");
    }
}

/// Writes a lot by hand into `incoming/` under the name a producer would
/// give it, and returns that name.
pub fn write_ready_lot(queue: &Path, id: &str, content: &[u8]) -> String {
    let lines = content.iter().filter(|&&b| b == b'\n').count();
    let name = format!("{id}.{lines}.{:08x}.ready", crc32fast::hash(content));
    let incoming = queue.join("incoming");
    std::fs::create_dir_all(&incoming).expect("create incoming/");
    std::fs::write(incoming.join(&name), content).expect("write the lot");
    name
}

/// Runs the `diskq` binary with `args` and returns its output.
pub fn diskq(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_diskq"));
    for arg in args {
        cmd.arg(arg);
    }
    cmd.env("RUST_LOG", "warn");
    cmd.output().expect("run diskq")
}

/// Returns stdout and stderr of `out` as one text, for assertion messages.
pub fn both(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reads every line of the finished output files in `dir`.
pub fn output_lines(dir: &Path) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    for name in names_in(dir) {
        if !name.ends_with(".jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(dir.join(&name)).expect("read an output file");
        for line in text.lines() {
            lines.push(serde_json::from_str(line).expect("output lines are JSON"));
        }
    }
    lines
}

/// Polls `check` every 20 ms until it returns true; panics with `what`
/// after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the child process `pid`.
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill takes no pointers; the pid is a child of this process
    // that has not been waited for, so it cannot have been reused.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}
