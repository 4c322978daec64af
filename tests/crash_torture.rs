//! Crash tests with real processes. Producers (Rust and C) and
//! consumers (`diskq consume` and a Rust worker) are killed with SIGKILL
//! at random moments and at exact system calls, then restarted. The
//! output is then checked against what the producers saw acknowledged.
//!
//! The check after every run: each acknowledged key (gameId, playerId,
//! seq) is in the finished output exactly once, and each key pushed but
//! not acknowledged at most once. No other key is there. Every output
//! line is one JSON object with the content of its key, and every
//! `*.jsonl` ends in a newline.
//!
//! Environment:
//! * `DISKQ_TORTURE_SEED=N` replays a random run; every run prints its
//!   seed.
//! * `DISKQ_TORTURE_ROUNDS=N` sets the number of rounds of the random
//!   kill test (default 100; 1000 makes a long run).
//! * `DISKQ_KILL_POINTS=all` kills at every call number instead of a
//!   sample.
//! * `DISKQ_KEEP_TMP=1` keeps the temporary folders.
//!
//! The strace tests print a note and pass when strace is missing or
//! ptrace is not permitted.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::keys::{Key, Ledger};
use common::procs::{self, CProducerArgs, Proc};
use common::rng::{seed_from_env, Rng};
use common::scan::{self, Verdict};
use common::worker::{ConsumerSpec, ProducerSpec, WorkerSpec, EXIT_LOCKED};
use common::{drain_queue, ConsumerSlot, Scene, WORKER_TIMEOUT};

#[test]
#[ignore = "entry point of worker child processes, spawned by the other tests"]
fn worker_process() {
    common::worker::run_if_requested();
}

// ---------------------------------------------------------------------
// Random kills
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    RustProducer,
    CProducer,
    CliConsumer,
    RustConsumer,
}

impl Role {
    fn is_producer(self) -> bool {
        matches!(self, Role::RustProducer | Role::CProducer)
    }
}

#[derive(Debug)]
struct Slot {
    role: Role,
    name: String,
    incarnation: u32,
    proc: Option<Proc>,
    consumer: Option<ConsumerSlot>,
}

#[derive(Debug, Default)]
struct Stats {
    rounds: u64,
    kills: BTreeMap<String, u64>,
    clean_exits: u64,
    locked_starts: u64,
    recover_runs: u64,
    recover_kills: u64,
}

struct Torture {
    // Dropped first, so a failed test kills its processes before their
    // folder goes away.
    slots: Vec<Slot>,
    scene: Scene,
    rng: Rng,
    c_bin: Option<PathBuf>,
    stop: PathBuf,
    stats: Stats,
    // Finished output files are read once, as they appear.
    output: scan::OutputScan,
    checked_outputs: HashSet<PathBuf>,
    checked_lots: HashSet<PathBuf>,
    problems: Vec<String>,
}

impl Torture {
    fn new(seed: u64) -> Torture {
        let scene = Scene::new();
        let c_bin = match procs::build_c_producer(&scene.root.path().join("c")) {
            Ok(bin) => Some(bin),
            Err(note) => {
                println!("note: no C producer in this run: {note}");
                None
            }
        };
        let stop = scene.root.path().join("stop");
        let mut slots = Vec::new();
        let mut add = |role, name: &str, consumer| {
            slots.push(Slot {
                role,
                name: name.to_string(),
                incarnation: 0,
                proc: None,
                consumer,
            })
        };
        add(Role::RustProducer, "rp0", None);
        add(Role::RustProducer, "rp1", None);
        if c_bin.is_some() {
            add(Role::CProducer, "cp0", None);
        }
        let out_cli = scene.root.path().join("out_cli");
        let out_rs = scene.root.path().join("out_rs");
        let cli = ConsumerSlot {
            id: "cli".into(),
            out: out_cli,
        };
        let rs = ConsumerSlot {
            id: "rs".into(),
            out: out_rs,
        };
        add(Role::CliConsumer, "cli", Some(cli));
        add(Role::RustConsumer, "rs", Some(rs));
        Torture {
            scene,
            rng: Rng::new(seed),
            c_bin,
            stop,
            slots,
            stats: Stats::default(),
            output: scan::OutputScan::default(),
            checked_outputs: HashSet::new(),
            checked_lots: HashSet::new(),
            problems: Vec::new(),
        }
    }

