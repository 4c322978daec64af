//! Self-play through both bots. The C bot, built with strict warnings
//! against this profile's `libdiskq.so`, and the Rust bot's game code
//! push Connect Four games into a temp queue. A `Consumer` consolidates
//! them, and the output is read back with serde_json and, if installed,
//! with jq.

#[path = "../examples/connect4/mod.rs"]
mod connect4;
#[path = "../examples/dataset/mod.rs"]
mod dataset;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use diskq::{Consumer, ConsumerOptions, Producer, ProducerOptions, Transition};

const GAMES: u64 = 30;
const SEED: u64 = 11;

/// Returns the folder holding `libdiskq.so`. Cargo builds every crate
/// type of the library before its integration tests, and leaves the
/// cdylib in `<profile>/deps/` next to the test executable. If it is not
/// there, this takes `<profile>/libdiskq.so`, built by cargo first if
/// it is missing too.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable has a folder");
    if deps.join("libdiskq.so").is_file() {
        return deps.to_path_buf();
    }
    let profile = deps
        .parent()
        .expect("test executables live in <profile>/deps/");
    if profile.join("libdiskq.so").is_file() {
        return profile.to_path_buf();
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--lib"]);
    match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
        None => panic!("no profile name in {}", profile.display()),
    }
    let status = command.status().expect("cargo starts");
    assert!(status.success(), "cargo build --lib failed: {status}");
    assert!(
        profile.join("libdiskq.so").is_file(),
        "no libdiskq.so in {} after cargo build --lib",
        profile.display()
    );
    profile.to_path_buf()
}

