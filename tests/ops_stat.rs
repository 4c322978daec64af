//! Queue metrics: `diskq::stat` and `diskq stat --json` (backlog, oldest
//! lot, claims, throughput window, consumers), the inotify-driven
//! [`diskq::Monitor`], and `diskq top` redrawing while a queue drains.

#![cfg(feature = "cli")]

mod ops_support;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use diskq::{Monitor, StatOptions};
use ops_support::{both, diskq, push_episode, send_signal, wait_until, write_ready_lot, TestQueue};

/// A lot of `n` short JSON lines.
fn lot(n: u32) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"gameId\":\"g\",\"playerId\":\"p\",\"seq\":{i}}}\n"))
        .collect::<String>()
        .into_bytes()
}

fn set_age(path: &std::path::Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn stat_reports_backlog_and_oldest_lot() {
    let q = TestQueue::new();
    let old = write_ready_lot(&q.queue, "00000000000000000002-h-1-00000000-0", &lot(3));
    let new = write_ready_lot(&q.queue, "00000000000000000001-h-1-00000000-1", &lot(4));
    set_age(&q.dir("incoming").join(&old), Duration::from_secs(30));
    set_age(&q.dir("incoming").join(&new), Duration::from_secs(2));
    std::fs::write(q.dir("incoming").join("x.part"), b"{}\n").unwrap();

    let s = diskq::stat(&q.queue).unwrap();
    assert_eq!(s.ready_lots, 2);
    assert_eq!(s.ready_lines, 7);
    assert_eq!(s.ready_bytes, (lot(3).len() + lot(4).len()) as u64);
    assert_eq!(s.part_lots, 1);
    assert_eq!(s.oldest_ready_lot.as_deref(), Some(old.as_str()));
    let age = s.oldest_ready_age_ms.unwrap();
    assert!((30_000..40_000).contains(&age), "age {age} ms");
    assert_eq!(s.window_lots, 0);
    assert_eq!(s.lines_per_sec, 0.0);
    assert_eq!(s.avg_lot_lines, 3.5);
}

#[test]
fn stat_counts_recent_archive_as_throughput() {
    let q = TestQueue::new();
    let producer = q.producer(10);
    push_episode(&producer, "g1", "pA", 30);
    producer.close().unwrap();
    let sizes: u64 = q
        .names("incoming")
        .iter()
        .map(|n| std::fs::metadata(q.dir("incoming").join(n)).unwrap().len())
        .sum();
    q.consume("main");

    let s = diskq::stat(&q.queue).unwrap();
    assert_eq!(s.archived_lots, 3);
    assert_eq!(s.archived_lines, 30);
    assert_eq!(s.window_ms, 60_000);
    assert_eq!(s.window_lots, 3);
    assert_eq!(s.window_lines, 30);
    assert_eq!(s.window_bytes, sizes);
    assert_eq!(s.lines_per_sec, 0.5);
    assert_eq!(s.lots_per_sec, 0.05);
    assert_eq!(s.avg_lot_lines, 10.0);
    assert_eq!(s.output_lines, 30);

    // A window that ended before the lots were archived contains none.
    let opts = StatOptions {
        window: Duration::ZERO,
        ..StatOptions::default()
    };
    let s = diskq::stat_with(&q.queue, &opts).unwrap();
    assert_eq!(s.window_lots, 0);
    assert_eq!(s.archived_lots, 3);
}

#[test]
fn stat_reports_claims_and_quarantine() {
    let q = TestQueue::new();
    write_ready_lot(&q.queue, "00000000000000000001-h-1-00000000-0", b"[]\n");
    q.consume("main");
    let name = write_ready_lot(&q.queue, "00000000000000000002-h-1-00000000-1", &lot(2));
    // A claim as a consumer that died after claiming leaves it.
    let claim = format!("{name}~queue_transitions_x_dead.jsonl.open~0");
    std::fs::rename(
        q.dir("incoming").join(&name),
        q.dir("processing").join(&claim),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));

    let s = diskq::stat(&q.queue).unwrap();
    assert_eq!(s.quarantined_lots, 1);
    assert_eq!(s.processing_lots, 1);
    let age = s.oldest_processing_age_ms.unwrap();
    assert!((50..10_000).contains(&age), "claim age {age} ms");
}

#[test]
fn stat_shows_which_consumers_run() {
    let q = TestQueue::new();
    q.consume("idle");
    let opts = diskq::ConsumerOptions {
        output_dir: q.out.clone(),
        consumer_id: "busy".into(),
        ..diskq::ConsumerOptions::default()
    };
    let consumer = diskq::Consumer::open(&q.queue, opts).unwrap();

    let s = diskq::stat(&q.queue).unwrap();
    let ids: Vec<(&str, Option<bool>)> = s
        .consumers
        .iter()
        .map(|c| (c.id.as_str(), c.running))
        .collect();
    assert_eq!(ids, [("busy", Some(true)), ("idle", Some(false))]);
    assert_eq!(s.consumers_running(), 1);

    drop(consumer);
    let s = diskq::stat(&q.queue).unwrap();
    assert_eq!(s.consumers_running(), 0);
}

