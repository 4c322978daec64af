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

/// One producer thread pushes every line with `push_json` while
/// [`Consumer::run`] (inotify watch on, as by default) runs in another;
/// returns when the consumer, stopped once every lot is archived, has
/// closed and so finished its last output file.
///
/// NOTE: `run` notices the stop flag within 50 ms, and that wait is
/// part of the measured time.
pub fn thread_pair(lines: &Lines, queue: &Path, out: &Path, durable: bool) -> Run {
    let popts = ProducerOptions {
        durable,
        ..lot_options()
    };
    let producer = Producer::open(queue, popts).expect("open producer");
    let mut consumer =
        Consumer::open(queue, consumer_options(out, durable)).expect("open consumer");
    let stop = AtomicBool::new(false);

    let start = Instant::now();
    let lots = std::thread::scope(|s| {
        let consumer_thread = s.spawn(|| consumer.run(&stop));
        for k in 0..lines.len() {
            producer.push_json(lines.body(k)).expect("push_json");
        }
        producer.close().expect("close producer");
        let lots = producer.stats().lots_published;
        wait_archived(queue, lots);
        stop.store(true, Ordering::Relaxed);
        consumer_thread
            .join()
            .expect("the consumer thread does not panic")
            .expect("consumer run");
        lots
    });
    Run {
        wall: start.elapsed(),
        lots,
    }
}

/// Waits until `archive/` holds `lots` archived lots.
pub fn wait_archived(queue: &Path, lots: u64) {
    let archive = queue.join("archive");
    let deadline = Instant::now() + Duration::from_secs(600);
    while sys::count_suffix(&archive, ".done").expect("list archive") < lots as usize {
        assert!(Instant::now() < deadline, "the consumer stopped archiving");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Arguments of one producer child process.
pub struct ChildArgs {
    pub queue: PathBuf,
    pub seed: u64,
    pub from: u64,
    pub to: u64,
}

/// Body of a producer child: builds its lines, reports `ready`, waits for
/// a line on stdin, pushes, closes, and reports the lots it published.
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
    for k in 0..lines.len() {
        producer.push_json(lines.body(k)).expect("push_json");
    }
    producer.close().expect("close producer");
    writeln!(stdout, "lots {}", producer.stats().lots_published).expect("write to the parent");
}

/// `procs` producer processes (this executable in child mode) push an
/// equal share of `n` lines while `diskq consume` runs; the clock stops
/// when the consumer, stopped by SIGTERM once every lot is archived, has
/// exited and so finished its last output file.
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
    for (child, reader) in children.iter_mut().zip(&mut readers) {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("read a child's lot count");
        let count = line.trim().strip_prefix("lots ").expect("a lot count");
        lots += count.parse::<u64>().expect("a number of lots");
        assert!(child.0.wait().expect("wait for a producer").success());
    }
    wait_archived(queue, lots);
    sys::terminate(&consume.0).expect("stop diskq consume");
    assert!(consume.0.wait().expect("wait for diskq consume").success());
    Run {
        wall: start.elapsed(),
        lots,
    }
}

/// Checks that the finished output files hold every line of transitions
/// `0..n` exactly once, byte for byte, and that no file is left open.
/// `lines` must hold transitions `0..n`.
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
