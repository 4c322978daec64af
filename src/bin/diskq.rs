//! `diskq`: run a consumer, inspect a queue, recover after crashes.
//!
//! ```text
//! diskq consume <queue> [--out DIR] [--id ID] [--interval-ms N]
//! diskq stat <queue> [--json]
//! diskq recover <queue>
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use diskq::{Consumer, ConsumerOptions, ConsumerRecovery};

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

#[derive(Subcommand)]
enum Command {
    /// Consume lots into JSONL files until SIGINT or SIGTERM.
    Consume {
        /// Queue directory.
        queue: PathBuf,
        /// Output folder for the consolidated JSONL files.
        #[arg(long, default_value = diskq::DEFAULT_OUTPUT_DIR)]
        out: PathBuf,
        /// Consumer id: names the output files and the lock that keeps a
        /// second consumer with the same id out.
        #[arg(long, default_value = diskq::DEFAULT_CONSUMER_ID)]
        id: String,
        /// Milliseconds between two polls of the queue.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Lines per output file before it rolls over.
        #[arg(long, default_value_t = diskq::DEFAULT_MAX_OUTPUT_LINES)]
        max_lines: u64,
        /// fsync output and directories before archiving each lot.
        #[arg(long)]
        durable: bool,
        /// Parse every line of every lot as JSON, also in lots whose
        /// checksum already vouches for them.
        #[arg(long)]
        full_validation: bool,
        /// Poll at the interval only, without an inotify watch on incoming/.
        #[arg(long)]
        no_watch: bool,
        /// Run one poll cycle and exit instead of running until a signal.
        #[arg(long)]
        once: bool,
    },
    /// Print lots waiting, in processing, archived, and lines written.
    Stat {
        /// Queue directory.
        queue: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Publish lots of dead producers and return lots of dead consumers.
    Recover {
        /// Queue directory.
        queue: PathBuf,
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
            id,
            interval_ms,
            max_lines,
            durable,
            full_validation,
            no_watch,
            once,
        } => {
            let opts = ConsumerOptions {
                output_dir: out,
                consumer_id: id,
                poll_interval: Duration::from_millis(interval_ms),
                max_output_lines: max_lines,
                durable,
                full_validation,
                watch: !no_watch,
                ..ConsumerOptions::default()
            };
            consume(&queue, opts, once)
        }
        Command::Stat { queue, json } => stat(&queue, json),
        Command::Recover { queue } => recover(&queue),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diskq: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn consume(queue: &Path, opts: ConsumerOptions, once: bool) -> Result<(), diskq::Error> {
    let mut consumer = Consumer::open(queue, opts)?;
    if once {
        consumer.poll()?;
        return consumer.close();
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            log::warn!(target: "queue_consumer", "could not handle signal {signal}: {e}");
        }
    }
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

fn stat(queue: &Path, json: bool) -> Result<(), diskq::Error> {
    let s = diskq::stat(queue)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&s).expect("QueueStats serializes")
        );
        return Ok(());
    }
    let age = s
        .oldest_ready_age_ms
        .map_or("-".to_string(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
    println!("queue           {}", queue.display());
    println!(
        "waiting lots    {} ({} bytes, oldest {age})",
        s.ready_lots, s.ready_bytes
    );
    println!("partial lots    {}", s.part_lots);
    println!("processing lots {}", s.processing_lots);
    println!(
        "archived lots   {} ({} lines)",
        s.archived_lots, s.archived_lines
    );
    println!("quarantined     {}", s.quarantined_lots);
    println!("output files    {}", s.output_files);
    println!("lines written   {}", s.output_lines);
    Ok(())
}

fn recover(queue: &Path) -> Result<(), diskq::Error> {
    let report = diskq::recover_queue(queue, false)?;
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
                "consumer {id}: returned {} lots to incoming/, finished {} output files",
                r.returned, r.finished
            ),
        }
    }
    Ok(())
}
