//! Failing system calls under real producer and consumer processes.
//! strace injects ENOSPC into writes and EIO into fsync and rename. A
//! file size limit cuts a write in the middle of a line, and a tiny
//! tmpfs fills up for real.
//!
//! The checks: the call whose data could not be stored returns an
//! error, in Rust and through the C ABI. A producer whose fsync failed
//! reports Poisoned afterwards. No published lot or finished output
//! file ends in a partial line. Once the fault is gone, everything
//! drains with each acknowledged transition exactly once.
//!
//! The library writes lot and output data with `pwrite64`, so that is
//! the write call that the strace tests fail; the workers' bookkeeping
//! uses `writev` and is left alone. Tests that need strace or a mount
//! namespace print a note and pass when those are unavailable.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::keys::{transition_for, Bookkeeping, Key};
use common::procs::{self, CProducerArgs, Proc};
use common::scan;
use common::tmpfs;
use common::worker::{event, parse_events, Event, OnError, ProducerSpec, WorkerSpec};
use common::{drain_queue, Scene, WORKER_TIMEOUT};
use diskq::{Consumer, ConsumerOptions, ErrorKind, Producer, ProducerOptions};
use serde::{Deserialize, Serialize};

#[test]
#[ignore = "entry point of worker child processes, spawned by the other tests"]
fn worker_process() {
    common::worker::run_if_requested_with(&[
        ("tmpfs_full", tmpfs_scenario),
        ("tmpfs_close", tmpfs_close_scenario),
    ]);
}

// ---------------------------------------------------------------------
// Producers
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Rust,
    C,
}

/// A producer run under fault injection.
#[derive(Debug, Clone)]
struct Faulty {
    lang: Lang,
    write_through: bool,
    durable: bool,
    lot_lines: u64,
    on_error: OnError,
}

impl Faulty {
    fn new(lang: Lang) -> Faulty {
        Faulty {
            lang,
            write_through: true,
            durable: false,
            lot_lines: 5,
            on_error: OnError::Stop,
        }
    }

    /// Returns the command of a run of 40 pushes with a line of a few
    /// kilobytes every 16th, flushed in batches of up to 8, without the
    /// age thread.
    fn command(&self, scene: &Scene, game: &str, c_bin: Option<&Path>) -> Command {
        match self.lang {
            Lang::Rust => {
                let mut spec = ProducerSpec::new(scene.queue.clone(), scene.logs.clone(), game);
                spec.count = Some(40);
                spec.batch_max = 8;
                spec.big = 300;
                spec.write_through = self.write_through;
                spec.durable = self.durable;
                spec.max_lot_lines = self.lot_lines;
                spec.write_buffer_bytes = 4096;
                spec.on_error = self.on_error;
                procs::rust_worker(&WorkerSpec::Producer(spec))
            }
            Lang::C => {
                let mut args = CProducerArgs::new(scene.queue.clone(), scene.logs.clone(), game);
                args.count = 40;
                args.batch = 8;
                args.big = 300;
                args.write_through = self.write_through;
                args.durable = self.durable;
                args.lot_lines = self.lot_lines;
                args.on_error = match self.on_error {
                    OnError::Fail => "fail",
                    OnError::Stop => "stop",
                    OnError::Retry => "retry",
                };
                args.command(c_bin.expect("a C producer binary"))
            }
        }
    }
}

/// Builds the C producer into the scene, or returns None with a note.
fn c_producer(scene: &Scene, test: &str) -> Option<PathBuf> {
    match procs::build_c_producer(&scene.root.path().join("c")) {
        Ok(bin) => Some(bin),
        Err(note) => {
            println!("note: {test}: C part skipped: {note}");
            None
        }
    }
}