    /// Starts a new incarnation of slot `i`, with fresh random options.
    fn start(&mut self, i: usize) {
        let rng = &mut self.rng;
        let slot = &mut self.slots[i];
        slot.incarnation += 1;
        let game = format!("{}i{}", slot.name, slot.incarnation);
        let queue = self.scene.queue.clone();
        let logs = self.scene.logs.clone();
        let cmd = match slot.role {
            Role::RustProducer => {
                let mut spec = ProducerSpec::new(queue, logs, &game);
                spec.count = if rng.chance(50) {
                    None
                } else {
                    Some(rng.range(20, 400))
                };
                spec.batch_max = *rng.pick(&[1, 3, 10]);
                spec.pause_us = rng.range(5000, 30_000);
                spec.big = *rng.pick(&[0, 0, 0, 500, 5000]);
                spec.stop_file = Some(self.stop.clone());
                spec.seed = rng.next_u64();
                spec.write_through = rng.chance(50);
                spec.durable = rng.chance(25);
                spec.max_lot_lines = *rng.pick(&[1, 3, 10, 50, 500]);
                spec.max_lot_bytes = *rng.pick(&[4096, 65536, 512 * 1024]);
                spec.max_lot_age_ms = *rng.pick(&[None, Some(20), Some(200)]);
                spec.write_buffer_bytes = *rng.pick(&[256, 4096, 65536]);
                procs::rust_worker(&WorkerSpec::Producer(spec))
            }
            Role::CProducer => {
                let bin = self
                    .c_bin
                    .as_ref()
                    .expect("the C slot exists only with gcc");
                let mut args = CProducerArgs::new(queue, logs, &game);
                args.count = if rng.chance(50) {
                    0
                } else {
                    rng.range(20, 400)
                };
                args.batch = *rng.pick(&[1, 3, 10]);
                args.pause_us = rng.range(5000, 30_000);
                args.big = *rng.pick(&[0, 0, 0, 500, 5000]);
                args.write_through = rng.chance(50);
                args.durable = rng.chance(25);
                args.lot_lines = *rng.pick(&[1, 3, 10, 50, 500]);
                args.lot_age_ms = *rng.pick(&[0, 20, 200]);
                args.stop = Some(self.stop.clone());
                args.command(bin)
            }
            Role::CliConsumer => {
                let c = slot.consumer.as_ref().expect("a consumer slot");
                let mut cmd = procs::diskq_cli();
                cmd.arg("consume")
                    .arg(&queue)
                    .arg("--out")
                    .arg(&c.out)
                    .args(["--id", &c.id])
                    .args(["--interval-ms", &rng.pick(&[5, 20, 50]).to_string()])
                    .args(["--max-lines", &rng.pick(&[7, 50, 500]).to_string()])
                    .env("RUST_LOG", "warn");
                if rng.chance(30) {
                    cmd.arg("--durable");
                }
                cmd
            }
            Role::RustConsumer => {
                let c = slot.consumer.as_ref().expect("a consumer slot");
                let spec = ConsumerSpec {
                    queue,
                    out: c.out.clone(),
                    id: c.id.clone(),
                    durable: rng.chance(30),
                    max_output_lines: *rng.pick(&[5, 40, 1000]),
                    poll_ms: *rng.pick(&[2, 10, 30]),
                    recover_ms: Some(100),
                    stop_file: Some(self.stop.clone()),
                };
                procs::rust_worker(&WorkerSpec::Consumer(spec))
            }
        };
        let name = format!("{}i{}", slot.name, slot.incarnation);
        slot.proc = Some(Proc::spawn(cmd, &self.scene.logs, &name));
    }

