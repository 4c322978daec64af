//! Binary lots: written by a producer with `LotFormat::Binary`, read by
//! the same consumer, and turned into the same JSON lines as JSON lots.

use std::path::{Path, PathBuf};

use diskq::{Consumer, ConsumerOptions, LotFormat, Producer, ProducerOptions, Transition};
use proptest::prelude::*;

fn queue_in(root: &Path, name: &str) -> PathBuf {
    let queue = root.join(name);
    std::fs::create_dir(&queue).unwrap();
    queue
}

fn binary_opts() -> ProducerOptions {
    ProducerOptions {
        format: LotFormat::Binary,
        max_lot_lines: 7,
        ..ProducerOptions::default()
    }
}

fn json_opts() -> ProducerOptions {
    ProducerOptions {
        max_lot_lines: 7,
        ..ProducerOptions::default()
    }
}

/// Consumes the queue and returns the output's bytes, files in name order.
fn consume(queue: &Path, out: &Path) -> (Vec<u8>, diskq::ConsumerStats) {
    let opts = ConsumerOptions {
        output_dir: out.to_path_buf(),
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(queue, opts).unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend(std::fs::read(file).unwrap());
    }
    (bytes, consumer.stats())
}

fn lots(queue: &Path) -> Vec<PathBuf> {
    let mut lots: Vec<_> = std::fs::read_dir(queue.join("incoming"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".ready"))
        .collect();
    lots.sort();
    lots
}

fn transition_strategy() -> impl Strategy<Value = Transition> {
    (
        prop::collection::vec(-1e6f32..1e6f32, 0..40),
        prop::collection::vec(0u8..=1, 0..20),
        any::<i64>(),
        -10.0f64..10.0,
        any::<bool>(),
        "[a-z0-9\u{e9}\u{2028}\"\\\\]{0,12}",
        "p[AB]",
        any::<u64>(),
    )
        .prop_map(
            |(obs, mask, action, reward, done, game_id, player_id, seq)| Transition {
                obs,
                mask,
                action,
                reward,
                done,
                game_id,
                player_id,
                seq,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn binary_lots_round_trip_to_same_json(ts in prop::collection::vec(transition_strategy(), 1..30)) {
        let root = tempfile::tempdir().unwrap();
        let (bq, jq) = (queue_in(root.path(), "bq"), queue_in(root.path(), "jq"));

        let binary = Producer::open(&bq, binary_opts()).unwrap();
        let json = Producer::open(&jq, json_opts()).unwrap();
        for t in &ts {
            binary.push(t).unwrap();
            json.push(t).unwrap();
        }
        binary.close().unwrap();
        json.close().unwrap();

        let (from_binary, _) = consume(&bq, &root.path().join("bout"));
        let (from_json, _) = consume(&jq, &root.path().join("jout"));
        prop_assert_eq!(&from_binary, &from_json);

        let back: Vec<Transition> = std::str::from_utf8(&from_binary)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        prop_assert_eq!(back, ts);
    }
}

fn sample(seq: u64) -> Transition {
    Transition {
        obs: vec![0.5; 16],
        mask: vec![1, 0, 1],
        action: 2,
        reward: 0.0,
        done: false,
        game_id: "g".into(),
        player_id: "pA".into(),
        seq,
    }
}

#[test]
fn push_json_goes_binary_for_transitions_only() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    let producer = Producer::open(&queue, binary_opts()).unwrap();
    let line = serde_json::to_string(&sample(1)).unwrap();
    producer.push_json(line.as_bytes()).unwrap();
    let err = producer
        .push_json(br#"{"not":"a transition"}"#)
        .unwrap_err();
    assert_eq!(err.kind(), diskq::ErrorKind::InvalidJson);
    assert!(err.to_string().contains("transitions only"), "{err}");
    producer.close().unwrap();

    let (out, stats) = consume(&queue, &root.path().join("out"));
    assert_eq!(stats.lines, 1);
    assert_eq!(String::from_utf8(out).unwrap(), line + "\n");
}

#[test]
fn corrupted_binary_lot_is_quarantined() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    let producer = Producer::open(&queue, binary_opts()).unwrap();
    for seq in 0..14 {
        producer.push(&sample(seq)).unwrap();
    }
    producer.close().unwrap();

    let lots = lots(&queue);
    assert_eq!(lots.len(), 2);
    let mut bytes = std::fs::read(&lots[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&lots[0], bytes).unwrap();

    let (out, stats) = consume(&queue, &root.path().join("out"));
    assert_eq!(stats.quarantined, 1);
    assert_eq!(stats.lines, 7);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 7);
    let name = lots[0].file_name().unwrap().to_str().unwrap();
    let reason =
        std::fs::read_to_string(queue.join("quarantine").join(format!("{name}.reason"))).unwrap();
    assert!(reason.contains("checksum mismatch"), "{reason}");
}

#[test]
fn torn_binary_part_keeps_whole_records() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    let opts = ProducerOptions {
        write_through: true,
        max_lot_age: None,
        ..binary_opts()
    };
    let producer = Producer::open(&queue, opts).unwrap();
    for seq in 0..5 {
        producer.push(&sample(seq)).unwrap();
    }
    let part = std::fs::read_dir(queue.join("incoming"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".part"))
        .expect("the producer's lot is open");
    let bytes = std::fs::read(&part).unwrap();
    // The producer still holds the lock on its lot, so recovery leaves it.
    let paths = diskq::QueuePaths::new(&queue);
    assert_eq!(diskq::recover_parts(&paths, false).unwrap().live, 1);

    // A copy cut in the middle of the fifth record, under a name nobody
    // locks, is what a producer killed mid-write leaves behind.
    let dead = queue
        .join("incoming")
        .join("00000000000000000001-h-1-00000000-0.part");
    std::fs::write(&dead, &bytes[..bytes.len() - 10]).unwrap();
    let report = diskq::recover_parts(&paths, false).unwrap();
    assert_eq!(report.published, 1);
    assert_eq!(report.lines, 4);
    assert_eq!(report.torn_lines_dropped, 1);
    assert_eq!(report.live, 1);

    let (out, stats) = consume(&queue, &root.path().join("out"));
    assert_eq!(stats.lines, 4);
    let expected: String = (0..4)
        .map(|s| serde_json::to_string(&sample(s)).unwrap() + "\n")
        .collect();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    producer.close().unwrap();
}

#[test]
fn lot_to_json_lines_decodes_binary_lots() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    let producer = Producer::open(&queue, binary_opts()).unwrap();
    for seq in 0..3 {
        producer.push(&sample(seq)).unwrap();
    }
    producer.close().unwrap();
    let lot = &lots(&queue)[0];
    assert!(std::fs::read(lot)
        .unwrap()
        .starts_with(diskq::BINARY_LOT_MAGIC));

    let mut out = Vec::new();
    let file = std::io::BufReader::new(std::fs::File::open(lot).unwrap());
    assert_eq!(diskq::lot_to_json_lines(file, &mut out).unwrap(), 3);
    let expected: String = (0..3)
        .map(|s| serde_json::to_string(&sample(s)).unwrap() + "\n")
        .collect();
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}
