#!/usr/bin/env node
'use strict';

// A Connect Four bot that plays against itself and pushes every move into
// a diskq queue through the Node.js binding.
//
//   node examples/connect4.js <queue-dir> [--games N] [--seed S] [--push move|game]
//
// Rules: 7 columns by 6 rows, stones fall to the lowest free cell, four in
// a row horizontally, vertically or diagonally wins, a full board is a
// draw. Policy: win now if possible, else block the opponent's immediate
// win, else a random legal column from a seeded splitmix64 generator.
// Rules, board encoding, policy and generator follow the C and Rust bots
// (examples/c/connect4_bot.c, examples/connect4/mod.rs), so one seed
// gives the same games in all three.
//
// Each transition: obs = the 42 cells from the mover's side (+1 own,
// -1 opponent, 0 empty; row 0 is the bottom row), mask = 7 bytes, 1 where
// the column has room, action = the column played, reward 0 except on
// each player's last transition of the game, which has done = true and
// reward +1 (won), -1 (lost) or 0 (draw). seq counts each player's moves
// in a game from 0. gameId is "n-<pid>-<n>", playerId "pA" or "pB"; pA
// starts the even games and pB the odd ones.
//
// --push game (the default) sends each finished game with one pushMany();
// --push move sends each transition with push() as soon as it is final.
// On exit it prints {"bot":"node","games":N,"transitions":M}. SIGINT or
// SIGTERM stops it after the current game.

const { parseArgs } = require('node:util');
const { setImmediate: yieldToEvents } = require('node:timers/promises');

const diskq = require('..');

const ROWS = 6;
const COLS = 7;
const PLAYER_IDS = ['pA', 'pB'];
const MASK64 = (1n << 64n) - 1n;

/** splitmix64, as in the C and Rust bots. */
class Rng {
  constructor(seed) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  next() {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }

  /** Returns an integer in [0, n). */
  below(n) {
    return Number(this.next() % BigInt(n));
  }
}

/** A 7x6 board; cell[row * COLS + col] is 0 (empty), 1 (pA) or 2 (pB). */
class Board {
  constructor() {
    this.cell = new Uint8Array(ROWS * COLS);
    this.height = new Uint8Array(COLS);
    this.stones = 0;
  }

  legal(col) {
    return this.height[col] < ROWS;
  }

  full() {
    return this.stones === ROWS * COLS;
  }

  stoneAt(row, col) {
    if (row < 0 || row >= ROWS || col < 0 || col >= COLS) return 0;
    return this.cell[row * COLS + col];
  }

  /** Returns true if the stone at (row, col) is part of four in a row. */
  winsAt(row, col) {
    const stone = this.cell[row * COLS + col];
    for (const [dr, dc] of [[0, 1], [1, 0], [1, 1], [1, -1]]) {
      let run = 1;
      for (const sign of [1, -1]) {
        for (let k = 1; k < 4 && this.stoneAt(row + sign * k * dr, col + sign * k * dc) === stone; k++) {
          run += 1;
        }
      }
      if (run >= 4) return true;
    }
    return false;
  }

  /** Drops `stone` into legal column `col` and returns its row. */
  drop(col, stone) {
    const row = this.height[col];
    this.cell[row * COLS + col] = stone;
    this.height[col] += 1;
    this.stones += 1;
    return row;
  }

  undo(col) {
    this.height[col] -= 1;
    this.cell[this.height[col] * COLS + col] = 0;
    this.stones -= 1;
  }

  wouldWin(col, stone) {
    if (!this.legal(col)) return false;
    const row = this.drop(col, stone);
    const wins = this.winsAt(row, col);
    this.undo(col);
    return wins;
  }

  /** Win now, else block the opponent's immediate win, else random. */
  chooseMove(stone, rng) {
    for (let c = 0; c < COLS; c++) if (this.wouldWin(c, stone)) return c;
    for (let c = 0; c < COLS; c++) if (this.wouldWin(c, 3 - stone)) return c;
    const legal = [];
    for (let c = 0; c < COLS; c++) if (this.legal(c)) legal.push(c);
    return legal[rng.below(legal.length)];
  }

