//! One-command self-play: C and Rust Connect Four bots push their moves
//! into a fresh queue while `diskq consume` consolidates it, then every
//! line of the dataset is checked.
//!
//! ```text
//! cargo run --release --example selfplay
//! cargo run --release --example selfplay -- --c-bots 4 --rust-bots 0 --games 2000
//! ```
//!
//! The steps:
//!
//! 1. Build `libdiskq.so`, `diskq` and the Rust bot with cargo, and the
//!    C bot (`examples/c/connect4_bot.c`) with `cc` against that library.
//! 2. Make `target/selfplay/<time>/` with `queue/` and `dataset/`.
//! 3. Start `diskq consume`, then all bots at once, and wait for the bots.
//! 4. Wait until no lot is left in `incoming/` or `processing/`, then
//!    stop the consumer with SIGTERM.
//! 5. Read every `*.jsonl` line with serde_json, check its fields, and
//!    check that each (gameId, playerId, seq) appears exactly once.
//!
//! The exit status is non-zero if any step or check fails. Each run
//! keeps its folder, about 60 MB with the defaults, for inspection with
//! `diskq stat`, `ls` or jq.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use serde::Deserialize;

mod dataset;

/// The drain wait fails once the queue makes no progress for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the consumer gets to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(about = "Run C and Rust Connect Four bots into a diskq queue and check the dataset")]
struct Args {
    /// Number of C bot processes.
    #[arg(long, default_value_t = 2)]
    c_bots: u32,
    /// Number of Rust bot processes.
    #[arg(long, default_value_t = 2)]
    rust_bots: u32,
    /// Games each bot plays.
    #[arg(long, default_value_t = 1000)]
    games: u64,
    /// Seed of the first bot; bot i uses seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Milliseconds between two polls of the consumer.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
}

/// The line a bot prints on success.
#[derive(Deserialize)]
struct BotSummary {
    bot: String,
    games: u64,
    transitions: u64,
}

/// Paths of the built programs.
struct Programs {
    diskq: PathBuf,
    rust_bot: PathBuf,
    c_bot: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("selfplay: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every step and returns whether all checks passed.
fn run(args: &Args) -> Result<bool, String> {
    let build_start = Instant::now();
    let profile_dir = profile_dir()?;
    let target_dir = profile_dir
        .parent()
        .ok_or("the profile folder has no parent")?;
    let run_dir = make_run_dir(&target_dir.join("selfplay"))?;
    let programs = build(&profile_dir, &run_dir)?;
    let build_time = build_start.elapsed();

    let queue = run_dir.join("queue");
    let out = run_dir.join("dataset");
    std::fs::create_dir(&queue)
        .map_err(|e| format!("failed to create {}: {e}", queue.display()))?;
    println!(
        "selfplay: {} C + {} Rust bots, {} games each, in {}",
        args.c_bots,
        args.rust_bots,
        args.games,
        run_dir.display()
    );

    let start = Instant::now();
    let mut consumer = Consumer::start(&programs.diskq, &queue, &out, args.interval_ms, &run_dir)?;
    let summaries = run_bots(args, &programs, &queue)?;
    wait_for_drain(&queue, &mut consumer)?;
    consumer.stop()?;
    let elapsed = start.elapsed();

    let stats = diskq::stat(&queue).map_err(|e| e.to_string())?;
    let report = dataset::check(&out)?;

    let games: u64 = summaries.iter().map(|s| s.games).sum();
    let pushed: u64 = summaries.iter().map(|s| s.transitions).sum();
    let throughput = pushed as f64 / elapsed.as_secs_f64();
    println!(
        "games                {games} ({} in the dataset)",
        report.games
    );
    println!("transitions pushed   {pushed}");
    println!(
        "lines in dataset     {} in {} files under {}",
        report.lines,
        report.files.len(),
        out.display()
    );
    println!("lots archived        {}", stats.archived_lots);
    println!(
        "elapsed              {:.2} s from consumer start to consumer exit (build {:.2} s)",
        elapsed.as_secs_f64(),
        build_time.as_secs_f64()
    );
    println!("throughput           {throughput:.0} transitions/s");

    let written_all = pushed == report.lines;
    println!(
        "pushed == written: {}",
        if written_all { "yes" } else { "no" }
    );

    let mut failures = Vec::new();
    if !written_all {
        failures.push(format!(
            "{pushed} transitions pushed but {} lines written",
            report.lines
        ));
    }
    if report.games as u64 != games {
        failures.push(format!(
            "{games} games played but {} in the dataset",
            report.games
        ));
    }
    if stats.quarantined_lots > 0 {
        failures.push(format!(
            "{} lots quarantined; see {}",
            stats.quarantined_lots,
            queue.join("quarantine").display()
        ));
    }
    if report.problem_count > 0 {
        failures.push(format!(
            "{} problems in the dataset, first ones:\n  {}",
            report.problem_count,
            report.problems.join("\n  ")
        ));
    }
    for failure in &failures {
        eprintln!("selfplay: check failed: {failure}");
    }
    Ok(failures.is_empty())
}

/// Returns the cargo profile folder this runner was built into, such as
/// `target/release`: the parent of its `examples/` folder.
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("failed to find this program: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in a cargo profile folder", exe.display()))
}

