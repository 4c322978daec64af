'use strict';

// The self-play run of examples/selfplay.js, small, with each consumer.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { tempDir } = require('./helpers');

const SCRIPT = path.resolve(__dirname, '..', 'examples', 'selfplay.js');
const { verify } = require(SCRIPT);

for (const consumer of ['node', 'cli']) {
  test(`self-play run with the ${consumer} consumer`, { timeout: 600000 }, (t) => {
    const dir = tempDir(t);
    const run = spawnSync(
      process.execPath,
      [SCRIPT, '--bots', '3', '--games', '40', '--seed', '5', '--consumer', consumer, '--dir', dir],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);

    const field = (name) => Number(run.stdout.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))[1]);
    assert.equal(field('games'), 120);
    const pushed = field('transitions pushed');
    assert.ok(pushed >= 120 * 7, `${pushed} transitions for 120 games`);
    assert.equal(field('lines in dataset'), pushed);
    assert.ok(field('lots archived') >= 3);
    assert.match(run.stdout, /^pushed == written:\s+yes$/m);

    // The run folder contains the dataset the summary describes.
    const out = path.join(dir, 'dataset', 'transitions');
    const lines = fs
      .readdirSync(out)
      .map((name) => fs.readFileSync(path.join(out, name), 'utf8'))
      .join('')
      .split('\n')
      .filter(Boolean);
    assert.equal(lines.length, pushed);
  });
}

test('dataset check finds duplicates and bad lines', (t) => {
  const out = tempDir(t);
  const good = (seq) =>
    JSON.stringify({
      obs: new Array(42).fill(0),
      mask: new Array(7).fill(1),
      action: 3,
      reward: 0,
      done: false,
      gameId: 'n-1-0',
      playerId: 'pA',
      seq,
    });
  const extra = JSON.stringify({ ...JSON.parse(good(9)), extra: 1 });
  const { extra: _, ...missing } = JSON.parse(extra);
  delete missing.seq;
  const lines = [good(0), good(1), good(0), extra, JSON.stringify(missing), '[1]', '{"obs":', good(2)];
  fs.writeFileSync(path.join(out, 'a.jsonl'), `${lines.join('\n')}\n`);
  fs.writeFileSync(path.join(out, 'b.jsonl.open'), '');

  const check = verify(out);
  assert.equal(check.lines, 8);
  assert.equal(check.unique, 3);
  assert.equal(check.problems.length, 6);
  assert.match(check.problems[0], /duplicate \(n-1-0, pA, 0\)/);
  assert.match(check.problems[1], /fields are/);
  assert.match(check.problems[2], /fields are/);
  assert.match(check.problems[3], /not an object/);
  assert.match(check.problems[4], /not JSON/);
  assert.match(check.problems[5], /unfinished output files: b\.jsonl\.open/);
});