    /// Reaps slots whose process ended by itself and restarts them. A
    /// producer may end after its count of pushes; a consumer may find
    /// its id locked by `diskq recover`. Any other end is a problem.
    fn reap(&mut self) {
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(proc) = slot.proc.as_mut() else {
                continue;
            };
            let Some(status) = proc.try_wait() else {
                continue;
            };
            let stderr = std::fs::read_to_string(&proc.stderr).unwrap_or_default();
            let locked = match slot.role {
                Role::RustConsumer => status.code() == Some(EXIT_LOCKED),
                Role::CliConsumer => status.code() == Some(1) && stderr.contains("is in use"),
                _ => false,
            };
            if status.success() && slot.role.is_producer() {
                self.stats.clean_exits += 1;
            } else if locked {
                self.stats.locked_starts += 1;
            } else {
                self.problems.push(format!(
                    "{} ended with {}: {}",
                    proc.name,
                    procs::describe(&status),
                    proc.stderr_tail()
                ));
            }
            slot.proc = None;
            self.start(i);
        }
    }

    /// Kills the process of a random slot and restarts it.
    fn kill_one(&mut self) {
        let i = self.rng.range(0, self.slots.len() as u64 - 1) as usize;
        let slot = &mut self.slots[i];
        if let Some(proc) = slot.proc.as_mut() {
            if proc.kill() {
                *self.stats.kills.entry(slot.name.clone()).or_default() += 1;
            }
        }
        slot.proc = None;
        self.start(i);
    }

    /// Runs `diskq recover`, and half of the time kills it after up to
    /// 15 ms.
    fn run_recover(&mut self) {
        let mut cmd = procs::diskq_cli();
        cmd.arg("recover").arg(&self.scene.queue);
        let name = format!("recover{}", self.stats.recover_runs);
        self.stats.recover_runs += 1;
        let mut proc = Proc::spawn(cmd, &self.scene.logs, &name);
        if self.rng.chance(50) {
            std::thread::sleep(Duration::from_millis(self.rng.range(0, 15)));
            if proc.kill() {
                self.stats.recover_kills += 1;
                return;
            }
        }
        let status = proc.wait_or_kill(WORKER_TIMEOUT);
        if !status.success() {
            self.problems.push(format!(
                "diskq recover failed with {}: {}",
                procs::describe(&status),
                proc.stderr_tail()
            ));
        }
    }

    /// Checks the finished output files and the published lots that
    /// were not checked yet; both are never written again once they
    /// have their name.
    fn check_progress(&mut self) {
        for slot in &self.slots {
            let Some(c) = &slot.consumer else { continue };
            for path in scan::files_ending(&c.out, diskq::OUTPUT_SUFFIX) {
                if self.checked_outputs.contains(&path) {
                    continue;
                }
                self.output.add_file(&path);
                self.checked_outputs.insert(path);
            }
        }
        for path in scan::published_lots(&self.scene.queue) {
            if self.checked_lots.contains(&path) {
                continue;
            }
            match scan::ends_in_newline(&path) {
                Some(true) => {
                    self.checked_lots.insert(path);
                }
                Some(false) => self.problems.push(format!(
                    "published lot {} does not end in a newline",
                    path.display()
                )),
                None => {}
            }
        }
    }

    fn consumer_slots(&self) -> Vec<ConsumerSlot> {
        self.slots
            .iter()
            .filter_map(|s| s.consumer.clone())
            .collect()
    }

    /// Stops every worker cleanly: producers and the Rust consumer see
    /// the stop file, the command-line consumer gets SIGTERM.
    fn stop_all(&mut self) {
        std::fs::write(&self.stop, b"").expect("create the stop file");
        for slot in &mut self.slots {
            let Some(proc) = slot.proc.as_mut() else {
                continue;
            };
            if slot.role == Role::CliConsumer {
                Proc::signal(proc.child.id(), libc::SIGTERM);
            }
            let status = proc.wait_or_kill(WORKER_TIMEOUT);
            let locked = slot.role == Role::RustConsumer && status.code() == Some(EXIT_LOCKED);
            if !status.success() && !locked {
                self.problems.push(format!(
                    "{} failed to stop cleanly: {}: {}",
                    proc.name,
                    procs::describe(&status),
                    proc.stderr_tail()
                ));
            }
            slot.proc = None;
        }
    }
}

/// Number of rounds of the random kill test.
fn torture_rounds() -> u64 {
    match std::env::var("DISKQ_TORTURE_ROUNDS") {
        Ok(v) => v.parse().expect("DISKQ_TORTURE_ROUNDS is a number"),
        Err(_) => 100,
    }
}

