//! Attacks on the durable consumer's group commit and on the recovery
//! that archives claims whose bytes are complete in the output. Real
//! `diskq` processes are killed with `strace` at each syscall of a kind.
//! The backlog mixes good lots with lots the group cannot copy byte for
//! byte, and every line must then be in the finished output exactly once.
//!
//! The last three tests each reproduce a bug that these attacks found,
//! now fixed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::lots::{check_exactly_once, hand_lot, json_lines, names_in, scratch};
use common::procs::{self, strace_or_note};
use diskq::{LotFormat, Producer, ProducerOptions, Transition};

fn diskq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_diskq"))
}

/// Returns `diskq consume --once --durable` on `queue` into `out`.
fn consume_cmd(queue: &Path, out: &Path, max_lines: u64) -> Command {
    let mut cmd = diskq();
    cmd.arg("consume")
        .arg(queue)
        .arg("--out")
        .arg(out)
        .args(["--id", "main", "--once", "--durable", "--no-watch"])
        .arg("--max-lines")
        .arg(max_lines.to_string());
    cmd
}

/// Runs `cmd` under strace, killed at call `n` of `syscall`. That call
/// may or may not take effect first: strace sends the signal on entry,
/// and the kernel sometimes runs the call before the process dies.
fn run_killed_at(cmd: &Command, syscall: &str, n: usize) -> Output {
    run_traced(
        cmd,
        syscall,
        &format!("inject={syscall}:signal=KILL:when={n}"),
    )
}

/// Runs `cmd` under strace, killed at call `n` of `syscall`, which fails
/// with EIO instead of running.
fn run_killed_before(cmd: &Command, syscall: &str, n: usize) -> Output {
    let inject = format!("inject={syscall}:error=EIO:signal=KILL:when={n}");
    run_traced(cmd, syscall, &inject)
}

fn run_traced(cmd: &Command, syscall: &str, inject: &str) -> Output {
    procs::under_strace(cmd, syscall, &[inject.to_string()], None)
        .output()
        .expect("run strace")
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("run diskq")
}

/// Fills `queue` with good lots and, between them, lots that break a
/// group: a raw U+2028 and a raw `\r` (rewritten on the way), bad JSON,
/// an empty lot (if `with_empty`), a binary lot and a lot without a
/// checksum. Returns the seqs that must reach the output; the bad lot
/// uses seq 900.
fn mixed_backlog(queue: &Path, with_empty: bool) -> BTreeSet<u64> {
    let mut expected = BTreeSet::new();
    let mut seq = 0;
    let mut id = 0;
    let mut next_id = |tag: &str| {
        id += 1;
        format!("{id:020}-{tag}")
    };
    let mut good = |queue: &Path, id: String, n: u64, expected: &mut BTreeSet<u64>| {
        hand_lot(queue, &id, &json_lines(seq..seq + n));
        expected.extend(seq..seq + n);
        seq += n;
    };

    good(queue, next_id("good"), 3, &mut expected);
    good(queue, next_id("good"), 2, &mut expected);
    hand_lot(
        queue,
        &next_id("sep"),
        "{\"game\":\"g\",\"seq\":100,\"s\":\"a\u{2028}b\"}\n".as_bytes(),
    );
    expected.insert(100);
    good(queue, next_id("good"), 2, &mut expected);
    hand_lot(queue, &next_id("bad"), b"{\"game\":\"g\",\"seq\":900,\n");
    good(queue, next_id("good"), 2, &mut expected);
    if with_empty {
        hand_lot(queue, &next_id("empty"), b"");
    }
    good(queue, next_id("good"), 4, &mut expected);
    hand_lot(queue, &next_id("cr"), b"{\"game\":\"g\",\r\"seq\":101}\n");
    expected.insert(101);
    good(queue, next_id("good"), 3, &mut expected);
    let plain = format!("{}.ready", next_id("plain"));
    std::fs::write(queue.join("incoming").join(plain), json_lines(102..104)).unwrap();
    expected.extend(102..104);
    good(queue, next_id("good"), 3, &mut expected);

    // A binary lot from the producer; its name sorts after the hand-made
    // ones, since producer ids start with the current time.
    let opts = ProducerOptions {
        format: LotFormat::Binary,
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).unwrap();
    for seq in 200..203 {
        let t = Transition {
            obs: vec![0.5, 1.0],
            mask: vec![1, 0],
            action: 1,
            reward: 0.0,
            done: false,
            game_id: "g".into(),
            player_id: "p".into(),
            seq,
        };
        producer.push(&t).unwrap();
        expected.insert(seq);
    }
    producer.close().unwrap();
    let opts = ProducerOptions {
        max_lot_lines: 2,
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).unwrap();
    for seq in 300..306 {
        let line = format!("{{\"game\":\"g\",\"seq\":{seq}}}");
        producer.push_json(line.as_bytes()).unwrap();
        expected.insert(seq);
    }
    producer.close().unwrap();
    expected
}

