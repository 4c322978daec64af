'use strict';

// Closes producers and consumers that are still open when the process
// exits. 'exit' listeners run synchronously, which suffices for
// synchronous FFI calls. They do not run on SIGKILL, on a crash, or on a
// signal that Node.js does not handle (SIGTERM and SIGINT without a
// listener).

const fs = require('node:fs');

const open = new Set();
let installed = false;

function closeAllAtExit() {
  for (const handle of [...open]) {
    try {
      handle.close();
    } catch (err) {
      // stderr may be an asynchronous stream; at exit only a direct
      // write is sure to land.
      fs.writeSync(2, `diskq: closing ${handle.describe()} at exit failed: ${err.message}\n`);
    }
    open.delete(handle);
  }
}

/** Tracks `handle` (with close() and describe()) until forget(handle). */
function track(handle) {
  if (!installed) {
    process.on('exit', closeAllAtExit);
    installed = true;
  }
  open.add(handle);
}

function forget(handle) {
  open.delete(handle);
}

/** Returns how many producers and consumers are still open. */
function openCount() {
  return open.size;
}

module.exports = { track, forget, openCount };