#[test]
fn random_kills_keep_acked_transitions_exactly_once() {
    let seed = seed_from_env("DISKQ_TORTURE_SEED");
    let rounds = torture_rounds();
    println!("random kills: seed {seed} (DISKQ_TORTURE_SEED={seed} replays it), {rounds} rounds");
    let started = Instant::now();
    let mut t = Torture::new(seed);
    for i in 0..t.slots.len() {
        t.start(i);
    }

    for round in 0..rounds {
        t.stats.rounds += 1;
        std::thread::sleep(Duration::from_millis(t.rng.range(5, 60)));
        t.reap();
        let action = t.rng.range(0, 99);
        if action < 75 {
            t.kill_one();
        } else if action < 87 {
            t.run_recover();
        }
        if round % 5 == 4 {
            t.check_progress();
        }
        if !t.problems.is_empty() || !t.output.problems.is_empty() {
            break;
        }
    }
    t.reap();
    t.stop_all();
    assert!(t.problems.is_empty(), "problems: {:#?}", t.problems);

    common::cli_recover(&t.scene.queue);
    let consumers = t.consumer_slots();
    drain_queue(&t.scene.queue, &consumers);
    t.check_progress();

    let output = &t.output;
    let open_files: Vec<PathBuf> = consumers
        .iter()
        .flat_map(|c| scan::files_ending(&c.out, diskq::OPEN_SUFFIX))
        .collect();
    let ledger = Ledger::read(&t.scene.logs);
    let verdict = Verdict::new(&ledger, output);
    let kills: u64 = t.stats.kills.values().sum();
    println!(
        "random kills: {} rounds, {kills} kills {:?}, {} clean producer exits, \
         {} consumer starts refused (id locked), diskq recover run {} times and killed {} times",
        t.stats.rounds,
        t.stats.kills,
        t.stats.clean_exits,
        t.stats.locked_starts,
        t.stats.recover_runs,
        t.stats.recover_kills
    );
    println!(
        "random kills: {} transitions in {} output files, {} incarnations logged; {}; {:.1} s",
        output.lines,
        output.files.len(),
        ledger.files.len() / 2,
        verdict.summary(),
        started.elapsed().as_secs_f64()
    );

    assert!(t.problems.is_empty(), "problems: {:#?}", t.problems);
    assert!(output.problems.is_empty(), "output: {:#?}", output.problems);
    assert!(open_files.is_empty(), "unfinished: {open_files:?}");
    let left = scan::leftovers(&t.scene.queue);
    assert!(left.is_empty(), "left in the queue: {left:#?}");
    verdict.assert_exactly_once(&format!("seed {seed}"));
    assert!(verdict.acked > 0, "no transition was acknowledged");
    assert!(kills > 0 || rounds < 5, "no process was killed");
    t.scene.keep_if_requested();
}

// ---------------------------------------------------------------------
// Kills at exact system calls
// ---------------------------------------------------------------------

/// System calls at which a producer is killed: publishing and lot
/// creation (renameat2), lot writes (pwrite64), and the syncs of the
/// durable mode.
const PRODUCER_CALLS: &str = "renameat2,pwrite64,fdatasync,fsync";

/// The same for a consumer, plus the cuts of its recovery.
const CONSUMER_CALLS: &str = "renameat2,pwrite64,fdatasync,fsync,ftruncate";

fn all_kill_points() -> bool {
    std::env::var("DISKQ_KILL_POINTS").is_ok_and(|v| v == "all")
}

/// Returns the call numbers to kill at, out of `count` calls: all of
/// them with `DISKQ_KILL_POINTS=all`, else the first three, the middle
/// and the last two.
fn kill_points(count: usize) -> Vec<usize> {
    if all_kill_points() {
        return (1..=count).collect();
    }
    let mut points: Vec<usize> = [1, 2, 3, count / 2, count.saturating_sub(1), count]
        .into_iter()
        .filter(|&n| n >= 1 && n <= count)
        .collect();
    points.sort_unstable();
    points.dedup();
    points
}

/// Returns the strace expression that kills the tracee as it enters its
/// `n`-th call of `syscall`.
fn kill_at(syscall: &str, n: usize) -> String {
    format!("inject={syscall}:signal=KILL:when={n}")
}

/// The scripted producer that the kill-point tests interrupt. It makes
/// 24 pushes in durable lots of at most 5 lines, flushed in batches,
/// with a few lines of several kilobytes. It has no age thread, so every
/// call comes from one thread in a fixed order.
#[derive(Debug, Clone, Copy)]
enum Scripted {
    Rust { write_through: bool },
    C { write_through: bool },
}

fn scripted_producer(kind: Scripted, scene: &Scene, game: &str, c_bin: Option<&Path>) -> Command {
    match kind {
        Scripted::Rust { write_through } => {
            let mut spec = ProducerSpec::new(scene.queue.clone(), scene.logs.clone(), game);
            spec.count = Some(24);
            spec.batch_max = 8;
            spec.big = 300;
            spec.write_through = write_through;
            spec.durable = true;
            spec.max_lot_lines = 5;
            spec.write_buffer_bytes = 256;
            procs::rust_worker(&WorkerSpec::Producer(spec))
        }
        Scripted::C { write_through } => {
            let mut args = CProducerArgs::new(scene.queue.clone(), scene.logs.clone(), game);
            args.count = 24;
            args.batch = 8;
            args.big = 300;
            args.write_through = write_through;
            args.durable = true;
            args.lot_lines = 5;
            args.command(c_bin.expect("a C producer binary"))
        }
    }
}

/// Returns the command of a producer that pushes 10 more transitions
/// after a crash. Opening it publishes the lots of the dead one.
fn follow_up_producer(scene: &Scene, game: &str) -> Command {
    let mut spec = ProducerSpec::new(scene.queue.clone(), scene.logs.clone(), game);
    spec.count = Some(10);
    procs::rust_worker(&WorkerSpec::Producer(spec))
}

