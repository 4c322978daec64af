//! Several consumers on one queue: four `diskq consume` processes with
//! their own ids drain the lots of six producer processes, and the union
//! of their output contains every (gameId, playerId, seq) exactly once. A
//! consumer started with an id that is in use is rejected.
//!
//! The producers are this test binary run again with `PRODUCER_ENV` set:
//! its ignored `producer_process` test then pushes the episodes.

#![cfg(feature = "cli")]

mod ops_support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ops_support::{both, diskq, send_signal, transition, wait_until, TestQueue};

/// Environment variable that makes this binary a producer: `<queue>|<n>`.
const PRODUCER_ENV: &str = "DISKQ_OPS_PRODUCER";

const PRODUCERS: u32 = 6;
const CONSUMERS: u32 = 4;
const GAMES_PER_PRODUCER: u32 = 100;

/// The episodes producer `producer` pushes: game, player and length.
fn episodes(producer: u32) -> Vec<(String, &'static str, u64)> {
    let mut out = Vec::new();
    for game in 0..GAMES_PER_PRODUCER {
        let id = format!("p{producer}-g{game}");
        // Lengths from 3 to 24, different per player, so lots cut
        // episodes at many places.
        let len_a = 3 + u64::from((game * 7 + producer) % 22);
        let len_b = 3 + u64::from((game * 5 + producer * 3) % 22);
        out.push((id.clone(), "pA", len_a));
        out.push((id, "pB", len_b));
    }
    out
}

#[test]
#[ignore = "entry point of the producer child processes"]
fn producer_process() {
    let Ok(spec) = std::env::var(PRODUCER_ENV) else {
        return;
    };
    let (queue, index) = spec.split_once('|').expect("spec is <queue>|<n>");
    let index: u32 = index.parse().expect("producer number");
    let opts = diskq::ProducerOptions {
        max_lot_lines: 25,
        max_lot_age: Some(Duration::from_millis(200)),
        ..diskq::ProducerOptions::default()
    };
    let producer = diskq::Producer::open(queue, opts).expect("open a producer");
    // Interleave the two players of a game, as a game loop would.
    for pair in episodes(index).chunks(2) {
        let longest = pair.iter().map(|e| e.2).max().unwrap_or(0);
        for seq in 0..longest {
            for (game, player, len) in pair {
                if seq < *len {
                    let t = transition(game, player, seq, seq + 1 == *len);
                    producer.push(&t).expect("push");
                }
            }
        }
    }
    producer.close().expect("close the producer");
}

fn spawn_producer(queue: &Path, index: u32) -> Child {
    Command::new(std::env::current_exe().expect("path of the test binary"))
        .args(["producer_process", "--exact", "--ignored", "--nocapture"])
        .env(PRODUCER_ENV, format!("{}|{index}", queue.display()))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn a producer process")
}

fn spawn_consumer(q: &TestQueue, id: &str) -> Child {
    let log = std::fs::File::create(q.root.path().join(format!("{id}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_diskq"))
        .arg("consume")
        .arg(&q.queue)
        .arg("--out")
        .arg(&q.out)
        .args(["--id", id, "--interval-ms", "200", "--max-lines", "300"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn diskq consume")
}

fn stat_json(queue: &Path) -> serde_json::Value {
    let out = diskq(&[&"stat", &queue, &"--json", &"--no-output-lines"]);
    assert!(out.status.success(), "{}", both(&out));
    serde_json::from_slice(&out.stdout).expect("stat --json prints JSON")
}

#[test]
fn four_consumers_write_each_transition_once() {
    let q = TestQueue::new();
    let mut consumers: Vec<(String, Child)> = (1..=CONSUMERS)
        .map(|n| {
            let id = format!("c{n}");
            let child = spawn_consumer(&q, &id);
            (id, child)
        })
        .collect();
    wait_until(
        Duration::from_secs(30),
        "all consumers hold their id",
        || stat_json(&q.queue)["consumers_running"] == CONSUMERS,
    );

    // A second process with an id in use is rejected, with a message
    // that names the id.
    let taken = diskq(&[
        &"consume", &q.queue, &"--out", &q.out, &"--id", &"c2", &"--once",
    ]);
    assert!(!taken.status.success(), "{}", both(&taken));
    let message = String::from_utf8_lossy(&taken.stderr);
    assert!(
        message.contains("consumer id `c2` is in use"),
        "{}",
        both(&taken)
    );

    let mut producers: Vec<Child> = (0..PRODUCERS)
        .map(|n| spawn_producer(&q.queue, n))
        .collect();
    for producer in &mut producers {
        let status = producer.wait().unwrap();
        assert!(status.success(), "a producer failed: {status}");
    }
    wait_until(Duration::from_secs(60), "the queue drains", || {
        let s = stat_json(&q.queue);
        s["ready_lots"] == 0 && s["part_lots"] == 0 && s["processing_lots"] == 0
    });
    for (id, child) in &mut consumers {
        send_signal(child.id(), libc::SIGTERM);
        let status = child.wait().unwrap();
        let log = std::fs::read_to_string(q.root.path().join(format!("{id}.log"))).unwrap();
        assert!(
            status.success(),
            "consumer {id} exited with {status}:\n{log}"
        );
    }

    // The union of the output files is the input, each key once.
    let mut expected: HashMap<(String, String, u64), u32> = HashMap::new();
    for producer in 0..PRODUCERS {
        for (game, player, len) in episodes(producer) {
            for seq in 0..len {
                expected.insert((game.clone(), player.to_string(), seq), 0);
            }
        }
    }
    let mut per_consumer: BTreeMap<String, u64> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for name in ops_support::names_in(&q.out) {
        assert!(name.ends_with(".jsonl"), "unfinished output file {name}");
        let id = name
            .trim_end_matches(".jsonl")
            .rsplit('_')
            .next()
            .unwrap()
            .to_string();
        let text = std::fs::read_to_string(q.out.join(&name)).unwrap();
        for line in text.lines() {
            let t: diskq::Transition = serde_json::from_str(line).unwrap();
            *per_consumer.entry(id.clone()).or_default() += 1;
            match expected.get_mut(&(t.game_id.clone(), t.player_id.clone(), t.seq)) {
                Some(count) => *count += 1,
                None => unexpected.push(line.to_string()),
            }
        }
    }
    assert!(unexpected.is_empty(), "lines never pushed: {unexpected:?}");
    let missing: Vec<_> = expected.iter().filter(|(_, &n)| n == 0).collect();
    let repeated: Vec<_> = expected.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} keys missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        repeated.is_empty(),
        "{} keys repeated, e.g. {:?}",
        repeated.len(),
        repeated.first()
    );
    let total: u64 = per_consumer.values().sum();
    assert_eq!(total, expected.len() as u64);

    // Four consumers race for every published lot, so the work is shared.
    // One consumer taking all of it would mean claims never contend.
    eprintln!("lines per consumer: {per_consumer:?}");
    assert!(
        per_consumer.len() >= 2,
        "only {per_consumer:?} wrote output"
    );

    let verified = diskq(&[&"verify", &q.queue]);
    assert!(verified.status.success(), "{}", both(&verified));
    let stats = stat_json(&q.queue);
    assert_eq!(stats["archived_lines"], expected.len() as u64, "{stats}");
    assert_eq!(stats["consumers_running"], 0, "{stats}");
}
