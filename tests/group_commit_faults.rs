//! Failing system calls, several consumers and hand-made damage against
//! the durable consumer's group commit. Real `diskq` processes run under
//! `strace`, which makes one call of a kind fail (EIO, ENOSPC, EXDEV)
//! while the consumer keeps going, or kills a consumer at a seeded call.
//! Afterwards fresh consumers drain the queue, and every line of every
//! good lot must be in the finished outputs exactly once.
//!
//! The last six tests each reproduce a bug that these attacks found, now
//! fixed; their doc comments give the repro.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::lots::{
    check_exactly_once, duplicated, hand_lot, json_lines, names_in, scratch, seq_counts,
};
use common::procs::strace_or_note;
use common::rng::Rng;
use diskq::{Producer, ProducerOptions};

/// Maximum time a consumer run may take before the test calls it hung.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Returns `diskq consume --durable` with consumer id `id`, for one poll
/// if `once`, else polling every 20 ms until SIGTERM.
fn consume_cmd(queue: &Path, out: &Path, id: &str, once: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_diskq"));
    cmd.arg("consume")
        .arg(queue)
        .arg("--out")
        .arg(out)
        .args(["--id", id, "--durable", "--no-watch", "--max-lines", "5000"])
        .args(["--interval-ms", "20"])
        .env("RUST_LOG", "warn");
    if once {
        cmd.arg("--once");
    }
    cmd
}

/// Wraps `cmd` in strace with the given `-e` expressions, logging the
/// traced calls to `log`.
fn under_strace(cmd: &Command, exprs: &[String], log: &Path) -> Command {
    let mut strace = Command::new("strace");
    strace.arg("-f").arg("-o").arg(log);
    for expr in exprs {
        strace.arg("-e").arg(expr);
    }
    strace.arg("--").arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            strace.env(key, value);
        }
    }
    strace
}

/// Runs `cmd` to its end, killing it and failing the test if it takes
/// longer than [`RUN_LIMIT`].
fn run_bounded(mut cmd: Command, context: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_bounded(child, context)
}