fn run_to_end(cmd: Command, scene: &Scene, name: &str) -> std::process::ExitStatus {
    Proc::spawn(cmd, &scene.logs, name).wait_or_kill(WORKER_TIMEOUT)
}

/// Kills a scripted producer at each sampled call number of each call
/// in [`PRODUCER_CALLS`], then recovers (by a new producer, or by
/// `diskq recover` first), drains and checks. Returns (runs, kills).
fn producer_kill_points(kind: Scripted, c_bin: Option<&Path>) -> (usize, usize) {
    let dry = Scene::new();
    let counts = procs::count_syscalls(
        &scripted_producer(kind, &dry, "dry", c_bin),
        PRODUCER_CALLS,
        dry.root.path(),
    );
    println!("{kind:?}: calls in a full run: {counts:?}");
    let (mut runs, mut kills) = (0, 0);
    for (syscall, count) in counts {
        for n in kill_points(count) {
            let scene = Scene::new();
            let context = format!("{kind:?} killed at {syscall} #{n}");
            let cmd = procs::under_strace(
                &scripted_producer(kind, &scene, "first", c_bin),
                &syscall,
                &[kill_at(&syscall, n)],
                None,
            );
            let status = run_to_end(cmd, &scene, "first");
            runs += 1;
            if procs::was_killed(&status) {
                kills += 1;
            } else {
                assert!(status.success(), "{context}: {}", procs::describe(&status));
            }
            if runs % 2 == 0 {
                common::cli_recover(&scene.queue);
            }
            let status = run_to_end(follow_up_producer(&scene, "second"), &scene, "second");
            assert!(status.success(), "{context}: the next producer failed");
            drain_queue(&scene.queue, &[scene.main_consumer()]);
            common::check_drained(&scene.queue, &scene.logs, &[&scene.out], &[], &context);
        }
    }
    (runs, kills)
}

#[test]
fn rust_producer_killed_at_each_call() {
    if !procs::strace_or_note("rust_producer_killed_at_each_call") {
        return;
    }
    for write_through in [false, true] {
        let kind = Scripted::Rust { write_through };
        let (runs, kills) = producer_kill_points(kind, None);
        println!("{kind:?}: {runs} runs, {kills} killed, all exactly once");
        assert!(kills > 0, "{kind:?}: no run was killed");
    }
}

#[test]
fn c_producer_killed_at_each_call() {
    if !procs::strace_or_note("c_producer_killed_at_each_call") {
        return;
    }
    let build = Scene::new();
    let bin = match procs::build_c_producer(build.root.path()) {
        Ok(bin) => bin,
        Err(note) => {
            println!("note: c_producer_killed_at_each_call skipped: {note}");
            return;
        }
    };
    for write_through in [true, false] {
        let kind = Scripted::C { write_through };
        let (runs, kills) = producer_kill_points(kind, Some(&bin));
        println!("{kind:?}: {runs} runs, {kills} killed, all exactly once");
        assert!(kills > 0, "{kind:?}: no run was killed");
    }
}

/// Lot sizes, in lines, of the queue that consumers are killed on.
const SIX_LOTS: [u64; 6] = [3, 1, 8, 2, 5, 4];

fn consume_once(scene: &Scene, durable: bool) -> Command {
    let mut cmd = procs::diskq_cli();
    cmd.arg("consume")
        .arg(&scene.queue)
        .arg("--out")
        .arg(&scene.out)
        .args(["--id", "main", "--once", "--max-lines", "7"]);
    if durable {
        cmd.arg("--durable");
    }
    cmd
}

