//! `diskq verify`: a read-only integrity check of a queue and its output.
//!
//! It checks:
//!
//! * every `.ready` lot in `incoming/` and every archived lot
//!   (`.done`, `.done.gz`): the line count and CRC-32 that the name
//!   records, and that each line is one JSON object;
//! * every output file of the consumers: each line is one JSON object,
//!   and a finished file ends in a newline. A binary output file (`.dqb`)
//!   starts with the `DQB1` magic, and each record matches its CRC-32 and
//!   decodes to a transition; a finished one ends with a whole record;
//! * per episode, that is per (`gameId`, `playerId`), across the output
//!   files: each `seq` appears once, none is missing from 0 to the
//!   highest, the episode reaches `done`, and nothing follows `done`.
//!   Lines still waiting in `.ready` and `.part` lots count towards their
//!   episodes, so a game whose end is still in the queue is not reported.
//!
//! Nothing is renamed, written or locked.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::binary;
use crate::cat::{open_lot_file, read_bounded_line, read_small, HashingReader};
use crate::config::{OutputFormat, DEFAULT_MAX_LINE_BYTES};
use crate::error::Result;
use crate::json::{encode_transition, validate_line};
use crate::lot::{ClaimName, ReadyName, PART_SUFFIX};
use crate::output::split_output_name;
use crate::stat::{archived_lot_name, checked_paths, stat_with, StatOptions};

/// Options of [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Output folders to check besides those the consumers recorded.
    pub output_dirs: Vec<PathBuf>,
    /// Check sequences and `done` per (`gameId`, `playerId`).
    pub episodes: bool,
    /// Lines longer than this are reported as invalid.
    pub max_line_bytes: usize,
    /// Problems kept in the report; later ones are only counted.
    pub max_problems: usize,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            output_dirs: Vec::new(),
            episodes: true,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_problems: 1000,
        }
    }
}

/// The kind of a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// A lot's line count or CRC-32 differs from what its name records.
    Checksum,
    /// A line is not one JSON object, a binary record is corrupt, or a
    /// finished file ends mid-line or mid-record.
    InvalidLine,
    /// A file could not be read.
    Unreadable,
    /// An episode lacks one or more `seq` values.
    SeqGap,
    /// A `seq` of an episode appears more than once.
    DuplicateSeq,
    /// An episode has no line with `done` true.
    Unfinished,
    /// An episode has lines after its `done` line, or two `done` lines.
    AfterDone,
}

/// One thing wrong, with a message that names the file and line or the
/// episode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The kind of problem.
    pub kind: ProblemKind,
    /// Where, and the details.
    pub message: String,
}

/// The findings of [`verify`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Problems found, at most `max_problems` of them.
    pub problems: Vec<Problem>,
    /// Problems found in all, kept or not.
    pub problem_count: u64,
    /// Facts worth knowing that are not errors: lots in quarantine,
    /// claims in processing, lines without episode keys.
    pub notes: Vec<String>,
    /// `.ready` lots checked.
    pub ready_lots: u64,
    /// Archived lots checked.
    pub archived_lots: u64,
    /// Output files checked.
    pub output_files: u64,
    /// Output lines checked.
    pub output_lines: u64,
    /// Episodes checked.
    pub episodes: u64,
}

impl VerifyReport {
    /// Returns true when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problem_count == 0
    }

    fn add(&mut self, max: usize, kind: ProblemKind, message: String) {
        self.problem_count += 1;
        if self.problems.len() < max {
            self.problems.push(Problem { kind, message });
        }
    }
}

