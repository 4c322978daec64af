'use strict';

// diskq for Node.js: Producer and Consumer over libdiskq's C ABI.
//
//   const diskq = require('diskq');
//   const producer = diskq.Producer.open('/data/queue', { maxLotLines: 500 });
//   producer.push({ obs, mask, action, reward, done, gameId, playerId, seq });
//   producer.close();
//
// The default binding loads on first use of Producer, Consumer or
// version(): backend from DISKQ_NODE_BACKEND (koffi or ffi-napi, default
// koffi), library from DISKQ_LIB or the repository's target/ folder.
// load() gives a binding with an explicit backend or library path.

const { STATUS, DiskqError } = require('./lib/errors');
const { BACKEND_NAMES, DEFAULT_BACKEND, backendName, createBackend } = require('./lib/backend');
const { findLibrary } = require('./lib/library');
const { createBinding } = require('./lib/binding');
const { checkPlatform } = require('./lib/layout');
const exitHook = require('./lib/exit-hook');

const bindings = new Map();

/**
 * Returns the binding for `backend` ('koffi' or 'ffi-napi') over the
 * library at `library`; both default as described above. Bindings are
 * cached per backend and library path.
 */
function load({ backend, library } = {}) {
  checkPlatform();
  const name = backendName(backend);
  const libraryPath = findLibrary(library);
  const key = `${name}\0${libraryPath}`;
  let binding = bindings.get(key);
  if (binding === undefined) {
    binding = createBinding(createBackend(name, libraryPath));
    bindings.set(key, binding);
  }
  return binding;
}

module.exports = {
  load,
  DiskqError,
  STATUS,
  BACKENDS: BACKEND_NAMES,
  DEFAULT_BACKEND,
  /** Returns the version string of the loaded library. */
  version: () => load().version(),
  /** Returns how many producers and consumers the exit hook would close now. */
  openHandleCount: () => exitHook.openCount(),
};

Object.defineProperties(module.exports, {
  Producer: { enumerable: true, get: () => load().Producer },
  Consumer: { enumerable: true, get: () => load().Consumer },
});