/// Runs `faulty` under strace with `inject`, checks that it left only
/// whole lines in `incoming/`, lets a clean producer publish its
/// leftovers and push 10 more, drains the queue and checks that every
/// acknowledged key arrived once. Returns the faulty run's events.
fn run_faulty(
    faulty: &Faulty,
    c_bin: Option<&Path>,
    trace: &str,
    inject: &str,
    context: &str,
) -> Vec<Event> {
    let scene = Scene::new();
    let cmd = procs::under_strace(
        &faulty.command(&scene, "faulty", c_bin),
        trace,
        &[inject.to_string()],
        None,
    );
    let mut proc = Proc::spawn(cmd, &scene.logs, "faulty");
    let status = proc.wait_or_kill(WORKER_TIMEOUT);
    assert!(
        status.success(),
        "{context}: the producer ended with {}: {}",
        procs::describe(&status),
        proc.stderr_tail()
    );
    let events = parse_events(&proc.events());

    let broken = scan::broken_incoming_lots(&scene.queue);
    assert!(broken.is_empty(), "{context}: {broken:#?}");

    let mut spec = ProducerSpec::new(scene.queue.clone(), scene.logs.clone(), "after");
    spec.count = Some(10);
    let mut after = Proc::spawn(
        procs::rust_worker(&WorkerSpec::Producer(spec)),
        &scene.logs,
        "after",
    );
    let status = after.wait_or_kill(WORKER_TIMEOUT);
    assert!(status.success(), "{context}: {}", after.stderr_tail());
    drain_queue(&scene.queue, &[scene.main_consumer()]);
    common::check_drained(&scene.queue, &scene.logs, &[&scene.out], &[], context);
    events
}

/// Returns the first event that reports a failure.
fn first_error(events: &[Event]) -> Option<&Event> {
    events.iter().find(|e| !e.kind.is_empty() && e.kind != "ok")
}

fn event_of<'a>(events: &'a [Event], op: &str) -> Option<&'a Event> {
    events.iter().find(|e| e.op == op)
}

/// Returns the languages to test: Rust, and C when gcc works.
fn langs(scene: &Scene, test: &str) -> Vec<(Lang, Option<PathBuf>)> {
    let mut langs = vec![(Lang::Rust, None)];
    if let Some(bin) = c_producer(scene, test) {
        langs.push((Lang::C, Some(bin)));
    }
    langs
}

#[test]
fn push_on_full_disk_returns_io_error() {
    if !procs::strace_or_note("push_on_full_disk_returns_io_error") {
        return;
    }
    let build = Scene::new();
    for (lang, bin) in langs(&build, "push_on_full_disk_returns_io_error") {
        for n in [1, 4, 9] {
            let faulty = Faulty::new(lang);
            let context = format!("{lang:?} write-through, pwrite64 ENOSPC from call {n}");
            let inject = format!("inject=pwrite64:error=ENOSPC:when={n}+");
            let events = run_faulty(&faulty, bin.as_deref(), "pwrite64", &inject, &context);

            let first = first_error(&events).unwrap_or_else(|| panic!("{context}: no error"));
            assert_eq!(first.op, "push", "{context}: {}", first.line);
            assert_eq!(first.kind, "io", "{context}: {}", first.line);
            let next = event_of(&events, "push_after").expect("a push after the error");
            assert_eq!(next.kind, "io", "{context}: {}", next.line);
        }
    }
}

#[test]
fn flush_on_full_disk_returns_io_error() {
    if !procs::strace_or_note("flush_on_full_disk_returns_io_error") {
        return;
    }
    let build = Scene::new();
    for (lang, bin) in langs(&build, "flush_on_full_disk_returns_io_error") {
        for n in [1, 3] {
            let faulty = Faulty {
                write_through: false,
                ..Faulty::new(lang)
            };
            let context = format!("{lang:?} buffered, pwrite64 ENOSPC from call {n}");
            let inject = format!("inject=pwrite64:error=ENOSPC:when={n}+");
            let events = run_faulty(&faulty, bin.as_deref(), "pwrite64", &inject, &context);

            let first = first_error(&events).unwrap_or_else(|| panic!("{context}: no error"));
            assert_eq!(first.kind, "io", "{context}: {}", first.line);
            let flush = event_of(&events, "flush_after").expect("a flush after the error");
            assert_eq!(flush.kind, "io", "{context}: {}", flush.line);
        }
    }
}

#[test]
fn failed_fsync_poisons_producer() {
    if !procs::strace_or_note("failed_fsync_poisons_producer") {
        return;
    }
    let build = Scene::new();
    for (lang, bin) in langs(&build, "failed_fsync_poisons_producer") {
        // fdatasync syncs the lot before its rename, fsync the folder
        // after it.
        for syscall in ["fdatasync", "fsync"] {
            for n in [1, 2] {
                let faulty = Faulty {
                    durable: true,
                    lot_lines: 1000,
                    ..Faulty::new(lang)
                };
                let context = format!("{lang:?}, {syscall} EIO at call {n}");
                let inject = format!("inject={syscall}:error=EIO:when={n}");
                let events = run_faulty(&faulty, bin.as_deref(), syscall, &inject, &context);

                let first = first_error(&events).unwrap_or_else(|| panic!("{context}: no error"));
                assert_eq!(first.op, "flush", "{context}: {}", first.line);
                assert_eq!(first.kind, "io", "{context}: {}", first.line);
                for op in ["push_after", "flush_after"] {
                    let e = event_of(&events, op).unwrap_or_else(|| panic!("{context}: no {op}"));
                    assert_eq!(e.kind, "poisoned", "{context}: {}", e.line);
                }
            }
        }
    }
}

