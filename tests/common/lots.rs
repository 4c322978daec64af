//! Hand-made lots and exactly-once checks by `seq`, for the tests of the
//! durable consumer's group commit. Their lines are small JSON objects
//! `{"game":"g","seq":N}`, and a check counts each `seq` in the finished
//! output files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Creates a temporary folder with an empty queue (`queue/incoming/`) and
/// an empty output folder. Returns the folder's guard, the queue and the
/// output folder.
pub fn scratch() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("queue");
    let out = root.path().join("out");
    std::fs::create_dir_all(queue.join("incoming")).unwrap();
    std::fs::create_dir(&out).unwrap();
    (root, queue, out)
}

/// Returns the sorted names in `dir`, or none if it does not exist.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Writes a lot by hand under a name that records its line count and
/// CRC-32, as a producer would, and returns the name.
pub fn hand_lot(queue: &Path, id: &str, content: &[u8]) -> String {
    let lines = content.iter().filter(|&&b| b == b'\n').count();
    let name = format!("{id}.{lines}.{:08x}.ready", crc32fast::hash(content));
    std::fs::write(queue.join("incoming").join(&name), content).unwrap();
    name
}

/// Returns JSON lines with `seq` from `seqs`.
pub fn json_lines(seqs: std::ops::Range<u64>) -> Vec<u8> {
    seqs.flat_map(|seq| format!("{{\"game\":\"g\",\"seq\":{seq}}}\n").into_bytes())
        .collect()
}

/// Counts each `seq` in the finished output files of `outs`. Fails on an
/// unfinished file or a line that is not JSON with a `seq`.
pub fn seq_counts(outs: &[&Path]) -> BTreeMap<u64, u64> {
    let mut counts = BTreeMap::new();
    for out in outs {
        for name in names_in(out) {
            assert!(name.ends_with(".jsonl"), "unfinished output file {name}");
            let text = std::fs::read_to_string(out.join(&name)).unwrap();
            for line in text.lines() {
                let value: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{name}: bad line {line:?}: {e}"));
                let seq = value["seq"].as_u64().expect("a seq");
                *counts.entry(seq).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Returns the seqs of `counts` that appear more than once, with their
/// counts.
pub fn duplicated(counts: &BTreeMap<u64, u64>) -> Vec<(u64, u64)> {
    counts
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&seq, &n)| (seq, n))
        .collect()
}

/// Checks that the outputs contain each of `expected` once and nothing
/// else, and that no lot is waiting or claimed.
pub fn check_exactly_once(queue: &Path, outs: &[&Path], expected: &BTreeSet<u64>, context: &str) {
    let counts = seq_counts(outs);
    let missing: Vec<&u64> = expected
        .iter()
        .filter(|s| !counts.contains_key(s))
        .collect();
    let foreign: Vec<&u64> = counts.keys().filter(|s| !expected.contains(s)).collect();
    assert!(missing.is_empty(), "{context}: lines missing: {missing:?}");
    assert_eq!(duplicated(&counts), [], "{context}: lines duplicated");
    assert!(
        foreign.is_empty(),
        "{context}: lines of bad lots: {foreign:?}"
    );
    assert_eq!(
        names_in(&queue.join("incoming")),
        [] as [String; 0],
        "{context}: lots left in incoming/"
    );
    assert_eq!(
        names_in(&queue.join("processing")),
        [] as [String; 0],
        "{context}: lots left in processing/"
    );
}
