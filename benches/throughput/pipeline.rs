//! End to end: from the first push until every line is in a finished
//! output file, with a consumer running the whole time, followed by an
//! exactly-once check of the output against the pushed lines.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diskq::{Consumer, ConsumerOptions, Producer, ProducerOptions};

use crate::producers::{lot_options, LOT_LINES};
use crate::sys::{self, KillOnDrop};
use crate::workload::{pool, Lines};

/// Result of one end-to-end run.
pub struct Run {
    pub wall: Duration,
    pub lots: u64,
    /// CPU time (user plus system) of the producer side and of the
    /// consumer, threads or processes, while they ran.
    pub cpu: (Duration, Duration),
}

impl Run {
    /// Returns the CPU time of producers and consumer together.
    pub fn cpu_total(&self) -> Duration {
        self.cpu.0 + self.cpu.1
    }

    /// Describes the CPU use of both sides as shares of the wall time.
    pub fn cpu_note(&self) -> String {
        let share = |d: Duration| 100.0 * d.as_secs_f64() / self.wall.as_secs_f64();
        format!(
            "; CPU time as a share of wall time: producers {:.0}%, consumer {:.0}%",
            share(self.cpu.0),
            share(self.cpu.1)
        )
    }
}

/// Creates `<work>/<name>/queue` and `<work>/<name>/out`, empty.
pub fn fresh_queue(work: &Path, name: &str) -> (PathBuf, PathBuf) {
    let root = work.join(name);
    let _ = std::fs::remove_dir_all(&root);
    let queue = root.join("queue");
    let out = root.join("out");
    std::fs::create_dir_all(&queue).expect("the work folder is writable");
    std::fs::create_dir_all(&out).expect("the work folder is writable");
    (queue, out)
}

/// Options of the benchmark consumers: the defaults, except that the
/// scan for dead producers' lots is off, so that it does not run in the
/// middle of a measurement.
pub fn consumer_options(out: &Path, durable: bool) -> ConsumerOptions {
    ConsumerOptions {
        output_dir: out.to_path_buf(),
        durable,
        recover_interval: None,
        ..ConsumerOptions::default()
    }
}

/// Settings of an end-to-end run in one process.
#[derive(Clone, Copy)]
pub struct PairOptions {
    /// `durable` on both sides.
    pub durable: bool,
    /// The consumer's `full_validation`; false trusts lots by checksum.
    pub full_validation: bool,
}

/// Runs one producer thread that pushes every line with `push_json`
/// while [`Consumer::run`] (inotify watch on, as by default) runs in
/// another. Returns when the consumer, stopped once every lot is
/// archived, has closed and so finished its last output file.
///
/// NOTE: `run` notices the stop flag within 50 ms, and that wait is
/// part of the measured time.
pub fn thread_pair(lines: &Lines, queue: &Path, out: &Path, pair: PairOptions) -> Run {
    let durable = pair.durable;
    let popts = ProducerOptions {
        durable,
        ..lot_options()
    };
    let producer = Producer::open(queue, popts).expect("open producer");
    let copts = ConsumerOptions {
        full_validation: pair.full_validation,
        ..consumer_options(out, durable)
    };
    let mut consumer = Consumer::open(queue, copts).expect("open consumer");
    let stop = AtomicBool::new(false);

    let start = Instant::now();
    let (lots, cpu) = std::thread::scope(|s| {
        // Named, so that profilers can tell its samples from the producer's.
        let consumer_thread = std::thread::Builder::new()
            .name("bench-consumer".into())
            .spawn_scoped(s, || {
                consumer.run(&stop).expect("consumer run");
                sys::thread_cpu()
            })
            .expect("start the consumer thread");
        let cpu_before = sys::thread_cpu();
        for k in 0..lines.len() {
            producer.push_json(lines.body(k)).expect("push_json");
        }
        producer.close().expect("close producer");
        let producer_cpu = sys::thread_cpu() - cpu_before;
        let lots = producer.stats().lots_published;
        wait_archived(queue, lots);
        stop.store(true, Ordering::Relaxed);
        let consumer_cpu = consumer_thread
            .join()
            .expect("the consumer thread does not panic");
        (lots, (producer_cpu, consumer_cpu))
    });
    Run {
        wall: start.elapsed(),
        lots,
        cpu,
    }
}