#[test]
fn poisoned_producer_replaced_loses_nothing() {
    if !procs::strace_or_note("poisoned_producer_replaced_loses_nothing") {
        return;
    }
    let build = Scene::new();
    for (lang, bin) in langs(&build, "poisoned_producer_replaced_loses_nothing") {
        for write_through in [true, false] {
            let faulty = Faulty {
                durable: true,
                write_through,
                on_error: OnError::Retry,
                ..Faulty::new(lang)
            };
            let context = format!("{lang:?} write-through {write_through}, fdatasync EIO at 2");
            let events = run_faulty(
                &faulty,
                bin.as_deref(),
                "fdatasync",
                "inject=fdatasync:error=EIO:when=2",
                &context,
            );
            assert!(
                events.iter().any(|e| e.op == "reopen"),
                "{context}: the producer was not replaced: {events:?}"
            );
            assert!(
                events.iter().any(|e| e.op == "done"),
                "{context}: the run did not finish: {events:?}"
            );
        }
    }
}

#[test]
fn failed_rename_leaves_producer_usable() {
    if !procs::strace_or_note("failed_rename_leaves_producer_usable") {
        return;
    }
    let build = Scene::new();
    for (lang, bin) in langs(&build, "failed_rename_leaves_producer_usable") {
        for write_through in [true, false] {
            for n in [1, 2, 4] {
                // Two failed renames in a row, then renames work again.
                let faulty = Faulty {
                    write_through,
                    on_error: OnError::Retry,
                    ..Faulty::new(lang)
                };
                let context =
                    format!("{lang:?} write-through {write_through}, renameat2 EIO at {n}");
                let inject = format!("inject=renameat2:error=EIO:when={n}..{}", n + 1);
                let events = run_faulty(&faulty, bin.as_deref(), "renameat2", &inject, &context);

                // A failed rename of a new lot file is retried inside the
                // library, and one of a full lot inside a push is retried
                // at the next call, so not every window shows an error.
                let errors: Vec<&Event> = events.iter().filter(|e| !e.kind.is_empty()).collect();
                assert!(
                    errors.iter().all(|e| e.kind == "io"),
                    "{context}: a failed rename must be an I/O error and must not poison: {events:?}"
                );
                assert!(
                    events.iter().any(|e| e.op == "done"),
                    "{context}: the run did not finish: {events:?}"
                );
            }
        }
    }
}

#[test]
fn persistent_rename_failure_keeps_lines() {
    if !procs::strace_or_note("persistent_rename_failure_keeps_lines") {
        return;
    }
    let build = Scene::new();
    for (lang, bin) in langs(&build, "persistent_rename_failure_keeps_lines") {
        for n in [2, 3] {
            let faulty = Faulty::new(lang);
            let context = format!("{lang:?}, renameat2 EIO from call {n} on");
            let inject = format!("inject=renameat2:error=EIO:when={n}+");
            let events = run_faulty(&faulty, bin.as_deref(), "renameat2", &inject, &context);

            // Either a push could not name a new lot file, or a flush
            // could not publish. A flush that still has lines to publish
            // keeps failing.
            let first = first_error(&events).unwrap_or_else(|| panic!("{context}: no error"));
            assert_eq!(first.kind, "io", "{context}: {}", first.line);
            if first.op == "flush" {
                let flush = event_of(&events, "flush_after").expect("a flush after the error");
                assert_eq!(flush.kind, "io", "{context}: {}", flush.line);
            }
        }
    }
}

