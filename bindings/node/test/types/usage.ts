// Compiled by test/types.test.js with `tsc --noEmit --strict`: the
// declarations accept this use of the API and reject the marked lines.

import * as diskq from '../..';
import { Producer, Consumer, DiskqError, load, STATUS } from '../..';

const producer: Producer = Producer.open('/tmp/q', { maxLotLines: 100, writeThrough: true, maxLotAgeMs: 0n });
producer.push({
  obs: new Float32Array(42),
  mask: [1, 0, true],
  action: 3,
  reward: 0,
  done: false,
  gameId: 'g',
  playerId: 'pA',
  seq: 0n,
});
const accepted: number = producer.pushMany([]);
const lotLines = Producer.defaultOptions().maxLotLines;
const noDir: null = Consumer.defaultOptions().outputDir;
producer.pushJson('{"a":1}');
producer.pushJson(Buffer.from('{}'));
producer.flush();
producer.close();
const closed: boolean = producer.closed;

const consumer = Consumer.open('/tmp/q', { outputDir: 'out', consumerId: 'c1', compressArchive: true });
const counts = consumer.poll();
const lines: number = counts.lines + counts.finishedFiles;
const controller = new AbortController();
consumer.run({ intervalMs: 100, signal: controller.signal, onPoll: (c) => c.lots }).then((totals) => totals.polls);
consumer.close();

const binding = load({ backend: 'ffi-napi', library: '/x/libdiskq.so' });
const p2: Producer = binding.Producer.open('/tmp/q');
const v: string = binding.version() + diskq.version();
const code: 8 = STATUS.DQ_STATUS_CLOSED;

try {
  p2.close();
} catch (err) {
  if (err instanceof DiskqError) {
    const name: string = err.code;
    const status: number = err.status;
    const n: number | undefined = err.accepted;
  }
}

// @ts-expect-error the constructor is private: use open()
new Producer();
// @ts-expect-error unknown option
Producer.open('/tmp/q', { maxLotLine: 5 });
// @ts-expect-error writeThrough is a boolean
Producer.open('/tmp/q', { writeThrough: 1 });
// @ts-expect-error a transition needs every field
producer.push({ obs: [], mask: [] });
// @ts-expect-error obs is numbers
producer.push({ obs: ['1'], mask: [], action: 0, reward: 0, done: false, gameId: 'g', playerId: 'p', seq: 0 });
// @ts-expect-error unknown backend
load({ backend: 'ctypes' });

export { accepted, closed, lines, v, code, lotLines, noDir };
