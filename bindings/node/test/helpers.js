'use strict';

// Shared pieces of the tests: the backends to run on, temporary queues,
// sample transitions and readers for lots and output files.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const diskq = require('..');

// Every test runs on each backend; DISKQ_TEST_BACKENDS=koffi narrows it.
const BACKENDS = (process.env.DISKQ_TEST_BACKENDS || diskq.BACKENDS.join(','))
  .split(',')
  .filter(Boolean);

function binding(backend) {
  return diskq.load({ backend });
}

/** Creates an empty folder that is removed when the test ends. */
function tempDir(t, prefix = 'diskq-node-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Returns transition `i` of a small deterministic game log. */
function sample(i, overrides = {}) {
  return {
    obs: [i * 0.25, -1, 0.1 + i, 1e-7 * i, 3.4e38, -0],
    mask: [1, 0, i % 2, 1],
    action: i % 7,
    reward: i % 5 === 4 ? 1 : 0,
    done: i % 5 === 4,
    gameId: `g-${Math.floor(i / 5)}`,
    playerId: i % 2 === 0 ? 'pA' : 'pB',
    seq: i,
    ...overrides,
  };
}

/** Returns the transition as it reads back: obs rounded to f32. */
function expected(t) {
  return {
    obs: Array.from(t.obs, (x) => Math.fround(x)),
    mask: Array.from(t.mask, Number),
    action: Number(t.action),
    reward: t.reward,
    done: Boolean(t.done),
    gameId: t.gameId,
    playerId: t.playerId,
    seq: Number(t.seq),
  };
}

// Output text has the shortest decimal that reads back as the same f32,
// so obs values are compared after rounding to f32 on both sides.
function parseLine(line) {
  const t = JSON.parse(line);
  if (Array.isArray(t.obs)) t.obs = t.obs.map((x) => Math.fround(x));
  return t;
}

/** Returns the names of files in `queue`/`sub` that end with `suffix`, sorted. */
function lotNames(queue, sub, suffix) {
  const dir = path.join(queue, sub);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(suffix))
    .sort();
}

/** Returns the parsed lines of every published lot of `queue`, oldest lot first. */
function readyLines(queue) {
  const lines = [];
  for (const name of lotNames(queue, 'incoming', '.ready')) {
    const text = fs.readFileSync(path.join(queue, 'incoming', name), 'utf8');
    for (const line of text.split('\n')) if (line !== '') lines.push(parseLine(line));
  }
  return lines;
}

/** Returns the parsed lines of every .jsonl file in `out`. */
function outputLines(out) {
  const lines = [];
  for (const name of fs.readdirSync(out).filter((n) => n.endsWith('.jsonl')).sort()) {
    const text = fs.readFileSync(path.join(out, name), 'utf8');
    for (const line of text.split('\n')) if (line !== '') lines.push(parseLine(line));
  }
  return lines;
}

module.exports = {
  diskq,
  BACKENDS,
  binding,
  tempDir,
  sample,
  expected,
  lotNames,
  readyLines,
  outputLines,
  parseLine,
};