/// A write that crosses RLIMIT_FSIZE is cut short and the next one
/// fails with EFBIG (SIGXFSZ ignored): a partial line reaches the file
/// inside a live producer, which must cut it off again.
#[test]
fn partial_write_is_cut_from_lot() {
    let build = Scene::new();
    for (lang, bin) in langs(&build, "partial_write_is_cut_from_lot") {
        let scene = Scene::new();
        let context = format!("{lang:?} with a 200 kB file size limit");
        let mut cmd = match lang {
            Lang::Rust => {
                let mut spec =
                    ProducerSpec::new(scene.queue.clone(), scene.logs.clone(), "limited");
                spec.count = None;
                spec.big = 4000;
                spec.write_through = true;
                spec.flush = false;
                spec.max_lot_lines = 100_000;
                spec.max_lot_bytes = 1 << 30;
                spec.on_error = OnError::Stop;
                procs::rust_worker(&WorkerSpec::Producer(spec))
            }
            Lang::C => {
                let mut args =
                    CProducerArgs::new(scene.queue.clone(), scene.logs.clone(), "limited");
                args.count = 0;
                args.batch = 1_000_000;
                args.big = 4000;
                args.write_through = true;
                args.lot_lines = 100_000;
                args.on_error = "stop";
                args.command(bin.as_deref().expect("a C binary"))
            }
        };
        procs::limit_file_size(&mut cmd, 200_000, true);
        let mut proc = Proc::spawn(cmd, &scene.logs, "limited");
        let status = proc.wait_or_kill(WORKER_TIMEOUT);
        assert!(status.success(), "{context}: {}", proc.stderr_tail());
        let events = parse_events(&proc.events());
        let first = first_error(&events).unwrap_or_else(|| panic!("{context}: no error"));
        assert_eq!(first.op, "push", "{context}: {}", first.line);
        assert_eq!(first.kind, "io", "{context}: {}", first.line);
        let flush = event_of(&events, "flush_after").expect("a flush after the error");
        assert_eq!(flush.kind, "ok", "{context}: publishing needs no space");

        let broken = scan::broken_incoming_lots(&scene.queue);
        assert!(broken.is_empty(), "{context}: {broken:#?}");
        drain_queue(&scene.queue, &[scene.main_consumer()]);
        let checked =
            common::check_drained(&scene.queue, &scene.logs, &[&scene.out], &[], &context);
        println!("{context}: {}", checked.verdict.summary());
    }
}

// ---------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------

/// Lot sizes, in lines, of the queue the consumer tests run on. With
/// `big` 40000 the lots of 20 and 40 lines take 300 and 600 kB, so
/// their copy takes more than one write of the consumer's 256 KiB
/// buffer.
const LOTS: [u64; 6] = [3, 20, 1, 40, 5, 2];
const LOTS_BIG: usize = 40_000;

fn consume_command(scene: &Scene, durable: bool, interval_ms: u64) -> Command {
    let mut cmd = procs::diskq_cli();
    cmd.arg("consume")
        .arg(&scene.queue)
        .arg("--out")
        .arg(&scene.out)
        .args(["--id", "main", "--max-lines", "30"])
        .args(["--interval-ms", &interval_ms.to_string()])
        .env("RUST_LOG", "warn");
    if durable {
        cmd.arg("--durable");
    }
    cmd
}

fn queue_drained(queue: &Path) -> bool {
    scan::files_ending(&queue.join("incoming"), ".ready").is_empty()
        && scan::files_ending(&queue.join("processing"), "").is_empty()
        && scan::files_ending(&queue.join("archive"), ".done").len() == LOTS.len()
}

/// Runs `diskq consume` under strace with a fault that lasts a few
/// calls, waits for it to consume every lot without a restart, then
/// stops it with SIGTERM. Afterwards, restarts a consumer to finish
/// whatever is left and checks exactly-once either way. Panics if the
/// first consumer did not drain the queue by itself.
fn consumer_survives(trace: &str, inject: &str, durable: bool, context: &str) {
    let scene = Scene::new();
    common::publish_lots(&scene.queue, &scene.logs, "pre", &LOTS, LOTS_BIG);
    let cmd = procs::under_strace(
        &consume_command(&scene, durable, 10),
        trace,
        &[inject.to_string()],
        None,
    );
    let mut proc = Proc::spawn(cmd, &scene.logs, "consumer");
    let drained = procs::wait_until(Duration::from_secs(15), || queue_drained(&scene.queue));
    let stuck = scan::leftovers(&scene.queue);
    let tracee = proc.first_child_pid().expect("the traced consumer runs");
    Proc::signal(tracee, libc::SIGTERM);
    let status = proc.wait_or_kill(WORKER_TIMEOUT);
    assert!(status.success(), "{context}: {}", proc.stderr_tail());
    let finished = scan::scan_outputs(&[&scene.out]);
    assert!(
        finished.problems.is_empty(),
        "{context}: {:#?}",
        finished.problems
    );

    drain_queue(&scene.queue, &[scene.main_consumer()]);
    common::check_drained(&scene.queue, &scene.logs, &[&scene.out], &[], context);
    assert!(
        drained,
        "{context}: the consumer did not drain the queue after the fault passed; \
         left behind: {stuck:?}; its log: {}",
        proc.stderr_tail()
    );
}

