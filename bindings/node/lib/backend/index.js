'use strict';

// Chooses and loads an FFI backend.
//
// A backend module exports `create(libraryPath)`, which returns an object
// with these members, each a thin synchronous call into libdiskq:
//
//   name, libraryPath
//   addressOf(buffer) -> number       address of a Buffer's first byte
//   handleFrom(out8) -> handle        handle written by an _open call
//   version(), statusName(status), lastErrorMessage() -> string
//   producerOptionsDefault(buf, size), producerOpen(dir, options, out),
//   producerPush(p, buf, len), producerPushTransition(p, buf),
//   producerPushTransitions(p, buf, count, accepted8),
//   producerFlush(p), producerClose(p) -> status; producerFree(p)
//   consumerOptionsDefault(buf, size), consumerOpen(dir, options, out),
//   consumerPoll(c, result), consumerClose(c) -> status; consumerFree(c)
//
// Structs and strings cross as Buffers laid out by lib/layout.js, so a
// backend needs nothing of diskq beyond the function signatures.

const MODULES = {
  koffi: './koffi',
  'ffi-napi': './ffi-napi',
};

const BACKEND_NAMES = Object.freeze(Object.keys(MODULES));

// koffi is the default because bench/push.js measured less CPU time per
// transition with it than with ffi-napi on every path (bench/RESULTS.md).
const DEFAULT_BACKEND = 'koffi';

/** Returns the backend named by `explicit`, else DISKQ_NODE_BACKEND, else the default. */
function backendName(explicit) {
  const name = explicit || process.env.DISKQ_NODE_BACKEND || DEFAULT_BACKEND;
  if (!Object.hasOwn(MODULES, name)) {
    const origin = explicit ? 'backend option' : 'DISKQ_NODE_BACKEND';
    const err = new Error(
      `unknown diskq backend "${name}" (from the ${origin}); expected one of ${BACKEND_NAMES.join(', ')}`,
    );
    err.code = 'DQ_BACKEND_UNKNOWN';
    throw err;
  }
  return name;
}

/** Loads backend `name` over the library at `libraryPath`. */
function createBackend(name, libraryPath) {
  let mod;
  try {
    mod = require(MODULES[name]);
  } catch (cause) {
    const err = new Error(
      `diskq backend "${name}" is not available: ${cause.message}. ` +
        'Run `npm install` in bindings/node; the ffi-napi backend is an optional ' +
        'dependency that npm skips when its native part fails to install.',
      { cause },
    );
    err.code = 'DQ_BACKEND_UNAVAILABLE';
    throw err;
  }
  return mod.create(libraryPath);
}

module.exports = { BACKEND_NAMES, DEFAULT_BACKEND, backendName, createBackend };
