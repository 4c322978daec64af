//! Checks the consolidated JSONL output of a Connect Four self-play run.
//!
//! Shared by `examples/selfplay.rs` and `tests/selfplay.rs`. Every line
//! must be a JSON object with the eight transition fields, and every
//! (gameId, playerId, seq) must appear once. Each player's moves in a
//! game must be numbered from 0 without gaps, with `done` on the last one
//! only, and the two final rewards of a game must be +1/-1 or 0/0.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Problems kept in [`DatasetReport::problems`]; further ones are only
/// counted.
const MAX_PROBLEMS: usize = 20;

const OBS_LEN: usize = 42;
const MASK_LEN: usize = 7;

/// Findings of [`check`] in one output folder.
#[derive(Debug, Default)]
pub struct DatasetReport {
    /// The `.jsonl` files read, sorted by name.
    pub files: Vec<PathBuf>,
    /// Lines read from them.
    pub lines: u64,
    /// Distinct game ids.
    pub games: usize,
    /// Number of problems found; 0 if the dataset is sound.
    pub problem_count: usize,
    /// The first problems found, each naming the file and line where it
    /// applies.
    pub problems: Vec<String>,
}

impl DatasetReport {
    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

/// One transition's place in its game, for the cross-line checks.
struct Move {
    seq: u64,
    done: bool,
    reward: f64,
}

/// Reads every `*.jsonl` file in `dir` line by line with serde_json and
/// checks each line and the games they add up to.
///
/// # Errors
///
/// A message naming the path if `dir` or a file cannot be read.
pub fn check(dir: &Path) -> Result<DatasetReport, String> {
    let mut report = DatasetReport::default();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("failed to list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("failed to list {}: {e}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".jsonl") {
            report.files.push(path);
        } else if name.ends_with(".jsonl.open") {
            report.problem(format!(
                "{} is still open: the consumer did not finish it",
                path.display()
            ));
        }
    }
    report.files.sort();

    // (gameId, playerId) -> moves, and the keys seen so far.
    let mut players: HashMap<(String, String), Vec<Move>> = HashMap::new();
    let mut seen: HashSet<(String, String, u64)> = HashSet::new();
    for path in report.files.clone() {
        let file =
            File::open(&path).map_err(|e| format!("failed to open {}: {e}", path.display()))?;
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| format!("failed to read {}: {e}", path.display()))?;
            report.lines += 1;
            let place = format!("{}:{}", path.display(), index + 1);
            match parse_line(&line) {
                Ok((game, player, m)) => {
                    if !seen.insert((game.clone(), player.clone(), m.seq)) {
                        report.problem(format!(
                            "{place}: gameId {game} playerId {player} seq {} appears twice",
                            m.seq
                        ));
                    }
                    players.entry((game, player)).or_default().push(m);
                }
                Err(e) => report.problem(format!("{place}: {e}")),
            }
        }
    }

    // gameId -> final rewards of its players.
    let mut finals: HashMap<&str, Vec<f64>> = HashMap::new();
    let mut sorted: Vec<_> = players.iter_mut().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for ((game, player), moves) in sorted {
        moves.sort_by_key(|m| m.seq);
        let last = moves.len() - 1;
        let numbered = moves.iter().enumerate().all(|(i, m)| m.seq == i as u64);
        if !numbered {
            report.problem(format!(
                "gameId {game} playerId {player}: seq values are not 0..{}",
                moves.len()
            ));
        }
        if moves.iter().enumerate().any(|(i, m)| m.done != (i == last)) {
            report.problem(format!(
                "gameId {game} playerId {player}: done must be true on the last move only"
            ));
        }
        finals.entry(game).or_default().push(moves[last].reward);
    }
    report.games = finals.len();
    let mut games: Vec<_> = finals.into_iter().collect();
    games.sort_by(|a, b| a.0.cmp(b.0));
    for (game, rewards) in games {
        let valid = matches!(rewards.as_slice(), [a, b] if *a + *b == 0.0 && a.abs() <= 1.0);
        if !valid {
            report.problem(format!(
                "gameId {game}: final rewards {rewards:?}, expected two players with +1/-1 or 0/0"
            ));
        }
    }
    Ok(report)
}

/// Parses one output line and checks its fields.
fn parse_line(line: &str) -> Result<(String, String, Move), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("expected a JSON object".to_string());
    };
    for name in [
        "obs", "mask", "action", "reward", "done", "gameId", "playerId", "seq",
    ] {
        if !fields.contains_key(name) {
            return Err(format!("missing field {name}"));
        }
    }

    let obs = array(&fields, "obs", OBS_LEN)?;
    if !obs
        .iter()
        .all(|v| matches!(v.as_f64(), Some(x) if x == -1.0 || x == 0.0 || x == 1.0))
    {
        return Err("obs values must be -1, 0 or 1".to_string());
    }
    let mask = array(&fields, "mask", MASK_LEN)?;
    if !mask.iter().all(|v| matches!(v.as_u64(), Some(0 | 1))) {
        return Err("mask values must be 0 or 1".to_string());
    }
    let action = fields["action"]
        .as_u64()
        .filter(|&a| (a as usize) < MASK_LEN)
        .ok_or("action must be a column from 0 to 6")?;
    if mask[action as usize].as_u64() != Some(1) {
        return Err(format!("action {action} is not legal under the mask"));
    }
    let reward = fields["reward"]
        .as_f64()
        .filter(|r| [-1.0, 0.0, 1.0].contains(r))
        .ok_or("reward must be -1, 0 or 1")?;
    let done = fields["done"].as_bool().ok_or("done must be a boolean")?;
    let game = fields["gameId"].as_str().ok_or("gameId must be a string")?;
    let player = fields["playerId"]
        .as_str()
        .filter(|p| ["pA", "pB"].contains(p))
        .ok_or("playerId must be \"pA\" or \"pB\"")?;
    let seq = fields["seq"]
        .as_u64()
        .ok_or("seq must be an unsigned integer")?;
    if !done && reward != 0.0 {
        return Err(format!("reward {reward} on a move that is not the last"));
    }
    let m = Move { seq, done, reward };
    Ok((game.to_string(), player.to_string(), m))
}

fn array<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
    len: usize,
) -> Result<&'a [Value], String> {
    match fields[name].as_array() {
        Some(values) if values.len() == len => Ok(values),
        _ => Err(format!("{name} must be an array of {len} numbers")),
    }
}
