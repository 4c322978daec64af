//! `diskq verify`: each planted problem is named in the report and makes
//! the command exit non-zero; a clean queue passes.

#![cfg(feature = "cli")]

mod ops_support;

use ops_support::{both, diskq, push_episode, transition, write_ready_lot, TestQueue};

/// Runs `diskq verify` on the queue and returns (success, stdout).
fn verify(q: &TestQueue, extra: &[&str]) -> (bool, String) {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"verify", &q.queue];
    for arg in extra {
        args.push(arg);
    }
    let out = diskq(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "verify was killed: {}",
        both(&out)
    );
    (out.status.success(), text)
}

#[test]
fn clean_queue_passes() {
    let q = TestQueue::new();
    let producer = q.producer(7);
    for game in 0..5 {
        push_episode(&producer, &format!("g{game}"), "pA", 12);
        push_episode(&producer, &format!("g{game}"), "pB", 11);
    }
    producer.close().unwrap();
    q.consume("main");

    let (ok, text) = verify(&q, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("10 episodes"), "{text}");
    assert!(text.contains("ok: no problem found"), "{text}");
}

#[test]
fn sequence_gap_is_named() {
    let q = TestQueue::new();
    let producer = q.producer(5);
    push_episode(&producer, "g1", "pA", 10);
    for seq in (0..10).filter(|&s| s != 4 && s != 5) {
        producer
            .push(&transition("g2", "pB", seq, seq == 9))
            .unwrap();
    }
    producer.close().unwrap();
    q.consume("main");

    let (ok, text) = verify(&q, &[]);
    assert!(!ok, "a gap must fail verify:\n{text}");
    assert!(
        text.contains("seq_gap: episode gameId=g2 playerId=pB: missing seq 4 to 5"),
        "{text}"
    );
    assert!(!text.contains("gameId=g1"), "g1 is whole:\n{text}");
}

#[test]
fn unfinished_episode_is_named() {
    let q = TestQueue::new();
    let producer = q.producer(5);
    push_episode(&producer, "g1", "pA", 6);
    for seq in 0..4 {
        producer.push(&transition("g7", "pA", seq, false)).unwrap();
    }
    producer.close().unwrap();
    q.consume("main");

    let (ok, text) = verify(&q, &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(
            "unfinished: episode gameId=g7 playerId=pA: never reached done (highest seq 3)"
        ),
        "{text}"
    );
}

#[test]
fn episode_finished_by_waiting_lot_is_not_reported() {
    let q = TestQueue::new();
    let producer = q.producer(3);
    for seq in 0..3 {
        producer.push(&transition("g1", "pA", seq, false)).unwrap();
    }
    producer.flush().unwrap();
    q.consume("main");
    // The end of the game is published after the consumer ran.
    for seq in 3..6 {
        producer
            .push(&transition("g1", "pA", seq, seq == 5))
            .unwrap();
    }
    producer.close().unwrap();

    let (ok, text) = verify(&q, &[]);
    assert!(ok, "the rest of g1 waits in incoming/:\n{text}");
    assert!(text.contains("1 waiting lots"), "{text}");
}

#[test]
fn corrupted_archived_lot_is_named() {
    let q = TestQueue::new();
    let producer = q.producer(4);
    push_episode(&producer, "g1", "pA", 8);
    producer.close().unwrap();
    q.consume("main");

    let archived = q.names("archive");
    assert_eq!(archived.len(), 2, "{archived:?}");
    let victim = q.dir("archive").join(&archived[1]);
    let mut bytes = std::fs::read(&victim).unwrap();
    // Change a digit of an obs value: the line stays valid JSON, only
    // the CRC can tell.
    let at = bytes.iter().position(|&b| b == b'5').unwrap();
    bytes[at] = b'7';
    std::fs::write(&victim, &bytes).unwrap();

    let (ok, text) = verify(&q, &[]);
    assert!(!ok, "{text}");
    let expected = format!("checksum: {}: checksum mismatch", victim.display());
    assert!(text.contains(&expected), "expected {expected:?} in\n{text}");
}

#[test]
fn corrupted_waiting_lot_line_is_named() {
    let q = TestQueue::new();
    let name = write_ready_lot(
        &q.queue,
        "00000000000000000001-h-1-00000000-0",
        b"{\"gameId\":\"g\",\"playerId\":\"p\",\"seq\":0,\"done\":true}\n{\"oops\n",
    );
    let (ok, text) = verify(&q, &[]);
    assert!(!ok, "{text}");
    let expected = format!(
        "invalid_line: {} line 2:",
        q.dir("incoming").join(&name).display()
    );
    assert!(text.contains(&expected), "expected {expected:?} in\n{text}");
}