  /** Encodes the board from `stone`'s side: +1 own, -1 opponent, 0 empty. */
  observe(stone) {
    const obs = new Float32Array(ROWS * COLS);
    for (let i = 0; i < obs.length; i++) {
      if (this.cell[i] === stone) {
        obs[i] = 1;
      } else if (this.cell[i] !== 0) {
        obs[i] = -1;
      }
    }
    return obs;
  }

  mask() {
    const mask = new Uint8Array(COLS);
    for (let c = 0; c < COLS; c++) mask[c] = this.legal(c) ? 1 : 0;
    return mask;
  }
}

/**
 * Plays one game and calls `emit` with each transition once it is
 * final, in the order the Rust bot pushes them. Returns the count.
 */
function playGame(rng, gameId, first, emit) {
  const board = new Board();
  const lastMove = [null, null];
  const seq = [0, 0];
  const reward = [0, 0];
  let mover = first;
  let emitted = 0;

  for (;;) {
    const stone = mover + 1;
    const col = board.chooseMove(stone, rng);

    // The mover's previous move is final now: the game went on.
    if (lastMove[mover] !== null) {
      emit(lastMove[mover]);
      emitted += 1;
    }
    lastMove[mover] = {
      obs: board.observe(stone),
      mask: board.mask(),
      action: col,
      reward: 0,
      done: false,
      gameId,
      playerId: PLAYER_IDS[mover],
      seq: seq[mover],
    };
    seq[mover] += 1;

    const row = board.drop(col, stone);
    if (board.winsAt(row, col)) {
      reward[mover] = 1;
      reward[1 - mover] = -1;
      break;
    }
    if (board.full()) break;
    mover = 1 - mover;
  }

  for (let player = 0; player < 2; player++) {
    const t = lastMove[player];
    if (t === null) continue;
    t.reward = reward[player];
    t.done = true;
    emit(t);
    emitted += 1;
  }
  return emitted;
}

function parseCommandLine() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      games: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      push: { type: 'string', default: 'game' },
    },
  });
  const usage = 'usage: connect4.js <queue-dir> [--games N] [--seed S] [--push move|game]';
  if (positionals.length !== 1) throw new Error(usage);
  const games = Number(values.games);
  if (!Number.isSafeInteger(games) || games < 0) throw new Error(`--games must be a non-negative integer, got ${values.games}`);
  if (!/^\d+$/.test(values.seed)) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
  if (!['move', 'game'].includes(values.push)) throw new Error(`--push must be move or game, got ${values.push}`);
  return { queue: positionals[0], games, seed: values.seed, push: values.push };
}

async function main() {
  let args;
  try {
    args = parseCommandLine();
  } catch (err) {
    console.error(`connect4: ${err.message}`);
    process.exit(2);
  }

  const summary = { bot: 'node', games: 0, transitions: 0 };
  process.on('exit', () => console.log(JSON.stringify(summary)));
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (stopping = true));

  const producer = diskq.Producer.open(args.queue);
  const rng = new Rng(args.seed);
  const batch = [];
  const emit = args.push === 'move' ? (t) => producer.push(t) : (t) => batch.push(t);

  for (let n = 0; n < args.games && !stopping; n++) {
    batch.length = 0;
    const count = playGame(rng, `n-${process.pid}-${n}`, n % 2, emit);
    if (args.push === 'game') producer.pushMany(batch);
    summary.games += 1;
    summary.transitions += count;
    // Let signal handlers run between games.
    if (n % 16 === 15) await yieldToEvents();
  }
  producer.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`connect4: ${err.message}`);
    process.exitCode = 1;
  });
}

module.exports = { Board, Rng, playGame, ROWS, COLS };