#[test]
fn consumer_killed_at_each_call() {
    if !procs::strace_or_note("consumer_killed_at_each_call") {
        return;
    }
    let (mut runs, mut kills, mut second_kills) = (0, 0, 0);
    for durable in [false, true] {
        let dry = Scene::new();
        common::publish_lots(&dry.queue, &dry.logs, "pre", &SIX_LOTS, 200);
        let counts = procs::count_syscalls(
            &consume_once(&dry, durable),
            CONSUMER_CALLS,
            dry.root.path(),
        );
        println!("consumer (durable {durable}): calls in a full run: {counts:?}");
        for (syscall, count) in counts {
            for n in kill_points(count) {
                let scene = Scene::new();
                common::publish_lots(&scene.queue, &scene.logs, "pre", &SIX_LOTS, 200);
                let context = format!("consumer (durable {durable}) killed at {syscall} #{n}");
                let cmd = procs::under_strace(
                    &consume_once(&scene, durable),
                    &syscall,
                    &[kill_at(&syscall, n)],
                    None,
                );
                let status = run_to_end(cmd, &scene, "first");
                runs += 1;
                if procs::was_killed(&status) {
                    kills += 1;
                } else {
                    assert!(status.success(), "{context}: {}", procs::describe(&status));
                }

                // Kill the recovery too: a restarted consumer at its
                // first or second cut or rename, or `diskq recover`.
                let recovery = if runs % 2 == 0 {
                    consume_once(&scene, durable)
                } else {
                    let mut cmd = procs::diskq_cli();
                    cmd.arg("recover").arg(&scene.queue);
                    cmd
                };
                let when = 1 + runs % 2;
                let cmd = procs::under_strace(
                    &recovery,
                    "ftruncate,renameat2",
                    &[format!(
                        "inject=ftruncate,renameat2:signal=KILL:when={when}"
                    )],
                    None,
                );
                if procs::was_killed(&run_to_end(cmd, &scene, "second")) {
                    second_kills += 1;
                }
                drain_queue(&scene.queue, &[scene.main_consumer()]);
                common::check_drained(&scene.queue, &scene.logs, &[&scene.out], &[], &context);
            }
        }
    }
    println!(
        "consumer: {runs} runs, {kills} killed, {second_kills} recoveries killed, all exactly once"
    );
    assert!(kills > 0, "no consumer run was killed");
}

// ---------------------------------------------------------------------
// A producer killed in the middle of a long line
// ---------------------------------------------------------------------

/// Returns a producer whose every 16th line contains 40000 obs values
/// (about 300 kB). All lines go to one lot, and each push is
/// acknowledged when it returns.
fn long_line_producer(scene: &Scene, game: &str, count: Option<u64>) -> ProducerSpec {
    let mut spec = ProducerSpec::new(scene.queue.clone(), scene.logs.clone(), game);
    spec.count = count;
    spec.big = 40_000;
    spec.write_through = true;
    spec.max_lot_lines = 100_000;
    spec.max_lot_bytes = 1 << 30;
    spec.flush = false;
    spec
}

fn single_part(queue: &Path) -> PathBuf {
    let parts = scan::files_ending(&queue.join("incoming"), ".part");
    assert_eq!(parts.len(), 1, "expected one .part lot, found {parts:?}");
    parts.into_iter().next().unwrap()
}

/// After the crash: a new producer (C if gcc works, else Rust) opens
/// the queue and pushes 40 more transitions, some of them long. Checks
/// that the torn lot was repaired before anything else was published.
fn push_after_torn_lot(scene: &Scene, context: &str) {
    let build = scene.root.path().join("c");
    let cmd = match procs::build_c_producer(&build) {
        Ok(bin) => {
            let mut args = CProducerArgs::new(scene.queue.clone(), scene.logs.clone(), "after");
            args.count = 40;
            args.big = 40_000;
            args.command(&bin)
        }
        Err(note) => {
            println!("note: the follow-up producer is a Rust one: {note}");
            let mut spec = long_line_producer(scene, "after", Some(40));
            spec.write_through = false;
            procs::rust_worker(&WorkerSpec::Producer(spec))
        }
    };
    let status = run_to_end(cmd, scene, "after");
    assert!(status.success(), "{context}: the follow-up producer failed");

    let parts = scan::files_ending(&scene.queue.join("incoming"), ".part");
    assert!(parts.is_empty(), "{context}: .part left: {parts:?}");
    for lot in scan::files_ending(&scene.queue.join("incoming"), ".ready") {
        let bytes = std::fs::read(&lot).expect("read a published lot");
        let problems = scan::check_lines(&bytes, &lot);
        assert!(problems.is_empty(), "{context}: {problems:#?}");
    }
}

#[test]
fn producer_dead_mid_line_leaves_no_fragment() {
    let scene = Scene::new();
    let mut cmd = procs::rust_worker(&WorkerSpec::Producer(long_line_producer(
        &scene, "torn", None,
    )));
    // The 3rd long line spans roughly bytes 600 000 to 900 000.
    procs::limit_file_size(&mut cmd, 850_000, false);
    let status = run_to_end(cmd, &scene, "torn");
    assert_eq!(
        status.signal(),
        Some(libc::SIGXFSZ),
        "the producer should die by SIGXFSZ, got {}",
        procs::describe(&status)
    );
    let part = single_part(&scene.queue);
    let bytes = std::fs::read(&part).expect("read the dead lot");
    assert_eq!(
        bytes.len(),
        850_000,
        "the lot should stop at the size limit"
    );
    let tail = bytes.len() - bytes.iter().rposition(|&b| b == b'\n').unwrap() - 1;
    assert!(
        tail > 100_000,
        "expected a long fragment, found {tail} bytes"
    );

    // The push of the long line never returned, so its key is pushed
    // but not acknowledged; it must not arrive at all.
    let ledger = Ledger::read(&scene.logs);
    let torn: Vec<Key> = ledger.pushed.difference(&ledger.acked).cloned().collect();
    assert_eq!(torn.len(), 1, "one push was in progress: {torn:?}");
    assert_eq!(torn[0].seq % 16, 15, "the torn push is a long line");

    push_after_torn_lot(&scene, "killed mid-line");
    drain_queue(&scene.queue, &[scene.main_consumer()]);
    let checked = common::check_drained(
        &scene.queue,
        &scene.logs,
        &[&scene.out],
        &torn,
        "killed mid-line",
    );
    println!(
        "killed mid-line: fragment of {tail} bytes dropped; {}",
        checked.verdict.summary()
    );
}

