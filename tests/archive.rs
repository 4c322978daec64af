//! Archived lots: gzip compression and the retention policy.

use std::path::Path;
use std::time::Duration;

use diskq::{Consumer, ConsumerOptions, Producer, ProducerOptions, Retention};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn push_lots(queue: &Path, lots: u64, lines_per_lot: u64) {
    let opts = ProducerOptions {
        max_lot_lines: lines_per_lot,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).unwrap();
    for seq in 0..lots * lines_per_lot {
        let line = format!(r#"{{"gameId":"g","playerId":"p","seq":{seq},"done":false}}"#);
        producer.push_json(line.as_bytes()).unwrap();
    }
    producer.close().unwrap();
}

fn output_lines(out: &Path) -> usize {
    names(out)
        .iter()
        .filter(|n| n.ends_with(".jsonl"))
        .map(|n| {
            std::fs::read_to_string(out.join(n))
                .unwrap()
                .lines()
                .count()
        })
        .sum()
}

#[cfg(feature = "gzip")]
#[test]
fn archived_lots_are_compressed() {
    let root = tempfile::tempdir().unwrap();
    let (queue, out) = (root.path().join("q"), root.path().join("out"));
    std::fs::create_dir(&queue).unwrap();
    push_lots(&queue, 3, 10);

    let opts = ConsumerOptions {
        output_dir: out.clone(),
        compress_archive: true,
        ..ConsumerOptions::default()
    };
    use std::io::Read;

    let mut consumer = Consumer::open(&queue, opts).unwrap();
    assert_eq!(consumer.poll().unwrap().lots, 3);
    consumer.close().unwrap();

    let archived = names(&queue.join("archive"));
    assert_eq!(archived.len(), 3, "{archived:?}");
    for name in &archived {
        assert!(name.ends_with(".done.gz"), "{name}");
        let mut text = String::new();
        let file = std::fs::File::open(queue.join("archive").join(name)).unwrap();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.lines().count(), 10, "{name}");
    }
    assert!(names(&queue.join("processing")).is_empty());
    assert_eq!(output_lines(&out), 30);
}

#[test]
fn retention_never_deletes_unarchived_lots() {
    let root = tempfile::tempdir().unwrap();
    let (queue, out) = (root.path().join("q"), root.path().join("out"));
    std::fs::create_dir(&queue).unwrap();
    push_lots(&queue, 4, 5);

    // A live producer's lot and a lot that will be quarantined must stay.
    let write_through = ProducerOptions {
        max_lot_age: None,
        write_through: true,
        ..ProducerOptions::default()
    };
    let live = Producer::open(&queue, write_through).unwrap();
    live.push_json(br#"{"seq":1}"#).unwrap();
    std::fs::write(queue.join("incoming").join("bad.ready"), b"not json\n").unwrap();

    let opts = ConsumerOptions {
        output_dir: out.clone(),
        retention: Retention {
            max_bytes: Some(1),
            max_age: Some(Duration::from_secs(3600)),
        },
        retention_interval: Duration::ZERO,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&queue, opts).unwrap();
    let report = consumer.poll().unwrap();
    assert_eq!(report.lots, 4);
    assert_eq!(report.quarantined, 1);

    assert!(
        names(&queue.join("archive")).is_empty(),
        "retention keeps nothing over 1 byte"
    );
    assert_eq!(output_lines(&out), 0, "the output file is still open");
    consumer.close().unwrap();
    assert_eq!(output_lines(&out), 20);

    let incoming = names(&queue.join("incoming"));
    assert_eq!(
        incoming.iter().filter(|n| n.ends_with(".part")).count(),
        1,
        "{incoming:?}"
    );
    let quarantine = names(&queue.join("quarantine"));
    assert!(
        quarantine.contains(&"bad.ready".to_string()),
        "{quarantine:?}"
    );
    live.close().unwrap();
}
