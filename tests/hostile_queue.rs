//! Hostile files in a queue's `incoming/` while a consumer runs.
//!
//! Each case places one file that no well-behaved producer makes, then
//! checks what the running consumer did with it. The consumer sets it
//! aside in `quarantine/` with a reason, ignores it with a warning, or
//! consumes it when it is a valid lot in an unusual form. In every case the consumer
//! keeps running and consumes a normal lot placed afterwards exactly once,
//! and every physical output line is one JSON object.
//!
//! The last tests kill a consumer process in the middle of a lot and
//! damage an output file's tail, then restart the consumer.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diskq::{Consumer, ConsumerOptions, ConsumerStats, Producer, ProducerOptions, Transition};
use serde_json::{json, Value};

/// The consumer's maximum line length in these tests.
const MAX_LINE: usize = 8192;

/// How long to wait for the running consumer before failing.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------
// Log capture
// ---------------------------------------------------------------------

/// Keeps every log record of this test binary. Tests run in parallel,
/// so each one filters the records by its own temporary directory.
struct CaptureLogger;

static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let text = record.args().to_string();
        lock_records().push((record.level(), text));
    }

    fn flush(&self) {}
}

fn lock_records() -> std::sync::MutexGuard<'static, Vec<(log::Level, String)>> {
    RECORDS.lock().unwrap_or_else(|e| e.into_inner())
}

fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CaptureLogger).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// Returns the records at `level` or more severe that contain every
/// one of `needles`.
fn logged(level: log::Level, needles: &[&str]) -> Vec<String> {
    lock_records()
        .iter()
        .filter(|(l, text)| *l <= level && needles.iter().all(|n| text.contains(n)))
        .map(|(_, text)| text.clone())
        .collect()
}

// ---------------------------------------------------------------------
// A consumer running in a thread
// ---------------------------------------------------------------------

struct Running {
    root: tempfile::TempDir,
    queue: PathBuf,
    out: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<diskq::Result<ConsumerStats>>>,
}

impl Running {
    /// Opens a queue and runs a consumer on it, polling every 20 ms and
    /// publishing dead producers' `.part` lots every 50 ms.
    fn start() -> Running {
        Running::start_with(ConsumerOptions::default().full_validation)
    }

    /// Like [`Running::start`], with the consumer's `full_validation`.
    fn start_with(full_validation: bool) -> Running {
        install_logger();
        let root = tempfile::tempdir().unwrap();
        let queue = root.path().join("q");
        let out = root.path().join("out");
        std::fs::create_dir(&queue).unwrap();
        let opts = ConsumerOptions {
            output_dir: out.clone(),
            poll_interval: Duration::from_millis(20),
            max_line_bytes: MAX_LINE,
            recover_interval: Some(Duration::from_millis(50)),
            full_validation,
            ..ConsumerOptions::default()
        };
        let mut consumer = Consumer::open(&queue, opts).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || consumer.run(&flag));
        Running {
            root,
            queue,
            out,
            stop,
            thread: Some(thread),
        }
    }

    fn incoming(&self) -> PathBuf {
        self.queue.join("incoming")
    }

    fn quarantine(&self) -> PathBuf {
        self.queue.join("quarantine")
    }

    fn archive(&self) -> PathBuf {
        self.queue.join("archive")
    }

    /// Stops the consumer and returns its counters. Fails, instead of
    /// hanging, if the consumer thread is stuck.
    fn stop(&mut self) -> ConsumerStats {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("stop is called once");
        wait_until("the consumer thread to stop", || thread.is_finished());
        thread
            .join()
            .expect("the consumer thread does not panic")
            .expect("the consumer closes cleanly")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < PATIENCE,
            "timed out after {PATIENCE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn count_done(archive: &Path) -> usize {
    std::fs::read_dir(archive)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .as_bytes()
                .ends_with(b".done")
        })
        .count()
}

// ---------------------------------------------------------------------
// Lots and output
// ---------------------------------------------------------------------