#[test]
fn consumer_survives_full_output_disk() {
    if !procs::strace_or_note("consumer_survives_full_output_disk") {
        return;
    }
    for n in [1, 2, 4] {
        let context = format!("consumer, pwrite64 ENOSPC at calls {n} to {}", n + 2);
        let inject = format!("inject=pwrite64:error=ENOSPC:when={n}..{}", n + 2);
        consumer_survives("pwrite64", &inject, false, &context);
    }
}

#[test]
fn consumer_survives_failed_rename() {
    if !procs::strace_or_note("consumer_survives_failed_rename") {
        return;
    }
    for n in [1, 2, 3, 4] {
        let context = format!("consumer, renameat2 EIO at calls {n} and {}", n + 1);
        let inject = format!("inject=renameat2:error=EIO:when={n}..{}", n + 1);
        consumer_survives("renameat2", &inject, false, &context);
    }
}

#[test]
fn consumer_survives_failed_file_fsync() {
    if !procs::strace_or_note("consumer_survives_failed_file_fsync") {
        return;
    }
    for n in [1, 3] {
        let context = format!("durable consumer, fdatasync EIO at call {n}");
        let inject = format!("inject=fdatasync:error=EIO:when={n}");
        consumer_survives("fdatasync", &inject, true, &context);
    }
}

/// The durable consumer fsyncs folders after it claims a lot, creates
/// an output file, archives a lot and finishes a file. Calls 1 to 8
/// cover each of them for the first lots.
#[test]
fn consumer_survives_failed_folder_fsync() {
    if !procs::strace_or_note("consumer_survives_failed_folder_fsync") {
        return;
    }
    for n in 1..=8 {
        let context = format!("durable consumer, fsync EIO at call {n}");
        let inject = format!("inject=fsync:error=EIO:when={n}");
        consumer_survives("fsync", &inject, true, &context);
    }
}

/// Runs a consumer whose copy of a lot fails half-way, and which is then
/// closed before it polls again: `--once` returns the poll error and
/// closes, a running consumer gets SIGTERM while it waits for its next
/// poll. The lines already copied must not stay in a finished output
/// file, or they arrive twice once the lot is consumed again.
fn consumer_closed_after_failed_copy(once: bool) {
    let scene = Scene::new();
    common::publish_lots(&scene.queue, &scene.logs, "pre", &LOTS, LOTS_BIG);
    let context = format!("consumer (once {once}), third pwrite64 fails, then closed");

    // Write 1 copies the first lot, writes 2 and 3 the two halves of the
    // 20-line lot (its 16th line is about 300 kB).
    let mut cmd = consume_command(&scene, false, 60_000);
    if once {
        cmd.arg("--once");
    }
    let inject = "inject=pwrite64:error=ENOSPC:when=3".to_string();
    let mut proc = Proc::spawn(
        procs::under_strace(&cmd, "pwrite64", &[inject], None),
        &scene.logs,
        "consumer",
    );
    if !once {
        let failed = procs::wait_until(WORKER_TIMEOUT, || {
            std::fs::read_to_string(&proc.stderr).is_ok_and(|t| t.contains("poll failed"))
        });
        assert!(
            failed,
            "{context}: the poll did not fail: {}",
            proc.stderr_tail()
        );
        let tracee = proc.first_child_pid().expect("the traced consumer runs");
        Proc::signal(tracee, libc::SIGTERM);
    }
    let status = proc.wait_or_kill(WORKER_TIMEOUT);
    assert_eq!(status.success(), !once, "{context}: {}", proc.stderr_tail());

    drain_queue(&scene.queue, &[scene.main_consumer()]);
    common::check_drained(&scene.queue, &scene.logs, &[&scene.out], &[], &context);
}

#[test]
fn consumer_once_after_failed_copy() {
    if procs::strace_or_note("consumer_once_after_failed_copy") {
        consumer_closed_after_failed_copy(true);
    }
}

#[test]
fn consumer_stopped_after_failed_copy() {
    if procs::strace_or_note("consumer_stopped_after_failed_copy") {
        consumer_closed_after_failed_copy(false);
    }
}

