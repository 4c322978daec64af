'use strict';

// Producer and Consumer classes over one backend. Every call is
// synchronous, so the library's thread-local error message is read on
// the thread that made the failing call, right after it.

const { setTimeout: sleep } = require('node:timers/promises');

const { DiskqError, STATUS, invalidType, invalidValue } = require('./errors');
const { TransitionPacker, PackError } = require('./encode');
const { producerOptions, consumerOptions, producerDefaults, consumerDefaults, cString } = require('./options');
const { POLL_RESULT, fillSize } = require('./layout');
const exitHook = require('./exit-hook');

// Guards the constructors: handles come only from open().
const OPENED = Symbol('diskq.opened');

function createBinding(backend) {
  const packer = new TransitionPacker(backend.addressOf);
  // Out-parameters, reused: every call is synchronous.
  const handleOut = Buffer.allocUnsafeSlow(8);
  const acceptedOut = Buffer.allocUnsafeSlow(8);
  const pollOut = Buffer.allocUnsafeSlow(fillSize(POLL_RESULT));

  /** Builds the DiskqError of a failed call; call it before any other dq_ call. */
  function failure(status) {
    const message = backend.lastErrorMessage();
    const code = backend.statusName(status);
    return new DiskqError(message || code, code, status);
  }

  function openHandle(open, dir, options, encode) {
    const dirBytes = cString(dir, 'queue directory');
    const { struct, strings } = encode(backend, options);
    const status = open(dirBytes, struct, handleOut);
    // The option strings must outlive the call; this use keeps them.
    strings.length = 0;
    if (status !== 0) throw failure(status);
    return backend.handleFrom(handleOut);
  }

  class Producer {
    #handle;
    #dir;

    constructor(token, handle, dir) {
      if (token !== OPENED) throw new TypeError('use Producer.open(dir, options) to create a producer');
      this.#handle = handle;
      this.#dir = dir;
    }

    /**
     * Opens a producer on the queue directory `dir`, which must exist.
     * The producer is closed at process exit if still open.
     */
    static open(dir, options) {
      const handle = openHandle(backend.producerOpen, dir, options, producerOptions);
      const producer = new Producer(OPENED, handle, dir);
      exitHook.track(producer);
      return producer;
    }

    /** Returns the library's default producer options. */
    static defaultOptions() {
      return producerDefaults(backend);
    }

    /** The queue directory given to open(). */
    get dir() {
      return this.#dir;
    }

    /** True once close() succeeded. */
    get closed() {
      return this.#handle === null;
    }

    /** Pushes one transition through dq_producer_push_transition. */
    push(transition) {
      const handle = this.#live();
      packer.pack1(transition);
      const status = backend.producerPushTransition(handle, packer.buffer);
      if (status !== 0) throw failure(status);
    }

    /** Pushes one JSON object given as a string, Buffer or Uint8Array. */
    pushJson(line) {
      const handle = this.#live();
      let bytes;
      if (typeof line === 'string') {
        if (!line.isWellFormed()) throw invalidValue('line', 'contains a lone surrogate, which UTF-8 cannot encode');
        bytes = Buffer.from(line, 'utf8');
      } else if (line instanceof Uint8Array) {
        bytes = line;
      } else {
        throw invalidType('line', 'a string, Buffer or Uint8Array', line);
      }
      const status = backend.producerPush(handle, bytes, bytes.length);
      if (status !== 0) throw failure(status);
    }

    /**
     * Pushes an array of transitions in one call of
     * dq_producer_push_transitions and returns how many were accepted.
     * On failure the error's `accepted` is the number of items before
     * the failing one that went in. The failing item and those after it
     * did not.
     */
    pushMany(transitions) {
      const handle = this.#live(0);
      if (!Array.isArray(transitions)) throw invalidType('transitions', 'an array', transitions);

      let packed = transitions.length;
      let packError = null;
      try {
        packer.pack(transitions, 0, transitions.length);
      } catch (err) {
        if (!(err instanceof PackError)) throw err;
        packError = err;
        packed = err.index;
      }

      let accepted = 0;
      if (packed > 0) {
        const status = backend.producerPushTransitions(handle, packer.buffer, packed, acceptedOut);
        accepted = Number(acceptedOut.readBigUInt64LE(0));
        if (status !== 0) {
          const err = failure(status);
          err.accepted = accepted;
          packer.release();
          throw err;
        }
      }
      packer.release();

      if (packError !== null) {
        const err = packError.cause;
        err.message = `item ${packError.index}: ${err.message}`;
        err.accepted = accepted;
        throw err;
      }
      return accepted;
    }

    /** Publishes the current lot now. */
    flush() {
      const status = backend.producerFlush(this.#live());
      if (status !== 0) throw failure(status);
    }

    /**
     * Publishes what is pending, closes the producer and releases its
     * handle. Later calls, including a second close(), throw
     * DQ_STATUS_CLOSED. After an I/O error the producer stays open and
     * close() may be retried.
     */
    close() {
      const handle = this.#live();
      const status = backend.producerClose(handle);
      if (status !== 0) throw failure(status);
      backend.producerFree(handle);
      this.#handle = null;
      exitHook.forget(this);
    }

    // Returns the handle, or throws DQ_STATUS_CLOSED as the library
    // does for a closed handle; `accepted` is set for pushMany.
    #live(accepted) {
      if (this.#handle === null) throw closedError('producer', accepted);
      return this.#handle;
    }

    describe() {
      return `producer on ${this.#dir}`;
    }
  }

  class Consumer {
    #handle;
    #dir;

    constructor(token, handle, dir) {
      if (token !== OPENED) throw new TypeError('use Consumer.open(dir, options) to create a consumer');
      this.#handle = handle;
      this.#dir = dir;
    }

    /**
     * Opens a consumer on the queue directory `dir`, taking the lock of
     * its consumer id. The consumer is closed at process exit if still
     * open.
     */
    static open(dir, options) {
      const handle = openHandle(backend.consumerOpen, dir, options, consumerOptions);
      const consumer = new Consumer(OPENED, handle, dir);
      exitHook.track(consumer);
      return consumer;
    }

    /**
     * Returns the library's default consumer options. outputDir and
     * consumerId are null, which stands for "dataset/transitions" and
     * "main".
     */
    static defaultOptions() {
      return consumerDefaults(backend);
    }

    get dir() {
      return this.#dir;
    }

    get closed() {
      return this.#handle === null;
    }

    /** Runs one poll cycle and returns its counts. */
    poll() {
      const status = backend.consumerPoll(this.#live(), pollOut);
      if (status !== 0) throw failure(status);
      return {
        lots: readCount(pollOut, POLL_RESULT.lots),
        lines: readCount(pollOut, POLL_RESULT.lines),
        bytes: readCount(pollOut, POLL_RESULT.bytes),
        quarantined: readCount(pollOut, POLL_RESULT.quarantined),
        finishedFiles: readCount(pollOut, POLL_RESULT.finished_files),
      };
    }

    /**
     * Polls every `intervalMs` until `signal` aborts, then resolves to
     * the summed counts. The consumer stays open; call close() after.
     * A failing poll rejects the promise with its DiskqError.
     */
    async run({ intervalMs = 1000, signal, onPoll } = {}) {
      if (typeof intervalMs !== 'number' || !(intervalMs >= 0) || !Number.isFinite(intervalMs)) {
        throw invalidType('intervalMs', 'a non-negative number of milliseconds', intervalMs);
      }
      const totals = { polls: 0, lots: 0, lines: 0, bytes: 0, quarantined: 0, finishedFiles: 0 };
      while (!signal?.aborted) {
        const counts = this.poll();
        totals.polls += 1;
        for (const key of ['lots', 'lines', 'bytes', 'quarantined', 'finishedFiles']) {
          totals[key] += counts[key];
        }
        if (onPoll) onPoll(counts);

        try {
          await sleep(intervalMs, undefined, { signal });
        } catch (err) {
          if (err.name === 'AbortError') break;
          throw err;
        }
      }
      return totals;
    }

    /**
     * Finishes the current output file, closes the consumer and releases
     * its handle and its consumer id. Later calls throw DQ_STATUS_CLOSED.
     */
    close() {
      const handle = this.#live();
      const status = backend.consumerClose(handle);
      if (status !== 0) throw failure(status);
      // Nothing can use a closed consumer, so free the handle now rather
      // than hold its memory until the process exits.
      backend.consumerFree(handle);
      this.#handle = null;
      exitHook.forget(this);
    }

    #live() {
      if (this.#handle === null) throw closedError('consumer');
      return this.#handle;
    }

    describe() {
      return `consumer on ${this.#dir}`;
    }
  }

  return Object.freeze({
    backend: backend.name,
    libraryPath: backend.libraryPath,
    Producer,
    Consumer,
    version: () => backend.version(),
    statusName: (status) => backend.statusName(status),
  });
}

function closedError(kind, accepted) {
  const err = new DiskqError(`${kind} is closed`, 'DQ_STATUS_CLOSED', STATUS.DQ_STATUS_CLOSED);
  if (accepted !== undefined) err.accepted = accepted;
  return err;
}

function readCount(buf, at) {
  return Number(buf.readBigUInt64LE(at));
}

module.exports = { createBinding };
