//! Compares JSON and binary lots on the same transitions: bytes per
//! transition on disk, typed push rate, and the consumer's rate turning
//! the lots into JSON lines.
//!
//! Each transition has 128 float obs of about six significant digits and
//! a 64-entry mask, as in `benches/throughput.rs`. Each format runs three
//! times in alternation and the best run is kept, since other load on the
//! machine slows single runs.
//!
//! ```text
//! cargo run --release --example binary_vs_json -- [count]
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use diskq::{Consumer, ConsumerOptions, LotFormat, Producer, ProducerOptions, Transition};

const ROUNDS: usize = 3;

fn workload(count: usize) -> Vec<Transition> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|i| {
            let obs = (0..128)
                .map(|_| ((next() % 2_000_000) as f32 - 1_000_000.0) / 1_000_000.0)
                .collect();
            let mask = (0..64).map(|_| (next() % 2) as u8).collect();
            Transition {
                obs,
                mask,
                action: (next() % 64) as i64,
                reward: 0.0,
                done: i % 64 == 63,
                game_id: format!("g{:06}", i / 64),
                player_id: "pA".into(),
                seq: i as u64,
            }
        })
        .collect()
}

struct Run {
    push: Duration,
    consume: Duration,
    lot_bytes: u64,
    output_bytes: u64,
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn run(format: LotFormat, transitions: &[Transition]) -> Run {
    let root = tempfile::tempdir().expect("create a temporary folder");
    let root = root.path();
    let queue = root.join("q");
    std::fs::create_dir_all(&queue).expect("create the queue folder");
    let opts = ProducerOptions {
        format,
        max_lot_bytes: 4 << 20,
        ..ProducerOptions::default()
    };

    let start = Instant::now();
    let producer = Producer::open(&queue, opts).expect("open the producer");
    for t in transitions {
        producer.push(t).expect("push");
    }
    producer.close().expect("close the producer");
    let push = start.elapsed();
    let lot_bytes = dir_bytes(&queue.join("incoming"));

    let out = root.join("out");
    let start = Instant::now();
    let opts = ConsumerOptions {
        output_dir: out.clone(),
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&queue, opts).expect("open the consumer");
    let report = consumer.poll().expect("poll");
    consumer.close().expect("close the consumer");
    let consume = start.elapsed();
    assert_eq!(
        report.lines,
        transitions.len() as u64,
        "every transition reaches the output"
    );
    let output_bytes = dir_bytes(&out);

    Run {
        push,
        consume,
        lot_bytes,
        output_bytes,
    }
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("count must be a number"))
        .unwrap_or(100_000);
    let transitions = workload(count);

    let mut best: [Option<Run>; 2] = [None, None];
    for _ in 0..ROUNDS {
        for (slot, format) in [LotFormat::Json, LotFormat::Binary].into_iter().enumerate() {
            let r = run(format, &transitions);
            let better = best[slot]
                .as_ref()
                .map_or(true, |b| r.push + r.consume < b.push + b.consume);
            if better {
                best[slot] = Some(r);
            }
        }
    }
    let [Some(json), Some(binary)] = best else {
        unreachable!("every round fills both")
    };

    let per_sec = |d: Duration| count as f64 / d.as_secs_f64();
    println!("{count} transitions, best of {ROUNDS} runs per format\n");
    println!("| format | lot bytes per transition | push transitions/s | consume transitions/s | output bytes per transition |");
    println!("|---|---:|---:|---:|---:|");
    for (name, r) in [("json", &json), ("binary", &binary)] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.lot_bytes as f64 / count as f64,
            per_sec(r.push),
            per_sec(r.consume),
            r.output_bytes as f64 / count as f64,
        );
    }
    println!(
        "\nbinary / json: lot size {:.2}x, push rate {:.2}x, consume rate {:.2}x",
        binary.lot_bytes as f64 / json.lot_bytes as f64,
        per_sec(binary.push) / per_sec(json.push),
        per_sec(binary.consume) / per_sec(json.consume),
    );
}
