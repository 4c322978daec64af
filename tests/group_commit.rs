//! The durable consumer's group commit: several waiting lots share one
//! sync of their claims, of the output and of their archive renames.
//! Checked with real `diskq` processes under strace (counting syncs, and
//! killing the consumer at each rename), and with lots that cannot be
//! copied unchanged in the middle of a group.

mod common;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use common::lots::{check_exactly_once, hand_lot, names_in, scratch, seq_counts};
use common::procs::{self, strace_or_note};
use diskq::{Consumer, ConsumerOptions, Producer, ProducerOptions};

/// Publishes `lots` lots of `lines` lines each. Line `seq` of the whole
/// queue is `{"game":"g","seq":<seq>}`.
fn publish(queue: &Path, lots: u64, lines: u64) {
    let opts = ProducerOptions {
        max_lot_lines: lines,
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).unwrap();
    for seq in 0..lots * lines {
        let line = format!(r#"{{"game":"g","seq":{seq}}}"#);
        producer.push_json(line.as_bytes()).unwrap();
    }
    producer.close().unwrap();
}

fn consume_cmd(queue: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_diskq"));
    cmd.arg("consume")
        .arg(queue)
        .arg("--out")
        .arg(out)
        .args(["--id", "main", "--once", "--durable"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Runs `cmd` under strace, tracing `syscalls` with the extra `-e`
/// expressions `exprs`, and writes the log to `log`.
fn run_traced(cmd: &Command, syscalls: &str, exprs: &[&str], log: &Path) -> ExitStatus {
    let exprs: Vec<String> = exprs.iter().map(|e| e.to_string()).collect();
    procs::under_strace(cmd, syscalls, &exprs, Some(log))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run strace")
}

#[test]
fn durable_consumer_shares_syncs_in_a_group() {
    if !strace_or_note("durable_consumer_shares_syncs_in_a_group") {
        return;
    }
    let (root, queue, out) = scratch();
    let (lots, lines) = (24, 5);
    publish(&queue, lots, lines);
    let log = root.path().join("sync.trace");
    let status = run_traced(&consume_cmd(&queue, &out), "fsync,fdatasync", &[], &log);
    assert!(status.success(), "consumer failed: {status}");
    let syncs = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| (l.contains("fsync(") || l.contains("fdatasync(")) && !l.contains("resumed>"))
        .count() as u64;
    println!("{lots} lots consumed with {syncs} syncs");
    // One lot at a time took 5 syncs per lot. A group of 24 needs 5 in
    // all, plus the syncs that create and finish the output file.
    assert!(
        syncs * 2 < lots * 3,
        "{syncs} syncs for {lots} lots: the lots were not grouped"
    );
    check_exactly_once(&queue, &[&out], &(0..lots * lines).collect(), "grouped run");
}

#[test]
fn killed_group_is_completed_or_returned() {
    if !strace_or_note("killed_group_is_completed_or_returned") {
        return;
    }
    let (lots, lines) = (4, 3);
    let dry = scratch();
    publish(&dry.1, lots, lines);
    let log = dry.0.path().join("dry.trace");
    let status = run_traced(&consume_cmd(&dry.1, &dry.2), "renameat2", &[], &log);
    assert!(status.success(), "dry run failed: {status}");
    let renames = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("renameat2(") && !l.contains("resumed>"))
        .count();
    assert!(renames >= 2 * lots as usize, "only {renames} renames");

    let mut completed_somewhere = false;
    for n in 1..=renames {
        let (root, queue, out) = scratch();
        publish(&queue, lots, lines);
        let context = format!("killed at rename #{n}");
        let kill = format!("inject=renameat2:signal=KILL:when={n}");
        let status = run_traced(
            &consume_cmd(&queue, &out),
            "renameat2",
            &[&kill],
            &root.path().join("kill.trace"),
        );
        assert!(!status.success(), "{context}: the consumer was not killed");

        let recover = Command::new(env!("CARGO_BIN_EXE_diskq"))
            .arg("recover")
            .arg(&queue)
            .output()
            .expect("run diskq recover");
        assert!(recover.status.success(), "{context}: recover failed");
        let text = String::from_utf8_lossy(&recover.stdout);
        if let Some(count) = text
            .split("archived ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|count| count.parse::<u64>().ok())
        {
            completed_somewhere |= count > 0;
        }

        let status = consume_cmd(&queue, &out).status().unwrap();
        assert!(status.success(), "{context}: the drain failed");
        check_exactly_once(&queue, &[&out], &(0..lots * lines).collect(), &context);
    }
    // Some kill fell between the archive renames of the group, where the
    // lines of the remaining claims are all in the output already.
    assert!(
        completed_somewhere,
        "no recovery archived a claim whose lines were complete"
    );
}

#[test]
fn group_settles_changed_and_bad_lots_alone() {
    let (_root, queue, out) = scratch();
    Producer::open(&queue, ProducerOptions::default())
        .unwrap()
        .close()
        .unwrap();
    // Names sort in this order. The second lot contains a raw U+2028, which
    // the consumer escapes, so its output is longer than the lot. The
    // fourth is not JSON. Both break the group's offsets.
    hand_lot(
        &queue,
        "00000000000000000001-a",
        b"{\"seq\":0}\n{\"seq\":1}\n",
    );
    hand_lot(
        &queue,
        "00000000000000000002-b",
        "{\"seq\":2,\"s\":\"x\u{2028}y\"}\n".as_bytes(),
    );
    hand_lot(&queue, "00000000000000000003-c", b"{\"seq\":3}\n");
    let bad = hand_lot(&queue, "00000000000000000004-d", b"{\"seq\":99,\n");
    hand_lot(
        &queue,
        "00000000000000000005-e",
        b"{\"seq\":4}\n{\"seq\":5}\n",
    );

    let opts = ConsumerOptions {
        output_dir: out.clone(),
        durable: true,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&queue, opts).unwrap();
    let report = consumer.poll().unwrap();
    assert_eq!(report.lots, 4, "{report:?}");
    assert_eq!(report.lines, 6, "{report:?}");
    assert_eq!(report.quarantined, 1, "{report:?}");
    consumer.close().unwrap();

    assert_eq!(
        names_in(&queue.join("quarantine")),
        [bad.clone(), format!("{bad}.reason")]
    );
    let text: String = names_in(&out)
        .iter()
        .map(|name| std::fs::read_to_string(out.join(name)).unwrap())
        .collect();
    assert_eq!(
        text,
        "{\"seq\":0}\n{\"seq\":1}\n{\"seq\":2,\"s\":\"x\\u2028y\"}\n{\"seq\":3}\n\
         {\"seq\":4}\n{\"seq\":5}\n"
    );
    check_exactly_once(&queue, &[&out], &(0..6).collect(), "changed and bad lots");
}

#[test]
fn corrupt_lot_copied_before_a_kill_stays_out() {
    if !strace_or_note("corrupt_lot_copied_before_a_kill_stays_out") {
        return;
    }
    let (root, queue, out) = scratch();
    Producer::open(&queue, ProducerOptions::default())
        .unwrap()
        .close()
        .unwrap();
    // Valid JSON lines under a name whose CRC-32 is that of other bytes,
    // as after a bit flip on disk. The consumer writes lines out as its
    // 256 KiB buffer fills, finds the mismatch at the end, and cuts the
    // copy before quarantining the lot. The last line is just short of
    // the buffer, so it is buffered rather than written on its own, and
    // fills the buffer: the whole lot is in the output before the check.
    let long = "x".repeat(262_120);
    let lot = |seq: u64| format!("{{\"seq\":0}}\n{{\"seq\":{seq},\"s\":\"{long}\"}}\n");
    let name = format!(
        "00000000000000000001-flip.2.{:08x}.ready",
        crc32fast::hash(lot(1).as_bytes())
    );
    std::fs::write(queue.join("incoming").join(&name), lot(7)).unwrap();

    // Kill it at that cut, its first `ftruncate`: the output contains the
    // whole lot, byte for byte, and the claim is still in processing/.
    let status = run_traced(
        &consume_cmd(&queue, &out),
        "ftruncate",
        &["inject=ftruncate:signal=KILL:when=1"],
        &root.path().join("kill.trace"),
    );
    assert!(!status.success(), "the consumer was not killed at the cut");
    assert_eq!(names_in(&queue.join("processing")).len(), 1);

    let opts = ConsumerOptions {
        output_dir: out.clone(),
        consumer_id: "main".into(),
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&queue, opts).unwrap();
    let report = consumer.poll().unwrap();
    consumer.close().unwrap();
    assert_eq!(report.quarantined, 1, "{report:?}");
    assert!(names_in(&queue.join("archive")).is_empty());
    assert!(queue.join("quarantine").join(&name).exists());
    assert!(
        seq_counts(&[&out]).is_empty(),
        "lines of the corrupt lot reached the output"
    );
}
