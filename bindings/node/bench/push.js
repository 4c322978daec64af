#!/usr/bin/env node
'use strict';

// Push throughput from Node.js next to the native Rust push, on one
// workload: transitions with a 128-float obs and a 64-entry mask.
//
//   npm run bench -- [--count N] [--batch B] [--rounds R] [--dir DIR]
//                    [--backends koffi,ffi-napi] [--json]
//
// Paths measured: native (examples/bench_push.rs through
// diskq::Producer::push, built with cargo --release), then per backend
// push() (one FFI call per transition) and pushMany() (one call per batch
// of B). Each path runs R rounds into a fresh queue under DIR, which
// defaults to the system temp folder. A tmpfs such as /dev/shm takes the
// disk out of the figures. The table shows the best round. Timing covers
// the pushes and a final flush, as in the Rust example. Each row gives
// two rates: per second of wall time, and per second of the process's
// CPU time (user plus system), which other load on the machine disturbs
// less.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');

const diskq = require('..');
const { REPO_ROOT, libraryFileName } = require('../lib/library');

const OBS_LEN = 128;
const MASK_LEN = 64;
const POOL = 256;

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    backends: { type: 'string', default: diskq.BACKENDS.join(',') },
    dir: { type: 'string', default: os.tmpdir() },
    json: { type: 'boolean', default: false },
  },
});
const count = positiveInt(args.count, '--count');
const batch = positiveInt(args.batch, '--batch');
const rounds = positiveInt(args.rounds, '--rounds');
const backends = args.backends.split(',').filter(Boolean);

function positiveInt(text, name) {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`bench: ${name} must be a positive integer, got ${text}`);
    process.exit(2);
  }
  return n;
}

// Transition i of the workload, with the values examples/bench_push.rs
// computes in f32 arithmetic (hence Math.fround at each step).
function workload(i) {
  const obs = new Float32Array(OBS_LEN);
  for (let j = 0; j < OBS_LEN; j++) {
    obs[j] = Math.fround(Math.fround(((i * 31 + j * 17) % 2000) / 1000) - 1);
  }
  const mask = new Uint8Array(MASK_LEN);
  for (let j = 0; j < MASK_LEN; j++) mask[j] = (i + j) % 3 !== 0 ? 1 : 0;
  return {
    obs,
    mask,
    action: i % MASK_LEN,
    reward: i % 40 === 39 ? 1 : 0,
    done: i % 40 === 39,
    gameId: `bench-${Math.floor(i / 40)}`,
    playerId: i % 2 === 0 ? 'pA' : 'pB',
    seq: i,
  };
}

function freshQueue() {
  return fs.mkdtempSync(path.join(args.dir, 'diskq-bench-'));
}

function buildNative() {
  const build = spawnSync('cargo', ['build', '--release', '--lib', '--example', 'bench_push'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status !== 0) {
    console.error('bench: `cargo build --release --lib --example bench_push` failed');
    process.exit(1);
  }
}

function runNative() {
  const exe = path.join(REPO_ROOT, 'target', 'release', 'examples', 'bench_push');
  const dir = freshQueue();
  try {
    const run = spawnSync(exe, [dir, String(count)], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`bench_push failed: ${run.stderr}`);
    const result = JSON.parse(run.stdout.trim());
    return { wall: count / result.seconds, cpu: count / result.cpu_seconds };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function runNode(binding, mode) {
  // Pool entries get a fresh seq before each push, and no batch contains
  // one entry twice.
  const size = Math.max(POOL, batch);
  const pool = Array.from({ length: size }, (_, i) => workload(i));
  const dir = freshQueue();
  const producer = binding.Producer.open(dir);
  try {
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    if (mode === 'push') {
      for (let i = 0; i < count; i++) {
        const t = pool[i % size];
        t.seq = i;
        producer.push(t);
      }
    } else {
      const items = [];
      for (let i = 0; i < count; i += batch) {
        items.length = 0;
        for (let k = i; k < Math.min(i + batch, count); k++) {
          const t = pool[k % size];
          t.seq = k;
          items.push(t);
        }
        producer.pushMany(items);
      }
    }
    producer.flush();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return { wall: count / seconds, cpu: count / cpuSeconds };
  } finally {
    producer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Returns the best wall and the best CPU rate over the rounds.
function best(fn) {
  const top = { wall: 0, cpu: 0 };
  for (let r = 0; r < rounds; r++) {
    const rate = fn();
    top.wall = Math.max(top.wall, rate.wall);
    top.cpu = Math.max(top.cpu, rate.cpu);
  }
  return top;
}

function main() {
  buildNative();
  const library = path.join(REPO_ROOT, 'target', 'release', libraryFileName());
  const rows = [{ path: 'native Producer::push (Rust)', backend: '-', rate: best(runNative) }];
  for (const backend of backends) {
    const binding = diskq.load({ backend, library: process.env.DISKQ_LIB || library });
    // Warm up the JIT on both paths before timing.
    runWarmup(binding);
    rows.push({ path: 'push()', backend, rate: best(() => runNode(binding, 'push')) });
    rows.push({ path: `pushMany(${batch})`, backend, rate: best(() => runNode(binding, 'pushMany')) });
  }

  const native = rows[0].rate;
  for (const row of rows) {
    row.wallRatio = row.rate.wall / native.wall;
    row.cpuRatio = row.rate.cpu / native.cpu;
  }

  if (args.json) {
    console.log(JSON.stringify({ count, batch, rounds, dir: args.dir, node: process.version, rows }));
    return;
  }
  console.log(
    `${count} transitions per round, best of ${rounds}, queue under ${args.dir}; ` +
      `obs ${OBS_LEN} floats, mask ${MASK_LEN}; ${os.cpus().length} CPUs, Node.js ${process.version}`,
  );
  console.log('');
  console.log('| path | backend | per wall s | vs native | per CPU s | vs native |');
  console.log('|---|---|---:|---:|---:|---:|');
  const format = (n) => Math.round(n).toLocaleString('en-US');
  for (const row of rows) {
    const wall = `${format(row.rate.wall)} | ${row.wallRatio.toFixed(2)}`;
    const cpu = `${format(row.rate.cpu)} | ${row.cpuRatio.toFixed(2)}`;
    console.log(`| ${row.path} | ${row.backend} | ${wall} | ${cpu} |`);
  }
}

function runWarmup(binding) {
  const dir = freshQueue();
  const producer = binding.Producer.open(dir);
  try {
    const items = Array.from({ length: batch }, (_, i) => workload(i));
    for (let i = 0; i < 2000; i++) producer.push(items[i % batch]);
    for (let i = 0; i < 20; i++) producer.pushMany(items);
  } finally {
    producer.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
