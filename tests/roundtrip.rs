//! A clean run: what producers push reaches the output once, in JSON
//! lines that serde_json reads back.

use std::collections::HashMap;
use std::path::Path;

use diskq::{Consumer, ConsumerOptions, Producer, ProducerOptions, Transition};

fn transition(game: u32, player: &str, seq: u64) -> Transition {
    Transition {
        obs: vec![0.25, -1.0, seq as f32],
        mask: vec![1, 0, 1, 1],
        action: (seq % 7) as i64,
        reward: if seq % 10 == 9 { 1.0 } else { 0.0 },
        done: seq % 10 == 9,
        game_id: format!("g{game}"),
        player_id: player.to_string(),
        seq,
    }
}

fn read_output(dir: &Path) -> Vec<Transition> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            out.push(
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: {e}: {line}", file.display())),
            );
        }
    }
    out
}

fn consumer_opts(out: &Path) -> ConsumerOptions {
    ConsumerOptions {
        output_dir: out.to_path_buf(),
        max_output_lines: 1000,
        ..ConsumerOptions::default()
    }
}

#[test]
fn pushed_transitions_reach_output_once() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir(&queue).unwrap();

    let producer = Producer::open(&queue, ProducerOptions::default()).unwrap();
    let mut expected = Vec::new();
    for game in 0..120 {
        for seq in 0..10 {
            let t = transition(game, "pA", seq);
            producer.push(&t).unwrap();
            expected.push(t);
        }
    }
    producer.close().unwrap();
    assert_eq!(producer.stats().lines_published, 1200);
    assert_eq!(producer.stats().lots_published, 3);

    let mut consumer = Consumer::open(&queue, consumer_opts(&out)).unwrap();
    let report = consumer.poll().unwrap();
    assert_eq!(report.lots, 3);
    assert_eq!(report.lines, 1200);
    consumer.close().unwrap();

    let got = read_output(&out);
    assert_eq!(got, expected);
    let stats = diskq::stat(&queue).unwrap();
    assert_eq!(stats.archived_lots, 3);
    assert_eq!(stats.archived_lines, 1200);
    assert_eq!(stats.output_lines, 1200);
    assert_eq!(
        stats.ready_lots + stats.processing_lots + stats.part_lots,
        0
    );
}

#[test]
fn output_rolls_over_at_lot_boundaries() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir(&queue).unwrap();
    let opts = ProducerOptions {
        max_lot_lines: 300,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(&queue, opts).unwrap();
    for seq in 0..3000 {
        producer.push(&transition(1, "pB", seq)).unwrap();
    }
    producer.close().unwrap();

    let mut consumer = Consumer::open(&queue, consumer_opts(&out)).unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();

    let mut counts = HashMap::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        counts.insert(path, lines);
    }
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(counts.values().all(|&n| n <= 1000), "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 3000);
}

#[test]
fn long_lines_pass_through_intact() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir(&queue).unwrap();

    let producer = Producer::open(&queue, ProducerOptions::default()).unwrap();
    let mut expected = Vec::new();
    for (seq, len) in [10usize, 300_000, 10, 70_000, 10].into_iter().enumerate() {
        let mut t = transition(7, "pL", seq as u64);
        t.obs = (0..len).map(|i| i as f32 / 7.0).collect();
        producer.push(&t).unwrap();
        expected.push(t);
    }
    producer.close().unwrap();

    let mut consumer = Consumer::open(&queue, consumer_opts(&out)).unwrap();
    assert_eq!(consumer.poll().unwrap().lines, 5);
    consumer.close().unwrap();
    assert_eq!(read_output(&out), expected);
}

#[test]
fn torn_tail_of_open_output_is_cut_on_restart() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir(&queue).unwrap();
    let producer = Producer::open(&queue, ProducerOptions::default()).unwrap();
    for seq in 0..3 {
        producer.push(&transition(3, "pT", seq)).unwrap();
    }
    producer.close().unwrap();

    // A consumer killed before it finished its file leaves a `.open` one
    // (no process holds its lock any more); a torn tail there (power loss,
    // a hand edit) must not reach the finished file.
    let mut consumer = Consumer::open(&queue, consumer_opts(&out)).unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();
    let finished = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let open = finished.with_extension("jsonl.open");
    std::fs::rename(&finished, &open).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&open)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"obs":[0.1,0.2"#).unwrap();

    let paths = diskq::QueuePaths::new(&queue);
    let out_dir = std::fs::canonicalize(&out).unwrap();
    let report = diskq::recover_consumer(&paths, "main", &out_dir, false).unwrap();
    assert_eq!(report.finished, 1);
    let expected: Vec<Transition> = (0..3).map(|seq| transition(3, "pT", seq)).collect();
    assert_eq!(read_output(&out), expected);
}

#[test]
fn lots_are_published_by_age_during_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let max_age = std::time::Duration::from_millis(300);
    let opts = ProducerOptions {
        max_lot_age: Some(max_age),
        ..ProducerOptions::default()
    };
    let producer = Producer::open(dir.path(), opts).unwrap();

    let incoming = dir.path().join("incoming");
    let ready = || {
        std::fs::read_dir(&incoming)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".ready")
            })
            .count()
    };

    let start = std::time::Instant::now();
    let mut first_at = None;
    let mut seq = 0;
    // Push every 10 ms for 1.5 s: lots never fill up, so only their age
    // publishes them, from the producer's age thread.
    while start.elapsed() < std::time::Duration::from_millis(1500) {
        producer.push(&transition(1, "p", seq)).unwrap();
        seq += 1;
        if first_at.is_none() && ready() > 0 {
            first_at = Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let first_at = first_at.expect("no lot was published by age");
    assert!(
        first_at >= max_age,
        "the first lot was published after {first_at:?}, before its age"
    );
    assert!(ready() >= 2, "only {} lots were published by age", ready());
    producer.close().unwrap();
}
