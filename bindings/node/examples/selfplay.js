#!/usr/bin/env node
'use strict';

// One-command self-play run: Node.js Connect Four bots push into a queue
// while a consumer consolidates it, then the dataset is checked.
//
//   npm run selfplay+queue -- [--bots K] [--games N] [--seed S]
//                             [--consumer cli|node] [--dir DIR] [--keep]
//
// The consumer is the `diskq` CLI at target/release/diskq, run as a child
// process and built with `cargo build --release` if missing. With
// --consumer node it is a Consumer in this process instead. The run starts
// it, starts K bot processes of N games each, waits for them and for the
// queue to drain, and stops the consumer (SIGTERM for the CLI). Then it
// reads every output line. Each must be an object with the eight
// transition fields, and each (gameId, playerId, seq) must appear once.
// It prints a summary and exits with status 1 if what was written
// differs from what was pushed.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');
const { setTimeout: sleep } = require('node:timers/promises');

const diskq = require('..');
const { REPO_ROOT } = require('../lib/library');

const BOT = path.join(__dirname, 'connect4.js');
const CLI = path.join(REPO_ROOT, 'target', 'release', 'diskq');
const DRAIN_TIMEOUT_MS = 120000;
const FIELDS = ['obs', 'mask', 'action', 'reward', 'done', 'gameId', 'playerId', 'seq'];