/// Returns a transition whose floats print exactly, so its JSON value
/// read back from the output equals `serde_json::to_value` of it.
fn transition(game: &str, seq: u64) -> Transition {
    Transition {
        obs: vec![0.25, -1.0, seq as f32],
        mask: vec![1, 0, 1],
        action: 3,
        reward: 0.5,
        done: false,
        game_id: game.to_string(),
        player_id: "pA".to_string(),
        seq,
    }
}

/// Publishes one lot of five transitions through a real producer and
/// returns them as JSON values.
fn push_normal_lot(queue: &Path, game: &str) -> Vec<Value> {
    let opts = ProducerOptions {
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(queue, opts).unwrap();
    let mut pushed = Vec::new();
    for seq in 0..5 {
        let t = transition(game, seq);
        producer.push(&t).unwrap();
        pushed.push(serde_json::to_value(&t).unwrap());
    }
    producer.close().unwrap();
    assert_eq!(producer.stats().lots_published, 1);
    pushed
}

/// Reads every output file in name order and checks that each physical
/// line is one JSON object in valid UTF-8, with no `\r` and no raw
/// U+2028 or U+2029. Returns the objects.
fn read_output(out: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut values = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("queue_transitions_") && name.ends_with(".jsonl"),
            "unexpected file in the output folder: {name}"
        );
        let bytes = std::fs::read(&file).unwrap();
        values.extend(parse_output_lines(&name, &bytes));
    }
    values
}

fn parse_output_lines(name: &str, bytes: &[u8]) -> Vec<Value> {
    assert!(!bytes.is_empty(), "{name} is empty");
    assert_eq!(bytes.last(), Some(&b'\n'), "{name} ends in a partial line");
    assert!(!bytes.contains(&b'\r'), "{name} contains a raw \\r");
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        !text.contains('\u{2028}') && !text.contains('\u{2029}'),
        "{name} contains a raw line or paragraph separator"
    );
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name} line {}: {e}: {line:?}", i + 1));
            assert!(value.is_object(), "{name} line {}: not an object", i + 1);
            value
        })
        .collect()
}

