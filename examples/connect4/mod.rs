//! Connect Four self-play that pushes every move into a diskq queue.
//!
//! Shared by the Rust bot (`examples/connect4_bot.rs`) and
//! `tests/selfplay.rs`. It follows `examples/c/connect4_bot.c` move for
//! move: the same rules, board encoding, policy and splitmix64 generator,
//! so one seed gives the same games in both languages. The C file's
//! header describes the transition fields.

use diskq::{Producer, Transition};

const ROWS: usize = 6;
const COLS: usize = 7;
const PLAYER_IDS: [&str; 2] = ["pA", "pB"];

/// splitmix64, the generator the C bot uses too.
struct Rng {
    state: u64,
}

impl Rng {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A 7x6 board. `cell[row][col]` is 0 (empty), 1 (pA) or 2 (pB), and
/// row 0 is the bottom row.
#[derive(Default)]
struct Board {
    cell: [[u8; COLS]; ROWS],
    height: [usize; COLS],
    stones: usize,
}

impl Board {
    fn legal(&self, col: usize) -> bool {
        self.height[col] < ROWS
    }

    fn full(&self) -> bool {
        self.stones == ROWS * COLS
    }

    fn stone_at(&self, row: isize, col: isize) -> u8 {
        if (0..ROWS as isize).contains(&row) && (0..COLS as isize).contains(&col) {
            self.cell[row as usize][col as usize]
        } else {
            0
        }
    }

    /// Returns true if the stone at (row, col) is part of four in a row.
    fn wins_at(&self, row: usize, col: usize) -> bool {
        let stone = self.cell[row][col];
        let (row, col) = (row as isize, col as isize);
        [(0, 1), (1, 0), (1, 1), (1, -1)].iter().any(|&(dr, dc)| {
            let count = |sign: isize| {
                (1..4)
                    .take_while(|k| {
                        self.stone_at(row + sign * k * dr, col + sign * k * dc) == stone
                    })
                    .count()
            };
            1 + count(1) + count(-1) >= 4
        })
    }

    /// Drops `stone` into legal column `col` and returns its row.
    fn drop_stone(&mut self, col: usize, stone: u8) -> usize {
        let row = self.height[col];
        self.cell[row][col] = stone;
        self.height[col] += 1;
        self.stones += 1;
        row
    }

    fn undo(&mut self, col: usize) {
        self.height[col] -= 1;
        self.cell[self.height[col]][col] = 0;
        self.stones -= 1;
    }

    fn would_win(&mut self, col: usize, stone: u8) -> bool {
        if !self.legal(col) {
            return false;
        }
        let row = self.drop_stone(col, stone);
        let wins = self.wins_at(row, col);
        self.undo(col);
        wins
    }

    /// Win now, else block the opponent's immediate win, else random.
    fn choose_move(&mut self, stone: u8, rng: &mut Rng) -> usize {
        let opponent = 3 - stone;
        if let Some(col) = (0..COLS).find(|&c| self.would_win(c, stone)) {
            return col;
        }
        if let Some(col) = (0..COLS).find(|&c| self.would_win(c, opponent)) {
            return col;
        }
        let legal: Vec<usize> = (0..COLS).filter(|&c| self.legal(c)).collect();
        legal[(rng.next() % legal.len() as u64) as usize]
    }

    /// Encodes the board from `stone`'s side: +1 own, -1 opponent, 0 empty.
    fn observe(&self, stone: u8) -> Vec<f32> {
        let cells = self.cell.iter().flatten();
        cells
            .map(|&cell| match cell {
                0 => 0.0,
                c if c == stone => 1.0,
                _ => -1.0,
            })
            .collect()
    }

    fn mask(&self) -> Vec<u8> {
        (0..COLS).map(|c| u8::from(self.legal(c))).collect()
    }
}

/// Plays `games` games, named `<game_prefix>-<n>`, and pushes every move
/// into `producer`. pA starts the even games and pB the odd ones. Returns
/// the number of transitions pushed.
///
/// # Errors
///
/// The first error of [`Producer::push`]; the games stop there.
pub fn play_games(
    producer: &Producer,
    game_prefix: &str,
    games: u64,
    seed: u64,
) -> diskq::Result<u64> {
    let mut rng = Rng { state: seed };
    let mut pushed = 0;
    for game in 0..games {
        let game_id = format!("{game_prefix}-{game}");
        pushed += play_game(producer, &mut rng, &game_id, (game % 2) as usize)?;
    }
    Ok(pushed)
}

fn play_game(
    producer: &Producer,
    rng: &mut Rng,
    game_id: &str,
    first: usize,
) -> diskq::Result<u64> {
    let mut board = Board::default();
    let mut last_move: [Option<Transition>; 2] = [None, None];
    let mut seq = [0u64; 2];
    let mut reward = [0.0f64; 2];
    let mut pushed = 0;
    let mut mover = first;

    loop {
        let stone = mover as u8 + 1;
        let col = board.choose_move(stone, rng);

        // The mover's previous move is final now: the game went on.
        if let Some(t) = last_move[mover].take() {
            producer.push(&t)?;
            pushed += 1;
        }
        last_move[mover] = Some(Transition {
            obs: board.observe(stone),
            mask: board.mask(),
            action: col as i64,
            reward: 0.0,
            done: false,
            game_id: game_id.to_string(),
            player_id: PLAYER_IDS[mover].to_string(),
            seq: seq[mover],
        });
        seq[mover] += 1;

        let row = board.drop_stone(col, stone);
        if board.wins_at(row, col) {
            reward[mover] = 1.0;
            reward[1 - mover] = -1.0;
            break;
        }
        if board.full() {
            break;
        }
        mover = 1 - mover;
    }

    for (player, t) in last_move.iter_mut().enumerate() {
        if let Some(mut t) = t.take() {
            t.reward = reward[player];
            t.done = true;
            producer.push(&t)?;
            pushed += 1;
        }
    }
    Ok(pushed)
}