#[test]
fn duplicate_and_invalid_output_lines_are_named() {
    let q = TestQueue::new();
    let producer = q.producer(4);
    push_episode(&producer, "g1", "pA", 4);
    producer.close().unwrap();
    q.consume("main");

    // Plant an output file by hand that repeats seq 2 and contains a line
    // that is not JSON.
    let planted = q
        .out
        .join("queue_transitions_20990101T000000.000000Z_other.jsonl");
    let again = serde_json::to_string(&transition("g1", "pA", 2, false)).unwrap();
    std::fs::write(&planted, format!("{again}\nnot json\n")).unwrap();

    let (ok, text) = verify(&q, &[]);
    assert!(!ok, "{text}");
    let duplicate = format!(
        "duplicate_seq: episode gameId=g1 playerId=pA: seq 2 appears again at {} line 1",
        planted.display()
    );
    assert!(
        text.contains(&duplicate),
        "expected {duplicate:?} in\n{text}"
    );
    let invalid = format!("invalid_line: {} line 2:", planted.display());
    assert!(text.contains(&invalid), "expected {invalid:?} in\n{text}");
}

#[test]
fn output_folder_given_by_flag_is_checked() {
    let q = TestQueue::new();
    let other = q.root.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    let line = serde_json::to_string(&transition("g9", "pZ", 1, true)).unwrap();
    std::fs::write(
        other.join("queue_transitions_20990101T000000.000000Z_x.jsonl"),
        format!("{line}\n"),
    )
    .unwrap();

    let (ok, text) = verify(&q, &[]);
    assert!(ok, "the folder is unknown without --out:\n{text}");
    let (ok, text) = verify(&q, &["--out", other.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("seq_gap: episode gameId=g9 playerId=pZ: missing seq 0"),
        "{text}"
    );
}

#[test]
fn compressed_and_binary_lots_are_checked() {
    let q = TestQueue::new();
    let opts = diskq::ProducerOptions {
        max_lot_lines: 5,
        max_lot_age: None,
        format: diskq::LotFormat::Binary,
        ..diskq::ProducerOptions::default()
    };
    let producer = diskq::Producer::open(&q.queue, opts).unwrap();
    push_episode(&producer, "g1", "pA", 9);
    producer.close().unwrap();
    q.consume_with("main", |o| o.compress_archive = true);
    let archived = q.names("archive");
    assert!(
        archived.iter().all(|n| n.ends_with(".done.gz")),
        "{archived:?}"
    );

    let (ok, text) = verify(&q, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("2 archived lots"), "{text}");

    // A waiting binary lot with a flipped byte fails its checksums.
    let producer = diskq::Producer::open(
        &q.queue,
        diskq::ProducerOptions {
            format: diskq::LotFormat::Binary,
            max_lot_age: None,
            ..diskq::ProducerOptions::default()
        },
    )
    .unwrap();
    push_episode(&producer, "g2", "pA", 3);
    producer.close().unwrap();
    let ready = q.names("incoming");
    assert_eq!(ready.len(), 1, "{ready:?}");
    let path = q.dir("incoming").join(&ready[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let (ok, text) = verify(&q, &[]);
    assert!(!ok, "{text}");
    let expected = format!("{} record 3:", path.display());
    assert!(text.contains(&expected), "expected {expected:?} in\n{text}");
}

#[test]
fn quarantined_lot_is_a_note() {
    let q = TestQueue::new();
    write_ready_lot(&q.queue, "00000000000000000001-h-1-00000000-0", b"[1,2]\n");
    q.consume("main");
    assert_eq!(q.names("quarantine").len(), 2, "the lot and its .reason");

    let (ok, text) = verify(&q, &[]);
    assert!(ok, "quarantine is where bad lots belong:\n{text}");
    assert!(text.contains("note: quarantined: "), "{text}");
}

#[test]
fn json_report_lists_problems() {
    let q = TestQueue::new();
    let producer = q.producer(5);
    producer.push(&transition("g1", "pA", 1, true)).unwrap();
    producer.close().unwrap();
    q.consume("main");

    let out = diskq(&[&"verify", &q.queue, &"--json"]);
    assert!(!out.status.success(), "{}", both(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problem_count"], 1, "{report}");
    assert_eq!(report["problems"][0]["kind"], "seq_gap", "{report}");
}
