'use strict';

// The Connect Four example: rules, policy, generator and the transitions
// it emits.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const { Board, Rng, playGame, ROWS, COLS } = require('../examples/connect4');

function play(board, moves) {
  let last;
  for (const [col, stone] of moves) last = [board.drop(col, stone), col];
  return last;
}

test('splitmix64 gives the reference sequence', () => {
  const rng = new Rng(0);
  assert.equal(rng.next(), 0xe220a8397b1dcdafn);
  assert.equal(rng.next(), 0x6e789e6aa1b965f4n);
});

test('stones fall to the lowest free cell', () => {
  const board = new Board();
  assert.equal(board.drop(3, 1), 0);
  assert.equal(board.drop(3, 2), 1);
  for (let row = 2; row < ROWS; row++) board.drop(3, 1);
  assert.equal(board.legal(3), false);
  assert.deepEqual(Array.from(board.mask()), [1, 1, 1, 0, 1, 1, 1]);
});

test('four in a row wins in every direction', () => {
  const horizontal = new Board();
  const [hr, hc] = play(horizontal, [[0, 1], [1, 1], [2, 1], [3, 1]]);
  assert.equal(horizontal.winsAt(hr, hc), true);

  const vertical = new Board();
  const [vr, vc] = play(vertical, [[4, 2], [4, 2], [4, 2], [4, 2]]);
  assert.equal(vertical.winsAt(vr, vc), true);

  // Rising diagonal from (0,0) to (3,3), with filler stones under it.
  const rising = new Board();
  const [rr, rc] = play(rising, [[0, 1], [1, 2], [1, 1], [2, 2], [2, 2], [2, 1], [3, 2], [3, 2], [3, 2], [3, 1]]);
  assert.equal(rising.winsAt(rr, rc), true);

  // Falling diagonal from (3,0) to (0,3).
  const falling = new Board();
  const [fr, fc] = play(falling, [[3, 1], [2, 2], [2, 1], [1, 2], [1, 2], [1, 1], [0, 2], [0, 2], [0, 2], [0, 1]]);
  assert.equal(falling.winsAt(fr, fc), true);

  const three = new Board();
  const [tr, tc] = play(three, [[0, 1], [1, 1], [2, 1], [4, 1]]);
  assert.equal(three.winsAt(tr, tc), false);
});

test('policy wins first, then blocks', () => {
  const board = new Board();
  play(board, [[0, 1], [1, 1], [2, 1], [0, 2], [1, 2], [2, 2]]);
  // Stone 1 wins in column 3, so it plays there and stone 2 blocks there.
  assert.equal(board.chooseMove(1, new Rng(1)), 3);
  assert.equal(board.chooseMove(2, new Rng(1)), 3);

  const block = new Board();
  play(block, [[6, 2], [6, 2], [6, 2]]);
  assert.equal(block.chooseMove(1, new Rng(1)), 6);
});

test('games emit well-formed transitions', () => {
  const rng = new Rng(12345);
  let draws = 0;
  for (let game = 0; game < 300; game++) {
    const emitted = [];
    const count = playGame(rng, `g-${game}`, game % 2, (t) => emitted.push(t));
    assert.equal(count, emitted.length);

    const byPlayer = { pA: [], pB: [] };
    for (const t of emitted) byPlayer[t.playerId].push(t);
    const finals = [];
    for (const moves of Object.values(byPlayer)) {
      assert.deepEqual(moves.map((t) => t.seq).sort((a, b) => a - b), moves.map((_, i) => i));
      for (const t of moves) {
        assert.equal(t.obs.length, ROWS * COLS);
        assert.equal(t.mask.length, COLS);
        assert.equal(t.mask[t.action], 1);
        // Before its k-th move a player sees k own stones.
        assert.equal(t.obs.filter((x) => x === 1).length, t.seq);
      }
      const last = moves.find((t) => t.done);
      assert.equal(moves.filter((t) => t.done).length, 1);
      assert.equal(last.seq, moves.length - 1);
      for (const t of moves) if (!t.done) assert.equal(t.reward, 0);
      finals.push(last.reward);
    }
    assert.equal(finals[0] + finals[1], 0);
    if (finals[0] === 0) {
      draws += 1;
      assert.equal(emitted.length, ROWS * COLS);
    }
  }
  // With this seed some of the 300 games fill the board with no winner.
  assert.ok(draws > 0, 'no draw in 300 games');
});
