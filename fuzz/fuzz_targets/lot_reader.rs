//! Fuzzes the consumer's lot reader: arbitrary bytes are written as a lot
//! into a fresh queue, and a consumer polls it once.
//!
//! The first input byte picks the lot's name and the consumer's mode:
//! bit 0 gives the lot a producer-style name with the line count and
//! CRC-32 of its bytes (as a forger would), bit 1 turns on
//! `full_validation`. The rest is the lot.
//!
//! The poll must not panic, and must either consume the lot whole or
//! quarantine it with a reason, leaving nothing in `incoming/` or
//! `processing/`. A quarantined lot leaves no output. A consumed lot
//! becomes exactly one output line per lot line, each one JSON object
//! that serde_json reads, with no `\r` and no raw U+2028 or U+2029. An
//! unchecked lot is consumed exactly when every line passes
//! `diskq::validate_line`.

#![no_main]

use std::path::Path;

use diskq::{Consumer, ConsumerOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MAX_LINE: usize = 4096;
const LOT_ID: &str = "00000000000000000001-fuzz-1-00000000-0";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, lot)) = data.split_first() else {
        return;
    };
    let checked = mode & 1 == 1;
    let full_validation = mode & 2 == 2;

    let base = if Path::new("/dev/shm").is_dir() {
        Path::new("/dev/shm")
    } else {
        Path::new("/tmp")
    };
    let root = tempfile::Builder::new()
        .prefix("diskq-fuzz-")
        .tempdir_in(base)
        .unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir_all(queue.join("incoming")).unwrap();
    let name = if checked {
        let lines = lot.iter().filter(|&&b| b == b'\n').count();
        format!("{LOT_ID}.{lines}.{:08x}.ready", crc32fast::hash(lot))
    } else {
        "fuzz.ready".to_string()
    };
    std::fs::write(queue.join("incoming").join(&name), lot).unwrap();

    let opts = ConsumerOptions {
        output_dir: out.clone(),
        max_line_bytes: MAX_LINE,
        full_validation,
        recover_interval: None,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&queue, opts).unwrap();
    let report = consumer.poll().unwrap();
    consumer.close().unwrap();
    drop(consumer);

    assert_eq!(report.lots + report.quarantined, 1, "{report:?}");
    for dir in ["incoming", "processing"] {
        let left = std::fs::read_dir(queue.join(dir)).unwrap().count();
        assert_eq!(left, 0, "{dir}/ is not empty");
    }
    let output = read_output(&out);

    // The lines of the lot as the consumer splits them.
    let body = lot.strip_suffix(b"\n").unwrap_or(lot);
    let lines: Vec<&[u8]> = if lot.is_empty() {
        Vec::new()
    } else {
        body.split(|&b| b == b'\n').collect()
    };
    if !checked {
        let valid = !lines.is_empty()
            && lines
                .iter()
                .all(|line| diskq::validate_line(line, MAX_LINE).is_ok());
        assert_eq!(report.lots == 1, valid, "{report:?}");
    }

    if report.quarantined == 1 {
        assert!(output.is_empty(), "a quarantined lot left output");
        let reason = queue.join("quarantine").join(format!("{name}.reason"));
        let reason = std::fs::read_to_string(reason).expect("a reason file");
        assert!(!reason.trim().is_empty());
        return;
    }

    assert_eq!(output.len(), lines.len(), "one output line per lot line");
    for line in &output {
        assert!(!line.contains(&b'\r'), "output holds \\r: {line:?}");
        let text = std::str::from_utf8(line).expect("output is UTF-8");
        if checked && !full_validation {
            // Without full validation a checked lot's lines are only
            // checked for their form: UTF-8, `{` to `}`, no `\r`.
            // TODO: that check lets raw U+2028 and U+2029 through, and any
            // text between the braces; assert the full form here once the
            // consumer checks it.
            assert!(text.starts_with('{'), "{text:?}");
            assert!(text.ends_with('}'), "{text:?}");
            continue;
        }
        assert!(
            !text.contains('\u{2028}') && !text.contains('\u{2029}'),
            "output holds a raw separator: {text:?}"
        );
        let value: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("serde_json cannot read an output line: {e}: {text:?}"));
        assert!(value.is_object(), "{text:?}");
    }
});

/// Returns the lines of every file in the output folder.
fn read_output(out: &Path) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return lines;
    };
    for entry in entries {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if bytes.is_empty() {
            continue;
        }
        assert_eq!(bytes.last(), Some(&b'\n'), "output ends in a partial line");
        let body = &bytes[..bytes.len() - 1];
        lines.extend(body.split(|&b| b == b'\n').map(<[u8]>::to_vec));
    }
    lines
}