/// Runs `diskq stat --json` on the queue and returns its output.
fn stat_json(queue: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_diskq"))
        .arg("stat")
        .arg(queue)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "diskq stat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Returns the name a producer would give a lot holding `content`.
fn checked_name(id: &str, content: &[u8]) -> String {
    let lines = content.iter().filter(|&&b| b == b'\n').count();
    format!("{id}.{lines}.{:08x}.ready", crc32fast::hash(content))
}

// ---------------------------------------------------------------------
// The case runner
// ---------------------------------------------------------------------

/// What the consumer must do with a hostile file.
enum Outcome {
    /// Moved to `quarantine/<name>`, with a `.reason` file that contains
    /// this text, and an error logged.
    Quarantined(&'static str),
    /// Left where it is, untouched. With `Some`, warnings containing the
    /// text are logged; with `None`, nothing is logged about it.
    Ignored(Option<&'static str>),
    /// Left where it is, untouched, with one warning containing the text
    /// however many times the consumer lists `incoming/`.
    IgnoredWarnOnce(&'static str),
    /// Consumed as a lot: these objects reach the output, in order.
    Consumed(Vec<Value>),
}

/// Places a hostile file named `name` in `incoming/` of a queue with a
/// running consumer, checks the outcome, then checks that a normal lot
/// placed after it is consumed once. Returns the stopped run, for checks
/// specific to the case.
fn check_hostile(name: &[u8], place: impl FnOnce(&Path, &Path), outcome: Outcome) -> Running {
    check_hostile_with(
        ConsumerOptions::default().full_validation,
        name,
        place,
        outcome,
    )
}

/// Like [`check_hostile`], with the consumer's `full_validation`.
fn check_hostile_with(
    full_validation: bool,
    name: &[u8],
    place: impl FnOnce(&Path, &Path),
    outcome: Outcome,
) -> Running {
    let mut run = Running::start_with(full_validation);
    let name_os = OsStr::from_bytes(name);
    let display_name = name_os.to_string_lossy().into_owned();

    // Make the file outside the queue, then move it in with one rename,
    // so the consumer never sees it half made.
    let staging = run.root.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    place(&staging.join(name_os), run.root.path());
    let before = std::fs::symlink_metadata(staging.join(name_os)).expect("the case made its file");
    let path = run.incoming().join(name_os);
    std::fs::rename(staging.join(name_os), &path).unwrap();
    let queue_text = run.queue.display().to_string();

    let mut expected = Vec::new();
    let mut lots = 1;
    let mut quarantined = 0;
    match &outcome {
        Outcome::Quarantined(_) => {
            let reason_path = run.quarantine().join(format!("{display_name}.reason"));
            let done = run.archive().join(format!("{display_name}.done"));
            wait_until(&format!("{display_name} to be quarantined"), || {
                reason_path.exists() || done.exists()
            });
            assert!(
                !done.exists(),
                "{display_name} was consumed, not quarantined"
            );
            quarantined = 1;
        }
        Outcome::Ignored(Some(warning)) | Outcome::IgnoredWarnOnce(warning) => {
            wait_until(&format!("a warning about {display_name}"), || {
                !logged(log::Level::Warn, &[warning, &queue_text, &display_name]).is_empty()
            });
        }
        Outcome::Ignored(None) => {}
        Outcome::Consumed(values) => {
            let done = run.archive().join(format!("{display_name}.done"));
            let reason_path = run.quarantine().join(format!("{display_name}.reason"));
            wait_until(&format!("{display_name} to be archived"), || {
                done.exists() || reason_path.exists()
            });
            if let Ok(reason) = std::fs::read_to_string(&reason_path) {
                panic!("{display_name} was quarantined, not consumed: {reason}");
            }
            expected.extend(values.iter().cloned());
            lots += 1;
        }
    }

    // The consumer goes on: a normal lot placed now is consumed once.
    expected.extend(push_normal_lot(&run.queue, "after"));
    let archive = run.archive();
    wait_until("the normal lot to be archived", || {
        count_done(&archive) == lots
    });
    let stats = run.stop();
    assert_eq!(
        read_output(&run.out),
        expected,
        "output of case {display_name}"
    );
    assert_eq!(
        stats.lots, lots as u64,
        "lots consumed in case {display_name}"
    );
    assert_eq!(
        stats.quarantined, quarantined,
        "lots quarantined in case {display_name}"
    );

    match outcome {
        Outcome::Quarantined(reason) => {
            let reason_text =
                std::fs::read_to_string(run.quarantine().join(format!("{display_name}.reason")))
                    .unwrap();
            assert!(
                reason_text.contains(reason),
                "reason for {display_name} is {reason_text:?}, expected it to contain {reason:?}"
            );
            let moved = std::fs::symlink_metadata(run.quarantine().join(name_os))
                .expect("the file itself is in quarantine/");
            assert_eq!(
                moved.file_type(),
                before.file_type(),
                "{display_name} kept its type"
            );
            assert!(
                std::fs::symlink_metadata(&path).is_err(),
                "{display_name} left incoming/"
            );
            let lines = logged(
                log::Level::Error,
                &["quarantined lot=", &display_name, &queue_text],
            );
            assert_eq!(
                lines.len(),
                1,
                "one error line for {display_name}: {lines:?}"
            );
            assert!(lines[0].contains(reason), "{}", lines[0]);
        }
        Outcome::Ignored(_) | Outcome::IgnoredWarnOnce(_) => {
            let after = std::fs::symlink_metadata(&path).expect("an ignored file stays");
            assert_eq!(after.file_type(), before.file_type());
            assert_eq!(after.len(), before.len(), "{display_name} was not changed");
            let lines = logged(log::Level::Warn, &[&queue_text, &display_name]);
            match outcome {
                Outcome::Ignored(Some(w)) => {
                    assert!(!lines.is_empty(), "a warning about {display_name}");
                    assert!(lines.iter().all(|l| l.contains(w)), "{lines:?}");
                }
                Outcome::IgnoredWarnOnce(w) => {
                    assert_eq!(
                        lines.len(),
                        1,
                        "warned once about {display_name}: {lines:?}"
                    );
                    assert!(lines[0].contains(w), "{}", lines[0]);
                }
                _ => assert!(
                    lines.is_empty(),
                    "no warning about {display_name}: {lines:?}"
                ),
            }
        }
        Outcome::Consumed(_) => {
            assert!(
                std::fs::symlink_metadata(&path).is_err(),
                "{display_name} left incoming/"
            );
        }
    }

    let stat = stat_json(&run.queue);
    assert_eq!(stat["quarantined_lots"], json!(quarantined), "{stat}");
    assert_eq!(stat["processing_lots"], json!(0), "{stat}");
    assert_eq!(stat["archived_lots"], json!(lots), "{stat}");
    assert_eq!(stat["output_lines"], json!(expected.len()), "{stat}");
    run
}

fn write_file(contents: &[u8]) -> impl FnOnce(&Path, &Path) + '_ {
    move |path, _| std::fs::write(path, contents).unwrap()
}

// ---------------------------------------------------------------------
// Files that are not regular
// ---------------------------------------------------------------------

#[test]
fn directory_named_ready_is_quarantined() {
    let place = |path: &Path, _: &Path| {
        std::fs::create_dir(path).unwrap();
        std::fs::write(path.join("inner.ready"), b"{\"inner\":1}\n").unwrap();
    };
    check_hostile(
        b"dir.ready",
        place,
        Outcome::Quarantined("is not a regular file"),
    );
}

#[test]
fn fifo_ready_quarantined_without_blocking() {
    let place = |path: &Path, _: &Path| {
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: c_path is a live NUL-terminated string; mkfifo only
        // reads it.
        let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
        assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
    };
    check_hostile(
        b"fifo.ready",
        place,
        Outcome::Quarantined("is not a regular file"),
    );
}

#[test]
fn symlink_ready_not_followed() {
    let content = b"{\"outside\":1}\n";
    let place = |path: &Path, scratch: &Path| {
        let target = scratch.join("outside.jsonl");
        std::fs::write(&target, content).unwrap();
        std::os::unix::fs::symlink(&target, path).unwrap();
    };
    let run = check_hostile(
        b"link.ready",
        place,
        Outcome::Quarantined("is a symbolic link"),
    );

    let target = run.root.path().join("outside.jsonl");
    assert_eq!(std::fs::read(&target).unwrap(), content, "target untouched");
    let moved = run.quarantine().join("link.ready");
    assert_eq!(std::fs::read_link(moved).unwrap(), target);
}

#[test]
fn fifo_part_skipped_by_recovery() {
    let place = |path: &Path, _: &Path| {
        let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: as in the `.ready` FIFO case.
        let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
        assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
    };
    check_hostile(
        b"fifo.part",
        place,
        Outcome::Ignored(Some("is not a regular file")),
    );
}

#[test]
fn symlink_part_not_followed() {
    // A torn last line, which recovery would cut if it followed the link.
    let content = b"{\"outside\":1}\n{\"torn\":";
    let place = |path: &Path, scratch: &Path| {
        let target = scratch.join("outside.part");
        std::fs::write(&target, content).unwrap();
        std::os::unix::fs::symlink(&target, path).unwrap();
    };
    let run = check_hostile(
        b"link.part",
        place,
        Outcome::Ignored(Some("is a symbolic link")),
    );

    let target = run.root.path().join("outside.part");
    assert_eq!(std::fs::read(&target).unwrap(), content, "target untouched");
}

// ---------------------------------------------------------------------
// Foreign names
// ---------------------------------------------------------------------

#[test]
fn foreign_file_ignored_with_warning() {
    check_hostile(
        b"notes.txt",
        write_file(b"{\"note\":1}\n"),
        Outcome::IgnoredWarnOnce("ignoring foreign file"),
    );
}

#[test]
fn editor_backup_ignored_with_warning() {
    check_hostile(
        b"lot.ready~",
        write_file(b"{\"backup\":1}\n"),
        Outcome::IgnoredWarnOnce("ignoring foreign file"),
    );
}

#[test]
fn claim_separator_in_name_quarantined() {
    // `~` separates the parts of a claimed lot's name in processing/.
    check_hostile(
        b"lot~x~0.ready",
        write_file(b"{\"tilde\":1}\n"),
        Outcome::Quarantined("invalid lot name"),
    );
}

#[test]
fn non_utf8_name_ignored_with_warning() {
    check_hostile(
        b"lot\xff\xfe.ready",
        write_file(b"{\"latin1\":1}\n"),
        Outcome::IgnoredWarnOnce("non-UTF-8 name"),
    );
}

#[test]
fn dotfile_is_ignored_silently() {
    // Hidden files are temporary files of other tools, and the producer's
    // own `.<id>.new` files are hidden too, so none of them is reported.
    check_hostile(
        b".notes",
        write_file(b"{\"hidden\":1}\n"),
        Outcome::Ignored(None),
    );
}

#[test]
fn hidden_ready_ignored_silently() {
    // A tool that writes `.x.ready` and then renames it to `x.ready` is
    // still writing while the name is hidden; taking the file then would
    // make its rename fail and lose its lot.
    check_hostile(
        b".lot.ready",
        write_file(b"{\"hidden\":1}\n"),
        Outcome::Ignored(None),
    );
}

// ---------------------------------------------------------------------
// Lots whose content is bad
// ---------------------------------------------------------------------

#[test]
fn empty_ready_is_quarantined() {
    check_hostile(
        b"empty.ready",
        write_file(b""),
        Outcome::Quarantined("empty lot"),
    );
}

#[test]
fn all_nul_ready_is_quarantined() {
    let zeros = vec![0u8; 4096];
    check_hostile(
        b"zeros.ready",
        write_file(&zeros),
        Outcome::Quarantined("line 1: invalid JSON line: expected a JSON object"),
    );
}

#[test]
fn all_nul_checked_lot_quarantined() {
    // What a file system can leave after power loss: the name of a lot
    // whose data blocks never reached the disk.
    let zeros = vec![0u8; 4096];
    let name = checked_name("00000000000000000001-h-1-0-0", b"{\"a\":1}\n");
    check_hostile(
        name.as_bytes(),
        write_file(&zeros),
        Outcome::Quarantined("line 1: invalid JSON line: expected a JSON object"),
    );
}

#[test]
fn invalid_utf8_line_is_quarantined() {
    check_hostile(
        b"latin1.ready",
        write_file(b"{\"ok\":1}\n{\"playerId\":\"p\xff\"}\n"),
        Outcome::Quarantined("line 2: invalid JSON line: not valid UTF-8"),
    );
}

#[test]
fn non_object_lines_are_quarantined() {
    for line in ["[1]", "\"s\"", "1", "null"] {
        let content = format!("{{\"ok\":1}}\n{line}\n");
        check_hostile(
            b"scalar.ready",
            write_file(content.as_bytes()),
            Outcome::Quarantined("line 2: invalid JSON line: expected a JSON object"),
        );
    }
}

#[test]
fn blank_line_quarantines_lot() {
    check_hostile(
        b"blank.ready",
        write_file(b"{\"a\":1}\n\n{\"b\":2}\n"),
        Outcome::Quarantined("line 2: invalid JSON line: empty"),
    );
}

#[test]
fn overlong_line_quarantines_lot() {
    let long = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(MAX_LINE));
    check_hostile(
        b"long.ready",
        write_file(long.as_bytes()),
        Outcome::Quarantined("line 1: line longer than the maximum of 8192 bytes"),
    );
}

#[test]
fn late_bad_line_leaves_no_output() {
    // More valid bytes than the consumer buffers, so part of the lot is
    // already in the output file when the bad line turns up.
    let mut content = Vec::new();
    let mut n = 0;
    while content.len() < 600 * 1024 {
        writeln!(content, "{{\"n\":{n},\"pad\":\"{}\"}}", "y".repeat(200)).unwrap();
        n += 1;
    }
    content.extend_from_slice(b"{\"n\":NaN}\n");
    let reason = format!("line {}: invalid JSON line: `NaN`", n + 1);
    let reason: &'static str = Box::leak(reason.into_boxed_str());
    check_hostile(
        b"late-error.ready",
        write_file(&content),
        Outcome::Quarantined(reason),
    );
}

#[test]
fn wrong_crc_quarantines_lot() {
    let content = b"{\"a\":1}\n{\"b\":2}\n";
    let name = format!(
        "00000000000000000001-h-1-0-0.2.{:08x}.ready",
        crc32fast::hash(content) ^ 1
    );
    check_hostile(
        name.as_bytes(),
        write_file(content),
        Outcome::Quarantined("checksum mismatch"),
    );
}

#[test]
fn wrong_line_count_quarantines_lot() {
    let content = b"{\"a\":1}\n{\"b\":2}\n";
    let name = format!(
        "00000000000000000001-h-1-0-0.3.{:08x}.ready",
        crc32fast::hash(content)
    );
    check_hostile(
        name.as_bytes(),
        write_file(content),
        Outcome::Quarantined("name records 3 lines"),
    );
}

#[test]
fn checked_lot_missing_newline_quarantined() {
    // Line count and CRC match the bytes, but a producer always ends a
    // lot with a newline, so the end of this one is missing.
    let content = b"{\"a\":1}\n{\"b\":2}";
    let name = format!(
        "00000000000000000001-h-1-0-0.2.{:08x}.ready",
        crc32fast::hash(content)
    );
    check_hostile(
        name.as_bytes(),
        write_file(content),
        Outcome::Quarantined("last line has no newline"),
    );
}

// A producer's lot name records the line count and CRC-32 of its bytes.
// Anyone can compute both, so a lot with a matching name may still hold
// lines that no producer would write.

const FORGED_ID: &str = "00000000000000000001-h-1-0-0";

#[test]
fn forged_lot_with_nan_quarantined() {
    let content = b"{\"ok\":1}\n{\"reward\":NaN}\n";
    let name = checked_name(FORGED_ID, content);
    check_hostile(
        name.as_bytes(),
        write_file(content),
        Outcome::Quarantined("line 2: invalid JSON line"),
    );
}

#[test]
fn forged_lot_two_objects_quarantined() {
    let content = b"{\"a\":1}{\"b\":2}\n";
    let name = checked_name(FORGED_ID, content);
    check_hostile(
        name.as_bytes(),
        write_file(content),
        Outcome::Quarantined("line 1: invalid JSON line"),
    );
}

#[test]
fn forged_lot_separator_escaped() {
    let content = "{\"s\":\"a\u{2028}b\"}\n".as_bytes();
    let name = checked_name(FORGED_ID, content);
    check_hostile(
        name.as_bytes(),
        write_file(content),
        Outcome::Consumed(vec![json!({"s": "a\u{2028}b"})]),
    );
}

#[test]
fn forged_lots_fail_full_validation() {
    let cases: [(&[u8], &str); 2] = [
        (
            b"{\"ok\":1}\n{\"reward\":NaN}\n",
            "line 2: invalid JSON line: `NaN`",
        ),
        (b"{\"a\":1}{\"b\":2}\n", "line 1: invalid JSON line"),
    ];
    for (content, reason) in cases {
        let name = checked_name(FORGED_ID, content);
        check_hostile_with(
            true,
            name.as_bytes(),
            write_file(content),
            Outcome::Quarantined(reason),
        );
    }

    let content = "{\"s\":\"a\u{2028}b\"}\n".as_bytes();
    let name = checked_name(FORGED_ID, content);
    check_hostile_with(
        true,
        name.as_bytes(),
        write_file(content),
        Outcome::Consumed(vec![json!({"s": "a\u{2028}b"})]),
    );
}

// ---------------------------------------------------------------------
// Valid lots in unusual forms
// ---------------------------------------------------------------------

#[test]
fn unterminated_lot_does_not_merge() {
    check_hostile(
        b"foo.ready",
        write_file(b"{\"a\":1}\n{\"b\":2}"),
        Outcome::Consumed(vec![json!({"a": 1}), json!({"b": 2})]),
    );
}

#[test]
fn crlf_lot_output_has_no_cr() {
    check_hostile(
        b"crlf.ready",
        write_file(b"{\"a\":1}\r\n{\"b\":\"x\"}\r\n"),
        Outcome::Consumed(vec![json!({"a": 1}), json!({"b": "x"})]),
    );
}

#[test]
fn raw_separator_is_escaped() {
    let run = check_hostile(
        b"sep.ready",
        write_file("{\"s\":\"a\u{2028}b\u{2029}c\"}\n".as_bytes()),
        Outcome::Consumed(vec![json!({"s": "a\u{2028}b\u{2029}c"})]),
    );

    // read_output already rejects raw separators; check the escapes.
    let mut text = String::new();
    for entry in std::fs::read_dir(&run.out).unwrap() {
        text += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
    }
    assert!(text.contains(r#""a\u2028b\u2029c""#), "{text}");
}

// ---------------------------------------------------------------------
// A lot that was consumed before
// ---------------------------------------------------------------------

#[test]
fn archived_duplicate_is_quarantined() {
    let mut run = Running::start();
    let first = push_normal_lot(&run.queue, "first");
    let archive = run.archive();
    wait_until("the first lot to be archived", || count_done(&archive) == 1);

    // Put the archived lot back under its published name.
    let done = std::fs::read_dir(&archive)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let name = done.strip_suffix(".done").unwrap().to_string();
    std::fs::copy(archive.join(&done), run.incoming().join(&name)).unwrap();
    let reason_path = run.quarantine().join(format!("{name}.reason"));
    wait_until("the copy to be quarantined", || reason_path.exists());

    let after = push_normal_lot(&run.queue, "after");
    wait_until("the next lot to be archived", || count_done(&archive) == 2);
    let stats = run.stop();

    let reason = std::fs::read_to_string(&reason_path).unwrap();
    assert!(reason.contains("already archived"), "{reason}");
    assert!(run.quarantine().join(&name).is_file());
    let expected: Vec<Value> = first.into_iter().chain(after).collect();
    assert_eq!(read_output(&run.out), expected);
    assert_eq!(stats.lots, 2);
    assert_eq!(stats.quarantined, 1);
    let queue_text = run.queue.display().to_string();
    let lines = logged(log::Level::Error, &["quarantined lot=", &name, &queue_text]);
    assert_eq!(lines.len(), 1, "{lines:?}");
}

// ---------------------------------------------------------------------
// Output files with an unterminated tail
// ---------------------------------------------------------------------

/// Returns the transitions of a lot of `n` lines of about 500 bytes.
fn big_transitions(game: &str, n: u64) -> Vec<Transition> {
    (0..n)
        .map(|seq| {
            let mut t = transition(game, seq);
            t.obs = (0..64).map(|i| i as f32 * 0.5).collect();
            t
        })
        .collect()
}

fn list_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

/// Checks that the output holds each (gameId, seq) of `games` exactly
/// once, where `games` gives each game's number of transitions.
fn assert_each_once(values: &[Value], games: &[(&str, u64)]) {
    let mut seen = std::collections::HashMap::new();
    for v in values {
        let key = (
            v["gameId"].as_str().unwrap().to_string(),
            v["seq"].as_u64().unwrap(),
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    let total: u64 = games.iter().map(|(_, n)| n).sum();
    assert_eq!(values.len() as u64, total, "output line count");
    for (game, n) in games {
        for seq in 0..*n {
            let count = seen.get(&(game.to_string(), seq)).copied().unwrap_or(0);
            assert_eq!(count, 1, "{game} seq {seq} appears {count} times");
        }
    }
}

#[test]
fn killed_consumer_leaves_no_torn_line() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir(&queue).unwrap();
    let opts = ProducerOptions {
        max_lot_lines: 100_000,
        max_lot_bytes: 64 << 20,
        max_lot_age: None,
        ..ProducerOptions::default()
    };
    let producer = Producer::open(&queue, opts.clone()).unwrap();
    for seq in 0..10 {
        producer.push(&transition("first", seq)).unwrap();
    }
    producer.flush().unwrap();
    for t in big_transitions("big", 4000) {
        producer.push(&t).unwrap();
    }
    producer.close().unwrap();
    assert_eq!(producer.stats().lots_published, 2);

    // The consumer writes the output with pwrite: the first lot in one
    // call, the big lot in 256 KiB pieces. Kill it as it enters its third
    // call, so the output holds the first lot and part of the second.
    let status = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64"])
        .args(["-e", "inject=pwrite64:signal=KILL:when=3"])
        .arg(env!("CARGO_BIN_EXE_diskq"))
        .arg("consume")
        .arg(&queue)
        .arg("--out")
        .arg(&out)
        .arg("--once")
        .env("RUST_LOG", "off")
        .status()
        .expect("strace runs (apt-get install strace)");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    let claims = list_names(&queue.join("processing"));
    assert_eq!(claims.len(), 1, "one claimed lot: {claims:?}");
    let offset: u64 = claims[0].rsplit('~').next().unwrap().parse().unwrap();
    let open: Vec<String> = list_names(&out)
        .into_iter()
        .filter(|n| n.ends_with(".jsonl.open"))
        .collect();
    assert_eq!(open.len(), 1, "one open output file: {open:?}");
    let open_path = out.join(&open[0]);
    let len = std::fs::metadata(&open_path).unwrap().len();
    assert!(offset > 0, "the first lot was committed before the kill");
    assert!(
        len > offset,
        "part of the big lot was written: {len} <= {offset}"
    );

    // The torn end of a buffered write, then a new lot behind it.
    append(&open_path, b"{\"obs\":[0.1,0.2");
    let producer = Producer::open(&queue, opts).unwrap();
    for seq in 0..10 {
        producer.push(&transition("after", seq)).unwrap();
    }
    producer.close().unwrap();

    let consumer_opts = ConsumerOptions {
        output_dir: out.clone(),
        recover_interval: None,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&queue, consumer_opts).unwrap();
    let report = consumer.poll().unwrap();
    consumer.close().unwrap();
    assert_eq!(report.lots, 2, "the big lot again and the new one");
    assert_eq!(report.quarantined, 0);

    assert!(list_names(&queue.join("processing")).is_empty());
    assert_eq!(count_done(&queue.join("archive")), 3);
    let values = read_output(&out);
    assert_each_once(&values, &[("first", 10), ("big", 4000), ("after", 10)]);
}

#[test]
fn torn_finished_output_not_appended() {
    // A tail added to a finished file after the consumer closed it is not
    // diskq's to repair, but no later line may be appended behind it.
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir(&queue).unwrap();
    let consumer_opts = ConsumerOptions {
        output_dir: out.clone(),
        recover_interval: None,
        ..ConsumerOptions::default()
    };

    let first = push_normal_lot(&queue, "first");
    let mut consumer = Consumer::open(&queue, consumer_opts.clone()).unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();
    drop(consumer);
    let files = list_names(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    let damaged = out.join(&files[0]);
    append(&damaged, b"{\"obs\":[0.1,0.2");
    let damaged_bytes = std::fs::read(&damaged).unwrap();

    let after = push_normal_lot(&queue, "after");
    let mut consumer = Consumer::open(&queue, consumer_opts).unwrap();
    let report = consumer.poll().unwrap();
    consumer.close().unwrap();
    assert_eq!(report.lots, 1);

    assert_eq!(std::fs::read(&damaged).unwrap(), damaged_bytes);
    let files = list_names(&out);
    assert_eq!(files.len(), 2, "{files:?}");
    let new_file = files
        .iter()
        .map(|f| out.join(f))
        .find(|p| *p != damaged)
        .unwrap();
    let bytes = std::fs::read(&new_file).unwrap();
    assert_eq!(
        parse_output_lines(&new_file.display().to_string(), &bytes),
        after
    );
    let old_text = String::from_utf8(damaged_bytes).unwrap();
    let old_lines: Vec<&str> = old_text.split('\n').collect();
    assert_eq!(old_lines.len(), first.len() + 1);
    assert_eq!(old_lines[first.len()], "{\"obs\":[0.1,0.2");
}