/// Kills the durable consumer at each call of `syscall` over the mixed
/// backlog, then kills `diskq recover` at its first such call, and
/// drains the queue twice with fresh consumers. Returns the number of
/// kill points.
fn sweep(syscall: &str, max_lines: u64, with_empty: bool, step: usize) -> usize {
    let mut n = 1;
    loop {
        let (_root, queue, out) = scratch();
        let expected = mixed_backlog(&queue, with_empty);
        let context = format!("max {max_lines} lines, killed at {syscall} #{n}");

        let killed = run_killed_at(&consume_cmd(&queue, &out, max_lines), syscall, n);
        let stderr = String::from_utf8_lossy(&killed.stderr);
        assert!(!stderr.contains("panicked"), "{context}: {stderr}");
        let mut recover = diskq();
        recover.arg("recover").arg(&queue);
        run_killed_at(&recover, syscall, 1);
        for _ in 0..2 {
            let drain = run(consume_cmd(&queue, &out, max_lines));
            let stderr = String::from_utf8_lossy(&drain.stderr);
            assert!(drain.status.success(), "{context}: drain failed: {stderr}");
        }
        check_exactly_once(&queue, &[&out], &expected, &context);
        // The bad lot and the empty one, each with its reason file.
        let quarantined = if with_empty { 4 } else { 2 };
        assert_eq!(
            names_in(&queue.join("quarantine")).len(),
            quarantined,
            "{context}: quarantine/"
        );
        if killed.status.success() {
            return n - 1;
        }
        n += step;
    }
}

#[test]
fn kills_across_mixed_groups_lose_nothing() {
    if !strace_or_note("kills_across_mixed_groups_lose_nothing") {
        return;
    }
    // Every rename, write, sync and cut; every third directory sync.
    for (syscall, step) in [
        ("renameat2", 1),
        ("pwrite64", 1),
        ("fdatasync", 1),
        ("ftruncate", 1),
        ("fsync", 3),
    ] {
        let points = sweep(syscall, 5000, true, step);
        println!("{syscall}: {points} kill points");
        assert!(points > 0, "the consumer never called {syscall}");
    }
}

#[test]
fn kills_across_rollover_lose_nothing() {
    if !strace_or_note("kills_across_rollover_lose_nothing") {
        return;
    }
    // Five lines per file cut most groups at a rollover.
    for syscall in ["renameat2", "pwrite64", "ftruncate"] {
        let points = sweep(syscall, 5, true, 1);
        println!("{syscall}: {points} kill points");
        assert!(points > 0, "the consumer never called {syscall}");
    }
}

/// A group whose lots before an empty lot named with 0 lines fill the
/// output file to its line limit: committing them finishes the file,
/// and settling the empty lot then finds no output.
#[test]
fn zero_line_lot_after_full_output_is_quarantined() {
    let (_root, queue, out) = scratch();
    hand_lot(&queue, "00000000000000000001-hand", &json_lines(0..2));
    hand_lot(&queue, "00000000000000000002-hand", &json_lines(2..4));
    let empty = hand_lot(&queue, "00000000000000000003-hand", b"");

    let done = run(consume_cmd(&queue, &out, 4));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!stderr.contains("panicked"), "consumer panicked: {stderr}");
    assert!(done.status.success(), "consumer failed: {stderr}");
    assert_eq!(
        names_in(&queue.join("quarantine")),
        [empty.clone(), format!("{empty}.reason")]
    );
    check_exactly_once(&queue, &[&out], &(0..4).collect(), "zero-line lot");
}

/// Returns lines of about 1 KiB each, from seq 100 on, until they pass
/// the consumer's 256 KiB write buffer: the last line then makes the
/// consumer write the whole lot before it checks the checksum.
fn lot_filling_write_buffer() -> Vec<u8> {
    let pad = "x".repeat(1000);
    let mut body = Vec::new();
    let mut seq = 100;
    while body.len() < 256 * 1024 {
        body.extend(format!("{{\"game\":\"g\",\"seq\":{seq},\"pad\":\"{pad}\"}}\n").bytes());
        seq += 1;
    }
    body
}

