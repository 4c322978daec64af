//! Scans of output folders and queue directories, and the exactly-once
//! verdict that compares the output with the workers' bookkeeping.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use diskq::Transition;

use super::keys::{check_content, Key, Ledger};

/// What a scan of finished output files found.
#[derive(Debug, Default)]
pub struct OutputScan {
    /// How many times each key appears.
    pub counts: HashMap<Key, u32>,
    /// Transitions read.
    pub lines: u64,
    /// Finished `*.jsonl` files read.
    pub files: Vec<PathBuf>,
    /// Unfinished `*.jsonl.open` files seen.
    pub open_files: Vec<PathBuf>,
    /// Every violation found: a file ending without a newline, a line
    /// that is not one JSON object, a transition with wrong content.
    pub problems: Vec<String>,
}

impl OutputScan {
    /// Adds the lines of one finished output file.
    pub fn add_file(&mut self, path: &Path) {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.problems.push(format!("read {}: {e}", path.display()));
                return;
            }
        };
        self.files.push(path.to_path_buf());
        let counts = &mut self.counts;
        let lines = &mut self.lines;
        let problems = scan_lines(&bytes, path, |key| {
            *lines += 1;
            *counts.entry(key).or_default() += 1;
        });
        self.problems.extend(problems);
    }
}

/// Checks that `bytes` is a sequence of complete lines, each one JSON
/// object with a transition whose content matches its key. Returns one
/// message per violation, naming `path`.
pub fn check_lines(bytes: &[u8], path: &Path) -> Vec<String> {
    scan_lines(bytes, path, |_| {})
}

/// Does the checks of [`check_lines`] and calls `on_key` with the key of
/// every line that is a transition.
fn scan_lines(bytes: &[u8], path: &Path, mut on_key: impl FnMut(Key)) -> Vec<String> {
    let mut problems = Vec::new();
    if bytes.last().is_some_and(|&b| b != b'\n') {
        let tail_start = bytes.len().saturating_sub(40);
        problems.push(format!(
            "{} ends without a newline, last bytes {:?}",
            path.display(),
            String::from_utf8_lossy(&bytes[tail_start..])
        ));
    }
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let at = format!("{} line {}", path.display(), n + 1);
        let excerpt = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        let value = match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v) if v.is_object() => v,
            Ok(_) => {
                problems.push(format!("{at}: not a JSON object: {excerpt}"));
                continue;
            }
            Err(e) => {
                problems.push(format!("{at}: {e}: {excerpt}"));
                continue;
            }
        };
        match serde_json::from_value::<Transition>(value) {
            Ok(t) => {
                if let Err(e) = check_content(&t) {
                    problems.push(format!("{at}: {e}"));
                }
                on_key(Key {
                    game: t.game_id,
                    player: t.player_id,
                    seq: t.seq,
                });
            }
            Err(e) => problems.push(format!("{at}: not a transition: {e}")),
        }
    }
    problems
}

/// Lists the files of `dir` whose names end in `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    paths.sort();
    paths
}

/// Scans every finished output file in `dirs`, and notes the unfinished
/// ones.
pub fn scan_outputs<P: AsRef<Path>>(dirs: &[P]) -> OutputScan {
    let mut scan = OutputScan::default();
    for dir in dirs {
        let dir = dir.as_ref();
        for path in files_ending(dir, diskq::OUTPUT_SUFFIX) {
            scan.add_file(&path);
        }
        scan.open_files
            .extend(files_ending(dir, diskq::OPEN_SUFFIX));
    }
    scan
}

/// Returns whether the file at `path` is not empty and ends in `\n`,
/// reading only its last byte; None if it cannot be read (it may have
/// moved away).
pub fn ends_in_newline(path: &Path) -> Option<bool> {
    use std::os::unix::fs::FileExt;

    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return Some(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1).ok()?;
    Some(last[0] == b'\n')
}

/// Lists the lots that producers published in the queue: `.ready` in
/// `incoming/` and `.done` in `archive/`, whose names carry the line
/// count and checksum that producers record. Lots made by hand, without
/// them, are left out.
pub fn published_lots(queue: &Path) -> Vec<PathBuf> {
    let mut lots = files_ending(&queue.join("incoming"), ".ready");
    lots.extend(files_ending(&queue.join("archive"), ".done"));
    lots.retain(|path| {
        let name = path.file_name().unwrap().to_string_lossy();
        let ready = name.strip_suffix(".done").unwrap_or(&name);
        diskq::ReadyName::parse(ready).is_some_and(|r| r.checksum.is_some())
    });
    lots
}

