//! `diskq`: run a consumer, inspect a queue, recover after crashes.
//!
//! ```text
//! diskq consume <queue> [--out DIR] [--id ID] [--output-format json|binary] ...
//! diskq stat <queue> [--json | --prometheus] [--watch] [--window-secs N]
//! diskq top <queue>                     (the same as stat --watch)
//! diskq metrics <queue>... --prometheus-file PATH [--interval-ms N]
//! diskq cat <file or folder>...
//! diskq verify <queue> [--out DIR]... [--no-episodes] [--json]
//! diskq recover <queue>
//! ```

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use diskq::{
    Consumer, ConsumerOptions, ConsumerRecovery, Monitor, OutputFormat, PrometheusSample,
    QueueStats, StatOptions, Throughput,
};

#[derive(Parser)]
#[command(
    name = "diskq",
    version,
    about = "A crash-safe disk queue for self-play transitions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The `--output-format` values of `diskq consume`.
#[derive(Clone, Copy, ValueEnum)]
enum OutputFormatArg {
    /// JSON lines, in `.jsonl` files.
    Json,
    /// Binary records, as in binary lots, in `.dqb` files; `diskq cat`
    /// prints them as JSON lines.
    Binary,
}

#[derive(Subcommand)]
enum Command {
    /// Consume lots into output files until SIGINT or SIGTERM.
    Consume {
        /// Queue directory.
        queue: PathBuf,
        /// Output folder for the consolidated files.
        #[arg(long, default_value = diskq::DEFAULT_OUTPUT_DIR)]
        out: PathBuf,
        /// Encoding of the output files. Binary output holds transitions
        /// only: a lot with another JSON object goes to quarantine.
        #[arg(long, value_enum, default_value_t = OutputFormatArg::Json)]
        output_format: OutputFormatArg,
        /// Consumer id: names the output files and the lock that keeps a
        /// second consumer with the same id out. Several consumers share a
        /// queue when each has its own id.
        #[arg(long, default_value = diskq::DEFAULT_CONSUMER_ID)]
        id: String,
        /// Milliseconds between two polls of the queue.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Lines (or binary records) per output file before it rolls over.
        #[arg(long, default_value_t = diskq::DEFAULT_MAX_OUTPUT_LINES)]
        max_lines: u64,
        /// fsync output and directories before archiving each lot.
        #[arg(long)]
        durable: bool,
        /// Trust lots whose name carries a checksum: check them by CRC-32,
        /// line count and line form instead of parsing every line. Faster,
        /// but a lot forged with a matching checksum may carry bad JSON.
        #[arg(long)]
        trust_checksums: bool,
        /// Poll at the interval only, without an inotify watch on incoming/.
        #[arg(long)]
        no_watch: bool,
        /// Compress each archived lot into archive/<lot>.done.gz.
        #[arg(long)]
        compress_archive: bool,
        /// Delete archived lots older than this many seconds.
        #[arg(long, value_name = "SECS")]
        keep_archive_secs: Option<u64>,
        /// Delete the oldest archived lots while archive/ contains more than
        /// this many bytes.
        #[arg(long, value_name = "BYTES")]
        keep_archive_bytes: Option<u64>,
        /// Seconds between two summary lines in the log (throughput,
        /// backlog, totals); 0 turns them off.
        #[arg(long, value_name = "SECS")]
        summary_secs: Option<u64>,
        /// Run one poll cycle and exit instead of running until a signal.
        #[arg(long)]
        once: bool,
    },
    /// Print backlog, throughput, lots in every state and consumers.
    Stat {
        /// Queue directory.
        queue: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Print the Prometheus text exposition instead of text.
        #[arg(long)]
        prometheus: bool,
        /// Redraw every interval until Ctrl-C (the same as `diskq top`).
        #[arg(long, conflicts_with_all = ["json", "prometheus"])]
        watch: bool,
        /// Milliseconds between two redraws with --watch.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Seconds of history for throughput and average lot size.
        #[arg(long, default_value_t = 60)]
        window_secs: u64,
        /// Skip counting the lines of the output files, which reads the
        /// whole dataset.
        #[arg(long)]
        no_output_lines: bool,
    },
    /// Show backlog, throughput and consumers, redrawn every second until
    /// Ctrl-C.
    Top {
        /// Queue directory.
        queue: PathBuf,
        /// Milliseconds between two redraws.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Seconds of history for throughput and average lot size.
        #[arg(long, default_value_t = 60)]
        window_secs: u64,
    },
    /// Rewrite a Prometheus textfile (for node_exporter's textfile
    /// collector) at an interval until SIGINT or SIGTERM.
    Metrics {
        /// Queue directories; each becomes a `queue` label value.
        #[arg(required = true)]
        queues: Vec<PathBuf>,
        /// File to write, replaced atomically; name it `*.prom` inside
        /// the collector's directory.
        #[arg(long, value_name = "PATH")]
        prometheus_file: PathBuf,
        /// Milliseconds between two writes.
        #[arg(long, default_value_t = 15000)]
        interval_ms: u64,
        /// Seconds of history for throughput and average lot size.
        #[arg(long, default_value_t = 60)]
        window_secs: u64,
        /// Also count the lines of every output file at each write, which
        /// reads the whole dataset.
        #[arg(long)]
        output_lines: bool,
        /// Write once and exit.
        #[arg(long)]
        once: bool,
    },
    /// Print lots (any state, binary or gzip too) and output files
    /// (`.jsonl` or `.dqb`) as JSON lines. A folder prints each of its
    /// files in name order.
    Cat {
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Check checksums, JSON lines and episode sequences without changing
    /// anything; exit 1 if a problem is found.
    Verify {
        /// Queue directory.
        queue: PathBuf,
        /// Output folder to check besides those the consumers recorded.
        #[arg(long)]
        out: Vec<PathBuf>,
        /// Skip the per-episode checks of seq and done.
        #[arg(long)]
        no_episodes: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Problems to print at most; the rest are counted.
        #[arg(long, default_value_t = 200)]
        max_problems: usize,
    },
    /// Publish lots of dead producers and return lots of dead consumers.
    Recover {
        /// Queue directory.
        queue: PathBuf,
        /// fsync each repaired file and every folder after a rename in it,
        /// as producers and consumers do in durable mode.
        #[arg(long)]
        durable: bool,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            if record.level() <= log::Level::Warn {
                writeln!(
                    buf,
                    "[{}] {}: {}",
                    record.target(),
                    record.level(),
                    record.args()
                )
            } else {
                writeln!(buf, "[{}] {}", record.target(), record.args())
            }
        })
        .init();