/// Waits until `archive/` contains `lots` archived lots. It lists the
/// folder every 5 ms, which is often enough for multi-second runs and
/// leaves the measured threads their CPU.
pub fn wait_archived(queue: &Path, lots: u64) {
    let archive = queue.join("archive");
    let deadline = Instant::now() + Duration::from_secs(600);
    while sys::count_suffix(&archive, ".done").expect("list archive") < lots as usize {
        assert!(Instant::now() < deadline, "the consumer stopped archiving");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Arguments of one producer child process.
pub struct ChildArgs {
    pub queue: PathBuf,
    pub seed: u64,
    pub from: u64,
    pub to: u64,
}

/// Runs a producer child: builds its lines, reports `ready`, waits for a
/// line on stdin, pushes, closes, and reports the lots it published and
/// the CPU time of its pushes.
pub fn child_producer(args: &ChildArgs) {
    let lines = Lines::build(&mut pool(args.seed), args.from..args.to);
    let producer = Producer::open(&args.queue, lot_options()).expect("open producer");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready").expect("write to the parent");
    stdout.flush().expect("write to the parent");
    let mut go = String::new();
    std::io::stdin()
        .read_line(&mut go)
        .expect("read from the parent");
    let cpu_before = sys::thread_cpu();
    for k in 0..lines.len() {
        producer.push_json(lines.body(k)).expect("push_json");
    }
    producer.close().expect("close producer");
    let cpu = sys::thread_cpu() - cpu_before;
    let lots = producer.stats().lots_published;
    writeln!(stdout, "lots {lots} cpu_us {}", cpu.as_micros()).expect("write to the parent");
}

/// Runs `procs` producer processes (this executable in child mode), each
/// pushing an equal share of `n` lines, while `diskq consume` runs. The
/// consumer gets SIGTERM once every lot is archived, and the clock stops
/// when it has exited, which finishes its last output file.
pub fn processes(diskq_bin: &Path, seed: u64, n: u64, procs: u64, queue: &Path, out: &Path) -> Run {
    let exe = std::env::current_exe().expect("the benchmark knows its path");
    let mut children = Vec::new();
    for p in 0..procs {
        let from = n * p / procs;
        let to = n * (p + 1) / procs;
        let child = Command::new(&exe)
            .arg("--child-producer")
            .arg(queue)
            .args([seed.to_string(), from.to_string(), to.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a producer process");
        children.push(KillOnDrop(child));
    }
    let mut readers: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.0.stdout.take().expect("stdout is piped")))
        .collect();
    for reader in &mut readers {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a child's ready");
        assert_eq!(line.trim(), "ready", "producer child did not start");
    }

    let start = Instant::now();
    let mut consume = KillOnDrop(
        Command::new(diskq_bin)
            .arg("consume")
            .arg(queue)
            .arg("--out")
            .arg(out)
            .args(["--interval-ms", "5"])
            .stderr(Stdio::null())
            .spawn()
            .expect("start diskq consume"),
    );
    for child in &mut children {
        let stdin = child.0.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(b"go\n").expect("start a producer");
    }
    let mut lots = 0;
    let mut producers_cpu = Duration::ZERO;
    for (child, reader) in children.iter_mut().zip(&mut readers) {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a child's report");
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ["lots", count, "cpu_us", cpu_us] = fields[..] else {
            panic!("unexpected report from a producer child: {line:?}");
        };
        lots += count.parse::<u64>().expect("a number of lots");
        producers_cpu += Duration::from_micros(cpu_us.parse().expect("a CPU time"));
        assert!(child.0.wait().expect("wait for a producer").success());
    }
    wait_archived(queue, lots);
    sys::terminate(&consume.0).expect("stop diskq consume");

    // Every other child is reaped by now, so the change of the children's
    // CPU time across this wait is the consumer's.
    let children_before = sys::children_cpu();
    assert!(consume.0.wait().expect("wait for diskq consume").success());
    let consumer_cpu = sys::children_cpu() - children_before;
    Run {
        wall: start.elapsed(),
        lots,
        cpu: (producers_cpu, consumer_cpu),
    }
}

/// Checks that the output folder contains only finished `.jsonl` files
/// and that they contain every line of transitions `0..n` exactly once,
/// byte for byte. `lines` must contain transitions `0..n`.
pub fn verify_exactly_once(out: &Path, lines: &Lines, n: u64) -> Result<(), String> {
    let mut seen = vec![false; n as usize];
    let mut count = 0u64;
    for entry in std::fs::read_dir(out).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.to_string_lossy().into_owned();
        if !name.ends_with(".jsonl") {
            return Err(format!("unexpected file in the output: {name}"));
        }
        let text = std::fs::read(&path).map_err(|e| e.to_string())?;
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let seq = parse_seq(line).ok_or_else(|| format!("line without seq in {name}"))?;
            let Some(expected) = lines.by_seq(seq).filter(|_| seq < n) else {
                return Err(format!("seq {seq} was never pushed"));
            };
            if seen[seq as usize] {
                return Err(format!("seq {seq} appears twice"));
            }
            if expected != line {
                return Err(format!("seq {seq} differs from the pushed line"));
            }
            seen[seq as usize] = true;
            count += 1;
        }
    }
    if count != n {
        let missing = seen.iter().position(|s| !s).unwrap_or(0);
        return Err(format!(
            "{count} of {n} lines in the output; seq {missing} is missing"
        ));
    }
    Ok(())
}

/// Reads the value of the last `"seq":` key, which ends every line.
fn parse_seq(line: &[u8]) -> Option<u64> {
    let key = b"\"seq\":";
    let at = line.windows(key.len()).rposition(|w| w == key)? + key.len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Number of lots that `n` lines make.
pub fn lots_for(n: u64) -> u64 {
    n.div_ceil(LOT_LINES)
}
