'use strict';

// What reaches the queue when a Node.js process ends with producers or
// consumers still open: the exit hook closes them on a normal exit, and
// recovery publishes what was written before a SIGKILL.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { BACKENDS, binding, tempDir, sample, expected, readyLines, lotNames } = require('./helpers');

const PACKAGE = path.resolve(__dirname, '..');

/** Runs `body` in a child Node.js process with `diskq` and `sample` in scope. */
function runChild(backend, body) {
  const script = `
    const diskq = require(${JSON.stringify(PACKAGE)});
    const { sample } = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))});
    const { Producer, Consumer } = diskq.load({ backend: ${JSON.stringify(backend)} });
    ${body}
  `;
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
}

function lines(count) {
  return Array.from({ length: count }, (_, i) => expected(sample(i)));
}

for (const backend of BACKENDS) {
  describe(`process exit (${backend})`, () => {
    test('exit hook publishes an open producer at a normal end', (t) => {
      const queue = tempDir(t);
      const child = runChild(backend, `
        const p = Producer.open(${JSON.stringify(queue)}, { maxLotAgeMs: 0 });
        for (let i = 0; i < 10; i++) p.push(sample(i));
        console.log(diskq.openHandleCount());
      `);
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), '1');
      assert.deepEqual(readyLines(queue), lines(10));
      assert.deepEqual(lotNames(queue, 'incoming', '.part'), []);
    });

    test('exit hook runs on process.exit()', (t) => {
      const queue = tempDir(t);
      const child = runChild(backend, `
        const p = Producer.open(${JSON.stringify(queue)}, { maxLotAgeMs: 0 });
        for (let i = 0; i < 10; i++) p.push(sample(i));
        process.exit(3);
      `);
      assert.equal(child.status, 3, child.stderr);
      assert.deepEqual(readyLines(queue), lines(10));
    });

    test('exit hook skips closed producers', (t) => {
      const queue = tempDir(t);
      const child = runChild(backend, `
        const p = Producer.open(${JSON.stringify(queue)}, { maxLotAgeMs: 0 });
        p.push(sample(0));
        p.close();
        console.log(diskq.openHandleCount());
      `);
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), '0');
      assert.equal(child.stderr, '');
      assert.deepEqual(readyLines(queue), lines(1));
    });

    test('exit hook finishes an open consumer output', (t) => {
      const queue = tempDir(t);
      const out = path.join(queue, 'out');
      const child = runChild(backend, `
        const p = Producer.open(${JSON.stringify(queue)}, { maxLotAgeMs: 0 });
        for (let i = 0; i < 4; i++) p.push(sample(i));
        p.flush();
        const c = Consumer.open(${JSON.stringify(queue)}, { outputDir: ${JSON.stringify(out)}, consumerId: 'exit' });
        console.log(c.poll().lines);
      `);
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), '4');
      const files = fs.readdirSync(out);
      assert.equal(files.length, 1);
      assert.match(files[0], /\.jsonl$/);
    });

    test('SIGKILL with writeThrough: recovery publishes every push', (t) => {
      const queue = tempDir(t);
      const child = runChild(backend, `
        const p = Producer.open(${JSON.stringify(queue)}, { maxLotAgeMs: 0, writeThrough: true });
        for (let i = 0; i < 10; i++) p.push(sample(i));
        process.kill(process.pid, 'SIGKILL');
      `);
      assert.equal(child.signal, 'SIGKILL');
      assert.deepEqual(lotNames(queue, 'incoming', '.ready'), []);
      assert.equal(lotNames(queue, 'incoming', '.part').length, 1);

      // Opening a producer publishes the dead producer's .part.
      binding(backend).Producer.open(queue, { maxLotAgeMs: 0 }).close();
      assert.deepEqual(readyLines(queue), lines(10));
    });

    test('SIGKILL without writeThrough loses the buffered pushes', (t) => {
      const queue = tempDir(t);
      const child = runChild(backend, `
        const p = Producer.open(${JSON.stringify(queue)}, { maxLotAgeMs: 0 });
        for (let i = 0; i < 10; i++) p.push(sample(i));
        p.flush();
        for (let i = 10; i < 15; i++) p.push(sample(i));
        process.kill(process.pid, 'SIGKILL');
      `);
      assert.equal(child.signal, 'SIGKILL');

      // The flushed ten survive; the five still in the producer's memory
      // buffer are gone.
      binding(backend).Producer.open(queue, { maxLotAgeMs: 0 }).close();
      assert.deepEqual(readyLines(queue), lines(10));
    });
  });
}
