//! Setups an operator can get wrong, which must neither duplicate nor
//! hide data: queues sharing an output folder and an id, a consumer
//! restarted with another output folder, hostile files in `consumers/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diskq::{Consumer, ConsumerOptions, ErrorKind, Producer, ProducerOptions};

fn queue_with_lines(root: &Path, name: &str, lines: u64) -> PathBuf {
    let queue = root.join(name);
    std::fs::create_dir(&queue).unwrap();
    let producer = Producer::open(&queue, ProducerOptions::default()).unwrap();
    for seq in 0..lines {
        let line = format!(r#"{{"gameId":"{name}","playerId":"p","seq":{seq}}}"#);
        producer.push_json(line.as_bytes()).unwrap();
    }
    producer.close().unwrap();
    queue
}

fn opts(out: &Path) -> ConsumerOptions {
    ConsumerOptions {
        output_dir: out.to_path_buf(),
        ..ConsumerOptions::default()
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn lines_in(dir: &Path, suffix: &str) -> usize {
    names(dir)
        .iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| {
            std::fs::read_to_string(dir.join(n))
                .unwrap()
                .lines()
                .count()
        })
        .sum()
}

#[test]
fn shared_output_folder_keeps_live_file() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let q1 = queue_with_lines(root.path(), "q1", 30);
    let q2 = queue_with_lines(root.path(), "q2", 20);

    // Both consumers use the default id and one output folder.
    let mut first = Consumer::open(&q1, opts(&out)).unwrap();
    first.poll().unwrap();
    let live = names(&out);
    assert_eq!(live.len(), 1, "{live:?}");
    assert!(live[0].ends_with(".jsonl.open"), "{live:?}");

    // Opening the second one runs its recovery, which must leave the
    // first consumer's open file alone.
    let mut second = Consumer::open(&q2, opts(&out)).unwrap();
    assert!(
        out.join(&live[0]).exists(),
        "the live file was finished: {:?}",
        names(&out)
    );
    second.poll().unwrap();
    second.close().unwrap();
    first.close().unwrap();

    assert_eq!(lines_in(&out, ".jsonl"), 50);
    assert!(
        names(&out).iter().all(|n| n.ends_with(".jsonl")),
        "{:?}",
        names(&out)
    );
}

#[test]
fn changed_output_folder_finishes_old_files() {
    let root = tempfile::tempdir().unwrap();
    let (out1, out2) = (root.path().join("out1"), root.path().join("out2"));
    let queue = queue_with_lines(root.path(), "q", 25);

    // A run that died after archiving its lots leaves an open file in
    // its folder, with no process holding it.
    let mut consumer = Consumer::open(&queue, opts(&out1)).unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();
    let finished = out1.join(&names(&out1)[0]);
    std::fs::rename(&finished, finished.with_extension("jsonl.open")).unwrap();

    // The restart names another folder; the old one is repaired first.
    let consumer = Consumer::open(&queue, opts(&out2)).unwrap();
    drop(consumer);
    let old = names(&out1);
    assert_eq!(old.len(), 1, "{old:?}");
    assert!(old[0].ends_with(".jsonl"), "{old:?}");
    assert_eq!(lines_in(&out1, ".jsonl"), 25);
    assert_eq!(
        diskq::recorded_output_dir(&queue, "main"),
        Some(std::fs::canonicalize(&out2).unwrap())
    );
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;

    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c_path is a live NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[test]
fn fifo_consumer_lock_blocks_nothing() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_with_lines(root.path(), "q", 3);
    mkfifo(&queue.join("consumers").join("main.lock"));

    // Both calls would hang forever if they opened the FIFO blocking.
    let (done, wait) = std::sync::mpsc::channel();
    let (q, out) = (queue.clone(), root.path().join("out"));
    std::thread::spawn(move || {
        let recovered = diskq::recover_queue(&q, false).map(|_| ());
        let opened = Consumer::open(&q, opts(&out)).map(|_| ());
        done.send((recovered, opened)).unwrap();
    });
    let (recovered, opened) = wait.recv_timeout(Duration::from_secs(10)).expect("no hang");
    recovered.unwrap();
    let err = opened.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn zero_poll_interval_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_with_lines(root.path(), "q", 1);
    let options = ConsumerOptions {
        poll_interval: Duration::ZERO,
        ..opts(&root.path().join("out"))
    };
    let err = Consumer::open(&queue, options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("poll_interval"), "{err}");
}
