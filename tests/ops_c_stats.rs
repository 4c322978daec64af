//! `dq_queue_stat` from C: a C99 program compiled against the committed
//! header and the libdiskq.so of this test run reads a queue's numbers,
//! which must equal those of `diskq::stat`, and gets the documented
//! status codes for bad arguments.
//!
//! Needs a C compiler (`CC`, default `cc`).

#![cfg(feature = "cli")]

mod ops_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ops_support::{both, push_episode, write_ready_lot, TestQueue};

const PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
#include "diskq.h"

#define FIELD(name) printf(#name "=%llu\n", (unsigned long long)s.name)

int main(int argc, char **argv) {
    dq_queue_stats s;
    dq_status rc;
    if (argc != 3) {
        return 2;
    }
    rc = dq_queue_stat(argv[1], &s);
    if (rc != DQ_STATUS_OK) {
        fprintf(stderr, "dq_queue_stat: %s: %s\n", dq_status_str(rc),
                dq_last_error_message());
        return 1;
    }
    FIELD(ready_lots); FIELD(ready_lines); FIELD(ready_bytes);
    FIELD(oldest_ready_age_ms); FIELD(part_lots); FIELD(processing_lots);
    FIELD(oldest_processing_age_ms); FIELD(archived_lots);
    FIELD(archived_lines); FIELD(quarantined_lots); FIELD(window_ms);
    FIELD(window_lots); FIELD(window_lines); FIELD(window_bytes);
    FIELD(avg_lot_lines); FIELD(avg_lot_bytes); FIELD(consumers);
    FIELD(consumers_running); FIELD(output_files); FIELD(output_lines);

    rc = dq_queue_stat(NULL, &s);
    printf("null_dir=%s\n", dq_status_str(rc));
    rc = dq_queue_stat(argv[1], NULL);
    printf("null_out=%s\n", dq_status_str(rc));
    rc = dq_queue_stat(argv[2], &s);
    printf("missing=%s\n", dq_status_str(rc));
    printf("missing_names_path=%d\n",
           strstr(dq_last_error_message(), argv[2]) != NULL);
    return 0;
}
"#;

/// Returns the folder with the libdiskq.so of this test run: `deps/`
/// beside this test binary (where `cargo test` builds it), else the
/// profile folder, built by `cargo build --lib` if missing.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    if deps.join("libdiskq.so").is_file() {
        return deps;
    }
    let profile = deps.parent().unwrap().to_path_buf();
    if !profile.join("libdiskq.so").is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--lib"])
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --lib failed");
    }
    profile
}

fn compile(dir: &Path) -> PathBuf {
    let source = dir.join("stat.c");
    std::fs::write(&source, PROGRAM).unwrap();
    let exe = dir.join("stat");
    let libs = lib_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .arg(&source)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", libs.display()))
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .arg("-ldiskq")
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling stat.c failed:\n{}",
        both(&out)
    );
    exe
}

#[test]
fn c_queue_stat_matches_rust() {
    let q = TestQueue::new();
    let producer = q.producer(4);
    push_episode(&producer, "g1", "pA", 8);
    producer.close().unwrap();
    q.consume("main");
    write_ready_lot(
        &q.queue,
        "00000000000000000001-h-1-00000000-0",
        b"{\"a\":1}\n{\"a\":2}\n",
    );
    write_ready_lot(
        &q.queue,
        "00000000000000000002-h-1-00000000-1",
        b"{\"a\":3}\n",
    );

    let exe = compile(q.root.path());
    let missing = q.root.path().join("missing-queue");
    let out = Command::new(&exe)
        .arg(&q.queue)
        .arg(&missing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let values: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let number = |key: &str| -> u64 {
        values
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from\n{text}"))
            .parse()
            .unwrap()
    };

    let s = diskq::stat(&q.queue).unwrap();
    assert_eq!(number("ready_lots"), 2);
    assert_eq!(number("ready_lines"), 3);
    assert_eq!(number("ready_bytes"), s.ready_bytes);
    assert_eq!(number("archived_lots"), 2);
    assert_eq!(number("archived_lines"), 8);
    assert_eq!(number("quarantined_lots"), 0);
    assert_eq!(number("processing_lots"), 0);
    assert_eq!(number("part_lots"), 0);
    assert_eq!(number("window_ms"), 60_000);
    assert_eq!(number("window_lots"), 2);
    assert_eq!(number("window_lines"), 8);
    assert_eq!(number("window_bytes"), s.window_bytes);
    // Recent lots: two archived of 4 lines, two waiting of 2 and 1.
    assert_eq!(number("avg_lot_lines"), 2);
    assert_eq!(number("avg_lot_bytes"), s.avg_lot_bytes as u64);
    assert_eq!(number("consumers"), 1);
    assert_eq!(number("consumers_running"), 0);
    assert_eq!(number("output_files"), 1);
    assert_eq!(number("output_lines"), 8);
    assert!(number("oldest_ready_age_ms") < 60_000);
    assert_eq!(number("oldest_processing_age_ms"), 0);

    assert_eq!(values["null_dir"], "DQ_STATUS_NULL_ARGUMENT");
    assert_eq!(values["null_out"], "DQ_STATUS_NULL_ARGUMENT");
    assert_eq!(values["missing"], "DQ_STATUS_INVALID_ARGUMENT");
    assert_eq!(values["missing_names_path"], "1");
}
