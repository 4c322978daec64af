//! Rust worker processes: the test binary re-executes itself with a
//! [`WorkerSpec`] in the environment, and its ignored `worker_process`
//! test runs the role instead of a test.
//!
//! Workers report through stdout lines that start with `event `, such
//! as `event op=push seq=12 kind=Io`, which [`super::procs::Proc::events`]
//! reads back.

use std::path::PathBuf;
use std::time::Duration;

use diskq::{Consumer, ConsumerOptions, ErrorKind, Producer, ProducerOptions};
use serde::{Deserialize, Serialize};

use super::keys::{transition_for, Bookkeeping, Key};
use super::rng::Rng;

/// Environment variable holding the JSON of a [`WorkerSpec`].
pub const WORKER_ENV: &str = "DISKQ_TEST_WORKER";

/// Name of the ignored test that each test binary defines as the entry
/// point of its workers.
pub const WORKER_TEST: &str = "worker_process";

/// What a worker process does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum WorkerSpec {
    /// Push transitions through [`diskq::Producer`].
    Producer(ProducerSpec),
    /// Consume through [`diskq::Consumer`].
    Consumer(ConsumerSpec),
    /// Run a function that the test binary registered under `name` (see
    /// [`run_if_requested_with`]), for scenarios that must run inside
    /// another process, such as a private mount namespace.
    Scenario {
        /// Registered name of the function.
        name: String,
        /// Its argument.
        args: serde_json::Value,
    },
}

/// A scenario function run in a worker process.
pub type ScenarioFn = fn(&serde_json::Value);

/// How a producer worker treats a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Panic: the run expects no error at all.
    Fail,
    /// Report the error, make one more push and one flush, report their
    /// results, then exit at once without closing (as a bot whose disk
    /// stays full would die).
    Stop,
    /// Report and retry: a failed push is pushed again, a failed flush
    /// is retried after the next batch, and a poisoned producer is
    /// dropped and replaced by a new one.
    Retry,
}

/// Options of a producer worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProducerSpec {
    /// Queue directory.
    pub queue: PathBuf,
    /// gameId of every key; unique per incarnation.
    pub game: String,
    /// Folder of the bookkeeping logs.
    pub logs: PathBuf,
    /// Pushes before closing and exiting; `None` runs until `stop_file`.
    pub count: Option<u64>,
    /// A flush follows a batch of 1 to `batch_max` pushes.
    pub batch_max: u64,
    /// When false, the worker never flushes: lots are published by
    /// rotation and close only.
    pub flush: bool,
    /// Sleep of 0 to `pause_us` microseconds after each batch.
    pub pause_us: u64,
    /// Obs length of every 16th transition (see [`super::keys::obs_len`]).
    pub big: usize,
    /// Every `json_every`-th push goes through `push_json`; 0 never.
    pub json_every: u64,
    /// The worker closes and exits once this file exists.
    pub stop_file: Option<PathBuf>,
    /// Seed of the batch sizes and pauses.
    pub seed: u64,
    /// See [`OnError`].
    pub on_error: OnError,
    /// [`ProducerOptions::write_through`].
    pub write_through: bool,
    /// [`ProducerOptions::durable`].
    pub durable: bool,
    /// [`ProducerOptions::max_lot_lines`].
    pub max_lot_lines: u64,
    /// [`ProducerOptions::max_lot_bytes`].
    pub max_lot_bytes: u64,
    /// [`ProducerOptions::max_lot_age`] in milliseconds; `None` turns
    /// the age thread off.
    pub max_lot_age_ms: Option<u64>,
    /// [`ProducerOptions::write_buffer_bytes`].
    pub write_buffer_bytes: usize,
}

impl ProducerSpec {
    /// Returns a spec with the library's defaults and one flush per
    /// batch of up to 20 pushes, without pauses or big lines.
    pub fn new(queue: PathBuf, logs: PathBuf, game: &str) -> ProducerSpec {
        let defaults = ProducerOptions::default();
        ProducerSpec {
            queue,
            game: game.to_string(),
            logs,
            count: Some(100),
            batch_max: 20,
            flush: true,
            pause_us: 0,
            big: 0,
            json_every: 5,
            stop_file: None,
            seed: 1,
            on_error: OnError::Fail,
            write_through: defaults.write_through,
            durable: defaults.durable,
            max_lot_lines: defaults.max_lot_lines,
            max_lot_bytes: defaults.max_lot_bytes,
            max_lot_age_ms: None,
            write_buffer_bytes: defaults.write_buffer_bytes,
        }
    }

