'use strict';

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { BACKENDS, binding, tempDir, sample, expected, readyLines, outputLines, lotNames } = require('./helpers');

for (const backend of BACKENDS) {
  describe(`round trip (${backend})`, () => {
    const { Producer, Consumer } = binding(backend);

    test('producer to consumer keeps every transition', (t) => {
      const queue = tempDir(t);
      const out = path.join(queue, 'out');
      const producer = Producer.open(queue, { maxLotLines: 7, maxLotAgeMs: 0 });

      const pushed = [];
      for (let i = 0; i < 20; i++) {
        const item = sample(i);
        producer.push(item);
        pushed.push(expected(item));
      }
      const batch = Array.from({ length: 15 }, (_, k) => sample(20 + k));
      assert.equal(producer.pushMany(batch), 15);
      pushed.push(...batch.map(expected));
      const json = { obs: [0.5], mask: [1], action: 3, reward: -1, done: true, gameId: 'j', playerId: 'pA', seq: 0 };
      producer.pushJson(JSON.stringify(json));
      producer.pushJson(Buffer.from(`${JSON.stringify({ ...json, seq: 1 })}\n`));
      pushed.push(json, { ...json, seq: 1 });
      producer.close();
      assert.equal(producer.closed, true);

      // 37 lines in lots of at most 7.
      assert.equal(lotNames(queue, 'incoming', '.ready').length, 6);

      const consumer = Consumer.open(queue, { outputDir: out, consumerId: 'rt' });
      const counts = consumer.poll();
      assert.deepEqual(counts, { lots: 6, lines: 37, bytes: counts.bytes, quarantined: 0, finishedFiles: 0 });
      assert.ok(counts.bytes > 0);
      consumer.close();

      assert.deepEqual(outputLines(out), pushed);
      assert.equal(lotNames(queue, 'archive', '.done').length, 6);
    });

    test('binary lots and binary output keep every transition', (t) => {
      const queue = tempDir(t);
      const out = path.join(queue, 'out');
      const producer = Producer.open(queue, { format: 'binary', maxLotLines: 5, maxLotAgeMs: 0 });
      const items = Array.from({ length: 12 }, (_, k) => sample(k));
      for (const item of items) producer.push(item);
      assert.throws(() => producer.pushJson('{"not":"a transition"}'), { code: 'DQ_STATUS_INVALID_JSON' });
      producer.close();

      const lots = lotNames(queue, 'incoming', '.ready');
      assert.equal(lots.length, 3);
      for (const lot of lots) {
        const head = fs.readFileSync(path.join(queue, 'incoming', lot)).subarray(0, 4);
        assert.equal(head.toString('latin1'), 'DQB1');
      }

      const consumer = Consumer.open(queue, { outputDir: out, consumerId: 'bin', outputFormat: 'binary' });
      assert.equal(consumer.poll().lines, 12);
      consumer.close();
      const files = fs.readdirSync(out);
      assert.equal(files.length, 1);
      assert.ok(files[0].endsWith('.dqb'), files[0]);
      assert.equal(fs.readFileSync(path.join(out, files[0])).subarray(0, 4).toString('latin1'), 'DQB1');

      assert.throws(() => Producer.open(queue, { format: 'msgpack' }), /must be one of json, binary/);
    });

    test('typed arrays and BigInt fields', (t) => {
      const queue = tempDir(t);
      const producer = Producer.open(queue, { maxLotAgeMs: 0 });
      producer.push({
        obs: new Float32Array([1.5, -2.25]),
        mask: new Uint8Array([0, 1]),
        action: -(2n ** 63n),
        reward: 0.1,
        done: 1,
        gameId: 'ünïcode-ζ',
        playerId: '🙂',
        seq: 2n ** 64n - 1n,
      });
      producer.push({ ...sample(0), obs: new Float64Array([0.1]), action: 2 ** 53 - 1, seq: 2 ** 40 });
      producer.close();

      const text = require('node:fs').readFileSync(
        path.join(queue, 'incoming', lotNames(queue, 'incoming', '.ready')[0]),
        'utf8',
      );
      const [first, second] = text.trim().split('\n');
      // JSON.parse cannot hold 64-bit integers exactly, so compare text.
      assert.match(first, /"action":-9223372036854775808,/);
      assert.match(first, /"seq":18446744073709551615\}$/);
      assert.match(first, /"obs":\[1\.5,-2\.25\],"mask":\[0,1\]/);
      assert.match(first, /"gameId":"ünïcode-ζ","playerId":"🙂"/);
      assert.match(first, /"reward":0\.1,"done":true/);
      assert.match(second, /"obs":\[0\.1\],/);
      assert.match(second, /"action":9007199254740991,/);
      assert.match(second, /"seq":1099511627776\}$/);
    });

    test('pushMany of a batch larger than the arena', (t) => {
      const queue = tempDir(t);
      const producer = Producer.open(queue, { maxLotAgeMs: 0, maxLotLines: 100000, maxLotBytes: 1 << 30 });
      // 3000 x 1000 floats is about 12 MB of obs, past the 64 KiB arena,
      // so packing moves the arena several times.
      const batch = Array.from({ length: 3000 }, (_, k) => ({
        ...sample(k),
        obs: Float32Array.from({ length: 1000 }, (_, j) => (k * 1000 + j) % 997),
        gameId: `big-${k}`,
      }));
      assert.equal(producer.pushMany(batch), 3000);
      producer.close();

      const lines = readyLines(queue);
      assert.equal(lines.length, 3000);
      for (const k of [0, 1, 1499, 2999]) {
        assert.deepEqual(lines[k], expected(batch[k]));
      }
    });

    test('pushMany of nothing returns 0', (t) => {
      const producer = Producer.open(tempDir(t), { maxLotAgeMs: 0 });
      assert.equal(producer.pushMany([]), 0);
      producer.close();
    });

    test('flush publishes the current lot', (t) => {
      const queue = tempDir(t);
      const producer = Producer.open(queue, { maxLotAgeMs: 0 });
      producer.push(sample(0));
      assert.equal(lotNames(queue, 'incoming', '.ready').length, 0);
      producer.flush();
      assert.deepEqual(readyLines(queue), [expected(sample(0))]);
      producer.close();
    });

    test('consumer run loop stops on abort', { timeout: 20000 }, async (t) => {
      const queue = tempDir(t);
      const out = path.join(queue, 'out');
      const consumer = Consumer.open(queue, { outputDir: out, consumerId: 'loop' });
      const producer = Producer.open(queue, { maxLotAgeMs: 0, maxLotLines: 4 });

      const controller = new AbortController();
      const polls = [];
      const running = consumer.run({
        intervalMs: 10,
        signal: controller.signal,
        onPoll: (counts) => {
          polls.push(counts);
          if (polls.length === 2) for (let i = 0; i < 8; i++) producer.push(sample(i));
          if (polls.reduce((n, c) => n + c.lines, 0) === 8) controller.abort();
        },
      });
      const totals = await running;
      producer.close();
      consumer.close();

      assert.equal(totals.lines, 8);
      assert.equal(totals.lots, 2);
      assert.equal(totals.polls, polls.length);
      assert.equal(outputLines(out).length, 8);
    });

    test('consumer run rejects a bad interval', async (t) => {
      const consumer = Consumer.open(tempDir(t), { outputDir: tempDir(t), consumerId: 'iv' });
      await assert.rejects(consumer.run({ intervalMs: -1 }), { code: 'ERR_INVALID_ARG_TYPE' });
      consumer.close();
    });
  });
}