/// Returns a message for every published lot (see [`published_lots`])
/// that does not end in a newline. Lots that move away during the scan
/// are skipped.
pub fn unterminated_lots(queue: &Path) -> Vec<String> {
    published_lots(queue)
        .into_iter()
        .filter(|path| ends_in_newline(path) == Some(false))
        .map(|path| format!("published lot {} does not end in a newline", path.display()))
        .collect()
}

/// Checks every `.ready` and `.part` lot in `incoming/`: each must be
/// empty or a sequence of whole lines (see [`check_lines`]). Returns one
/// message per violation; lots that move away are skipped.
pub fn broken_incoming_lots(queue: &Path) -> Vec<String> {
    let incoming = queue.join("incoming");
    let mut problems = Vec::new();
    let lots = files_ending(&incoming, ".ready")
        .into_iter()
        .chain(files_ending(&incoming, ".part"));
    for path in lots {
        if let Ok(bytes) = std::fs::read(&path) {
            problems.extend(check_lines(&bytes, &path));
        }
    }
    problems
}

/// Returns a message for every file left in the queue that a drained
/// queue must not hold: `.ready`, `.part` or temporary lots, claims,
/// quarantined lots (with their reasons).
pub fn leftovers(queue: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for sub in ["incoming", "processing", "quarantine"] {
        for path in files_ending(&queue.join(sub), "") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".reason") {
                let reason = std::fs::read_to_string(&path).unwrap_or_default();
                found.push(format!("{sub}/{name}: {}", reason.trim()));
            } else {
                found.push(format!("{sub}/{name}"));
            }
        }
    }
    found
}

/// Output compared with bookkeeping.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Acknowledged keys.
    pub acked: usize,
    /// Keys pushed, never acknowledged, found once in the output.
    pub unacked_delivered: usize,
    /// Keys pushed, never acknowledged, absent from the output.
    pub unacked_absent: usize,
    /// Acknowledged keys absent from the output.
    pub lost: Vec<Key>,
    /// Keys found more than once, with their count.
    pub duplicated: Vec<(Key, u32)>,
    /// Keys in the output that no worker logged as pushed.
    pub unknown: Vec<Key>,
}

impl Verdict {
    /// Compares an output scan with the workers' logs.
    pub fn new(ledger: &Ledger, scan: &OutputScan) -> Verdict {
        let mut v = Verdict {
            acked: ledger.acked.len(),
            ..Verdict::default()
        };
        for key in &ledger.acked {
            if !scan.counts.contains_key(key) {
                v.lost.push(key.clone());
            }
        }
        for key in ledger.pushed.difference(&ledger.acked) {
            match scan.counts.get(key) {
                Some(_) => v.unacked_delivered += 1,
                None => v.unacked_absent += 1,
            }
        }
        for (key, &n) in &scan.counts {
            if n > 1 {
                v.duplicated.push((key.clone(), n));
            }
            if !ledger.pushed.contains(key) {
                v.unknown.push(key.clone());
            }
        }
        v.lost.sort();
        v.duplicated.sort();
        v.unknown.sort();
        v
    }

    /// Returns a one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "acked {}, unacked delivered {}, unacked absent {}, lost {}, duplicated {}, unknown {}",
            self.acked,
            self.unacked_delivered,
            self.unacked_absent,
            self.lost.len(),
            self.duplicated.len(),
            self.unknown.len()
        )
    }

    /// Panics, listing a few examples, unless every acknowledged key
    /// arrived exactly once and nothing else arrived more than once.
    pub fn assert_exactly_once(&self, context: &str) {
        let sample = |keys: Vec<String>| keys.into_iter().take(8).collect::<Vec<_>>().join(" ");
        assert!(
            self.lost.is_empty(),
            "{context}: {} acknowledged keys lost, e.g. {}; {}",
            self.lost.len(),
            sample(self.lost.iter().map(Key::to_string).collect()),
            self.summary()
        );
        assert!(
            self.duplicated.is_empty(),
            "{context}: {} keys duplicated, e.g. {}; {}",
            self.duplicated.len(),
            sample(
                self.duplicated
                    .iter()
                    .map(|(k, n)| format!("{k}x{n}"))
                    .collect()
            ),
            self.summary()
        );
        assert!(
            self.unknown.is_empty(),
            "{context}: {} keys in the output were never pushed, e.g. {}",
            self.unknown.len(),
            sample(self.unknown.iter().map(Key::to_string).collect())
        );
    }
}

/// Counts of names, for reports: how many of each item.
pub fn tally<I: IntoIterator<Item = String>>(items: I) -> BTreeMap<String, u64> {
    let mut map = BTreeMap::new();
    for item in items {
        *map.entry(item).or_default() += 1;
    }
    map
}