/// A consumer that keeps failing to write is stopped, and a restarted
/// one (without the fault) finishes the work.
#[test]
fn consumer_restart_after_persistent_full_disk() {
    if !procs::strace_or_note("consumer_restart_after_persistent_full_disk") {
        return;
    }
    for n in [1, 3] {
        let scene = Scene::new();
        common::publish_lots(&scene.queue, &scene.logs, "pre", &LOTS, LOTS_BIG);
        let context = format!("consumer, pwrite64 ENOSPC from call {n} on, then restarted");
        let inject = format!("inject=pwrite64:error=ENOSPC:when={n}+");
        let mut proc = Proc::spawn(
            procs::under_strace(
                &consume_command(&scene, false, 10),
                "pwrite64",
                &[inject],
                None,
            ),
            &scene.logs,
            "consumer",
        );
        let failed = procs::wait_until(WORKER_TIMEOUT, || {
            std::fs::read_to_string(&proc.stderr)
                .is_ok_and(|t| t.matches("poll failed").count() >= 3)
        });
        assert!(
            failed,
            "{context}: polls did not fail: {}",
            proc.stderr_tail()
        );
        let finished = scan::scan_outputs(&[&scene.out]);
        assert!(
            finished.problems.is_empty(),
            "{context}: {:#?}",
            finished.problems
        );
        let tracee = proc.first_child_pid().expect("the traced consumer runs");
        Proc::signal(tracee, libc::SIGKILL);
        proc.wait_or_kill(WORKER_TIMEOUT);

        drain_queue(&scene.queue, &[scene.main_consumer()]);
        common::check_drained(&scene.queue, &scene.logs, &[&scene.out], &[], &context);
    }
}

// ---------------------------------------------------------------------
// A real full disk
// ---------------------------------------------------------------------

/// Runs the scenario function registered as `name` in a private mount
/// namespace with tiny tmpfs mounts on the scene's queue and output
/// folders, and prints its events. Returns false (after a note) when
/// no such namespace can be made here.
fn run_in_tmpfs(name: &str, test: &str) -> bool {
    let scene = Scene::new();
    let c_bin = c_producer(&scene, test);
    let Some(prefix) = tmpfs::namespace_prefix(scene.root.path()) else {
        println!("note: {test} skipped: no private mount namespace for a tmpfs");
        return false;
    };
    let args = TmpfsArgs {
        queue: scene.queue.clone(),
        out: scene.out.clone(),
        logs: scene.logs.clone(),
        c_bin,
    };
    let worker = procs::rust_worker(&WorkerSpec::Scenario {
        name: name.into(),
        args: serde_json::to_value(&args).expect("args to JSON"),
    });
    let cmd = tmpfs::in_namespace(&prefix, &scene.queue, &scene.out, &worker);
    let mut proc = Proc::spawn(cmd, &scene.logs, name);
    let status = proc.wait_or_kill(Duration::from_secs(300));
    for line in proc.events() {
        println!("{name}: {line}");
    }
    assert!(
        status.success(),
        "{name} failed with {}: {}",
        procs::describe(&status),
        proc.stderr_tail()
    );
    true
}

#[test]
fn tiny_tmpfs_fills_then_drains() {
    run_in_tmpfs("tmpfs_full", "tiny_tmpfs_fills_then_drains");
}

#[test]
fn consumer_closed_on_full_tmpfs() {
    run_in_tmpfs("tmpfs_close", "consumer_closed_on_full_tmpfs");
}

/// Argument of [`tmpfs_scenario`].
#[derive(Debug, Serialize, Deserialize)]
struct TmpfsArgs {
    /// The queue, a 2 MiB tmpfs inside the namespace.
    queue: PathBuf,
    /// The output folder, a 1 MiB tmpfs inside the namespace.
    out: PathBuf,
    /// Bookkeeping logs, on the host's disk.
    logs: PathBuf,
    /// The C producer, if gcc works.
    c_bin: Option<PathBuf>,
}

/// Pushes the transition of key (`game`, `*seq`) and logs it as pushed,
/// then as acknowledged if the push succeeded; advances `seq`.
fn push_logged(
    producer: &Producer,
    book: &mut Bookkeeping,
    game: &str,
    seq: &mut u64,
) -> diskq::Result<()> {
    let key = Key::nth(game, *seq);
    *seq += 1;
    book.pushed(&key);
    let result = producer.push(&transition_for(&key, 4000));
    if result.is_ok() {
        book.acked(std::slice::from_ref(&key));
    }
    result
}

/// Asserts that `e` is an I/O error caused by ENOSPC.
fn assert_enospc(e: &diskq::Error, context: &str) {
    assert_eq!(e.kind(), ErrorKind::Io, "{context}: {e}");
    let errno = e.io_error().and_then(|io| io.raw_os_error());
    assert_eq!(errno, Some(libc::ENOSPC), "{context}: {e}");
}

