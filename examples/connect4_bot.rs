//! A Connect Four bot that plays against itself and pushes every move
//! into a diskq queue through the native Rust API (`diskq::Producer`).
//!
//! It is the Rust twin of `examples/c/connect4_bot.c`: same rules,
//! policy, random generator and command line, so one seed gives the same
//! games (game ids are `r-<pid>-<n>` here). Run it on an existing queue
//! directory:
//!
//! ```text
//! mkdir -p /tmp/c4q
//! cargo run --release --example connect4_bot -- /tmp/c4q --games 100 --seed 7
//! ```
//!
//! It prints `{"bot":"rust","games":N,"transitions":M}` on success.
//! `cargo run --release --example selfplay` runs it next to the C bot.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use diskq::{Producer, ProducerOptions};

mod connect4;

#[derive(Parser)]
#[command(about = "Connect Four self-play that pushes every move into a diskq queue")]
struct Args {
    /// Existing queue directory to push into.
    queue_dir: PathBuf,
    /// Number of games to play.
    #[arg(long, default_value_t = 100)]
    games: u64,
    /// Seed of the random moves.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(transitions) => {
            let summary = serde_json::json!({
                "bot": "rust",
                "games": args.games,
                "transitions": transitions,
            });
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("connect4_bot: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<u64, String> {
    let dir = args.queue_dir.display();
    let producer = Producer::open(&args.queue_dir, ProducerOptions::default())
        .map_err(|e| format!("failed to open a producer on {dir}: {e}"))?;
    let game_prefix = format!("r-{}", std::process::id());
    let played = connect4::play_games(&producer, &game_prefix, args.games, args.seed);

    // Close even after a failed push: it publishes what was accepted.
    let closed = producer.close();
    let transitions = played.map_err(|e| format!("failed to push a transition: {e}"))?;
    closed.map_err(|e| format!("failed to close the producer on {dir}: {e}"))?;
    Ok(transitions)
}