    fn options(&self) -> ProducerOptions {
        ProducerOptions {
            max_lot_lines: self.max_lot_lines,
            max_lot_bytes: self.max_lot_bytes,
            max_lot_age: self.max_lot_age_ms.map(Duration::from_millis),
            write_through: self.write_through,
            write_buffer_bytes: self.write_buffer_bytes,
            durable: self.durable,
            ..ProducerOptions::default()
        }
    }
}

/// Options of a consumer worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerSpec {
    /// Queue directory.
    pub queue: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Consumer id.
    pub id: String,
    /// [`ConsumerOptions::durable`].
    pub durable: bool,
    /// [`ConsumerOptions::max_output_lines`].
    pub max_output_lines: u64,
    /// Sleep between two polls, in milliseconds.
    pub poll_ms: u64,
    /// [`ConsumerOptions::recover_interval`] in milliseconds.
    pub recover_ms: Option<u64>,
    /// The worker closes and exits once this file exists.
    pub stop_file: Option<PathBuf>,
}

/// Exit code of a consumer worker whose id was locked by another
/// process (a consumer or `diskq recover`).
pub const EXIT_LOCKED: i32 = 3;

/// Runs the worker described in [`WORKER_ENV`], if the variable is set,
/// and exits the process when it is done. Returns at once otherwise.
pub fn run_if_requested() {
    run_if_requested_with(&[]);
}

/// Like [`run_if_requested`], with the scenario functions that this test
/// binary offers.
pub fn run_if_requested_with(scenarios: &[(&str, ScenarioFn)]) {
    let Ok(text) = std::env::var(WORKER_ENV) else {
        return;
    };
    let spec: WorkerSpec =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad {WORKER_ENV}: {e}: {text}"));
    match spec {
        WorkerSpec::Producer(spec) => run_producer(&spec),
        WorkerSpec::Consumer(spec) => run_consumer(&spec),
        WorkerSpec::Scenario { name, args } => {
            let Some((_, run)) = scenarios.iter().find(|(n, _)| *n == name) else {
                panic!("no scenario named {name} in this test binary");
            };
            run(&args);
        }
    }
    std::process::exit(0);
}

/// Prints one event line to stdout and flushes it, ignoring failures
/// (stdout may sit on a full disk).
pub fn event(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "event {text}");
    let _ = out.flush();
}

fn kind_name(e: &diskq::Error) -> String {
    format!("{:?}", e.kind())
}

fn stop_requested(file: &Option<PathBuf>) -> bool {
    file.as_ref().is_some_and(|f| f.exists())
}

/// Runs the producer role until its count, the stop file or an error
/// that `spec.on_error` ends on.
fn run_producer(spec: &ProducerSpec) {
    let mut rng = Rng::new(spec.seed);
    let mut book = Bookkeeping::open(&spec.logs, &spec.game);
    let mut producer = open_producer(spec);
    let mut pending: Vec<Key> = Vec::new();
    let mut seq = 0u64;

    'run: loop {
        let batch = rng.range(1, spec.batch_max);
        for _ in 0..batch {
            if spec.count.is_some_and(|c| seq >= c) || stop_requested(&spec.stop_file) {
                break 'run;
            }
            let key = Key::nth(&spec.game, seq);
            book.pushed(&key);
            loop {
                match push(&producer, spec, &key) {
                    Ok(()) => break,
                    Err(e) => {
                        event(&format!("op=push seq={seq} kind={} msg={e}", kind_name(&e)));
                        match spec.on_error {
                            OnError::Fail => panic!("push of {key} failed: {e}"),
                            OnError::Stop => stop_after_error(&producer, spec, &mut book, seq + 1),
                            OnError::Retry => {
                                if e.kind() == ErrorKind::Poisoned {
                                    // The lines of the dropped producer
                                    // were never acknowledged.
                                    pending.clear();
                                    drop(producer);
                                    event("op=reopen");
                                    producer = open_producer(spec);
                                }
                                std::thread::sleep(Duration::from_millis(2));
                            }
                        }
                    }
                }
            }
            if spec.write_through {
                book.acked(std::slice::from_ref(&key));
            } else {
                pending.push(key);
            }
            seq += 1;
        }

        if spec.flush {
            match producer.flush() {
                Ok(()) => {
                    book.acked(&pending);
                    pending.clear();
                }
                Err(e) => {
                    event(&format!("op=flush kind={} msg={e}", kind_name(&e)));
                    match spec.on_error {
                        OnError::Fail => panic!("flush failed: {e}"),
                        OnError::Stop => stop_after_error(&producer, spec, &mut book, seq),
                        OnError::Retry => {
                            if e.kind() == ErrorKind::Poisoned {
                                pending.clear();
                                drop(producer);
                                event("op=reopen");
                                producer = open_producer(spec);
                            }
                        }
                    }
                }
            }
        }
        if spec.pause_us > 0 {
            std::thread::sleep(Duration::from_micros(rng.range(0, spec.pause_us)));
        }
    }

    loop {
        match producer.close() {
            Ok(()) => break,
            Err(e) if spec.on_error == OnError::Retry && e.kind() == ErrorKind::Io => {
                event(&format!("op=close kind={} msg={e}", kind_name(&e)));
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                event(&format!("op=close kind={} msg={e}", kind_name(&e)));
                panic!("close failed: {e}");
            }
        }
    }
    book.acked(&pending);
    event(&format!("op=done pushed={seq}"));
}

