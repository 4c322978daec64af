//! Measures the native push rate: transitions per second through
//! `diskq::Producer::push`, on the workload that the Node.js binding's
//! benchmark (`bindings/node/bench/push.js`) pushes from JavaScript.
//!
//! Each transition has a 128-float obs and a 64-entry mask. A pool of
//! 256 transitions is built before timing and reused with a fresh `seq`;
//! the timed part is the pushes and a final flush.
//!
//! ```text
//! cargo run --release --example bench_push -- <queue-dir> <count>
//! ```
//!
//! Prints `{"pushed":N,"seconds":S,"cpu_seconds":C,"per_sec":R}`: wall
//! time, and the CPU time of the process (user plus system) over the
//! same span, which other load on the machine disturbs less.

use std::process::ExitCode;
use std::time::Instant;

use diskq::{Producer, ProducerOptions, Transition};

const OBS_LEN: usize = 128;
const MASK_LEN: usize = 64;
const POOL: usize = 256;

/// Builds transition `i` of the workload. `bench/push.js` builds the
/// same values, so both sides format the same numbers.
fn workload(i: usize) -> Transition {
    Transition {
        obs: (0..OBS_LEN)
            .map(|j| ((i * 31 + j * 17) % 2000) as f32 / 1000.0 - 1.0)
            .collect(),
        mask: (0..MASK_LEN).map(|j| u8::from((i + j) % 3 != 0)).collect(),
        action: (i % MASK_LEN) as i64,
        reward: if i % 40 == 39 { 1.0 } else { 0.0 },
        done: i % 40 == 39,
        game_id: format!("bench-{}", i / 40),
        player_id: if i % 2 == 0 { "pA" } else { "pB" }.to_string(),
        seq: i as u64,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (queue, count) = match args.as_slice() {
        [queue, count] => match count.parse::<usize>() {
            Ok(count) => (queue.clone(), count),
            Err(e) => {
                eprintln!("bench_push: invalid count {count:?}: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("usage: bench_push <queue-dir> <count>");
            return ExitCode::FAILURE;
        }
    };

    let mut pool: Vec<Transition> = (0..POOL).map(workload).collect();
    let producer = match Producer::open(&queue, ProducerOptions::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench_push: {e}");
            return ExitCode::FAILURE;
        }
    };

    let cpu_start = process_cpu_seconds();
    let start = Instant::now();
    for i in 0..count {
        let t = &mut pool[i % POOL];
        t.seq = i as u64;
        if let Err(e) = producer.push(t) {
            eprintln!("bench_push: push {i}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = producer.flush() {
        eprintln!("bench_push: flush: {e}");
        return ExitCode::FAILURE;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_start;

    if let Err(e) = producer.close() {
        eprintln!("bench_push: close: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "{{\"pushed\":{count},\"seconds\":{seconds:.6},\"cpu_seconds\":{cpu_seconds:.6},\"per_sec\":{:.1}}}",
        count as f64 / seconds
    );
    ExitCode::SUCCESS
}

/// Returns the user plus system CPU time of this process, in seconds.
fn process_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the whole call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(
        rc, 0,
        "getrusage(RUSAGE_SELF) cannot fail with valid arguments"
    );
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