    let cli = Cli::parse();
    let result = match cli.command {
        Command::Consume {
            queue,
            out,
            output_format,
            id,
            interval_ms,
            max_lines,
            durable,
            trust_checksums,
            no_watch,
            compress_archive,
            keep_archive_secs,
            keep_archive_bytes,
            summary_secs,
            once,
        } => {
            let mut opts = ConsumerOptions {
                output_dir: out,
                output_format: match output_format {
                    OutputFormatArg::Json => OutputFormat::JsonLines,
                    OutputFormatArg::Binary => OutputFormat::Binary,
                },
                consumer_id: id,
                poll_interval: Duration::from_millis(interval_ms),
                max_output_lines: max_lines,
                durable,
                full_validation: !trust_checksums,
                watch: !no_watch,
                compress_archive,
                ..ConsumerOptions::default()
            };
            opts.retention.max_age = keep_archive_secs.map(Duration::from_secs);
            opts.retention.max_bytes = keep_archive_bytes;
            if let Some(secs) = summary_secs {
                opts.summary_interval = (secs > 0).then(|| Duration::from_secs(secs));
            }
            consume(&queue, opts, once).map(|()| ExitCode::SUCCESS)
        }
        Command::Stat {
            queue,
            json,
            prometheus,
            watch,
            interval_ms,
            window_secs,
            no_output_lines,
        } => {
            let opts = StatOptions {
                window: Duration::from_secs(window_secs),
                count_output: !no_output_lines,
            };
            if watch {
                top(&queue, opts, interval_ms)
            } else {
                stat(&queue, &opts, json, prometheus)
            }
        }
        Command::Top {
            queue,
            interval_ms,
            window_secs,
        } => {
            let opts = StatOptions {
                window: Duration::from_secs(window_secs),
                count_output: false,
            };
            top(&queue, opts, interval_ms)
        }
        Command::Metrics {
            queues,
            prometheus_file,
            interval_ms,
            window_secs,
            output_lines,
            once,
        } => {
            let opts = StatOptions {
                window: Duration::from_secs(window_secs),
                count_output: output_lines,
            };
            let interval = Duration::from_millis(interval_ms);
            metrics(&queues, &prometheus_file, opts, interval, once)
        }
        Command::Cat { paths } => Ok(cat(&paths)),
        Command::Verify {
            queue,
            out,
            no_episodes,
            json,
            max_problems,
        } => verify(&queue, out, !no_episodes, json, max_problems),
        Command::Recover { queue, durable } => recover(&queue, durable).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("diskq: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Returns a flag that SIGINT and SIGTERM set.
fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            log::warn!(target: "diskq", "could not handle signal {signal}: {e}");
        }
    }
    stop
}