/// Checks the queue at `dir` and its output files without changing
/// anything.
///
/// # Errors
///
/// `InvalidConfig` if `dir` is not a directory, `Io` if a folder cannot
/// be listed. Files that cannot be read are problems in the report.
pub fn verify(dir: &Path, opts: &VerifyOptions) -> Result<VerifyReport> {
    let paths = checked_paths(dir)?;
    let stats = stat_with(
        dir,
        &StatOptions {
            count_output: false,
            ..StatOptions::default()
        },
    )?;
    let mut run = Run {
        opts,
        report: VerifyReport::default(),
        episodes: HashMap::new(),
        line: Vec::new(),
    };

    for name in sorted_names(&paths.incoming)? {
        if ReadyName::parse(&name).is_some() {
            run.report.ready_lots += 1;
            run.check_lot(&paths.incoming.join(&name), &name, true);
        } else if name.ends_with(PART_SUFFIX) {
            run.read_pending(&paths.incoming.join(&name));
        }
    }
    for name in sorted_names(&paths.archive)? {
        if let Some(ready) = archived_lot_name(&name) {
            run.report.archived_lots += 1;
            run.check_lot(&paths.archive.join(&name), ready, false);
        }
    }

    let mut output_dirs = stats.output_dirs.clone();
    for extra in &opts.output_dirs {
        let extra = std::fs::canonicalize(extra).unwrap_or_else(|_| extra.clone());
        if !output_dirs.contains(&extra) {
            output_dirs.push(extra);
        }
    }
    for out in &output_dirs {
        for name in sorted_names(out)? {
            let finished = split_output_name(&name, false);
            let Some((format, _)) = finished.or_else(|| split_output_name(&name, true)) else {
                continue;
            };
            let path = out.join(&name);
            match format {
                OutputFormat::JsonLines => run.check_output(&path, finished.is_some()),
                OutputFormat::Binary => run.check_binary_output(&path, finished.is_some()),
            }
        }
    }
    if opts.episodes {
        run.check_episodes();
    }
    run.add_notes(&paths, &stats)?;
    Ok(run.report)
}

/// The file and line number of a line, for messages.
#[derive(Debug, Clone)]
struct Location {
    file: Arc<PathBuf>,
    line: u64,
    // "line", or "record" in a binary lot.
    unit: &'static str,
}

impl Location {
    fn line(file: &Arc<PathBuf>, line: u64) -> Location {
        Location {
            file: file.clone(),
            line,
            unit: "line",
        }
    }

    fn record(file: &Arc<PathBuf>, record: u64) -> Location {
        Location {
            file: file.clone(),
            line: record,
            unit: "record",
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.file.display(), self.unit, self.line)
    }
}

/// A set of `seq` values, as sorted, disjoint, inclusive ranges: an
/// episode read in order is one range, whatever its length.
#[derive(Debug, Default)]
struct SeqSet {
    ranges: Vec<(u64, u64)>,
}

impl SeqSet {
    /// Adds `seq`; returns false if it was already there.
    fn insert(&mut self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, end)| end < seq);
        if let Some(&(start, _)) = self.ranges.get(i) {
            if start <= seq {
                return false;
            }
        }
        let joins_prev = i > 0 && self.ranges[i - 1].1.checked_add(1) == Some(seq);
        let joins_next = self
            .ranges
            .get(i)
            .is_some_and(|&(start, _)| seq.checked_add(1) == Some(start));
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = seq,
            (false, true) => self.ranges[i].0 = seq,
            (false, false) => self.ranges.insert(i, (seq, seq)),
        }
        true
    }

    /// Returns the values in `self`, `other` or both.
    fn union(&self, other: &SeqSet) -> SeqSet {
        let mut all: Vec<(u64, u64)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (start, end) in all {
            match ranges.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => ranges.push((start, end)),
            }
        }
        SeqSet { ranges }
    }

    /// Returns the missing ranges between 0 and the highest value.
    fn gaps(&self) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut next = 0u64;
        for &(start, end) in &self.ranges {
            if start > next {
                gaps.push((next, start - 1));
            }
            next = end.saturating_add(1);
        }
        gaps
    }

    fn max(&self) -> Option<u64> {
        self.ranges.last().map(|&(_, end)| end)
    }
}

