//! Transition keys, the content each key must carry, and the workers'
//! "pushed" and "acked" bookkeeping logs.
//!
//! A key is (gameId, playerId, seq). Every transition's other fields are
//! a function of its seq (see [`transition_for`]), so a check can tell a
//! corrupted line from a whole one without keeping the payloads. The C
//! worker in `tests/c/torture_producer.c` follows the same formula.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};

use diskq::Transition;

/// Identifies one transition across the whole test.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The transition's gameId; workers make it unique per incarnation.
    pub game: String,
    /// The transition's playerId.
    pub player: String,
    /// The transition's seq.
    pub seq: u64,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {}, {})", self.game, self.player, self.seq)
    }
}

impl Key {
    /// Returns the key of the `seq`-th push of the worker writing `game`.
    pub fn nth(game: &str, seq: u64) -> Key {
        Key {
            game: game.to_string(),
            player: format!("p{}", seq % 3),
            seq,
        }
    }
}

/// Returns the number of obs values of transition `seq`: every 16th one
/// is `big` values long when `big` is not 0, so some lines take many
/// kilobytes and several write calls.
pub fn obs_len(seq: u64, big: usize) -> usize {
    if big > 0 && seq % 16 == 15 {
        big
    } else {
        2 + (seq % 7) as usize
    }
}

/// Returns the transition that key `key` stands for.
pub fn transition_for(key: &Key, big: usize) -> Transition {
    let seq = key.seq;
    let base = (seq % 100) as f32;
    Transition {
        obs: (0..obs_len(seq, big))
            .map(|i| i as f32 * 0.25 + base)
            .collect(),
        mask: vec![1, (seq % 2) as u8, 1],
        action: (seq % 9) as i64,
        reward: if seq % 10 == 9 { 1.0 } else { 0.0 },
        done: seq % 10 == 9,
        game_id: key.game.clone(),
        player_id: key.player.clone(),
        seq,
    }
}

/// Checks that a transition read back from the output carries the
/// content that its key stands for. Returns what differs.
pub fn check_content(t: &Transition) -> Result<(), String> {
    let key = Key {
        game: t.game_id.clone(),
        player: t.player_id.clone(),
        seq: t.seq,
    };
    let expected = transition_for(&key, 0);
    if t.obs.len() < 2 {
        return Err(format!("{key}: obs has {} values", t.obs.len()));
    }
    let base = (t.seq % 100) as f32;
    for (i, &x) in t.obs.iter().enumerate() {
        if x != i as f32 * 0.25 + base {
            return Err(format!("{key}: obs[{i}] is {x}"));
        }
    }
    if t.player_id != format!("p{}", t.seq % 3) {
        return Err(format!("{key}: playerId does not match seq"));
    }
    let same = t.mask == expected.mask
        && t.action == expected.action
        && t.reward == expected.reward
        && t.done == expected.done;
    if !same {
        return Err(format!("{key}: mask, action, reward or done differ"));
    }
    Ok(())
}

/// One worker incarnation's bookkeeping: `<game>.pushed` gets a key
/// before the push, `<game>.acked` after the acknowledgement.
///
/// Lines are appended with `writev` on an `O_APPEND` descriptor, one
/// call per batch. Fault-injection tests fail `write` and `pwrite64`
/// only, so the bookkeeping itself keeps working.
#[derive(Debug)]
pub struct Bookkeeping {
    pushed: File,
    acked: File,
}

impl Bookkeeping {
    /// Opens (creating) the two logs of incarnation `game` in `dir`.
    pub fn open(dir: &Path, game: &str) -> Bookkeeping {
        let open = |suffix: &str| {
            let path = dir.join(format!("{game}.{suffix}"));
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        };
        Bookkeeping {
            pushed: open("pushed"),
            acked: open("acked"),
        }
    }

    /// Records that `key` is about to be pushed.
    pub fn pushed(&mut self, key: &Key) {
        append_keys(&mut self.pushed, std::slice::from_ref(key));
    }

    /// Records that `keys` were acknowledged.
    pub fn acked(&mut self, keys: &[Key]) {
        append_keys(&mut self.acked, keys);
    }
}

fn append_keys(file: &mut File, keys: &[Key]) {
    if keys.is_empty() {
        return;
    }
    let mut text = String::new();
    for k in keys {
        text.push_str(&format!("{} {} {}\n", k.game, k.player, k.seq));
    }
    let n = file
        .write_vectored(&[IoSlice::new(text.as_bytes())])
        .expect("append to a bookkeeping log");
    assert_eq!(n, text.len(), "short append to a bookkeeping log");
}

/// Every key that the workers logged in a folder of bookkeeping logs.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Keys logged before their push.
    pub pushed: HashSet<Key>,
    /// Keys whose push was acknowledged.
    pub acked: HashSet<Key>,
    /// Log files read.
    pub files: Vec<PathBuf>,
}

impl Ledger {
    /// Reads every `*.pushed` and `*.acked` file in `dir`. A last line
    /// without its newline is ignored: the worker died writing it, so
    /// its push or acknowledgement had not happened yet.
    pub fn read(dir: &Path) -> Ledger {
        let mut ledger = Ledger::default();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
            .map(|e| e.expect("read a log folder entry").path())
            .collect();
        paths.sort();
        for path in paths {
            let set = match path.extension().and_then(|e| e.to_str()) {
                Some("pushed") => &mut ledger.pushed,
                Some("acked") => &mut ledger.acked,
                _ => continue,
            };
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let complete = match text.rfind('\n') {
                Some(end) => &text[..=end],
                None => "",
            };
            for line in complete.lines() {
                set.insert(parse_log_line(line, &path));
            }
            ledger.files.push(path);
        }
        ledger
    }
}

fn parse_log_line(line: &str, path: &Path) -> Key {
    let mut parts = line.split(' ');
    let (Some(game), Some(player), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("malformed line {line:?} in {}", path.display());
    };
    let seq = seq
        .parse()
        .unwrap_or_else(|e| panic!("bad seq in {line:?} in {}: {e}", path.display()));
    Key {
        game: game.to_string(),
        player: player.to_string(),
        seq,
    }
}
