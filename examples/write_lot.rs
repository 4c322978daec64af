//! Writes transitions from a JSON file into a queue with the native Rust
//! API (`diskq::Producer::push`), then closes the producer.
//!
//! The Node.js binding's tests use it to check that a lot written from
//! Node.js contains the same bytes as one written from Rust. The input is
//! a JSON array of transitions with the lot's own field names. `obs`
//! values are read as f64 and rounded to f32, as a JavaScript number is.
//!
//! ```text
//! cargo run --example write_lot -- <queue-dir> <transitions.json> [max-lot-lines]
//! ```
//!
//! Prints `{"pushed":N}` on success.

use std::path::PathBuf;
use std::process::ExitCode;

use diskq::{Producer, ProducerOptions, Transition};
use serde::Deserialize;

/// One input transition; differs from [`Transition`] only in reading
/// `obs` as f64.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    obs: Vec<f64>,
    mask: Vec<u8>,
    action: i64,
    reward: f64,
    done: bool,
    game_id: String,
    player_id: String,
    seq: u64,
}

fn main() -> ExitCode {
    match run() {
        Ok(pushed) => {
            println!("{{\"pushed\":{pushed}}}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("write_lot: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<usize, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 {
        return Err("usage: write_lot <queue-dir> <transitions.json> [max-lot-lines]".into());
    }
    let queue = PathBuf::from(&args[0]);
    let input = PathBuf::from(&args[1]);
    let mut opts = ProducerOptions::default();
    if let Some(lines) = args.get(2) {
        opts.max_lot_lines = lines
            .parse()
            .map_err(|e| format!("invalid max-lot-lines {lines:?}: {e}"))?;
    }

    let text = std::fs::read_to_string(&input)
        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let items: Vec<Input> =
        serde_json::from_str(&text).map_err(|e| format!("invalid {}: {e}", input.display()))?;

    let producer = Producer::open(&queue, opts).map_err(|e| e.to_string())?;
    for (i, item) in items.iter().enumerate() {
        let t = Transition {
            obs: item.obs.iter().map(|&x| x as f32).collect(),
            mask: item.mask.clone(),
            action: item.action,
            reward: item.reward,
            done: item.done,
            game_id: item.game_id.clone(),
            player_id: item.player_id.clone(),
            seq: item.seq,
        };
        producer.push(&t).map_err(|e| format!("item {i}: {e}"))?;
    }
    producer.close().map_err(|e| e.to_string())?;
    Ok(items.len())
}