fn wait_bounded(mut child: Child, context: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > RUN_LIMIT {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{context}: hung for {RUN_LIMIT:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// Fails if the process panicked or died of a signal other than SIGKILL.
fn assert_sane_exit(output: &Output, context: &str) {
    use std::os::unix::process::ExitStatusExt;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{context}: panic: {stderr}");
    if let Some(signal) = output.status.signal() {
        assert_eq!(signal, libc::SIGKILL, "{context}: died of signal {signal}");
    }
}

/// Drains the queue with consumer `id`: two fault-free `--once` runs,
/// each of which must succeed.
fn drain(queue: &Path, out: &Path, id: &str, context: &str) {
    for round in 0..2 {
        let output = run_bounded(consume_cmd(queue, out, id, true), context);
        assert_sane_exit(&output, context);
        assert!(
            output.status.success(),
            "{context}: drain {round} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Publishes `lots` producer lots of `lines` lines, with seqs from
/// `first` on, and returns the seqs.
fn produce(queue: &Path, first: u64, lots: u64, lines: u64) -> BTreeSet<u64> {
    let opts = ProducerOptions {
        max_lot_lines: lines,
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).unwrap();
    let seqs = first..first + lots * lines;
    for seq in seqs.clone() {
        let line = format!(r#"{{"game":"g","seq":{seq}}}"#);
        producer.push_json(line.as_bytes()).unwrap();
    }
    producer.close().unwrap();
    seqs.collect()
}

/// Fills `queue` with waiting lots whose groups break in several places.
/// Hand-made lots come first (good, a raw U+2028 that the copy rewrites,
/// good, bad JSON, good), then 8 producer lots, then two hand-made lots
/// whose names sort last (a raw `\r`, good). Returns the seqs that must
/// reach the output. The bad lot uses seq 900.
fn group_backlog(queue: &Path) -> BTreeSet<u64> {
    let mut expected = BTreeSet::new();
    hand_lot(queue, "00000000000000000001-hand", &json_lines(0..3));
    expected.extend(0..3);
    let sep = "{\"game\":\"g\",\"seq\":3,\"s\":\"a\u{2028}b\"}\n";
    hand_lot(queue, "00000000000000000002-hand", sep.as_bytes());
    expected.insert(3);
    hand_lot(queue, "00000000000000000003-hand", &json_lines(4..6));
    expected.extend(4..6);
    hand_lot(
        queue,
        "00000000000000000004-hand",
        b"{\"game\":\"g\",\"seq\":900,\n",
    );
    hand_lot(queue, "00000000000000000005-hand", &json_lines(6..8));
    expected.extend(6..8);

    expected.extend(produce(queue, 100, 8, 3));

    let cr = b"{\"game\":\"g\",\r\"seq\":200}\n";
    hand_lot(queue, "99999999999999999991-hand", cr);
    expected.insert(200);
    hand_lot(queue, "99999999999999999992-hand", &json_lines(201..204));
    expected.extend(201..204);
    expected
}

/// Checks that the one bad lot is in `quarantine/` with its reason file.
fn check_bad_lot_quarantined(queue: &Path, context: &str) {
    let quarantined = names_in(&queue.join("quarantine"));
    assert_eq!(
        quarantined.len(),
        2,
        "{context}: quarantine/ {quarantined:?}"
    );
    assert!(
        quarantined[0].starts_with("00000000000000000004-hand"),
        "{context}: quarantine/ {quarantined:?}"
    );
}

/// Returns true if the strace log at `log` shows an injected call.
fn injected(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| text.contains("(INJECTED)"))
}

/// Makes call `n` of `syscall` fail with `errno` in one `--once` durable
/// run over [`group_backlog`], then drains with two fault-free runs.
/// Returns false once call `n` is past the last call.
fn fail_once_and_drain(syscall: &str, errno: &str, n: usize) -> bool {
    let (root, queue, out) = scratch();
    let expected = group_backlog(&queue);
    let context = format!("{syscall} {errno} at call {n}");
    let log = root.path().join("strace.log");
    let exprs = [
        format!("trace={syscall}"),
        format!("inject={syscall}:error={errno}:when={n}"),
    ];
    let cmd = under_strace(&consume_cmd(&queue, &out, "main", true), &exprs, &log);
    let faulty = run_bounded(cmd, &context);
    assert_sane_exit(&faulty, &context);
    if !injected(&log) {
        assert!(faulty.status.success(), "{context}: failed without a fault");
        return false;
    }
    // The fault must be reported: a failed exit, or an error in the log.
    let stderr = String::from_utf8_lossy(&faulty.stderr);
    assert!(
        !faulty.status.success() || stderr.contains("ERROR"),
        "{context}: the failure was not reported: {stderr}"
    );

    drain(&queue, &out, "main", &context);
    check_exactly_once(&queue, &[&out], &expected, &context);
    check_bad_lot_quarantined(&queue, &context);
    true
}

/// Runs [`fail_once_and_drain`] for each call of `syscall` with a step
/// of `step`, except the calls in `skip`, and returns how many calls
/// failed.
fn sweep(syscall: &str, errno: &str, step: usize, skip: &[usize]) -> usize {
    let mut points = 0;
    let mut n = 1;
    loop {
        if !skip.contains(&n) {
            if !fail_once_and_drain(syscall, errno, n) {
                break;
            }
            points += 1;
        }
        n += step;
    }
    println!("{syscall} {errno}: {points} failure points");
    points
}

#[test]
fn failed_writes_and_syncs_lose_nothing() {
    if !strace_or_note("failed_writes_and_syncs_lose_nothing") {
        return;
    }
    for (syscall, errno, step) in [
        ("pwrite64", "ENOSPC", 1),
        ("pwrite64", "EIO", 2),
        ("fdatasync", "EIO", 1),
        ("ftruncate", "EIO", 1),
    ] {
        assert!(sweep(syscall, errno, step, &[]) > 0, "no {syscall} call");
    }
}

#[test]
fn failed_renames_lose_nothing() {
    if !strace_or_note("failed_renames_lose_nothing") {
        return;
    }
    for (errno, step) in [("EXDEV", 1), ("EIO", 3)] {
        assert!(
            sweep("renameat2", errno, step, &[]) > 0,
            "no renameat2 call"
        );
    }
}

/// Every folder sync of the durable consumer fails in turn.
#[test]
fn failed_folder_syncs_lose_nothing() {
    if !strace_or_note("failed_folder_syncs_lose_nothing") {
        return;
    }
    assert!(sweep("fsync", "EIO", 1, &[]) > 0, "no fsync call");
}

/// Lots of [`group_backlog`] that reach the archive: all but the bad one.
const GOOD_LOTS: usize = 14;

/// Returns the 1-based index, among the calls of `syscall`, of the first
/// call whose strace line contains `pattern`, in a fault-free `--once`
/// run over [`group_backlog`].
fn call_index(syscall: &str, pattern: &str) -> usize {
    let (root, queue, out) = scratch();
    group_backlog(&queue);
    let log = root.path().join("strace.log");
    let cmd = under_strace(
        &consume_cmd(&queue, &out, "main", true),
        &[format!("trace={syscall}")],
        &log,
    );
    let output = run_bounded(cmd, "fault-free traced run");
    assert!(output.status.success(), "fault-free traced run failed");
    let text = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("{syscall}(")))
        .collect();
    let at = calls.iter().position(|l| l.contains(pattern));
    at.unwrap_or_else(|| panic!("no {syscall} call contains {pattern}: {calls:#?}")) + 1
}

/// A running `diskq consume` (no `--once`) under strace, its tracee
/// found through the `children` file of strace's main thread.
struct Running {
    strace: Child,
}

impl Running {
    fn start(cmd: Command) -> Running {
        let strace = {
            let mut cmd = cmd;
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            cmd.spawn().expect("spawn strace")
        };
        Running { strace }
    }

    fn tracee(&self) -> Option<i32> {
        let pid = self.strace.id();
        let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }

    /// Sends `signal` to the tracee and waits for strace to end.
    fn stop(self, signal: i32, context: &str) -> Output {
        let start = Instant::now();
        let pid = loop {
            if let Some(pid) = self.tracee() {
                break pid;
            }
            assert!(start.elapsed() < RUN_LIMIT, "{context}: no tracee");
            std::thread::sleep(Duration::from_millis(5));
        };
        // SAFETY: kill only sends a signal to the consumer this test
        // started; it touches no memory.
        unsafe { libc::kill(pid, signal) };
        wait_bounded(self.strace, context)
    }
}

/// Waits up to 15 s until no lot is waiting or claimed and the good lots
/// of [`group_backlog`] are archived. Returns false on time out.
fn wait_drained(queue: &Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        let archived = names_in(&queue.join("archive")).len();
        let waiting = names_in(&queue.join("incoming")).len();
        let claimed = names_in(&queue.join("processing"))
            .iter()
            .filter(|n| n.contains(".ready"))
            .count();
        if archived == GOOD_LOTS && waiting == 0 && claimed == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts a long-running durable consumer whose call `n` of `syscall`
/// fails with `errno`, waits until later polls have consumed every lot
/// by themselves, and stops it with SIGTERM. No other consumer runs
/// afterwards: the running one must have recovered alone.
fn running_consumer_recovers(syscall: &str, errno: &str, n: usize) {
    let (root, queue, out) = scratch();
    let expected = group_backlog(&queue);
    let context = format!("running consumer, {syscall} {errno} at call {n}");
    let log = root.path().join("strace.log");
    let exprs = [
        format!("trace={syscall}"),
        format!("inject={syscall}:error={errno}:when={n}"),
    ];
    let running = Running::start(under_strace(
        &consume_cmd(&queue, &out, "main", false),
        &exprs,
        &log,
    ));

    let drained = wait_drained(&queue);
    let left = names_in(&queue.join("processing"));
    let output = running.stop(libc::SIGTERM, &context);

    assert_sane_exit(&output, &context);
    assert!(
        output.status.success(),
        "{context}: exit {:?}",
        output.status
    );
    assert!(injected(&log), "{context}: no call was failed");
    assert!(
        drained,
        "{context}: later polls did not drain the queue; processing/ {left:?}; log: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    check_exactly_once(&queue, &[&out], &expected, &context);
    check_bad_lot_quarantined(&queue, &context);
}

/// Faults inside the first group (claims, copy, output sync, archive
/// renames, the cut after the rewritten lot) hit a consumer that keeps
/// running.
#[test]
fn running_consumer_recovers_from_faults() {
    if !strace_or_note("running_consumer_recovers_from_faults") {
        return;
    }
    let mut points = 0;
    for (syscall, errno, calls) in [
        ("renameat2", "EXDEV", 1..=12),
        ("pwrite64", "ENOSPC", 1..=4),
        ("fdatasync", "EIO", 1..=3),
        ("ftruncate", "EIO", 1..=2),
        ("fsync", "EIO", 2..=5),
    ] {
        for n in calls {
            running_consumer_recovers(syscall, errno, n);
            points += 1;
        }
    }
    println!("{points} faults in running consumers");
}

/// Repro: a durable `diskq consume` over [`group_backlog`] whose sync of
/// `archive/` fails (fsync EIO) right after the commit of the lots in
/// front of the lot with a raw U+2028. That lot was copied rewritten,
/// past the committed end of the output, and is still claimed.
/// `settle_group` returns the sync error from `commit` before
/// `cut_output`, without setting `needs_recovery`: the rewritten bytes
/// stay in the output, later lots are claimed at the same offset, and
/// `close` finishes the file with them. The stale claim names an output
/// that no longer exists, so the next start returns the lot and its line
/// comes out twice (seq 3). Same for the `\r` lot (seq 200).
///
/// Fixed: in `settle_group`, when the `commit` of the lots before
/// the breaking lot fails, set `self.needs_recovery = true` before
/// returning the error. The poll then stops, and the next poll (or
/// `close`) runs recovery, which finds other bytes at the stale claim's
/// offset, cuts the output there and returns the lot.
#[test]
fn failed_early_commit_sync_keeps_lot_once() {
    if !strace_or_note("failed_early_commit_sync_keeps_lot_once") {
        return;
    }
    // Calls 6 and 7 sync archive/ and processing/ after the commit of the
    // first lot, before the U+2028 lot is settled alone. Calls 22 and 23
    // do the same in front of the `\r` lot.
    for n in [6, 7, 22, 23] {
        fail_once_and_drain("fsync", "EIO", n);
    }
}

/// Repro: a long-running durable consumer whose sync of `out/` fails
/// (fsync EIO at call 1) right after `OutputFile::create` made and
/// locked the `.jsonl.open` file. The error drops the file handle, so
/// the empty open file stays behind, unlocked. The consumer creates a
/// new output at the next attempt and drains the queue, but after
/// SIGTERM the first open file is still in `out/`: only the next start's
/// recovery removes it. Nothing is lost or doubled.
///
/// Fixed: in `OutputFile::create`, remove the new file (and
/// ignore a failure to remove it) when the folder sync fails, before
/// returning the error.
#[test]
fn failed_output_folder_sync_removes_file() {
    if !strace_or_note("failed_output_folder_sync_removes_file") {
        return;
    }
    running_consumer_recovers("fsync", "EIO", 1);
}

/// Repro: the fault of [`failed_early_commit_sync_keeps_lot_once`]
/// hits a long-running consumer. The rewritten lot stays claimed in
/// `processing/` and later polls never retry it, since the error left
/// `needs_recovery` unset; it waits for a restart.
///
/// Fixed: as for that test, set `needs_recovery` when the commit
/// inside `settle_group` fails.
#[test]
fn running_consumer_retries_after_early_commit_sync() {
    if !strace_or_note("running_consumer_retries_after_early_commit_sync") {
        return;
    }
    running_consumer_recovers("fsync", "EIO", 6);
}

/// Repro: a long-running durable consumer whose rename of the bad lot
/// into `quarantine/` fails (renameat2 EXDEV). `quarantine` returns the
/// error with the lot still claimed, after `cut_output`, and without
/// setting `needs_recovery`: the claim stays in `processing/` until the
/// consumer restarts, and later polls never retry the quarantine.
///
/// Fixed: in `quarantine`, on a rename error other than
/// `AlreadyExists` and `NotFound`, set `self.needs_recovery = true`
/// before returning it, so the next poll's recovery returns the lot and
/// it is quarantined again.
#[test]
fn running_consumer_retries_failed_quarantine() {
    if !strace_or_note("running_consumer_retries_failed_quarantine") {
        return;
    }
    let n = call_index("renameat2", "quarantine");
    running_consumer_recovers("renameat2", "EXDEV", n);
}

/// Starts a long-running durable consumer whose call `n` of `syscall`
/// fails with `errno`, waits until `archived` lots are in `archive/`
/// and none is waiting, then kills it (SIGKILL, as a crash would) and
/// drains the queue with fresh consumers.
fn fault_then_crash(syscall: &str, errno: &str, n: usize, archived: usize) {
    let (root, queue, out) = scratch();
    let expected = group_backlog(&queue);
    let context = format!("running consumer, {syscall} {errno} at call {n}, then killed");
    let log = root.path().join("strace.log");
    let exprs = [
        format!("trace={syscall}"),
        format!("inject={syscall}:error={errno}:when={n}"),
    ];
    let running = Running::start(under_strace(
        &consume_cmd(&queue, &out, "main", false),
        &exprs,
        &log,
    ));
    let start = Instant::now();
    let mut stalled = false;
    while names_in(&queue.join("archive")).len() < archived
        || !names_in(&queue.join("incoming")).is_empty()
    {
        if start.elapsed() > RUN_LIMIT {
            stalled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Several poll intervals more, so the consumer is idle.
    std::thread::sleep(Duration::from_millis(100));
    let output = running.stop(libc::SIGKILL, &context);
    assert!(!stalled, "{context}: the consumer stalled");
    assert_sane_exit(&output, &context);
    assert!(injected(&log), "{context}: no call was failed");

    drain(&queue, &out, "main", &context);
    check_exactly_once(&queue, &[&out], &expected, &context);
}

/// Repro: as in [`running_consumer_retries_after_early_commit_sync`],
/// the rewritten U+2028 lot stays claimed at offset X of the open output,
/// and the running consumer goes on to commit the 12 lots after it from
/// the same offset X. After a crash, recovery checks that stale claim
/// first, finds other bytes at X, and cuts the output there: the lines
/// of 12 archived lots are lost for good.
///
/// Fixed: as for the stall, set `needs_recovery` when the commit
/// inside `settle_group` fails, so no lot is claimed at X before
/// recovery has settled the stale claim.
#[test]
fn early_commit_fault_then_crash_keeps_lines() {
    if !strace_or_note("early_commit_fault_then_crash_keeps_lines") {
        return;
    }
    fault_then_crash("fsync", "EIO", 6, GOOD_LOTS - 1);
}

/// Repro: as in [`running_consumer_retries_failed_quarantine`],
/// the bad lot stays claimed at offset X, and the lots after it are
/// committed from X on. After a crash, recovery cuts the output at X and
/// the lines of every lot committed after the failure are lost.
///
/// Fixed: set `needs_recovery` when the quarantine rename fails.
#[test]
fn quarantine_fault_then_crash_keeps_lines() {
    if !strace_or_note("quarantine_fault_then_crash_keeps_lines") {
        return;
    }
    let n = call_index("renameat2", "quarantine");
    fault_then_crash("renameat2", "EXDEV", n, GOOD_LOTS);
}

/// Returns strace expressions that kill a process at a random call of a
/// random kind, with the name of that point.
fn random_kill(rng: &mut Rng) -> (Vec<String>, String) {
    let kinds = [
        ("renameat2", 60),
        ("pwrite64", 20),
        ("fdatasync", 8),
        ("fsync", 40),
    ];
    let (syscall, calls) = *rng.pick(&kinds);
    let n = rng.range(1, calls);
    let exprs = vec![
        format!("trace={syscall}"),
        format!("inject={syscall}:signal=KILL:when={n}"),
    ];
    (exprs, format!("{syscall} #{n}"))
}

/// Three durable consumers with ids a, b and c start together on one
/// queue, and a and b share an output folder. Each is killed at a seeded
/// random call, for two rounds. Then all three restart together twice
/// without faults.
#[test]
fn three_consumers_killed_at_random_points() {
    if !strace_or_note("three_consumers_killed_at_random_points") {
        return;
    }
    for seed in 1..=6u64 {
        let (root, queue, out) = scratch();
        let out_c = root.path().join("out_c");
        std::fs::create_dir(&out_c).unwrap();
        let mut expected = group_backlog(&queue);
        expected.extend(produce(&queue, 1000, 30, 4));
        let consumers = [("a", &out), ("b", &out), ("c", &out_c)];
        let mut rng = Rng::new(seed);
        let mut context = format!("seed {seed}");

        for round in 0..2 {
            let mut children = Vec::new();
            for (id, dir) in consumers {
                let (exprs, point) = random_kill(&mut rng);
                context.push_str(&format!(", round {round} {id} killed at {point}"));
                let log = root.path().join(format!("strace-{id}.log"));
                let cmd = under_strace(&consume_cmd(&queue, dir, id, true), &exprs, &log);
                let mut cmd = cmd;
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                children.push(cmd.spawn().expect("spawn strace"));
            }
            for child in children {
                let output = wait_bounded(child, &context);
                assert_sane_exit(&output, &context);
            }
        }

        for _ in 0..2 {
            let children: Vec<Child> = consumers
                .iter()
                .map(|(id, dir)| {
                    let mut cmd = consume_cmd(&queue, dir, id, true);
                    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                    cmd.spawn().expect("spawn diskq")
                })
                .collect();
            for child in children {
                let output = wait_bounded(child, &context);
                assert_sane_exit(&output, &context);
                assert!(
                    output.status.success(),
                    "{context}: drain failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        check_exactly_once(&queue, &[&out, &out_c], &expected, &context);
        check_bad_lot_quarantined(&queue, &context);
    }
}

/// A consumer killed at each rename (claims, returns, archives) restarts
/// with another `--out`: it repairs the recorded folder first, then
/// writes the rest to the new one.
#[test]
fn restart_with_other_output_folder() {
    if !strace_or_note("restart_with_other_output_folder") {
        return;
    }
    let mut points = 0;
    for n in (1..).step_by(2) {
        let (root, queue, out) = scratch();
        let out2 = root.path().join("out2");
        let expected = group_backlog(&queue);
        let context = format!("killed at renameat2 #{n}, restarted with another --out");
        let log = root.path().join("strace.log");
        let exprs = [
            "trace=renameat2".to_string(),
            format!("inject=renameat2:signal=KILL:when={n}"),
        ];
        let cmd = under_strace(&consume_cmd(&queue, &out, "main", true), &exprs, &log);
        let killed = run_bounded(cmd, &context);
        assert_sane_exit(&killed, &context);
        if killed.status.success() {
            break;
        }
        points += 1;
        drain(&queue, &out2, "main", &context);
        check_exactly_once(&queue, &[&out, &out2], &expected, &context);
        check_bad_lot_quarantined(&queue, &context);
    }
    println!("{points} kill points");
    assert!(points > 0, "the consumer was never killed");
}

/// Damage an operator may do by hand to a consumer killed between the
/// copy of a group and its commit.
#[derive(Debug, Clone, Copy)]
enum Damage {
    DeleteClaimedLot,
    CutClaimedLotAtLine,
    CutClaimedLotInLine,
    CutOutputInLine,
    EmptyOutput,
    DeleteOutput,
}

/// Kills a durable consumer over 6 producer lots of 3 lines just before
/// it syncs the output (all 6 claimed and copied), applies `damage`, and
/// drains. Returns the seqs lost, after checking that nothing is
/// doubled, no process panicked or hung, and no lot is left behind.
fn damage_after_kill(damage: Damage) -> Vec<u64> {
    let (root, queue, out) = scratch();
    let expected = produce(&queue, 0, 6, 3);
    let context = format!("{damage:?}");
    let log = root.path().join("strace.log");
    let exprs = [
        "trace=fdatasync".to_string(),
        "inject=fdatasync:error=EIO:signal=KILL:when=1".to_string(),
    ];
    let cmd = under_strace(&consume_cmd(&queue, &out, "main", true), &exprs, &log);
    let killed = run_bounded(cmd, &context);
    assert_sane_exit(&killed, &context);
    assert!(!killed.status.success(), "{context}: not killed");

    let processing = queue.join("processing");
    let mut claims = names_in(&processing);
    let offset = |name: &String| -> u64 { name.rsplit('~').next().unwrap().parse().unwrap() };
    claims.sort_by_key(offset);
    assert_eq!(claims.len(), 6, "{context}: claims {claims:?}");
    let victim = processing.join(&claims[2]);
    let output = out.join(&names_in(&out)[0]);
    let cut = |path: &Path, len: u64| {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(len).unwrap();
    };
    let first_line_len = |path: &Path| -> u64 {
        let text = std::fs::read(path).unwrap();
        text.iter().position(|&b| b == b'\n').unwrap() as u64 + 1
    };
    match damage {
        Damage::DeleteClaimedLot => std::fs::remove_file(&victim).unwrap(),
        Damage::CutClaimedLotAtLine => cut(&victim, first_line_len(&victim)),
        Damage::CutClaimedLotInLine => cut(&victim, first_line_len(&victim) + 5),
        Damage::CutOutputInLine => {
            let len = std::fs::metadata(&output).unwrap().len();
            cut(&output, len / 2 + 3);
        }
        Damage::EmptyOutput => cut(&output, 0),
        Damage::DeleteOutput => std::fs::remove_file(&output).unwrap(),
    }

    drain(&queue, &out, "main", &context);
    let counts = seq_counts(&[&out]);
    assert_eq!(duplicated(&counts), [], "{context}: lines duplicated");
    assert_eq!(
        names_in(&queue.join("incoming")),
        [] as [String; 0],
        "{context}"
    );
    assert_eq!(names_in(&processing), [] as [String; 0], "{context}");
    expected
        .iter()
        .copied()
        .filter(|seq| !counts.contains_key(seq))
        .collect()
}

/// A deleted claimed lot loses nothing: its lines are in the output
/// already, and recovery archives the claims after it, whose bytes follow
/// them. A cut lot fails its checksum and is quarantined, so its lines
/// are lost. A cut or removed output loses nothing, since no lot of it
/// was committed: every claim goes back to `incoming/`.
#[test]
fn hand_damage_loses_only_destroyed_lines() {
    if !strace_or_note("hand_damage_loses_only_destroyed_lines") {
        return;
    }
    // The third claim contains seqs 6 to 8.
    for (damage, lost) in [
        (Damage::DeleteClaimedLot, vec![]),
        (Damage::CutClaimedLotAtLine, vec![6, 7, 8]),
        (Damage::CutClaimedLotInLine, vec![6, 7, 8]),
        (Damage::CutOutputInLine, vec![]),
        (Damage::EmptyOutput, vec![]),
        (Damage::DeleteOutput, vec![]),
    ] {
        assert_eq!(damage_after_kill(damage), lost, "{damage:?}: lines lost");
    }
}