/// The `seq` values seen for one (gameId, playerId).
#[derive(Debug, Default)]
struct Episode {
    /// Values in the output files.
    output: SeqSet,
    /// Values in lots still waiting in `incoming/`. A consumer may copy
    /// such a lot into the output while verify runs, so a value seen in
    /// both is no duplicate.
    pending: SeqSet,
    done_seq: Option<u64>,
}

impl Episode {
    /// Returns every value seen, in the output or waiting.
    fn all(&self) -> SeqSet {
        self.output.union(&self.pending)
    }
}

/// The fields of a transition line that the episode checks read.
#[derive(serde::Deserialize)]
struct EpisodeKey {
    #[serde(rename = "gameId")]
    game_id: Option<String>,
    #[serde(rename = "playerId")]
    player_id: Option<String>,
    seq: Option<u64>,
    done: Option<bool>,
}

struct Run<'a> {
    opts: &'a VerifyOptions,
    report: VerifyReport,
    // TODO: memory grows with the number of episodes in the output, by
    // two strings and a few ranges each. A dataset of hundreds of
    // millions of episodes needs an external sort instead.
    episodes: HashMap<(String, String), Episode>,
    line: Vec<u8>,
}

/// Lines without all of gameId, playerId and seq, and where the first was.
#[derive(Default)]
struct Unkeyed {
    count: u64,
    first: Option<Location>,
}