#[test]
fn part_cut_by_hand_loses_only_cut_lines() {
    let scene = Scene::new();
    let spec = long_line_producer(&scene, "cut", None);
    let mut proc = Proc::spawn(
        procs::rust_worker(&WorkerSpec::Producer(spec)),
        &scene.logs,
        "cut",
    );
    let acked_log = scene.logs.join("cut.acked");
    let enough = procs::wait_until(WORKER_TIMEOUT, || {
        std::fs::read_to_string(&acked_log).is_ok_and(|t| t.lines().count() >= 40)
    });
    assert!(enough, "the producer did not acknowledge 40 pushes");
    assert!(proc.kill(), "the producer ended before it was killed");

    let part = single_part(&scene.queue);
    let cut = common::cut_tail(&part, 100);
    assert!(!cut.is_empty(), "the cut should tear at least one line");

    // Recovery itself dies: once as it cuts the torn line off, once as
    // it publishes the repaired lot.
    if procs::strace_or_note("part_cut_by_hand_loses_only_cut_lines (recovery kills)") {
        for syscall in ["ftruncate", "renameat2"] {
            let mut recover = procs::diskq_cli();
            recover.arg("recover").arg(&scene.queue);
            let cmd = procs::under_strace(&recover, syscall, &[kill_at(syscall, 1)], None);
            let status = run_to_end(cmd, &scene, &format!("recover-{syscall}"));
            assert!(
                procs::was_killed(&status),
                "diskq recover was not killed at its first {syscall}: {}",
                procs::describe(&status)
            );
        }
    }

    push_after_torn_lot(&scene, "cut by hand");
    drain_queue(&scene.queue, &[scene.main_consumer()]);
    let checked = common::check_drained(
        &scene.queue,
        &scene.logs,
        &[&scene.out],
        &cut,
        "cut by hand",
    );
    println!(
        "cut by hand: {} lines cut; {}",
        cut.len(),
        checked.verdict.summary()
    );
}

// ---------------------------------------------------------------------
// Output tails and the order of syncs
// ---------------------------------------------------------------------

/// Writes a lot by hand into `incoming/` under a name without checksum,
/// holding the transitions of `keys` with the newline after the last one
/// left out, and logs the keys as pushed and acknowledged.
fn hand_made_lot(scene: &Scene, name: &str, game: &str, seqs: std::ops::Range<u64>) {
    let mut book = common::keys::Bookkeeping::open(&scene.logs, game);
    let mut text = Vec::new();
    let mut keys = Vec::new();
    for seq in seqs {
        let key = Key::nth(game, seq);
        book.pushed(&key);
        text.extend(serde_json::to_vec(&common::keys::transition_for(&key, 0)).unwrap());
        text.push(b'\n');
        keys.push(key);
    }
    text.pop();
    std::fs::write(scene.queue.join("incoming").join(name), text).expect("write a lot");
    book.acked(&keys);
}