/// Creates `<root>/<UTC time>/`, such as `20250101T120000.123Z`.
fn make_run_dir(root: &Path) -> Result<PathBuf, String> {
    let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let name: String = time.chars().filter(|c| *c != '-' && *c != ':').collect();
    let dir = root.join(name);
    std::fs::create_dir_all(root)
        .map_err(|e| format!("failed to create {}: {e}", root.display()))?;
    std::fs::create_dir(&dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Builds `libdiskq.so`, `diskq` and the Rust bot with cargo, into this
/// runner's target folder and profile, then the C bot into `run_dir`
/// against that library.
fn build(profile_dir: &Path, run_dir: &Path) -> Result<Programs, String> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = profile_dir
        .parent()
        .ok_or("the profile folder has no parent")?;
    let mut command = Command::new(cargo);
    command
        .current_dir(manifest_dir)
        .arg("build")
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
        None => return Err(format!("no profile name in {}", profile_dir.display())),
    }
    // The cdylib is built only when the library target is requested.
    command.args(["--lib", "--bin", "diskq", "--example", "connect4_bot"]);
    run_command(&mut command)?;

    let lib_dir = profile_dir
        .to_str()
        .ok_or("the target folder is not UTF-8")?;
    let c_bot = run_dir.join("connect4_bot_c");
    let compiler = c_compiler();
    let mut command = Command::new(&compiler);
    command
        .current_dir(manifest_dir)
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O2",
        ])
        .args(["-Iinclude", "examples/c/connect4_bot.c", "-o"])
        .arg(&c_bot)
        .arg(format!("-L{lib_dir}"))
        .arg("-ldiskq")
        .arg(format!("-Wl,-rpath,{lib_dir}"));
    run_command(&mut command)?;

    Ok(Programs {
        diskq: profile_dir.join("diskq"),
        rust_bot: profile_dir.join("examples").join("connect4_bot"),
        c_bot,
    })
}

/// Returns `$CC`, else the first of `cc` and `gcc` found on `PATH`.
fn c_compiler() -> String {
    if let Ok(cc) = std::env::var("CC") {
        return cc;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["cc", "gcc"] {
        if std::env::split_paths(&path).any(|dir| dir.join(name).is_file()) {
            return name.to_string();
        }
    }
    "cc".to_string()
}

fn run_command(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("failed to start {command:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{command:?} failed with {status}"));
    }
    Ok(())
}