impl Run<'_> {
    fn problem(&mut self, kind: ProblemKind, message: String) {
        self.report.add(self.opts.max_problems, kind, message);
    }

    /// Checks one lot against its name's checksum, and each of its lines.
    /// Lines of a waiting lot also count towards their episodes.
    fn check_lot(&mut self, path: &Path, ready: &str, pending: bool) {
        let expected = ReadyName::parse(ready).and_then(|r| r.checksum);
        let mut reader = match open_lot_file(path) {
            Ok(reader) => reader,
            Err(e) => return self.problem(ProblemKind::Unreadable, e.to_string()),
        };
        match reader.fill_buf() {
            Ok(head) if head.starts_with(crate::binary::MAGIC) => {
                return self.check_binary_lot(reader, path, expected, pending);
            }
            Ok(_) => {}
            Err(e) => {
                let msg = format!("{}: read failed: {e}", path.display());
                return self.problem(ProblemKind::Unreadable, msg);
            }
        }
        let file = Arc::new(path.to_path_buf());
        let mut crc = crc32fast::Hasher::new();
        let mut lines = 0u64;
        let mut bad_lines = 0u64;
        let mut ends_in_newline = true;
        loop {
            let read = read_bounded_line(&mut reader, &mut self.line, self.opts.max_line_bytes + 1);
            let location = Location::line(&file, lines + 1);
            match read {
                Ok(Some(0)) => break,
                Ok(Some(_)) => {}
                Ok(None) => {
                    // The CRC no longer matters once a line is invalid.
                    lines += 1;
                    bad_lines += 1;
                    let msg = format!(
                        "{location}: line longer than {} bytes",
                        self.opts.max_line_bytes
                    );
                    self.problem(ProblemKind::InvalidLine, msg);
                    continue;
                }
                Err(e) => {
                    let msg = format!("{}: read failed after line {lines}: {e}", path.display());
                    return self.problem(ProblemKind::Unreadable, msg);
                }
            }
            lines += 1;
            crc.update(&self.line);
            ends_in_newline = self.line.last() == Some(&b'\n');
            let body = self.line.strip_suffix(b"\n").unwrap_or(&self.line).to_vec();
            if !self.check_line(&body, &location, pending) {
                bad_lines += 1;
            }
        }
        if lines == 0 {
            self.problem(
                ProblemKind::InvalidLine,
                format!("{}: empty lot", path.display()),
            );
            return;
        }
        if let Some((want_lines, want_crc)) = expected {
            let got_crc = crc.finalize();
            if want_lines != lines || (bad_lines == 0 && want_crc != got_crc) {
                self.checksum_problem(path, (want_lines, want_crc), (lines, got_crc));
            } else if !ends_in_newline {
                let msg = format!("{}: last line has no newline", path.display());
                self.problem(ProblemKind::InvalidLine, msg);
            }
        }
    }

    /// Checks a binary lot: each record's own CRC-32 and encoding, the
    /// record count and CRC-32 of the whole file that the name records,
    /// and each record turned into a JSON line.
    fn check_binary_lot(
        &mut self,
        reader: Box<dyn BufRead + Send>,
        path: &Path,
        expected: Option<(u64, u32)>,
        pending: bool,
    ) {
        let mut hashing = HashingReader {
            inner: reader,
            crc: crc32fast::Hasher::new(),
        };
        let mut json = Vec::new();
        let decoded = crate::binary::lot_to_json_lines(&mut hashing, &mut json);
        let drained = std::io::copy(&mut hashing, &mut std::io::sink());
        let file = Arc::new(path.to_path_buf());
        let records = memchr::memchr_iter(b'\n', &json).count() as u64;
        if let Err(e) = &decoded {
            let location = Location::record(&file, records + 1);
            self.problem(ProblemKind::InvalidLine, format!("{location}: {e}"));
        } else if let Err(e) = drained {
            let msg = format!("{}: read failed: {e}", path.display());
            return self.problem(ProblemKind::Unreadable, msg);
        } else if let Some((want_records, want_crc)) = expected {
            let got_crc = hashing.crc.finalize();
            if want_records != records || want_crc != got_crc {
                self.checksum_problem(path, (want_records, want_crc), (records, got_crc));
            }
        }
        if records == 0 && decoded.is_ok() {
            self.problem(
                ProblemKind::InvalidLine,
                format!("{}: empty lot", path.display()),
            );
        }
        for (i, line) in json
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let location = Location::record(&file, i as u64 + 1);
            self.check_line(line, &location, pending);
        }
    }

    fn checksum_problem(&mut self, path: &Path, want: (u64, u32), got: (u64, u32)) {
        let msg = format!(
            "{}: checksum mismatch: name records {} lines and crc32 {:08x}, \
             file holds {} lines and crc32 {:08x}",
            path.display(),
            want.0,
            want.1,
            got.0,
            got.1
        );
        self.problem(ProblemKind::Checksum, msg);
    }

    /// Checks one line; returns false if it is invalid. A valid line
    /// counts towards its episode.
    fn check_line(&mut self, body: &[u8], location: &Location, pending: bool) -> bool {
        if let Err(e) = validate_line(body, self.opts.max_line_bytes) {
            self.problem(ProblemKind::InvalidLine, format!("{location}: {e}"));
            return false;
        }
        if pending && self.opts.episodes {
            self.record_episode(body, location, true, &mut Unkeyed::default());
        }
        true
    }

    /// Reads the complete lines or records of a `.part` lot for the
    /// episode checks.
    fn read_pending(&mut self, path: &Path) {
        if !self.opts.episodes {
            return;
        }
        let Ok(reader) = open_lot_file(path) else {
            return;
        };
        // Decoding stops at a torn last record or line, which the
        // producer is still writing.
        let mut json = Vec::new();
        let _ = crate::binary::lot_to_json_lines(reader, &mut json);
        let complete = memchr::memrchr(b'\n', &json).map_or(0, |end| end + 1);
        let file = Arc::new(path.to_path_buf());
        for (i, line) in json[..complete].split(|&b| b == b'\n').enumerate() {
            if line.is_empty() || validate_line(line, self.opts.max_line_bytes).is_err() {
                continue;
            }
            let location = Location::line(&file, i as u64 + 1);
            self.record_episode(line, &location, true, &mut Unkeyed::default());
        }
    }

    /// Checks every line of an output file and records its episode keys.
    fn check_output(&mut self, path: &Path, finished: bool) {
        self.report.output_files += 1;
        let mut reader = match open_lot_file(path) {
            Ok(reader) => reader,
            Err(e) => return self.problem(ProblemKind::Unreadable, e.to_string()),
        };
        let file = Arc::new(path.to_path_buf());
        let mut unkeyed = Unkeyed::default();
        let mut n = 0u64;
        loop {
            let read = read_bounded_line(&mut reader, &mut self.line, self.opts.max_line_bytes + 1);
            let location = Location::line(&file, n + 1);
            match read {
                Ok(Some(0)) => break,
                Ok(Some(_)) => {}
                Ok(None) => {
                    n += 1;
                    let msg = format!(
                        "{location}: line longer than {} bytes",
                        self.opts.max_line_bytes
                    );
                    self.problem(ProblemKind::InvalidLine, msg);
                    continue;
                }
                Err(e) => {
                    let msg = format!("{}: read failed after line {n}: {e}", path.display());
                    return self.problem(ProblemKind::Unreadable, msg);
                }
            }
            n += 1;
            if self.line.last() != Some(&b'\n') {
                if finished {
                    let msg = format!("{location}: last line has no newline");
                    self.problem(ProblemKind::InvalidLine, msg);
                } else {
                    // A consumer writes past its last committed lot while
                    // it copies the next one; recovery cuts such a tail.
                    self.report.notes.push(format!(
                        "{location}: incomplete last line in an open output file \
                         (a consumer may be writing it)"
                    ));
                }
                break;
            }
            self.report.output_lines += 1;
            let body = self.line[..self.line.len() - 1].to_vec();
            if let Err(e) = validate_line(&body, self.opts.max_line_bytes) {
                self.problem(ProblemKind::InvalidLine, format!("{location}: {e}"));
                continue;
            }
            if self.opts.episodes {
                self.record_episode(&body, &location, false, &mut unkeyed);
            }
        }
        if let Some(first) = unkeyed.first {
            self.report.notes.push(format!(
                "{}: {} lines without gameId, playerId and seq (first at line {}), \
                 left out of the episode checks",
                path.display(),
                unkeyed.count,
                first.line
            ));
        }
    }

    /// Checks every record of a binary output file (its CRC-32, that it
    /// decodes, that it becomes a valid JSON line) and records its
    /// episode keys. Reads one record at a time.
    fn check_binary_output(&mut self, path: &Path, finished: bool) {
        self.report.output_files += 1;
        let mut reader = match open_lot_file(path) {
            Ok(reader) => reader,
            Err(e) => return self.problem(ProblemKind::Unreadable, e.to_string()),
        };
        let file = Arc::new(path.to_path_buf());
        let mut magic = [0u8; 4];
        match read_up_to(&mut reader, &mut magic) {
            Ok(n) if n == magic.len() && &magic == binary::MAGIC => {}
            Ok(_) => {
                let msg = format!(
                    "{}: does not start with the binary magic DQB1",
                    path.display()
                );
                return self.problem(ProblemKind::InvalidLine, msg);
            }
            Err(e) => {
                let msg = format!("{}: read failed: {e}", path.display());
                return self.problem(ProblemKind::Unreadable, msg);
            }
        }

        let max = self.opts.max_line_bytes;
        let mut payload = Vec::new();
        let mut json = Vec::new();
        let mut n = 0u64;
        let torn_at = loop {
            let location = Location::record(&file, n + 1);
            let mut header = [0u8; binary::RECORD_HEADER];
            let read = read_up_to(&mut reader, &mut header);
            let (len, crc) = match read {
                Ok(0) => break None,
                Ok(got) if got < header.len() => break Some(location),
                Ok(_) => binary::parse_header(&header),
                Err(e) => {
                    let msg = format!("{}: read failed after record {n}: {e}", path.display());
                    return self.problem(ProblemKind::Unreadable, msg);
                }
            };
            if len > max {
                // Nothing after a length this large can be trusted.
                let msg = format!("{location}: record of {len} bytes exceeds the maximum of {max}");
                return self.problem(ProblemKind::InvalidLine, msg);
            }
            payload.resize(len, 0);
            match read_up_to(&mut reader, &mut payload) {
                Ok(got) if got < len => break Some(location),
                Ok(_) => {}
                Err(e) => {
                    let msg = format!("{}: read failed after record {n}: {e}", path.display());
                    return self.problem(ProblemKind::Unreadable, msg);
                }
            }
            n += 1;
            if crc32fast::hash(&payload) != crc {
                self.problem(
                    ProblemKind::InvalidLine,
                    format!("{location}: checksum mismatch"),
                );
                continue;
            }
            let decoded = match binary::decode_payload(&payload) {
                Ok(decoded) => decoded,
                Err(e) => {
                    self.problem(ProblemKind::InvalidLine, format!("{location}: {e}"));
                    continue;
                }
            };
            json.clear();
            if let Err(e) = encode_transition(&decoded.as_ref(), &mut json) {
                self.problem(ProblemKind::InvalidLine, format!("{location}: {e}"));
                continue;
            }
            self.report.output_lines += 1;
            if self.opts.episodes {
                let body = json.strip_suffix(b"\n").unwrap_or(&json);
                self.record_episode(body, &location, false, &mut Unkeyed::default());
            }
        };

        if let Some(location) = torn_at {
            if finished {
                let msg = format!("{location}: incomplete last record");
                self.problem(ProblemKind::InvalidLine, msg);
            } else {
                self.report.notes.push(format!(
                    "{location}: incomplete last record in an open output file \
                     (a consumer may be writing it)"
                ));
            }
        }
    }

    fn record_episode(
        &mut self,
        body: &[u8],
        location: &Location,
        pending: bool,
        unkeyed: &mut Unkeyed,
    ) {
        let key: EpisodeKey = match serde_json::from_slice(body) {
            Ok(key) => key,
            Err(_) => {
                // A field of another type, such as a string seq.
                unkeyed.count += 1;
                unkeyed.first.get_or_insert_with(|| location.clone());
                return;
            }
        };

        let done_flag = key.done;
        let (Some(game), Some(player), Some(seq)) = (key.game_id, key.player_id, key.seq) else {
            unkeyed.count += 1;
            unkeyed.first.get_or_insert_with(|| location.clone());
            return;
        };

        let key = (game, player);
        if !self.episodes.contains_key(&key) {
            self.episodes.insert(key.clone(), Episode::default());
        }
        let episode = self.episodes.get_mut(&key).expect("inserted above");
        // Waiting lots are read first, so a value that repeats one of them
        // in the output is the same lot, consumed meanwhile.
        let new = if pending {
            episode.pending.insert(seq)
        } else {
            episode.output.insert(seq)
        };
        let done_before = episode.done_seq;
        let done = done_flag == Some(true);
        if done && done_before.is_none() {
            episode.done_seq = Some(seq);
        }

        let name = || format!("gameId={} playerId={}", key.0, key.1);
        if !new {
            let msg = format!("episode {}: seq {seq} appears again at {location}", name());
            self.problem(ProblemKind::DuplicateSeq, msg);
        } else if let Some(first) = done_before.filter(|&d| done && d != seq) {
            let msg = format!(
                "episode {}: second done at seq {seq} ({location}), first at seq {first}",
                name()
            );
            self.problem(ProblemKind::AfterDone, msg);
        }
    }

    /// Reports gaps, unfinished episodes and lines after `done`.
    fn check_episodes(&mut self) {
        let mut keys: Vec<(String, String)> = self.episodes.keys().cloned().collect();
        keys.sort();
        self.report.episodes = keys.len() as u64;
        for key in keys {
            let episode = &self.episodes[&key];
            let name = format!("gameId={} playerId={}", key.0, key.1);
            let all = episode.all();
            let gaps = all.gaps();
            let max = all.max().unwrap_or(0);
            let done = episode.done_seq;
            let mut found = Vec::new();
            for (start, end) in gaps {
                let missing = if start == end {
                    format!("seq {start}")
                } else {
                    format!("seq {start} to {end}")
                };
                found.push((
                    ProblemKind::SeqGap,
                    format!("episode {name}: missing {missing}"),
                ));
            }
            match done {
                None => found.push((
                    ProblemKind::Unfinished,
                    format!("episode {name}: never reached done (highest seq {max})"),
                )),
                Some(d) if max > d => found.push((
                    ProblemKind::AfterDone,
                    format!(
                        "episode {name}: seq {} to {max} follow done at seq {d}",
                        d + 1
                    ),
                )),
                Some(_) => {}
            }
            for (kind, msg) in found {
                self.problem(kind, msg);
            }
        }
    }

    /// Notes lots in quarantine, claims in processing and `.part` lots.
    fn add_notes(
        &mut self,
        paths: &crate::lot::QueuePaths,
        stats: &crate::stat::QueueStats,
    ) -> Result<()> {
        for name in sorted_names(&paths.quarantine)? {
            if name.ends_with(".reason") {
                continue;
            }
            let reason_path = paths.quarantine.join(format!("{name}.reason"));
            let reason = read_small(&reason_path, 4096).unwrap_or_else(|| "no .reason file".into());
            self.report.notes.push(format!(
                "quarantined: {}: {}",
                paths.quarantine.join(&name).display(),
                reason.trim_end()
            ));
        }
        for name in sorted_names(&paths.processing)? {
            let owner = ClaimName::parse(&name)
                .and_then(|c| crate::output::open_file_owner(&c.output).map(str::to_string));
            let running = owner.as_deref().and_then(|id| {
                stats
                    .consumers
                    .iter()
                    .find(|c| c.id == id)
                    .and_then(|c| c.running)
            });
            let who = match (&owner, running) {
                (Some(id), Some(false)) => {
                    format!("by consumer {id}, which is not running: run `diskq recover`")
                }
                (Some(id), _) => format!("by consumer {id}"),
                (None, _) => "by an unknown consumer".to_string(),
            };
            self.report.notes.push(format!(
                "claimed {who}: {}",
                paths.processing.join(&name).display()
            ));
        }
        if stats.part_lots > 0 {
            self.report.notes.push(format!(
                "{} .part lots are being written or wait for recovery; their complete lines \
                 count towards episodes",
                stats.part_lots
            ));
        }
        Ok(())
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_up_to(reader: &mut dyn BufRead, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Returns the names in `dir` that do not start with a dot, sorted. A
/// missing folder has none.
fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(crate::error::Error::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| crate::error::Error::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            if !name.starts_with('.') {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episode_ranges_merge_and_find_gaps() {
        let mut e = SeqSet::default();
        for seq in [3, 0, 1, 7, 2, 9, 8] {
            assert!(e.insert(seq), "{seq}");
        }
        assert!(!e.insert(8));
        assert!(!e.insert(0));
        assert_eq!(e.ranges, [(0, 3), (7, 9)]);
        assert_eq!(e.gaps(), [(4, 6)]);
        assert_eq!(e.max(), Some(9));
    }

    #[test]
    fn episode_gap_at_start_is_found() {
        let mut e = SeqSet::default();
        e.insert(2);
        e.insert(3);
        assert_eq!(e.gaps(), [(0, 1)]);
    }

    #[test]
    fn seq_union_merges_touching_ranges() {
        let a = SeqSet {
            ranges: vec![(0, 2), (8, 9)],
        };
        let b = SeqSet {
            ranges: vec![(3, 4), (6, 6), (9, u64::MAX)],
        };
        assert_eq!(a.union(&b).ranges, [(0, 4), (6, 6), (8, u64::MAX)]);
        assert_eq!(a.union(&b).gaps(), [(5, 5), (7, 7)]);
    }

    #[test]
    fn seq_at_max_does_not_overflow() {
        let mut e = SeqSet::default();
        assert!(e.insert(u64::MAX));
        assert!(e.insert(u64::MAX - 1));
        assert!(!e.insert(u64::MAX));
        assert_eq!(e.ranges, [(u64::MAX - 1, u64::MAX)]);
    }
}