/// A consumer killed with an output file open, whose file then gets a
/// fragment appended (what a kill in the middle of a buffered write
/// leaves), is restarted over more lots, one of them hand-made and
/// missing its last newline. Every finished line must be one object.
#[test]
fn output_fragment_never_reaches_finished_file() {
    let scene = Scene::new();
    common::publish_lots(&scene.queue, &scene.logs, "first", &[4, 6], 0);
    let mut consumer = procs::diskq_cli();
    consumer
        .arg("consume")
        .arg(&scene.queue)
        .arg("--out")
        .arg(&scene.out)
        .args(["--id", "main", "--interval-ms", "10"]);
    let mut proc = Proc::spawn(consumer, &scene.logs, "consumer");
    let done = procs::wait_until(WORKER_TIMEOUT, || {
        scan::files_ending(&scene.queue.join("archive"), ".done").len() == 2
    });
    assert!(done, "the consumer did not archive both lots");
    assert!(proc.kill(), "the consumer ended by itself");

    let open = scan::files_ending(&scene.out, diskq::OPEN_SUFFIX);
    assert_eq!(open.len(), 1, "one open output file: {open:?}");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&open[0])
        .expect("open the output file");
    std::io::Write::write_all(&mut file, br#"{"obs":[0.1,0.2"#).expect("append a fragment");

    hand_made_lot(&scene, "00000000000000000001-hand.ready", "hand", 0..3);
    common::publish_lots(&scene.queue, &scene.logs, "second", &[5], 0);
    let status =
        Proc::spawn(consume_once(&scene, false), &scene.logs, "again").wait_or_kill(WORKER_TIMEOUT);
    assert!(status.success(), "the restarted consumer failed");
    drain_queue(&scene.queue, &[scene.main_consumer()]);
    common::check_drained(
        &scene.queue,
        &scene.logs,
        &[&scene.out],
        &[],
        "fragment in the open output file",
    );
}

/// Traces durable producers (Rust and C) and a durable consumer, and
/// checks the order of syncs around every rename. The consumer also
/// meets an all-NUL lot and an empty one, which it must set aside.
#[test]
fn durable_mode_syncs_around_renames() {
    if !procs::strace_or_note("durable_mode_syncs_around_renames") {
        return;
    }
    let scene = Scene::new();
    let out = std::fs::canonicalize(&scene.out).expect("canonical output folder");
    let mut traces = Vec::new();

    let mut spec = ProducerSpec::new(scene.queue.clone(), scene.logs.clone(), "rs");
    spec.count = Some(30);
    spec.batch_max = 10;
    spec.max_lot_lines = 7;
    spec.durable = true;
    spec.big = 300;
    traces.push((
        "rust producer",
        procs::rust_worker(&WorkerSpec::Producer(spec)),
    ));
    if let Ok(bin) = procs::build_c_producer(&scene.root.path().join("c")) {
        let mut args = CProducerArgs::new(scene.queue.clone(), scene.logs.clone(), "c");
        args.count = 30;
        args.lot_lines = 7;
        args.durable = true;
        traces.push(("c producer", args.command(&bin)));
    }
    let mut cmd = procs::diskq_cli();
    cmd.arg("consume")
        .arg(&scene.queue)
        .arg("--out")
        .arg(&scene.out)
        .args(["--id", "main", "--once", "--durable", "--max-lines", "20"]);
    traces.push(("consumer", cmd));

    let incoming = scene.queue.join("incoming");
    let nul = "00000000000000000001-hand-nul.ready";
    let empty = "00000000000000000002-hand-empty.ready";
    let mut checked = 0;
    for (i, (name, cmd)) in traces.into_iter().enumerate() {
        if name == "consumer" {
            std::fs::write(incoming.join(nul), [0u8; 4096]).expect("write the NUL lot");
            std::fs::write(incoming.join(empty), b"").expect("write the empty lot");
        }
        let log = scene.root.path().join(format!("{i}.trace"));
        let traced = procs::under_strace(&cmd, common::trace::ORDER_CALLS, &[], Some(&log));
        let status = run_to_end(traced, &scene, &format!("traced{i}"));
        assert!(
            status.success(),
            "{name} failed: {}",
            procs::describe(&status)
        );
        let calls = common::trace::parse(&std::fs::read_to_string(&log).expect("read trace"));
        let (problems, renames) = common::trace::check_durable_order(&calls, &out);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        assert!(renames > 0, "{name}: no rename was traced");
        checked += renames;
    }
    println!("durable order: {checked} renames checked");

    let quarantine = scene.queue.join("quarantine");
    let log = std::fs::read_to_string(scene.logs.join("traced2.err")).unwrap_or_default();
    for lot in [nul, empty] {
        assert!(quarantine.join(lot).exists(), "{lot} was not set aside");
        let reason = std::fs::read_to_string(quarantine.join(format!("{lot}.reason")))
            .unwrap_or_else(|e| panic!("no reason for {lot}: {e}"));
        assert!(!reason.trim().is_empty(), "empty reason for {lot}");
        assert!(
            log.lines()
                .any(|l| l.contains("quarantined") && l.contains(lot)),
            "no log line names the quarantined {lot}: {log}"
        );
    }
    let output = scan::scan_outputs(&[&scene.out]);
    assert!(output.problems.is_empty(), "{:#?}", output.problems);
    let verdict = Verdict::new(&Ledger::read(&scene.logs), &output);
    verdict.assert_exactly_once("durable order");
}