function parseCommandLine() {
  const { values } = parseArgs({
    options: {
      bots: { type: 'string', default: '4' },
      games: { type: 'string', default: '1000' },
      seed: { type: 'string', default: '1' },
      consumer: { type: 'string', default: 'cli' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const bots = Number(values.bots);
  const games = Number(values.games);
  const seed = Number(values.seed);
  for (const [name, n] of [['--bots', bots], ['--games', games], ['--seed', seed]]) {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
  }
  if (!['cli', 'node'].includes(values.consumer)) throw new Error('--consumer must be cli or node');
  return { bots, games, seed, consumer: values.consumer, dir: values.dir, keep: values.keep };
}

function ensureCli() {
  if (fs.existsSync(CLI)) return;
  console.log(`[selfplay] ${CLI} is missing; running cargo build --release`);
  const build = spawnSync('cargo', ['build', '--release'], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('cargo build --release failed');
}

/** Starts the consumer; returns an async stop() that resolves when it has ended. */
function startConsumer(kind, queue, out, runDir) {
  if (kind === 'node') {
    const consumer = diskq.Consumer.open(queue, { outputDir: out, consumerId: 'selfplay' });
    const controller = new AbortController();
    const running = consumer.run({ intervalMs: 50, signal: controller.signal });
    return async () => {
      controller.abort();
      await running;
      consumer.poll();
      consumer.close();
    };
  }

  ensureCli();
  const log = fs.openSync(path.join(runDir, 'consumer.log'), 'a');
  const child = spawn(CLI, ['consume', queue, '--out', out, '--id', 'selfplay', '--interval-ms', '100'], {
    stdio: ['ignore', log, log],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return async () => {
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    fs.closeSync(log);
    if (code !== 0) throw new Error(`the consumer ended with ${signal || `status ${code}`}; see ${runDir}/consumer.log`);
  };
}

/** Runs one bot process; resolves to its summary line. */
function runBot(queue, games, seed) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BOT, queue, '--games', String(games), '--seed', String(seed)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`bot with seed ${seed} exited with status ${code}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

function countFiles(dir, test) {
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir).filter(test).length;
}

/** Waits until no lot waits in incoming/ or processing/. */
async function drain(queue) {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    const waiting =
      countFiles(path.join(queue, 'incoming'), (n) => n.endsWith('.ready') || n.endsWith('.part')) +
      countFiles(path.join(queue, 'processing'), () => true);
    if (waiting === 0) return;
    if (Date.now() > deadline) throw new Error(`queue not drained after ${DRAIN_TIMEOUT_MS} ms: ${waiting} lots left`);
    await sleep(50);
  }
}

/** Reads the dataset and checks every line; returns counts and problems. */
function verify(out) {
  const seen = new Set();
  const problems = [];
  let lines = 0;
  const files = fs.readdirSync(out).filter((n) => n.endsWith('.jsonl'));
  for (const name of files) {
    const text = fs.readFileSync(path.join(out, name), 'utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      lines += 1;
      const problem = checkLine(line, seen);
      if (problem !== null && problems.length < 10) problems.push(`${name}: ${problem}`);
    }
  }
  const open = fs.readdirSync(out).filter((n) => !n.endsWith('.jsonl'));
  if (open.length > 0) problems.push(`unfinished output files: ${open.join(', ')}`);
  return { lines, unique: seen.size, files: files.length, problems };
}

function checkLine(line, seen) {
  let t;
  try {
    t = JSON.parse(line);
  } catch (err) {
    return `not JSON: ${err.message}`;
  }
  if (t === null || typeof t !== 'object' || Array.isArray(t)) return 'not an object';
  const keys = Object.keys(t);
  if (keys.length !== FIELDS.length || !FIELDS.every((f) => Object.hasOwn(t, f))) {
    return `fields are ${keys.join(',')}`;
  }
  const typesOk =
    Array.isArray(t.obs) && t.obs.length === 42 && t.obs.every((x) => x === 0 || x === 1 || x === -1) &&
    Array.isArray(t.mask) && t.mask.length === 7 && t.mask.every((m) => m === 0 || m === 1) &&
    Number.isInteger(t.action) && t.action >= 0 && t.action < 7 && t.mask[t.action] === 1 &&
    [0, 1, -1].includes(t.reward) && typeof t.done === 'boolean' && (t.done || t.reward === 0) &&
    typeof t.gameId === 'string' && ['pA', 'pB'].includes(t.playerId) && Number.isInteger(t.seq) && t.seq >= 0;
  if (!typesOk) return `field values out of range in ${line.slice(0, 120)}`;
  const key = `${t.gameId}\0${t.playerId}\0${t.seq}`;
  if (seen.has(key)) return `duplicate (${t.gameId}, ${t.playerId}, ${t.seq})`;
  seen.add(key);
  return null;
}

async function main() {
  const args = parseCommandLine();
  // Fails early, with a build hint, if libdiskq is missing.
  diskq.load();

  const runDir = args.dir ? path.resolve(args.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'diskq-selfplay-'));
  const queue = path.join(runDir, 'queue');
  const out = path.join(runDir, 'dataset', 'transitions');
  fs.mkdirSync(queue, { recursive: true });
  console.log(`[selfplay] run folder ${runDir}; consumer: ${args.consumer}; ${args.bots} bots x ${args.games} games`);

  const stopConsumer = startConsumer(args.consumer, queue, out, runDir);
  const start = process.hrtime.bigint();
  let summaries;
  try {
    summaries = await Promise.all(
      Array.from({ length: args.bots }, (_, k) => runBot(queue, args.games, args.seed + k)),
    );
    await drain(queue);
  } finally {
    await stopConsumer();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;

  const games = summaries.reduce((n, s) => n + s.games, 0);
  const pushed = summaries.reduce((n, s) => n + s.transitions, 0);
  const archive = path.join(queue, 'archive');
  const lots = countFiles(archive, (n) => n.endsWith('.done') || n.endsWith('.done.gz'));
  const check = verify(out);
  const same = check.lines === pushed && check.unique === pushed && check.problems.length === 0;

  console.log(`games:               ${games}`);
  console.log(`transitions pushed:  ${pushed}`);
  console.log(`lines in dataset:    ${check.lines} in ${check.files} files`);
  console.log(`lots archived:       ${lots}`);
  console.log(`time:                ${seconds.toFixed(2)} s`);
  console.log(`throughput:          ${Math.round(check.lines / seconds)} transitions/s`);
  console.log(`pushed == written:   ${same ? 'yes' : 'no'}`);
  for (const problem of check.problems) console.log(`  problem: ${problem}`);

  if (!args.keep && !args.dir && same) fs.rmSync(runDir, { recursive: true, force: true });
  process.exitCode = same ? 0 : 1;
}

if (require.main === module) {
  main().catch((err) => {
    console.error(`[selfplay] ${err.message}`);
    process.exitCode = 1;
  });
}

module.exports = { verify };
