//! `diskq cat`: every kind of lot and output file prints as JSON lines.

#![cfg(feature = "cli")]

mod ops_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use diskq::Transition;
use ops_support::{both, diskq, push_episode, transition, write_ready_lot, TestQueue};

/// Runs `diskq cat` on `paths` and returns its output.
fn cat(paths: &[&std::path::Path]) -> std::process::Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"cat"];
    for path in paths {
        args.push(path);
    }
    diskq(&args)
}

fn transitions(stdout: &[u8]) -> Vec<Transition> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn episode(game: &str, len: u64) -> Vec<Transition> {
    (0..len)
        .map(|seq| transition(game, "pA", seq, seq + 1 == len))
        .collect()
}

#[test]
fn ready_and_archived_lots_print_as_written() {
    let q = TestQueue::new();
    let producer = q.producer(6);
    push_episode(&producer, "g1", "pA", 6);
    producer.close().unwrap();
    let ready = q.dir("incoming").join(&q.names("incoming")[0]);
    let written = std::fs::read(&ready).unwrap();

    let out = cat(&[&ready]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(out.stdout, written);

    q.consume("main");
    let done = q.dir("archive").join(&q.names("archive")[0]);
    let out = cat(&[&done]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(out.stdout, written);

    let output = q.out.join(&ops_support::names_in(&q.out)[0]);
    let out = cat(&[&output]);
    assert_eq!(transitions(&out.stdout), episode("g1", 6));
}

#[test]
fn gzip_archive_prints_decompressed() {
    let q = TestQueue::new();
    let producer = q.producer(5);
    push_episode(&producer, "g2", "pA", 5);
    producer.close().unwrap();
    q.consume_with("main", |o| o.compress_archive = true);
    let gz = q.dir("archive").join(&q.names("archive")[0]);
    assert!(
        gz.to_str().unwrap().ends_with(".done.gz"),
        "{}",
        gz.display()
    );

    let out = cat(&[&gz]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(transitions(&out.stdout), episode("g2", 5));
}

#[test]
fn binary_lot_prints_as_json() {
    let q = TestQueue::new();
    let opts = diskq::ProducerOptions {
        format: diskq::LotFormat::Binary,
        max_lot_age: None,
        ..diskq::ProducerOptions::default()
    };
    let producer = diskq::Producer::open(&q.queue, opts).unwrap();
    push_episode(&producer, "g3", "pA", 4);
    producer.close().unwrap();
    let lot = q.dir("incoming").join(&q.names("incoming")[0]);
    assert!(std::fs::read(&lot).unwrap().starts_with(b"DQB1"));

    let out = cat(&[&lot]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(transitions(&out.stdout), episode("g3", 4));
}

#[test]
fn part_lot_leaves_out_torn_line() {
    let q = TestQueue::new();
    let incoming = q.dir("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let part = incoming.join("live.part");
    std::fs::write(&part, b"{\"seq\":0}\n{\"seq\":1}\n{\"seq\":2,\"obs\":[0.").unwrap();

    let out = cat(&[&part]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(out.stdout, b"{\"seq\":0}\n{\"seq\":1}\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("incomplete last line"), "{}", both(&out));
    assert!(stderr.contains("live.part"), "{}", both(&out));
}

#[test]
fn folder_prints_each_lot_in_name_order() {
    let q = TestQueue::new();
    write_ready_lot(
        &q.queue,
        "00000000000000000002-h-1-00000000-1",
        b"{\"n\":2}\n",
    );
    write_ready_lot(
        &q.queue,
        "00000000000000000001-h-1-00000000-0",
        b"{\"n\":1}\n",
    );
    std::fs::write(q.dir("incoming").join(".hidden.new"), b"{\"n\":0}\n").unwrap();

    let out = cat(&[&q.dir("incoming")]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(out.stdout, b"{\"n\":1}\n{\"n\":2}\n");
}

#[test]
fn quarantine_folder_prints_lots_not_reasons() {
    let q = TestQueue::new();
    write_ready_lot(
        &q.queue,
        "00000000000000000001-h-1-00000000-0",
        b"[\"not an object\"]\n",
    );
    q.consume("main");
    assert_eq!(q.names("quarantine").len(), 2);

    let out = cat(&[&q.dir("quarantine")]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(out.stdout, b"[\"not an object\"]\n");
}

#[test]
fn missing_file_fails_but_others_print() {
    let q = TestQueue::new();
    let name = write_ready_lot(
        &q.queue,
        "00000000000000000001-h-1-00000000-0",
        b"{\"n\":1}\n",
    );
    let missing = q.root.path().join("gone.ready");
    let out = cat(&[&missing, &q.dir("incoming").join(name)]);
    assert!(!out.status.success(), "{}", both(&out));
    assert_eq!(out.stdout, b"{\"n\":1}\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gone.ready"), "{}", both(&out));
}

#[test]
fn closed_pipe_ends_cat_quietly() {
    let q = TestQueue::new();
    let line = serde_json::to_string(&transition("g", "p", 0, false)).unwrap();
    let big = format!("{line}\n").repeat(200_000);
    let name = write_ready_lot(
        &q.queue,
        "00000000000000000001-h-1-00000000-0",
        big.as_bytes(),
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_diskq"))
        .arg("cat")
        .arg(q.dir("incoming").join(name))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim_end(), line);
    // The reader is dropped here, as `| head -1` exits.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", both(&out));
    assert!(out.stderr.is_empty(), "{}", both(&out));
}