fn open_producer(spec: &ProducerSpec) -> Producer {
    let mut tries = 0;
    loop {
        match Producer::open(&spec.queue, spec.options()) {
            Ok(p) => return p,
            Err(e) if spec.on_error == OnError::Retry && tries < 1000 => {
                event(&format!("op=open kind={} msg={e}", kind_name(&e)));
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("open producer on {}: {e}", spec.queue.display()),
        }
    }
}

fn push(producer: &Producer, spec: &ProducerSpec, key: &Key) -> diskq::Result<()> {
    let t = transition_for(key, spec.big);
    if spec.json_every > 0 && key.seq % spec.json_every == spec.json_every - 1 {
        let line = serde_json::to_vec(&t).expect("a transition serializes");
        producer.push_json(&line)
    } else {
        producer.push(&t)
    }
}

/// The end of an [`OnError::Stop`] run: one more push and one flush,
/// both reported, then exit without closing.
fn stop_after_error(
    producer: &Producer,
    spec: &ProducerSpec,
    book: &mut Bookkeeping,
    seq: u64,
) -> ! {
    let key = Key::nth(&spec.game, seq);
    book.pushed(&key);
    match push(producer, spec, &key) {
        Ok(()) => {
            if spec.write_through {
                book.acked(std::slice::from_ref(&key));
            }
            event(&format!("op=push_after seq={seq} kind=Ok"));
        }
        Err(e) => event(&format!("op=push_after seq={seq} kind={}", kind_name(&e))),
    }
    match producer.flush() {
        Ok(()) => event("op=flush_after kind=Ok"),
        Err(e) => event(&format!("op=flush_after kind={}", kind_name(&e))),
    }
    // Exit without running destructors, so the producer's last close
    // does not run: the disk is still failing.
    std::process::exit(0);
}

/// Runs the consumer role until the stop file appears.
fn run_consumer(spec: &ConsumerSpec) {
    let opts = ConsumerOptions {
        output_dir: spec.out.clone(),
        consumer_id: spec.id.clone(),
        durable: spec.durable,
        max_output_lines: spec.max_output_lines,
        poll_interval: Duration::from_millis(spec.poll_ms),
        recover_interval: spec.recover_ms.map(Duration::from_millis),
        ..ConsumerOptions::default()
    };
    let mut consumer = match Consumer::open(&spec.queue, opts) {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::Locked => {
            event(&format!("op=open kind=Locked msg={e}"));
            std::process::exit(EXIT_LOCKED);
        }
        Err(e) => panic!("open consumer {}: {e}", spec.id),
    };
    while !stop_requested(&spec.stop_file) {
        if let Err(e) = consumer.poll() {
            event(&format!("op=poll kind={} msg={e}", kind_name(&e)));
        }
        std::thread::sleep(Duration::from_millis(spec.poll_ms));
    }
    consumer.close().expect("close the consumer");
}

/// One `event` line of a worker, split into its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `op=` field: push, flush, push_after, flush_after, reopen...
    pub op: String,
    /// The `kind=` field, normalized to lowercase without the C prefix:
    /// `io`, `poisoned`, `ok`. Empty when absent.
    pub kind: String,
    /// The whole line, for messages.
    pub line: String,
}

/// Parses event lines (as [`super::procs::Proc::events`] returns them).
/// Fields are `name=value` words; the `msg=` field comes last.
pub fn parse_events(lines: &[String]) -> Vec<Event> {
    lines
        .iter()
        .map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or("")
                    .to_string()
            };
            let kind = field("kind");
            let kind = kind.strip_prefix("DQ_STATUS_").unwrap_or(&kind);
            Event {
                op: field("op"),
                kind: kind.to_lowercase(),
                line: line.clone(),
            }
        })
        .collect()
}