/// Starts every bot at once, waits for all of them and returns their
/// summary lines.
fn run_bots(args: &Args, programs: &Programs, queue: &Path) -> Result<Vec<BotSummary>, String> {
    let kinds = (0..args.c_bots)
        .map(|_| ("c", &programs.c_bot))
        .chain((0..args.rust_bots).map(|_| ("rust", &programs.rust_bot)));
    let mut bots = Vec::new();
    for (i, (kind, program)) in kinds.enumerate() {
        let seed = args.seed.wrapping_add(i as u64);
        let child = Command::new(program)
            .arg(queue)
            .args(["--games", &args.games.to_string()])
            .args(["--seed", &seed.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("failed to start {}: {e}", program.display()))?;
        bots.push((kind, seed, child));
    }

    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for (kind, seed, child) in bots {
        let output = child
            .wait_with_output()
            .map_err(|e| format!("failed to wait for the {kind} bot: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or("");
        if !output.status.success() {
            failures.push(format!(
                "{kind} bot with seed {seed} failed with {}",
                output.status
            ));
            continue;
        }
        match serde_json::from_str::<BotSummary>(line) {
            Ok(s) if s.bot == kind && s.games == args.games => {
                println!(
                    "bot {kind:<4} seed {seed:<4} {} games, {} transitions",
                    s.games, s.transitions
                );
                summaries.push(s);
            }
            Ok(_) => failures.push(format!("{kind} bot printed an unexpected summary: {line}")),
            Err(e) => failures.push(format!("{kind} bot printed no summary ({e}): {line:?}")),
        }
    }
    if failures.is_empty() {
        Ok(summaries)
    } else {
        Err(failures.join("; "))
    }
}

/// Waits until no lot is left in `incoming/` or `processing/`.
fn wait_for_drain(queue: &Path, consumer: &mut Consumer) -> Result<(), String> {
    let mut progress = (u64::MAX, u64::MAX);
    let mut last_progress = Instant::now();
    loop {
        let s = diskq::stat(queue).map_err(|e| e.to_string())?;
        if s.ready_lots == 0 && s.part_lots == 0 && s.processing_lots == 0 {
            return Ok(());
        }
        consumer.check_running()?;
        if (s.archived_lots, s.quarantined_lots) != progress {
            progress = (s.archived_lots, s.quarantined_lots);
            last_progress = Instant::now();
        } else if last_progress.elapsed() > STALL_TIMEOUT {
            return Err(format!(
                "the queue stalled for {} s with {} ready, {} partial and {} claimed lots",
                STALL_TIMEOUT.as_secs(),
                s.ready_lots,
                s.part_lots,
                s.processing_lots
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `diskq consume` child process. Dropping it before `stop` kills
/// it, so an early error leaves no consumer behind.
struct Consumer {
    child: Option<Child>,
    log: PathBuf,
}

impl Consumer {
    /// Starts `diskq consume` with its log in `run_dir/consumer.log`.
    fn start(
        diskq: &Path,
        queue: &Path,
        out: &Path,
        interval_ms: u64,
        run_dir: &Path,
    ) -> Result<Consumer, String> {
        let log = run_dir.join("consumer.log");
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("failed to create {}: {e}", log.display()))?;
        let stdout = file
            .try_clone()
            .map_err(|e| format!("failed to share {}: {e}", log.display()))?;
        let child = Command::new(diskq)
            .arg("consume")
            .arg(queue)
            .arg("--out")
            .arg(out)
            .args(["--interval-ms", &interval_ms.to_string()])
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("failed to start {}: {e}", diskq.display()))?;
        Ok(Consumer {
            child: Some(child),
            log,
        })
    }

    fn check_running(&mut self) -> Result<(), String> {
        let child = self.child.as_mut().ok_or("the consumer was stopped")?;
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the consumer exited early with {status}; see {}",
                self.log.display()
            )),
            Err(e) => Err(format!("failed to check the consumer: {e}")),
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn stop(&mut self) -> Result<(), String> {
        let mut child = self.child.take().ok_or("the consumer was stopped")?;
        let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours. The pid is our own child that was not yet waited for, so
        // it cannot have been reused by another process.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            let e = std::io::Error::last_os_error();
            let _ = child.kill();
            return Err(format!("failed to send SIGTERM to the consumer: {e}"));
        }

        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!(
                        "the consumer exited with {status}; see {}",
                        self.log.display()
                    ))
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the consumer did not exit within {} s of SIGTERM",
                        STOP_TIMEOUT.as_secs()
                    ));
                }
                Err(e) => return Err(format!("failed to wait for the consumer: {e}")),
            }
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