fn assert_whole_lots(queue: &Path, context: &str) {
    let broken = scan::broken_incoming_lots(queue);
    assert!(broken.is_empty(), "{context}: {broken:#?}");
}

/// Runs inside the mount namespace. Fills the queue's tmpfs under a
/// Rust producer and a C producer, and the output's tmpfs under a
/// consumer, checking the errors and the files at each step. Then frees
/// the space and checks that everything drains exactly once.
fn tmpfs_scenario(value: &serde_json::Value) {
    let args: TmpfsArgs = serde_json::from_value(value.clone()).expect("tmpfs scenario args");
    let logger = tmpfs::capture_logs();
    let queue = &args.queue;

    // A Rust producer pushes until the disk is full. Every 16th line is
    // about 30 kB, so the failing write is often cut short by the
    // kernel, leaving part of a line for the producer to remove.
    let opts = ProducerOptions {
        write_through: true,
        max_lot_lines: 50,
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).expect("open a producer on the tmpfs");
    let filler = tmpfs::fill_leaving(queue, "filler", 300_000);
    let mut book = Bookkeeping::open(&args.logs, "rsA");
    let mut seq = 0;
    let mut accepted = 0;
    let err = loop {
        match push_logged(&producer, &mut book, "rsA", &mut seq) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 10_000, "the queue's tmpfs never filled up");
    };
    assert_enospc(&err, "push on a full queue disk");
    event(&format!(
        "rust producer: push failed after {accepted} accepted: {err}"
    ));
    assert_whole_lots(queue, "after the failed push");

    // With not a page left, the next long line fails too, although a
    // short one may still fit in the last page of the lot. A buffered
    // producer dropped now cannot write its lines, so it must log that.
    let (filler2, _) = tmpfs::fill(queue, "filler2");
    while seq % 16 != 15 {
        seq += 1;
    }
    let again =
        push_logged(&producer, &mut book, "rsA", &mut seq).expect_err("push on a full disk");
    assert_enospc(&again, "second push on a full queue disk");
    let buffered = Producer::open(
        queue,
        ProducerOptions {
            max_lot_age: None,
            recover_on_open: false,
            ..ProducerOptions::default()
        },
    )
    .expect("open a buffered producer");
    let mut drop_book = Bookkeeping::open(&args.logs, "rsDrop");
    for s in 0..3 {
        let key = Key::nth("rsDrop", s);
        drop_book.pushed(&key);
        buffered
            .push(&transition_for(&key, 0))
            .expect("a buffered push needs no space");
    }
    drop(buffered);
    let dropped = logger.records().into_iter().any(|r| {
        r.level == log::Level::Error
            && r.target == "diskq::producer"
            && r.message.contains("dropped without a clean close")
    });
    assert!(
        dropped,
        "dropping a producer with unwritten lines logged no error"
    );
    assert_whole_lots(queue, "after the dropped producer");

    // Space returns: the same producer carries on.
    std::fs::remove_file(&filler).expect("remove a filler");
    std::fs::remove_file(&filler2).expect("remove a filler");
    for _ in 0..30 {
        push_logged(&producer, &mut book, "rsA", &mut seq).expect("push after space returned");
    }
    producer.flush().expect("flush after space returned");
    producer.close().expect("close after space returned");
    event("rust producer: 30 pushes accepted after space returned");

    if let Some(bin) = &args.c_bin {
        tmpfs_c_producer(&args, bin);
    }
    tmpfs_consumer(&args);

    drain_queue(queue, &[main_slot(&args.out)]);
    let checked = common::check_drained(queue, &args.logs, &[&args.out], &[], "tmpfs");
    event(&format!("tmpfs: {}", checked.verdict.summary()));
}

fn main_slot(out: &Path) -> common::ConsumerSlot {
    common::ConsumerSlot {
        id: "main".into(),
        out: out.to_path_buf(),
    }
}