#[test]
fn stat_json_keeps_old_fields_and_adds_new() {
    let q = TestQueue::new();
    write_ready_lot(&q.queue, "00000000000000000001-h-1-00000000-0", &lot(2));
    let out = diskq(&[&"stat", &q.queue, &"--json"]);
    assert!(out.status.success(), "{}", both(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = [
        "ready_lots",
        "ready_bytes",
        "oldest_ready_age_ms",
        "part_lots",
        "processing_lots",
        "archived_lots",
        "archived_lines",
        "quarantined_lots",
        "output_files",
        "output_lines",
        "output_dirs",
        "ready_lines",
        "oldest_ready_lot",
        "oldest_processing_age_ms",
        "window_ms",
        "window_lots",
        "window_lines",
        "window_bytes",
        "lines_per_sec",
        "lots_per_sec",
        "bytes_per_sec",
        "avg_lot_lines",
        "avg_lot_bytes",
        "consumers",
        "consumers_running",
    ];
    for field in fields {
        assert!(doc.get(field).is_some(), "{field} missing from {doc}");
    }
    assert_eq!(doc["ready_lots"], 1);
    assert_eq!(doc["ready_lines"], 2);
}

#[test]
fn monitor_follows_archive_by_events() {
    let q = TestQueue::new();
    q.consume("main");
    let mut monitor = Monitor::open(&q.queue, StatOptions::default()).unwrap();
    monitor.set_resync_interval(Duration::from_secs(3600));
    assert!(monitor.is_watching());
    assert_eq!(monitor.sample().unwrap().archived_lots, 0);

    let producer = q.producer(5);
    push_episode(&producer, "g1", "pA", 15);
    producer.flush().unwrap();
    let plain_bytes: u64 = q
        .names("incoming")
        .iter()
        .map(|n| std::fs::metadata(q.dir("incoming").join(n)).unwrap().len())
        .sum();
    q.consume_with("main", |o| o.compress_archive = true);
    assert!(q.names("archive").iter().all(|n| n.ends_with(".gz")));
    let s = monitor.sample().unwrap();
    assert_eq!(s.archived_lots, 3, "{s:?}");
    assert_eq!(s.archived_lines, 15);
    // Each lot entered archive/ twice, plain then compressed, and counts
    // once; its bytes are the uncompressed size from the gzip trailer.
    assert_eq!(s.window_lots, 3);
    assert_eq!(s.window_lines, 15);
    assert_eq!(s.window_bytes, plain_bytes);
    let short = monitor.window(Duration::from_secs(5));
    assert_eq!(short.lots, 3);

    // Retention deletes a lot: the totals drop, the throughput stays.
    let archived = q.names("archive");
    std::fs::remove_file(q.dir("archive").join(&archived[0])).unwrap();
    let s = monitor.sample().unwrap();
    assert_eq!(s.archived_lots, 2);
    assert_eq!(s.archived_lines, 10);
    assert_eq!(s.window_lots, 3);

    // A file copied in rather than renamed raises no event, so only a
    // full listing finds it: proof that samples do not list archive/.
    std::fs::write(
        q.dir("archive").join("copied.2.00000000.ready.done"),
        lot(2),
    )
    .unwrap();
    assert_eq!(monitor.sample().unwrap().archived_lots, 2);
    monitor.set_resync_interval(Duration::ZERO);
    assert_eq!(monitor.sample().unwrap().archived_lots, 3);
}

#[test]
fn monitor_starts_watch_once_archive_exists() {
    let q = TestQueue::new();
    let mut monitor = Monitor::open(&q.queue, StatOptions::default()).unwrap();
    assert!(!monitor.is_watching(), "no consumer made archive/ yet");
    let producer = q.producer(4);
    push_episode(&producer, "g1", "pA", 4);
    producer.close().unwrap();
    q.consume("main");
    let s = monitor.sample().unwrap();
    assert!(monitor.is_watching());
    assert_eq!(s.archived_lots, 1);
    assert_eq!(s.window_lines, 4);
}

/// Lines that `diskq top` printed so far, read by a thread.
fn read_lines(child: &mut std::process::Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

#[test]
fn top_shows_drain_progress_until_sigint() {
    let q = TestQueue::new();
    q.consume("main");
    let mut top = Command::new(env!("CARGO_BIN_EXE_diskq"))
        .arg("top")
        .arg(&q.queue)
        .args(["--interval-ms", "100"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_lines(&mut top);
    let seen = |text: &str| lines.lock().unwrap().iter().any(|l| l.contains(text));

    wait_until(Duration::from_secs(20), "a first frame", || {
        seen("backlog         0 lots")
    });
    let producer = q.producer(10);
    push_episode(&producer, "g1", "pA", 30);
    producer.close().unwrap();
    wait_until(Duration::from_secs(20), "the backlog in a frame", || {
        seen("backlog         3 lots, 30 lines")
    });
    wait_until(Duration::from_secs(20), "a drain estimate", || {
        seen("drain ")
    });
    q.consume("main");
    wait_until(Duration::from_secs(20), "the drained queue", || {
        seen("archived        3 lots (30 lines)")
    });
    assert!(seen("throughput      "), "{:?}", lines.lock().unwrap());

    send_signal(top.id(), libc::SIGINT);
    let status = top.wait().unwrap();
    assert!(status.success(), "diskq top exited with {status}");
    let frames = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("--- "))
        .count();
    assert!(frames >= 3, "{frames} frames");
}
