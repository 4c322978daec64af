//! The deterministic workload: self-play transitions with 128 obs values
//! of six significant digits, a 64-entry mask and short ids, about 1.4 KB
//! of JSON each.
//!
//! Transition `i` is entry `i % POOL` of a seeded pool with `seq = i`, so
//! every process that uses the same seed builds the same bytes for the
//! same index, and typed pushes and pre-serialized lines produce identical
//! output.

use std::ops::Range;

use diskq::Transition;

/// Observation values per transition.
pub const OBS_LEN: usize = 128;
/// Legal-move mask entries per transition.
pub const MASK_LEN: usize = 64;
/// Distinct transitions that the workload cycles through.
pub const POOL: usize = 1024;
/// Transitions per game; the last one of each game has `done` set.
const GAME_LEN: usize = 64;

/// SplitMix64: a small, well-mixed generator, enough for test data.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Returns a value in `0..n`; the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Builds the pool of distinct transitions for `seed`.
pub fn pool(seed: u64) -> Vec<Transition> {
    let mut rng = SplitMix64::new(seed);
    (0..POOL).map(|j| pool_entry(&mut rng, j)).collect()
}

fn pool_entry(rng: &mut SplitMix64, j: usize) -> Transition {
    // k / 10^6 with k in 100000..=999999 has exactly six significant
    // digits. An f32 carries more than six, so its shortest round-trip
    // form is the same six digits.
    let obs = (0..OBS_LEN)
        .map(|_| {
            let k = (100_000 + rng.below(900_000)) as f32;
            let sign = if rng.below(2) == 0 { 1.0 } else { -1.0 };
            sign * k / 1e6
        })
        .collect();
    let mask: Vec<u8> = (0..MASK_LEN).map(|_| rng.below(2) as u8).collect();
    let legal: Vec<usize> = (0..MASK_LEN).filter(|&m| mask[m] == 1).collect();
    let action = match legal.len() {
        0 => 0,
        n => legal[rng.below(n as u64) as usize] as i64,
    };
    let done = j % GAME_LEN == GAME_LEN - 1;
    let reward = if done {
        if rng.below(2) == 0 {
            1.0
        } else {
            -1.0
        }
    } else {
        0.0
    };
    Transition {
        obs,
        mask,
        action,
        reward,
        done,
        game_id: format!("g{:06}", j / GAME_LEN),
        player_id: if j % 2 == 0 { "pA" } else { "pB" }.to_string(),
        seq: 0,
    }
}

/// Sets `seq` on the pool entry of transition `i` and returns it.
pub fn transition(pool: &mut [Transition], i: u64) -> &Transition {
    let t = &mut pool[(i % POOL as u64) as usize];
    t.seq = i;
    t
}

/// Pre-serialized transitions, one JSON object per line, each ending in
/// `\n`, in one buffer.
pub struct Lines {
    /// Index of the first transition.
    pub first: u64,
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Lines {
    /// Serializes transitions `range` with serde_json, the way a bot
    /// that owns its serializer would.
    pub fn build(pool: &mut [Transition], range: Range<u64>) -> Lines {
        let n = (range.end - range.start) as usize;
        let mut buf = Vec::with_capacity(n * 1500);
        let mut ends = Vec::with_capacity(n);
        for i in range.clone() {
            serde_json::to_writer(&mut buf, transition(pool, i)).expect("a Vec accepts writes");
            buf.push(b'\n');
            ends.push(buf.len());
        }
        Lines {
            first: range.start,
            buf,
            ends,
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Returns line `k` of this buffer, with its `\n`.
    pub fn line(&self, k: usize) -> &[u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.buf[start..self.ends[k]]
    }

    /// Returns line `k` without its `\n`.
    pub fn body(&self, k: usize) -> &[u8] {
        let line = self.line(k);
        &line[..line.len() - 1]
    }

    /// Returns the line of transition `i` (an absolute index), if held.
    pub fn by_seq(&self, i: u64) -> Option<&[u8]> {
        let k = i.checked_sub(self.first)? as usize;
        (k < self.len()).then(|| self.body(k))
    }

    /// Total bytes, newlines included.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
}