/// Sleeps for `total`, or less once `stop` is set.
fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let left = total.saturating_sub(start.elapsed());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn consume(queue: &Path, opts: ConsumerOptions, once: bool) -> Result<(), diskq::Error> {
    let mut consumer = Consumer::open(queue, opts)?;
    if once {
        consumer.poll()?;
        return consumer.close();
    }
    let stop = stop_flag();
    let stats = consumer.run(&stop)?;
    log::info!(
        target: "queue_consumer",
        "stopped: {} lots, {} lines, {} quarantined",
        stats.lots,
        stats.lines,
        stats.quarantined
    );
    Ok(())
}

/// The `diskq stat --json` object: every field of [`QueueStats`], plus
/// the count of running consumers.
#[derive(serde::Serialize)]
struct StatJson<'a> {
    #[serde(flatten)]
    stats: &'a QueueStats,
    consumers_running: u64,
}

fn stat(
    queue: &Path,
    opts: &StatOptions,
    json: bool,
    prometheus: bool,
) -> Result<ExitCode, diskq::Error> {
    let start = Instant::now();
    let s = diskq::stat_with(queue, opts)?;
    if json {
        let doc = StatJson {
            stats: &s,
            consumers_running: s.consumers_running(),
        };
        println!(
            "{}",
            serde_json::to_string(&doc).expect("QueueStats serializes")
        );
    } else if prometheus {
        let label = label_of(queue);
        let sample = PrometheusSample {
            queue: &label,
            stats: Some(&s),
            duration: start.elapsed(),
        };
        print!("{}", diskq::prometheus_text(&[sample]));
    } else {
        print!("{}", render(queue, &s, None));
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns the `queue` label of a queue: its absolute path when it can be
/// resolved, so that every way of naming it gives one series.
fn label_of(queue: &Path) -> String {
    std::fs::canonicalize(queue)
        .unwrap_or_else(|_| queue.to_path_buf())
        .display()
        .to_string()
}

/// Span of the short throughput figure in `diskq top`.
const RECENT: Duration = Duration::from_secs(5);

fn top(queue: &Path, opts: StatOptions, interval_ms: u64) -> Result<ExitCode, diskq::Error> {
    let stop = stop_flag();
    let mut monitor = Monitor::open(queue, opts)?;
    let interval = Duration::from_millis(interval_ms.max(100));
    let tty = std::io::stdout().is_terminal();
    while !stop.load(Ordering::Relaxed) {
        let frame = match monitor.sample() {
            Ok(s) => render(queue, &s, Some(monitor.window(RECENT))),
            Err(e) => format!("diskq: error: {e}\n"),
        };
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let mut out = std::io::stdout().lock();
        // On a terminal, home the cursor and clear the screen before each
        // frame; in a pipe or a log file, frames follow one another.
        let written = if tty {
            write!(out, "\x1b[H\x1b[2J{now}  (Ctrl-C to exit)\n\n{frame}")
        } else {
            write!(out, "--- {now}\n{frame}")
        };
        if written.and_then(|()| out.flush()).is_err() {
            // The reader went away, as with `diskq top | head`.
            return Ok(ExitCode::SUCCESS);
        }
        drop(out);
        sleep_unless(&stop, interval);
    }
    if tty {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders a snapshot for a person. `recent` adds a short-span throughput
/// figure and a drain estimate from it.
fn render(queue: &Path, s: &QueueStats, recent: Option<Throughput>) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<16}{value}\n"));

    line("queue", label_of(queue));
    let oldest = match (&s.oldest_ready_age_ms, &s.oldest_ready_lot) {
        (Some(ms), Some(lot)) => format!("oldest {} ({lot})", seconds(*ms)),
        _ => "none waiting".to_string(),
    };
    line(
        "backlog",
        format!(
            "{} lots, {} lines, {}; {oldest}",
            s.ready_lots,
            s.ready_lines,
            bytes(s.ready_bytes as f64)
        ),
    );
    let window = format!("last {}s", s.window_ms / 1000);
    let mut rate = format!(
        "{:.1} lines/s, {:.2} lots/s, {}/s ({window})",
        s.lines_per_sec,
        s.lots_per_sec,
        bytes(s.bytes_per_sec)
    );
    let mut drain_rate = s.lines_per_sec;
    if let Some(recent) = recent {
        rate = format!(
            "{:.1} lines/s, {:.2} lots/s (last {:.0}s); {rate}",
            recent.lines_per_sec(),
            recent.lots_per_sec(),
            recent.seconds
        );
        if recent.lines > 0 {
            drain_rate = recent.lines_per_sec();
        }
    }
    line("throughput", rate);
    if s.ready_lines > 0 {
        let estimate = if drain_rate > 0.0 {
            let secs = (s.ready_lines as f64 / drain_rate).ceil() as u64;
            format!("about {} at the current rate", seconds(secs * 1000))
        } else {
            "unknown: nothing was archived lately".to_string()
        };
        line("drain", estimate);
    }
    let claims = match s.oldest_processing_age_ms {
        Some(ms) => format!("{} lots (oldest claim {})", s.processing_lots, seconds(ms)),
        None => "0 lots".to_string(),
    };
    line("processing", claims);
    line("being written", format!("{} .part lots", s.part_lots));
    line(
        "avg lot",
        format!("{:.0} lines, {}", s.avg_lot_lines, bytes(s.avg_lot_bytes)),
    );
    line(
        "archived",
        format!("{} lots ({} lines)", s.archived_lots, s.archived_lines),
    );
    line("quarantined", s.quarantined_lots.to_string());
    let ids: Vec<String> = s
        .consumers
        .iter()
        .map(|c| match c.running {
            Some(true) => c.id.clone(),
            Some(false) => format!("{} (stopped)", c.id),
            None => format!("{} (?)", c.id),
        })
        .collect();
    let consumers = if ids.is_empty() {
        "none has opened this queue".to_string()
    } else {
        format!("{} running: {}", s.consumers_running(), ids.join(", "))
    };
    line("consumers", consumers);
    if s.output_counted {
        line(
            "output",
            format!("{} files, {} lines", s.output_files, s.output_lines),
        );
    }
    out
}

/// Formats milliseconds as seconds, minutes or hours.
fn seconds(ms: u64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 120.0 {
        format!("{secs:.1}s")
    } else if secs < 7200.0 {
        format!("{:.1}m", secs / 60.0)
    } else {
        format!("{:.1}h", secs / 3600.0)
    }
}

/// Formats a byte count with a binary unit.
fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn metrics(
    queues: &[PathBuf],
    file: &Path,
    opts: StatOptions,
    interval: Duration,
    once: bool,
) -> Result<ExitCode, diskq::Error> {
    let stop = stop_flag();
    let labels: Vec<String> = queues.iter().map(|q| label_of(q)).collect();
    let mut monitors: Vec<Option<Monitor>> = queues.iter().map(|_| None).collect();
    loop {
        let mut results = Vec::new();
        for (queue, monitor) in queues.iter().zip(monitors.iter_mut()) {
            let start = Instant::now();
            // A queue that cannot be opened yet is retried at each write.
            if monitor.is_none() {
                match Monitor::open(queue, opts.clone()) {
                    Ok(m) => *monitor = Some(m),
                    Err(e) => log::error!(target: "diskq_metrics", "cannot read queue: {e}"),
                }
            }
            let sample = monitor.as_mut().and_then(|m| match m.sample() {
                Ok(s) => Some(s),
                Err(e) => {
                    log::error!(target: "diskq_metrics", "cannot read queue: {e}");
                    None
                }
            });
            results.push((sample, start.elapsed()));
        }
        let samples: Vec<PrometheusSample<'_>> = labels
            .iter()
            .zip(&results)
            .map(|(label, (stats, duration))| PrometheusSample {
                queue: label,
                stats: stats.as_ref(),
                duration: *duration,
            })
            .collect();
        let text = diskq::prometheus_text(&samples);
        match write_atomically(file, text.as_bytes()) {
            Ok(()) => {}
            Err(e) if once => {
                eprintln!("diskq: error: failed to write {}: {e}", file.display());
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => {
                log::error!(target: "diskq_metrics", "failed to write {}: {e}", file.display())
            }
        }
        if once || stop.load(Ordering::Relaxed) {
            return Ok(ExitCode::SUCCESS);
        }
        sleep_unless(&stop, interval);
        if stop.load(Ordering::Relaxed) {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// Replaces `path` with `contents` so that a reader sees the old file or
/// the new one, never a part: writes a hidden temporary file beside it,
/// then renames it over `path`. The temporary name does not end in
/// `.prom`, so the textfile collector never reads it.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Prints each file as JSON lines. Returns failure if any file could not
/// be printed.
fn cat(paths: &[PathBuf]) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut failed = false;
    for path in paths {
        let files = if path.is_dir() {
            match lot_files_in(path) {
                Ok(files) => files,
                Err(e) => {
                    eprintln!("diskq: error: failed to list {}: {e}", path.display());
                    failed = true;
                    continue;
                }
            }
        } else {
            vec![path.clone()]
        };
        for file in files {
            match diskq::write_json_lines(&file, &mut out) {
                Ok(report) if report.incomplete_tail => eprintln!(
                    "diskq: {}: left out an incomplete last line (a producer may still be writing it)",
                    file.display()
                ),
                Ok(_) => {}
                Err(e) if is_broken_pipe(&e) => return ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("diskq: error: {e}");
                    failed = true;
                }
            }
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("diskq: error: failed to write to stdout: {e}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn is_broken_pipe(e: &diskq::Error) -> bool {
    e.io_error()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Returns the files of `dir` that hold lines, sorted by name: everything
/// but hidden files and the queue's `.reason`, `.lock` and `.out` files.
fn lot_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let skip = name.starts_with('.')
            || [".reason", ".lock", ".out"]
                .iter()
                .any(|s| name.ends_with(s));
        if !skip && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

fn verify(
    queue: &Path,
    out: Vec<PathBuf>,
    episodes: bool,
    json: bool,
    max_problems: usize,
) -> Result<ExitCode, diskq::Error> {
    let opts = diskq::VerifyOptions {
        output_dirs: out,
        episodes,
        max_problems,
        ..diskq::VerifyOptions::default()
    };
    let report = diskq::verify(queue, &opts)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("VerifyReport serializes")
        );
    } else {
        println!(
            "checked {}: {} waiting lots, {} archived lots, {} output files with {} lines, {} episodes",
            queue.display(),
            report.ready_lots,
            report.archived_lots,
            report.output_files,
            report.output_lines,
            report.episodes
        );
        for note in &report.notes {
            println!("note: {note}");
        }
        for problem in &report.problems {
            let kind = serde_json::to_value(problem.kind).expect("ProblemKind serializes");
            println!(
                "problem: {}: {}",
                kind.as_str().unwrap_or("?"),
                problem.message
            );
        }
        let unshown = report.problem_count - report.problems.len() as u64;
        if unshown > 0 {
            println!("... and {unshown} more problems");
        }
        match report.problem_count {
            0 => println!("ok: no problem found"),
            1 => println!("1 problem found"),
            n => println!("{n} problems found"),
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn recover(queue: &Path, durable: bool) -> Result<(), diskq::Error> {
    let report = diskq::recover_queue(queue, durable)?;
    let p = report.parts;
    println!(
        "producers: published {} lots ({} lines), dropped {} torn lines, \
         removed {} empty files, left {} live lots alone",
        p.published, p.lines, p.torn_lines_dropped, p.removed, p.live
    );
    for (id, outcome) in report.consumers {
        match outcome {
            ConsumerRecovery::Running => println!("consumer {id}: running, left alone"),
            ConsumerRecovery::NoOutputRecord => {
                println!("consumer {id}: no recorded output folder, claims left in processing/")
            }
            ConsumerRecovery::Recovered(r) => println!(
                "consumer {id}: returned {} lots to incoming/, archived {} lots whose lines \
                 were in the output, finished {} output files",
                r.returned, r.completed, r.finished
            ),
        }
    }
    Ok(())
}