/// The C producer on a nearly full queue disk: its push must return
/// DQ_STATUS_IO; after space returns, a new one publishes the leftovers
/// and pushes more.
fn tmpfs_c_producer(args: &TmpfsArgs, bin: &Path) {
    let queue = &args.queue;
    let filler = tmpfs::fill_leaving(queue, "filler", 200_000);
    let mut c_args = CProducerArgs::new(queue.clone(), args.logs.clone(), "cA");
    c_args.count = 0;
    c_args.batch = 1_000_000;
    c_args.big = 4000;
    c_args.write_through = true;
    c_args.lot_lines = 50;
    c_args.on_error = "stop";
    let mut proc = Proc::spawn(c_args.command(bin), &args.logs, "cA");
    let status = proc.wait_or_kill(WORKER_TIMEOUT);
    assert!(
        status.success(),
        "C producer on a full disk: {}",
        proc.stderr_tail()
    );
    let events = parse_events(&proc.events());
    let first = first_error(&events).expect("the C producer saw an error");
    assert_eq!(first.op, "push", "{}", first.line);
    assert_eq!(first.kind, "io", "{}", first.line);
    // The next push is a short line, which may still fit in the last
    // page of the lot, so its result is not checked.
    event(&format!("c producer: {}", first.line));
    assert_whole_lots(queue, "after the C producer's failed push");

    std::fs::remove_file(&filler).expect("remove a filler");
    let mut c_args = CProducerArgs::new(queue.clone(), args.logs.clone(), "cB");
    c_args.count = 40;
    c_args.big = 4000;
    let mut proc = Proc::spawn(c_args.command(bin), &args.logs, "cB");
    let status = proc.wait_or_kill(WORKER_TIMEOUT);
    assert!(
        status.success(),
        "C producer after space returned: {}",
        proc.stderr_tail()
    );
}

/// A consumer whose output tmpfs fills up: polls fail with ENOSPC,
/// finished files hold whole lines only, and after space returns the
/// same consumer drains the queue.
fn tmpfs_consumer(args: &TmpfsArgs) {
    let filler = tmpfs::fill_leaving(&args.out, "filler", 150_000);
    let opts = ConsumerOptions {
        output_dir: args.out.clone(),
        max_output_lines: 200,
        recover_interval: None,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&args.queue, opts).expect("open the consumer");
    let mut failures = 0;
    for _ in 0..50 {
        match consumer.poll() {
            Ok(report) if report.lots == 0 => break,
            Ok(_) => {}
            Err(e) => {
                assert_enospc(&e, "poll on a full output disk");
                failures += 1;
                let finished = scan::scan_outputs(&[&args.out]);
                assert!(finished.problems.is_empty(), "{:#?}", finished.problems);
                if failures == 3 {
                    break;
                }
            }
        }
    }
    assert!(failures > 0, "the output tmpfs never filled up");
    event(&format!(
        "consumer: {failures} polls failed on the full output disk"
    ));

    std::fs::remove_file(&filler).expect("remove a filler");
    let mut idle = 0;
    for _ in 0..200 {
        let report = consumer.poll().expect("poll after space returned");
        idle = if report.lots == 0 { idle + 1 } else { 0 };
        if idle == 2 {
            break;
        }
    }
    assert_eq!(idle, 2, "the consumer did not drain after space returned");
    consumer.close().expect("close the consumer");
}

/// Runs inside the mount namespace. A consumer's copy of a long lot is
/// cut short by a full output disk, and the consumer is closed right
/// after the failed poll, as a bot shutting down would. No finished
/// output file may end in the partial copy, and after a restart every
/// line arrives once.
fn tmpfs_close_scenario(value: &serde_json::Value) {
    let args: TmpfsArgs = serde_json::from_value(value.clone()).expect("tmpfs scenario args");

    // Lines of about 150 kB, so that all lots (about 600 kB) fit in the
    // 1 MiB output once the filler is gone, but the 20-line lot does not
    // fit in the 100 kB left before.
    common::publish_lots(&args.queue, &args.logs, "pre", &LOTS, LOTS_BIG / 2);
    let filler = tmpfs::fill_leaving(&args.out, "filler", 100_000);
    let opts = ConsumerOptions {
        output_dir: args.out.clone(),
        recover_interval: None,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&args.queue, opts).expect("open the consumer");
    let err = consumer.poll().expect_err("poll on a full output disk");
    assert_enospc(&err, "poll on a full output disk");
    event(&format!("consumer: poll failed: {err}"));
    consumer.close().expect("close after a failed poll");
    drop(consumer);

    let finished = scan::scan_outputs(&[&args.out]);
    std::fs::remove_file(&filler).expect("remove a filler");
    assert!(
        finished.problems.is_empty(),
        "closing after a failed copy finished a file with a partial line: {:#?}",
        finished.problems
    );
    drain_queue(&args.queue, &[main_slot(&args.out)]);
    let checked = common::check_drained(
        &args.queue,
        &args.logs,
        &[&args.out],
        &[],
        "closed on a full disk",
    );
    event(&format!("tmpfs_close: {}", checked.verdict.summary()));
}