/// Compiles `examples/c/connect4_bot.c` into `dir` as C99 with warnings
/// as errors and returns the executable.
fn build_c_bot(dir: &Path) -> PathBuf {
    let lib_dir = library_dir();
    let lib_dir = lib_dir.to_str().expect("target folder is UTF-8");
    let exe = dir.join("connect4_bot_c");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let output = Command::new(&compiler)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(["-Iinclude", "examples/c/connect4_bot.c", "-o"])
        .arg(&exe)
        .arg(format!("-L{lib_dir}"))
        .arg("-ldiskq")
        .arg(format!("-Wl,-rpath,{lib_dir}"))
        .output()
        .unwrap_or_else(|e| panic!("failed to start {compiler}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{compiler} failed:\n{stderr}");
    assert!(stderr.is_empty(), "{compiler} printed:\n{stderr}");
    exe
}

fn run_bot(exe: &Path, args: &[&str]) -> Output {
    // cargo test puts <target>/<profile> on LD_LIBRARY_PATH, which the
    // loader searches before the runpath; the libdiskq.so there may be
    // older than the one this run built.
    Command::new(exe)
        .args(args)
        .env("LD_LIBRARY_PATH", library_dir())
        .output()
        .unwrap_or_else(|e| panic!("failed to start {}: {e}", exe.display()))
}

/// A finished self-play run in a temp folder.
struct Run {
    _root: tempfile::TempDir,
    queue: PathBuf,
    out: PathBuf,
    c_transitions: u64,
    rust_transitions: u64,
}

/// Runs the C bot and the Rust bot code with the same seed into one
/// queue, then consumes it into small output files.
fn self_play() -> Run {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("queue");
    let out = root.path().join("dataset");
    std::fs::create_dir(&queue).unwrap();

    let c_bot = build_c_bot(root.path());
    let queue_arg = queue.to_str().unwrap();
    let games = GAMES.to_string();
    let seed = SEED.to_string();
    let output = run_bot(&c_bot, &[queue_arg, "--games", &games, "--seed", &seed]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "C bot failed: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("C bot summary is not JSON ({e}): {output:?}"));
    assert_eq!(summary["bot"], "c");
    assert_eq!(summary["games"], GAMES);
    let c_transitions = summary["transitions"].as_u64().expect("transitions count");

    let producer = Producer::open(&queue, ProducerOptions::default()).unwrap();
    let rust_transitions = connect4::play_games(&producer, "r-test", GAMES, SEED).unwrap();
    producer.close().unwrap();

    let opts = ConsumerOptions {
        output_dir: out.clone(),
        max_output_lines: 200,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(&queue, opts).unwrap();
    let report = consumer.poll().unwrap();
    consumer.close().unwrap();
    assert_eq!(report.lines, c_transitions + rust_transitions);
    assert_eq!(report.quarantined, 0);

    Run {
        _root: root,
        queue,
        out,
        c_transitions,
        rust_transitions,
    }
}

#[test]
fn c_bot_builds_with_strict_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c_bot(dir.path());
    let output = run_bot(&exe, &["--help"]);
    assert!(output.status.success(), "{output:?}");
    let usage = String::from_utf8_lossy(&output.stdout);
    assert!(usage.contains("--games"), "{usage}");
}

#[test]
fn self_play_writes_each_move_once() {
    let run = self_play();
    let pushed = run.c_transitions + run.rust_transitions;

    let stats = diskq::stat(&run.queue).unwrap();
    assert_eq!(stats.ready_lots, 0);
    assert_eq!(stats.part_lots, 0);
    assert_eq!(stats.processing_lots, 0);
    assert_eq!(stats.archived_lines, pushed);

    let report = dataset::check(&run.out).unwrap();
    assert_eq!(
        report.problem_count,
        0,
        "problems:\n{}",
        report.problems.join("\n")
    );
    assert_eq!(report.lines, pushed);
    assert_eq!(report.games, 2 * GAMES as usize);
    assert!(
        report.files.len() > 1,
        "expected the output to roll over: {:?}",
        report.files
    );
}

/// With one seed, the C and the Rust bot must play the same games:
/// the same transitions apart from the game id's prefix.
#[test]
fn c_and_rust_bots_play_same_games() {
    let run = self_play();
    assert_eq!(run.c_transitions, run.rust_transitions);

    let report = dataset::check(&run.out).unwrap();
    let mut by_language: BTreeMap<&str, Vec<(u64, String, u64, Transition)>> = BTreeMap::new();
    let mut lines = Vec::new();
    for file in &report.files {
        lines.extend(
            std::fs::read_to_string(file)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    for line in &lines {
        let t: Transition = serde_json::from_str(line).unwrap();
        let (prefix, game) = t.game_id.rsplit_once('-').expect("game id ends in -<n>");
        let language = if prefix.starts_with("c-") {
            "c"
        } else {
            "rust"
        };
        let game: u64 = game.parse().expect("game number");
        let mut rest = t.clone();
        rest.game_id.clear();
        by_language
            .entry(language)
            .or_default()
            .push((game, t.player_id.clone(), t.seq, rest));
    }
    let mut c = by_language.remove("c").expect("C transitions");
    let mut rust = by_language.remove("rust").expect("Rust transitions");
    c.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    rust.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    assert_eq!(c.len(), rust.len());
    for (c, rust) in c.iter().zip(&rust) {
        assert_eq!(c, rust, "game {} {} seq {} differs", c.0, c.1, c.2);
    }
}

/// jq must read every output line as one JSON value, like serde_json.
#[test]
fn jq_reads_every_output_line() {
    let version = match Command::new("jq").arg("--version").output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("jq is not installed; skipping the jq check");
            return;
        }
        Err(e) => panic!("failed to start jq: {e}"),
    };
    assert!(version.status.success(), "jq --version: {version:?}");

    let run = self_play();
    let report = dataset::check(&run.out).unwrap();
    let mut jq_rows = 0;
    for file in &report.files {
        let output = Command::new("jq")
            .arg("-c")
            .arg(".")
            .arg(file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "jq failed on {}: {stderr}",
            file.display()
        );
        jq_rows += output.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    assert_eq!(jq_rows, report.lines);
    assert_eq!(jq_rows, run.c_transitions + run.rust_transitions);
}

#[test]
fn c_self_check_rejects_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue");
    std::fs::create_dir(&queue).unwrap();
    let exe = build_c_bot(dir.path());

    let output = run_bot(&exe, &[queue.to_str().unwrap(), "--self-check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{output:?}");
    let cases = [
        (
            "{\"reward\":NaN}",
            "got DQ_STATUS_NON_FINITE",
            "`NaN` in field `reward`",
        ),
        (
            "[1,2]",
            "got DQ_STATUS_INVALID_JSON",
            "expected a JSON object",
        ),
        ("obs[3]=NaN", "got DQ_STATUS_NON_FINITE", "obs[3] is NaN"),
        ("mask[5]=2", "got DQ_STATUS_INVALID_FIELD", "mask[5] is 2"),
    ];
    for (input, status, message) in cases {
        let line = stdout
            .lines()
            .find(|l| l.contains(input))
            .unwrap_or_else(|| panic!("no line for {input}:\n{stdout}"));
        assert!(line.starts_with("self-check ok:"), "{line}");
        assert!(line.contains(status), "{line}");
        assert!(line.contains(message), "{line}");
    }

    // Nothing was accepted, so nothing was published.
    let stats = diskq::stat(&queue).unwrap();
    assert_eq!(stats.ready_lots, 0);
    assert_eq!(stats.part_lots, 0);
}

#[test]
fn c_bot_reports_missing_queue() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c_bot(dir.path());
    let missing = dir.path().join("no-such-queue");

    let output = run_bot(&exe, &[missing.to_str().unwrap(), "--games", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("dq_producer_open failed: DQ_STATUS_INVALID_ARGUMENT"),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn c_bot_rejects_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c_bot(dir.path());
    let queue = dir.path().to_str().unwrap();

    for (args, message) in [
        (vec![queue, "--games", "x"], "invalid value x for --games"),
        (vec![queue, "--seed", "-3"], "invalid value -3 for --seed"),
        (vec![queue, "--games"], "--games requires a value"),
        (vec![queue, "--fast"], "unknown option --fast"),
        (vec![], "missing QUEUE_DIR"),
    ] {
        let output = run_bot(&exe, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
