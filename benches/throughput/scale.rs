//! Scale and memory runs of `diskq consume --once` as a child process,
//! measured with `wait4` for its CPU time and peak RSS. The queues are a
//! deep backlog of one-line lots next to a large archive, a small queue
//! for comparison, and lots whose single line is close to the 16 MiB
//! maximum. strace counts the system calls of separate runs.

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use diskq::{Producer, ProducerOptions};
use serde_json::{json, Value};

use crate::pipeline::fresh_queue;
use crate::sys::{self, Watcher};

/// Outcome of one `diskq consume --once` run.
pub struct Drain {
    pub lots: u64,
    /// From the start of the process to its first claim, as the watcher
    /// thread saw it.
    pub first_claim: Duration,
    /// From the first claim to the exit of the process.
    pub drain: Duration,
    pub cpu: Duration,
    pub max_rss_kib: u64,
}

impl Drain {
    pub fn lots_per_sec(&self) -> f64 {
        self.lots as f64 / self.drain.as_secs_f64()
    }

    /// Returns lots per second of the process's CPU time, which covers
    /// its whole run, start and listing included.
    pub fn lots_per_cpu_sec(&self) -> f64 {
        self.lots as f64 / self.cpu.as_secs_f64()
    }

    pub fn cpu_us_per_lot(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.lots as f64
    }

    pub fn rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// Publishes `lots` lots of one short transition each, with the real
/// producer.
pub fn fill_small_lots(queue: &Path, lots: u64, first_seq: u64) {
    let opts = ProducerOptions {
        max_lot_lines: 1,
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).expect("open producer");
    for seq in first_seq..first_seq + lots {
        let line = format!(
            "{{\"obs\":[0.1,-0.2,0.3,0.4],\"mask\":[1,0,1,1],\"action\":2,\
             \"reward\":0.0,\"done\":false,\"gameId\":\"g1\",\"playerId\":\"pA\",\"seq\":{seq}}}"
        );
        producer.push_json(line.as_bytes()).expect("push_json");
    }
    producer.close().expect("close producer");
}

/// Creates `count` empty `.done` files in `archive/`, named like
/// archived lots. The consumer only looks names up there, so contents
/// do not matter.
pub fn fill_archive(queue: &Path, count: u64) {
    let archive = queue.join("archive");
    std::fs::create_dir_all(&archive).expect("create archive");
    for n in 0..count {
        let name = format!("{n:020}-archived-1-00000000-{n}.1.00000000.ready.done");
        File::create(archive.join(name)).expect("create an archived lot");
    }
}

/// Publishes `lots` lots of one line of about `line_bytes` bytes each.
pub fn fill_big_lots(queue: &Path, lots: u64, line_bytes: usize) {
    let producer = Producer::open(queue, ProducerOptions::default()).expect("open producer");
    let tail_room = 160;
    let mut head = Vec::with_capacity(line_bytes);
    head.extend_from_slice(b"{\"obs\":[0.123456");
    while head.len() + tail_room < line_bytes {
        head.extend_from_slice(b",-0.654321");
    }
    for seq in 0..lots {
        let mut line = head.clone();
        let tail = format!(
            "],\"mask\":[1],\"action\":0,\"reward\":0.0,\"done\":true,\
             \"gameId\":\"big\",\"playerId\":\"pA\",\"seq\":{seq}}}"
        );
        line.extend_from_slice(tail.as_bytes());
        producer.push_json(&line).expect("push a long line");
    }
    producer.close().expect("close producer");
}

/// Runs `diskq consume QUEUE --out OUT --once` and measures it.
pub fn drain_once(diskq_bin: &Path, queue: &Path, out: &Path) -> Drain {
    let waiting = sys::count_suffix(&queue.join("incoming"), ".ready").expect("list incoming");
    let archived_before = sys::count_suffix(&queue.join("archive"), ".done").expect("list archive");
    let watcher = Watcher::start(&[queue.join("processing")], Some(1)).expect("start watcher");

    let args = [
        OsStr::new("consume"),
        queue.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--once"),
    ];
    let usage = sys::run_measured(diskq_bin, &args).expect("run diskq consume --once");
    assert!(
        usage.success,
        "diskq consume --once failed on {}; run it by hand to see its log",
        queue.display()
    );
    let arrivals = watcher.finish().expect("read inotify events");
    let first = arrivals
        .first()
        .expect("the consumer claimed a lot")
        .mono_ns;

    let archived = sys::count_suffix(&queue.join("archive"), ".done").expect("list archive");
    assert_eq!(archived - archived_before, waiting, "every lot was drained");
    Drain {
        lots: waiting as u64,
        first_claim: Duration::from_nanos(first.saturating_sub(usage.spawned_ns)),
        drain: Duration::from_nanos(usage.exited_ns.saturating_sub(first)),
        cpu: usage.cpu,
        max_rss_kib: usage.max_rss_kib,
    }
}

/// System calls of one strace'd run.
pub struct Syscalls {
    pub lots: u64,
    pub total: u64,
    /// (name, calls), most frequent first.
    pub by_name: Vec<(String, u64)>,
}

impl Syscalls {
    pub fn per_lot(&self) -> f64 {
        self.total as f64 / self.lots as f64
    }

    pub fn summary(&self) -> Value {
        let per_lot: serde_json::Map<String, Value> = self
            .by_name
            .iter()
            .map(|(name, calls)| (name.clone(), json!(*calls as f64 / self.lots as f64)))
            .collect();
        json!({"lots": self.lots, "total": self.total, "per_lot_by_name": per_lot})
    }
}

/// Runs `strace -f -c diskq consume --once` over what waits in `queue`.
/// Returns `None` when strace is missing or cannot trace here.
pub fn strace_once(diskq_bin: &Path, queue: &Path, out: &Path, report: &Path) -> Option<Syscalls> {
    let waiting = sys::count_suffix(&queue.join("incoming"), ".ready").expect("list incoming");
    let status = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(report)
        .arg(diskq_bin)
        .arg("consume")
        .arg(queue)
        .arg("--out")
        .arg(out)
        .arg("--once")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(report).ok()?;
    let mut by_name = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Rows read: % time, seconds, usecs/call, calls, [errors], name.
        if fields.len() < 5 || fields[0].starts_with('%') || fields[0].starts_with('-') {
            continue;
        }
        let name = fields[fields.len() - 1];
        if name == "total" {
            continue;
        }
        if let Ok(calls) = fields[3].parse::<u64>() {
            by_name.push((name.to_string(), calls));
        }
    }
    by_name.sort_by_key(|(_, calls)| std::cmp::Reverse(*calls));
    Some(Syscalls {
        lots: waiting as u64,
        total: by_name.iter().map(|(_, c)| c).sum(),
        by_name,
    })
}

/// Paths of one scale queue.
pub struct ScaleQueue {
    pub queue: PathBuf,
    pub out: PathBuf,
}

impl ScaleQueue {
    pub fn new(work: &Path, name: &str) -> ScaleQueue {
        let (queue, out) = fresh_queue(work, name);
        ScaleQueue { queue, out }
    }

    /// Removes the queue and its output; with hundreds of thousands of
    /// files this takes a few seconds.
    pub fn remove(self) {
        let root = self.queue.parent().expect("the queue has a parent");
        std::fs::remove_dir_all(root).expect("remove a scale queue");
    }
}
