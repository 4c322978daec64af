//! Latency at a steady push rate: from a lot's rotation to its claim by
//! the consumer, and from each push to the archiving of its lot (its
//! line is in the output file by then).
//!
//! How it is measured:
//! * Rotation: lots hold 500 lines, so lot `k` is renamed to `.ready`
//!   inside the push of line `500k + 499`. The time taken just before
//!   that push is used; the rename comes later, so latencies are, if
//!   anything, overstated.
//! * Claim and archive: an inotify watcher thread timestamps every
//!   rename into `processing/` and `archive/` when it reads the event,
//!   which is at or after the rename.
//! * Lot `k` is the `k`-th archived name in sorted order: lot names start
//!   with their creation time in nanoseconds.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diskq::{Consumer, Producer};
use serde_json::{json, Value};

use crate::pipeline::{consumer_options, fresh_queue, wait_archived};
use crate::producers::{lot_options, LOT_LINES};
use crate::sys::{self, Watcher};
use crate::workload::Lines;

/// Latency samples of one paced run, in milliseconds.
pub struct Latency {
    pub rotation_to_claim: Vec<f64>,
    pub push_to_output: Vec<f64>,
    /// Push rate actually reached, transitions per second.
    pub achieved_rate: f64,
}

/// Pushes `rate` lines per second for `secs` seconds (rounded down to
/// whole lots) while [`Consumer::run`] runs with the default options,
/// with or without its inotify watch.
pub fn paced(lines: &Lines, work: &Path, rate: f64, secs: f64, watch: bool) -> Latency {
    let (queue, out) = fresh_queue(work, "latency");
    let lots = ((rate * secs) as u64 / LOT_LINES).max(1);
    let total = (lots * LOT_LINES) as usize;

    let producer = Producer::open(&queue, lot_options()).expect("open producer");
    let mut consumer_opts = consumer_options(&out, false);
    consumer_opts.watch = watch;
    let mut consumer = Consumer::open(&queue, consumer_opts).expect("open consumer");
    let dirs = [queue.join("processing"), queue.join("archive")];
    let watcher = Watcher::start(&dirs, None).expect("start the inotify watcher");
    let stop = AtomicBool::new(false);

    let mut pushed_at = Vec::with_capacity(total);
    let achieved_rate = std::thread::scope(|s| {
        let consumer_thread = s.spawn(|| consumer.run(&stop));

        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            pushed_at.push(Instant::now());
            let body = lines.body(i % lines.len());
            producer.push_json(body).expect("push_json");
        }
        let pushing = start.elapsed();
        producer.close().expect("close producer");

        wait_archived(&queue, lots);
        stop.store(true, Ordering::Relaxed);
        consumer_thread
            .join()
            .expect("the consumer thread does not panic")
            .expect("consumer run");
        total as f64 / pushing.as_secs_f64()
    });
    let arrivals = watcher.finish().expect("read inotify events");

    // Lot names in creation order, with their claim and archive times.
    let mut archived: Vec<(String, Instant)> = arrivals
        .iter()
        .filter(|a| a.dir == 1)
        .filter_map(|a| Some((a.name.strip_suffix(".done")?.to_string(), a.at)))
        .collect();
    archived.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(archived.len() as u64, lots, "every lot was seen archived");

    let mut rotation_to_claim = Vec::with_capacity(archived.len());
    let mut push_to_output = Vec::with_capacity(total);
    for (k, (name, archived_at)) in archived.iter().enumerate() {
        assert_eq!(lot_lines(name), Some(LOT_LINES), "lot {name} is full");
        let claimed_at = arrivals
            .iter()
            .find(|a| a.dir == 0 && a.name.split('~').next() == Some(name))
            .map(|a| a.at)
            .expect("every archived lot was seen claimed");
        let first = k * LOT_LINES as usize;
        let rotated_at = pushed_at[first + LOT_LINES as usize - 1];
        rotation_to_claim.push(ms(claimed_at - rotated_at));
        for at in &pushed_at[first..first + LOT_LINES as usize] {
            push_to_output.push(ms(*archived_at - *at));
        }
    }
    let root = queue.parent().expect("the queue has a parent");
    sys::discard(root, root.parent().expect("the work folder"));
    Latency {
        rotation_to_claim,
        push_to_output,
        achieved_rate,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Reads the line count from `<id>.<lines>.<crc32>.ready`.
fn lot_lines(ready: &str) -> Option<u64> {
    let stem = ready.strip_suffix(".ready")?;
    let mut parts = stem.rsplit('.');
    let _crc = parts.next()?;
    parts.next()?.parse().ok()
}

/// Returns p50, p99 and the maximum of `samples`.
pub fn percentiles(samples: &[f64]) -> (f64, f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (
        at(0.50),
        at(0.99),
        *sorted.last().expect("at least one sample"),
    )
}

/// Summarizes a run for the JSON file.
pub fn summary(l: &Latency) -> Value {
    let (c50, c99, cmax) = percentiles(&l.rotation_to_claim);
    let (o50, o99, omax) = percentiles(&l.push_to_output);
    json!({
        "achieved_rate": l.achieved_rate,
        "lots": l.rotation_to_claim.len(),
        "rotation_to_claim_ms": {"p50": c50, "p99": c99, "max": cmax},
        "push_to_output_ms": {"p50": o50, "p99": o99, "max": omax},
    })
}
