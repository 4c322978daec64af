'use strict';

// A lot written from Node.js contains the same bytes as one written from
// Rust with diskq::Producer::push (examples/write_lot.rs) for the same
// transitions.

const { describe, test, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { REPO_ROOT } = require('../lib/library');
const { BACKENDS, binding, tempDir, lotNames } = require('./helpers');

// A small seeded generator (mulberry32), so every run writes the same
// transitions.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Transitions with awkward values: f64 inputs that round to f32, huge and
// tiny magnitudes, non-ASCII ids, large integers. No -0: JSON.stringify
// writes it as 0, so the Rust side could not receive it.
function transitions() {
  const next = random(42);
  const items = [];
  for (let i = 0; i < 60; i++) {
    const obs = Array.from({ length: 1 + (i % 17) }, (_, j) => (next() - 0.5) * 10 ** ((j % 9) - 4));
    // Near the f32 maximum, and below the smallest normal f32.
    if (obs.length > 3) obs[3] = 3.4e38;
    if (obs.length > 5) obs[5] = 1e-40;
    let reward = 0;
    if (i % 10 === 9) reward = i % 20 === 9 ? 1 : -1;
    if (i === 4) reward = 0.1 + 0.2;
    items.push({
      obs,
      mask: Array.from({ length: i % 9 }, () => (next() < 0.5 ? 0 : 1)),
      action: i === 7 ? -(2 ** 53 - 1) : Math.floor(next() * 7),
      reward,
      done: i % 10 === 9,
      gameId: i < 30 ? `g-${Math.floor(i / 10)}` : `игра-ü-${i}`,
      playerId: i % 2 === 0 ? 'pA' : 'pB',
      seq: i === 8 ? 2 ** 53 - 1 : i,
    });
  }
  return items;
}

/** Returns { name, bytes } of the one published lot of `queue`. */
function onlyLot(queue) {
  const names = lotNames(queue, 'incoming', '.ready');
  assert.equal(names.length, 1, `expected one lot in ${queue}, found ${names.join(', ')}`);
  return { name: names[0], bytes: fs.readFileSync(path.join(queue, 'incoming', names[0])) };
}

// `<id>.<lines>.<crc32>.ready`: everything after the producer's id.
function lotSuffix(name) {
  return name.split('.').slice(-3).join('.');
}

describe('lot bytes match Rust', () => {
  let rustLot;

  before(() => {
    // Build write_lot with the profile of the library under test, so both
    // sides come from the same build.
    const release = binding(BACKENDS[0]).libraryPath.includes(`${path.sep}release${path.sep}`);
    const args = ['build', '--quiet', '--example', 'write_lot', ...(release ? ['--release'] : [])];
    const build = spawnSync('cargo', args, { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, `cargo ${args.join(' ')} failed:\n${build.stderr}`);

    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'diskq-rust-'));
    const queue = path.join(dir, 'queue');
    fs.mkdirSync(queue);
    const input = path.join(dir, 'transitions.json');
    fs.writeFileSync(input, JSON.stringify(transitions()));
    const exe = path.join(REPO_ROOT, 'target', release ? 'release' : 'debug', 'examples', 'write_lot');
    const run = spawnSync(exe, [queue, input], { encoding: 'utf8' });
    assert.equal(run.status, 0, `write_lot failed:\n${run.stderr}`);
    assert.equal(run.stdout.trim(), '{"pushed":60}');
    rustLot = onlyLot(queue);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const backend of BACKENDS) {
    const { Producer } = binding(backend);

    test(`push() from ${backend}`, (t) => {
      const queue = tempDir(t);
      const producer = Producer.open(queue, { maxLotAgeMs: 0 });
      for (const item of transitions()) producer.push(item);
      producer.close();

      const nodeLot = onlyLot(queue);
      assert.equal(nodeLot.bytes.toString('utf8'), rustLot.bytes.toString('utf8'));
      assert.ok(nodeLot.bytes.equals(rustLot.bytes));
      assert.equal(lotSuffix(nodeLot.name), lotSuffix(rustLot.name));
    });

    test(`pushMany() from ${backend}`, (t) => {
      const queue = tempDir(t);
      const producer = Producer.open(queue, { maxLotAgeMs: 0 });
      const items = transitions();
      assert.equal(producer.pushMany(items.slice(0, 25)), 25);
      assert.equal(producer.pushMany(items.slice(25)), 35);
      producer.close();

      const nodeLot = onlyLot(queue);
      assert.ok(nodeLot.bytes.equals(rustLot.bytes));
      assert.equal(lotSuffix(nodeLot.name), lotSuffix(rustLot.name));
    });

    test(`typed arrays from ${backend}`, (t) => {
      const queue = tempDir(t);
      const producer = Producer.open(queue, { maxLotAgeMs: 0 });
      for (const item of transitions()) {
        producer.push({ ...item, obs: Float32Array.from(item.obs), mask: Uint8Array.from(item.mask) });
      }
      producer.close();
      assert.ok(onlyLot(queue).bytes.equals(rustLot.bytes));
    });
  }
});
