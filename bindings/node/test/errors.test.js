'use strict';

// Bad input, error codes and closed handles. Every bad push is made
// between good ones, and the test checks that the good ones all arrive.

const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { diskq, BACKENDS, binding, tempDir, sample, expected, readyLines } = require('./helpers');

const { DiskqError, STATUS } = diskq;

// [case, transition change, expected error]
const BAD_TRANSITIONS = [
  ['NaN in obs', { obs: [0, NaN] }, { name: 'DiskqError', code: 'DQ_STATUS_NON_FINITE', status: 4, message: /obs\[1\]/ }],
  ['Infinity in a Float32Array', { obs: new Float32Array([Infinity]) }, { code: 'DQ_STATUS_NON_FINITE', message: /obs\[0\]/ }],
  ['obs value beyond f32', { obs: [1e39] }, { code: 'DQ_STATUS_NON_FINITE', message: /obs\[0\]/ }],
  ['NaN reward', { reward: NaN }, { code: 'DQ_STATUS_NON_FINITE', message: /reward/ }],
  ['mask byte 2', { mask: new Uint8Array([1, 2]) }, { code: 'DQ_STATUS_INVALID_FIELD', status: 5, message: /mask\[1\]/ }],
  ['mask entry 2 in an array', { mask: [2] }, { code: 'DQ_STATUS_INVALID_FIELD', message: /mask\[0\]/ }],
  ['mask entry that is no byte', { mask: [1, 256] }, { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /transition\.mask\[1\]/ }],
  ['mask entry that is a string', { mask: ['1'] }, { name: 'TypeError', message: /transition\.mask\[0\]/ }],
  ['obs entry that is a string', { obs: [1, '2'] }, { name: 'TypeError', message: /transition\.obs\[1\] must be a number/ }],
  ['obs missing', { obs: undefined }, { name: 'TypeError', message: /transition\.obs/ }],
  ['obs as an Int32Array', { obs: new Int32Array(2) }, { name: 'TypeError', message: /transition\.obs/ }],
  ['mask as a string', { mask: '101' }, { name: 'TypeError', message: /transition\.mask/ }],
  ['fractional action', { action: 1.5 }, { name: 'TypeError', message: /transition\.action/ }],
  ['action beyond int64', { action: 2n ** 63n }, { name: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', message: /transition\.action/ }],
  ['action as a string', { action: '3' }, { name: 'TypeError', message: /transition\.action/ }],
  ['reward as a string', { reward: '1' }, { name: 'TypeError', message: /transition\.reward/ }],
  ['done as a string', { done: 'yes' }, { name: 'TypeError', message: /transition\.done/ }],
  ['negative seq', { seq: -1 }, { name: 'TypeError', message: /transition\.seq/ }],
  ['seq beyond uint64', { seq: 2n ** 64n }, { name: 'RangeError', message: /transition\.seq/ }],
  ['unsafe integer seq', { seq: 2 ** 53 }, { name: 'TypeError', message: /transition\.seq/ }],
  ['gameId missing', { gameId: undefined }, { name: 'TypeError', message: /transition\.gameId/ }],
  ['gameId with NUL', { gameId: 'a\0b' }, { name: 'RangeError', message: /transition\.gameId contains a NUL/ }],
  ['playerId with a lone surrogate', { playerId: 'p\ud800' }, { name: 'RangeError', message: /transition\.playerId contains a lone surrogate/ }],
];

const NOT_OBJECTS = [null, undefined, 5, 'transition', [1, 2], true];

for (const backend of BACKENDS) {
  describe(`bad input (${backend})`, () => {
    const { Producer, Consumer } = binding(backend);

    function openQueue(t, options = {}) {
      const queue = tempDir(t);
      return { queue, producer: Producer.open(queue, { maxLotAgeMs: 0, ...options }) };
    }

    for (const [name, change, error] of BAD_TRANSITIONS) {
      test(`push rejects ${name}`, (t) => {
        const { queue, producer } = openQueue(t);
        producer.push(sample(0));
        assert.throws(() => producer.push({ ...sample(1), ...change }), error);
        producer.push(sample(2));
        producer.close();
        assert.deepEqual(readyLines(queue), [expected(sample(0)), expected(sample(2))]);
      });
    }

    test('push rejects what is not an object', (t) => {
      const { queue, producer } = openQueue(t);
      producer.push(sample(0));
      for (const value of NOT_OBJECTS) {
        assert.throws(() => producer.push(value), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /^transition must be an object/ });
      }
      producer.close();
      assert.deepEqual(readyLines(queue), [expected(sample(0))]);
    });

    test('library errors carry code, status and message', (t) => {
      const { producer } = openQueue(t);
      let caught;
      try {
        producer.push(sample(0, { obs: [1, 2, -Infinity] }));
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof DiskqError);
      assert.ok(caught instanceof Error);
      assert.equal(caught.code, 'DQ_STATUS_NON_FINITE');
      assert.equal(caught.status, STATUS.DQ_STATUS_NON_FINITE);
      assert.equal(caught.message, 'invalid transition: obs[2] is -inf, and JSON cannot represent NaN or infinities');
      producer.close();
    });

    test('pushJson rejects invalid JSON and non-objects', (t) => {
      const { queue, producer } = openQueue(t);
      producer.pushJson('{"seq":0}');
      assert.throws(() => producer.pushJson('{"seq":'), { code: 'DQ_STATUS_INVALID_JSON', status: 3 });
      assert.throws(() => producer.pushJson('[1,2]'), { code: 'DQ_STATUS_INVALID_JSON' });
      assert.throws(() => producer.pushJson('{"a":NaN}'), { code: 'DQ_STATUS_NON_FINITE' });
      assert.throws(() => producer.pushJson(Buffer.from([0x7b, 0xff, 0x7d])), { code: 'DQ_STATUS_INVALID_JSON' });
      assert.throws(() => producer.pushJson('{"a":"\ud800"}'), { name: 'RangeError', message: /lone surrogate/ });
      assert.throws(() => producer.pushJson({ seq: 1 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      producer.pushJson('{"seq":2}');
      producer.close();
      assert.deepEqual(readyLines(queue), [{ seq: 0 }, { seq: 2 }]);
    });

    test('lines longer than maxLineBytes are rejected', (t) => {
      const { queue, producer } = openQueue(t, { maxLineBytes: 200 });
      producer.push(sample(0));
      assert.throws(() => producer.push(sample(1, { obs: new Array(100).fill(0.5) })), {
        code: 'DQ_STATUS_LINE_TOO_LONG',
        status: 6,
      });
      assert.throws(() => producer.pushJson(`{"a":"${'x'.repeat(300)}"}`), { code: 'DQ_STATUS_LINE_TOO_LONG' });
      producer.close();
      assert.deepEqual(readyLines(queue), [expected(sample(0))]);
    });

    test('pushMany stops at a bad item and keeps those before it', (t) => {
      const { queue, producer } = openQueue(t);
      const batch = [sample(0), sample(1), sample(2, { obs: [NaN] }), sample(3)];
      assert.throws(() => producer.pushMany(batch), (err) => {
        assert.ok(err instanceof DiskqError);
        assert.equal(err.code, 'DQ_STATUS_NON_FINITE');
        assert.equal(err.accepted, 2);
        assert.match(err.message, /^item 2: .*obs\[0\]/);
        return true;
      });
      const typed = [sample(4), 'not a transition', sample(5)];
      assert.throws(() => producer.pushMany(typed), (err) => {
        assert.equal(err.name, 'TypeError');
        assert.equal(err.accepted, 1);
        assert.match(err.message, /^item 1: transition must be an object/);
        return true;
      });
      assert.throws(() => producer.pushMany([5]), { name: 'TypeError', accepted: 0 });
      assert.throws(() => producer.pushMany(sample(6)), { name: 'TypeError', message: /transitions must be an array/ });
      producer.close();
      assert.deepEqual(readyLines(queue), [sample(0), sample(1), sample(4)].map(expected));
    });

    test('closed producer rejects every call', (t) => {
      const { queue, producer } = openQueue(t);
      producer.push(sample(0));
      producer.close();
      assert.equal(producer.closed, true);
      const closed = { name: 'DiskqError', code: 'DQ_STATUS_CLOSED', status: 8 };
      assert.throws(() => producer.push(sample(1)), closed);
      assert.throws(() => producer.pushMany([sample(1)]), { ...closed, accepted: 0 });
      assert.throws(() => producer.pushJson('{}'), closed);
      assert.throws(() => producer.flush(), closed);
      assert.throws(() => producer.close(), closed);
      assert.deepEqual(readyLines(queue), [expected(sample(0))]);
    });

    test('open rejects a missing directory', (t) => {
      const missing = path.join(tempDir(t), 'nope');
      assert.throws(() => Producer.open(missing), { code: 'DQ_STATUS_INVALID_ARGUMENT', status: 2, message: /nope/ });
      assert.throws(() => Consumer.open(missing, { outputDir: tempDir(t) }), { code: 'DQ_STATUS_INVALID_ARGUMENT' });
    });

    test('open rejects bad options', (t) => {
      const queue = tempDir(t);
      assert.throws(() => Producer.open(queue, { maxLotLines: 0 }), { code: 'DQ_STATUS_INVALID_ARGUMENT', message: /max_lot_lines/ });
      assert.throws(() => Producer.open(queue, { maxLotLine: 5 }), { name: 'RangeError', message: /"maxLotLine" is not known/ });
      assert.throws(() => Producer.open(queue, { writeThrough: 1 }), { name: 'TypeError', message: /writeThrough must be a boolean/ });
      assert.throws(() => Producer.open(queue, { maxLotBytes: -1 }), { name: 'TypeError', message: /maxLotBytes/ });
      assert.throws(() => Producer.open(queue, 'fast'), { name: 'TypeError', message: /producer options must be an object/ });
      assert.throws(() => Producer.open(42), { name: 'TypeError', message: /queue directory must be a string/ });
      assert.throws(() => Producer.open(`${queue}\0x`), { name: 'RangeError', message: /NUL/ });
      assert.throws(() => Consumer.open(queue, { consumerId: 'bad id!' }), { code: 'DQ_STATUS_INVALID_ARGUMENT' });
      assert.throws(() => Consumer.open(queue, { consumerId: 7 }), { name: 'TypeError' });
    });

    test('a taken consumer id is rejected', (t) => {
      const queue = tempDir(t);
      const out = tempDir(t);
      const first = Consumer.open(queue, { outputDir: out, consumerId: 'solo' });
      assert.throws(() => Consumer.open(queue, { outputDir: out, consumerId: 'solo' }), {
        code: 'DQ_STATUS_LOCKED',
        status: 10,
      });
      first.close();
      Consumer.open(queue, { outputDir: out, consumerId: 'solo' }).close();
    });

    test('closed consumer rejects poll and close', (t) => {
      const consumer = Consumer.open(tempDir(t), { outputDir: tempDir(t), consumerId: 'c' });
      consumer.close();
      assert.equal(consumer.closed, true);
      assert.throws(() => consumer.poll(), { code: 'DQ_STATUS_CLOSED' });
      assert.throws(() => consumer.close(), { code: 'DQ_STATUS_CLOSED' });
    });

    test('constructors are not public', () => {
      assert.throws(() => new Producer(), { name: 'TypeError', message: /Producer\.open/ });
      assert.throws(() => new Consumer(), { name: 'TypeError', message: /Consumer\.open/ });
    });

    test('status names match the library', () => {
      const b = binding(backend);
      for (const [name, status] of Object.entries(STATUS)) {
        assert.equal(b.statusName(status), name);
      }
      assert.equal(b.statusName(999), 'DQ_STATUS_UNKNOWN');
    });
  });
}

test('queue files survive in a directory named with unicode', (t) => {
  const parent = tempDir(t);
  const queue = path.join(parent, 'очередь ü');
  fs.mkdirSync(queue);
  const producer = binding(BACKENDS[0]).Producer.open(queue, { maxLotAgeMs: 0 });
  producer.push(sample(0));
  producer.close();
  assert.deepEqual(readyLines(queue), [expected(sample(0))]);
});