/// A lot whose name records a wrong CRC-32 is quarantined. Its bytes all
/// reach the output before the checksum is compared, and a consumer
/// killed before it cuts them leaves them there: recovery must not take
/// the lot for complete.
#[test]
fn lot_failing_checksum_is_never_archived() {
    if !strace_or_note("lot_failing_checksum_is_never_archived") {
        return;
    }
    let (_root, queue, out) = scratch();
    hand_lot(&queue, "00000000000000000001-hand", &json_lines(0..2));
    let body = lot_filling_write_buffer();
    let lines = body.iter().filter(|&&b| b == b'\n').count();
    let wrong_crc = crc32fast::hash(&body) ^ 1;
    let bad = format!("00000000000000000002-hand.{lines}.{wrong_crc:08x}.ready");
    std::fs::write(queue.join("incoming").join(&bad), &body).unwrap();
    hand_lot(&queue, "00000000000000000003-hand", &json_lines(2..4));

    // The first cut is the one that removes the bad lot's bytes.
    let killed = run_killed_before(&consume_cmd(&queue, &out, 5000), "ftruncate", 1);
    assert!(!killed.status.success(), "the consumer was not killed");
    let recover = run({
        let mut cmd = diskq();
        cmd.arg("recover").arg(&queue);
        cmd
    });
    assert!(recover.status.success(), "recover failed");
    let drain = run(consume_cmd(&queue, &out, 5000));
    assert!(drain.status.success(), "drain failed");

    assert!(
        !names_in(&queue.join("archive"))
            .iter()
            .any(|n| n.starts_with(&bad)),
        "the lot with a wrong checksum was archived"
    );
    assert!(
        names_in(&queue.join("quarantine")).contains(&bad),
        "the lot with a wrong checksum was not quarantined"
    );
    check_exactly_once(&queue, &[&out], &(0..4).collect(), "wrong checksum");
}

/// A lot without a checksum whose last line has no newline is accepted:
/// the consumer adds the newline. When that line is longer than the
/// write buffer, it is written on its own and the newline after it, so a
/// kill between the two leaves the whole lot, byte for byte, without a
/// newline. Recovery archives the lot, then cuts the unterminated line
/// as a torn tail: that line is lost.
#[test]
fn unterminated_lot_keeps_last_line_after_kill() {
    if !strace_or_note("unterminated_lot_keeps_last_line_after_kill") {
        return;
    }
    let (_root, queue, out) = scratch();
    let mut body = json_lines(0..1);
    body.extend(
        format!(
            "{{\"game\":\"g\",\"seq\":1,\"pad\":\"{}\"}}",
            "y".repeat(300_000)
        )
        .bytes(),
    );
    let name = "00000000000000000001-nosum.ready";
    std::fs::write(queue.join("incoming").join(name), &body).unwrap();

    // Writes: the first line, the long line, then its newline.
    let killed = run_killed_before(&consume_cmd(&queue, &out, 5000), "pwrite64", 3);
    assert!(!killed.status.success(), "the consumer was not killed");
    let recover = run({
        let mut cmd = diskq();
        cmd.arg("recover").arg(&queue);
        cmd
    });
    assert!(recover.status.success(), "recover failed");
    let drain = run(consume_cmd(&queue, &out, 5000));
    assert!(drain.status.success(), "drain failed");
    check_exactly_once(&queue, &[&out], &(0..2).collect(), "unterminated lot");
}

/// Like the lot above without a checksum, but named with the line count
/// and CRC-32 of its bytes. The consumer quarantines it, since a
/// producer's lot always ends in a newline, yet it writes the long last
/// line before it checks that. Killed before the cut, the claim's bytes
/// are all in the output and its checksum holds, so recovery archives
/// the lot and then cuts its last line as a torn tail: half the lot
/// reaches the dataset.
#[test]
fn checksummed_unterminated_lot_is_quarantined_after_kill() {
    if !strace_or_note("checksummed_unterminated_lot_is_quarantined_after_kill") {
        return;
    }
    let (_root, queue, out) = scratch();
    let mut body = json_lines(900..901);
    body.extend(
        format!(
            r#"{{"game":"g","seq":901,"pad":"{}"}}"#,
            "y".repeat(300_000)
        )
        .bytes(),
    );
    let name = hand_lot(&queue, "00000000000000000001-hand", &body);

    let killed = run_killed_before(&consume_cmd(&queue, &out, 5000), "ftruncate", 1);
    assert!(!killed.status.success(), "the consumer was not killed");
    let recover = run({
        let mut cmd = diskq();
        cmd.arg("recover").arg(&queue);
        cmd
    });
    assert!(recover.status.success(), "recover failed");
    let drain = run(consume_cmd(&queue, &out, 5000));
    assert!(drain.status.success(), "drain failed");

    assert!(
        names_in(&queue.join("quarantine")).contains(&name),
        "the lot without a final newline was not quarantined"
    );
    check_exactly_once(
        &queue,
        &[&out],
        &BTreeSet::new(),
        "checksummed unterminated lot",
    );
}
