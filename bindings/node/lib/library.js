'use strict';

// Finds the diskq shared library that cargo built in this repository.

const fs = require('node:fs');
const path = require('node:path');

// bindings/node sits two levels below the repository root.
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

const FILE_NAMES = {
  linux: 'libdiskq.so',
  darwin: 'libdiskq.dylib',
  win32: 'diskq.dll',
};

function libraryFileName() {
  return FILE_NAMES[process.platform] || 'libdiskq.so';
}

/** Returns the places searched when neither an argument nor DISKQ_LIB names the library. */
function candidatePaths() {
  const name = libraryFileName();
  return [
    path.join(REPO_ROOT, 'target', 'release', name),
    path.join(REPO_ROOT, 'target', 'debug', name),
  ];
}

/**
 * Resolves the library path: `explicit` if given, else the DISKQ_LIB
 * environment variable, else target/release then target/debug of the
 * repository. Throws an Error with code 'DQ_LIBRARY_NOT_FOUND', whose message
 * tells how to build the library, when none exists.
 */
function findLibrary(explicit) {
  const buildHint =
    `build it with \`cargo build --release --lib\` in ${REPO_ROOT}, ` +
    'or set DISKQ_LIB to the path of an existing copy';

  if (explicit !== undefined && explicit !== null) {
    return requireFile(path.resolve(explicit), `the library path ${explicit}`, buildHint);
  }

  const fromEnv = process.env.DISKQ_LIB;
  if (fromEnv) {
    return requireFile(path.resolve(fromEnv), `DISKQ_LIB=${fromEnv}`, buildHint);
  }

  const candidates = candidatePaths();
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw notFound(`diskq shared library not found (looked for ${candidates.join(' and ')}); ${buildHint}`);
}

function requireFile(file, origin, buildHint) {
  if (!fs.existsSync(file)) {
    throw notFound(`diskq shared library not found: ${origin} names ${file}, which does not exist; ${buildHint}`);
  }
  return file;
}

function notFound(message) {
  const err = new Error(message);
  err.code = 'DQ_LIBRARY_NOT_FOUND';
  return err;
}

module.exports = { findLibrary, candidatePaths, libraryFileName, REPO_ROOT };
