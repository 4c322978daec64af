'use strict';

// Finding libdiskq and choosing a backend.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { diskq, BACKENDS, binding, tempDir } = require('./helpers');
const { candidatePaths, libraryFileName, REPO_ROOT } = require('../lib/library');

const PACKAGE = path.resolve(__dirname, '..');

/** Runs `body` in a child Node.js process with `env` added. */
function runChild(body, env = {}, cwd = PACKAGE) {
  const childEnv = { ...process.env, ...env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete childEnv[key];
  return spawnSync(process.execPath, ['-e', body], { encoding: 'utf8', env: childEnv, cwd });
}

test('default search prefers target/release over target/debug', () => {
  const name = libraryFileName();
  assert.deepEqual(candidatePaths(), [
    path.join(REPO_ROOT, 'target', 'release', name),
    path.join(REPO_ROOT, 'target', 'debug', name),
  ]);
  const found = candidatePaths().find((p) => fs.existsSync(p));
  if (process.env.DISKQ_LIB === undefined) {
    assert.equal(binding(BACKENDS[0]).libraryPath, found);
  }
});

test('DISKQ_LIB names the library', (t) => {
  const copy = path.join(tempDir(t), libraryFileName());
  fs.copyFileSync(binding(BACKENDS[0]).libraryPath, copy);
  const child = runChild(
    `const d = require('.'); const b = d.load({ backend: ${JSON.stringify(BACKENDS[0])} });
     console.log(b.libraryPath); console.log(b.version());`,
    { DISKQ_LIB: copy },
  );
  assert.equal(child.status, 0, child.stderr);
  const [libraryPath, version] = child.stdout.trim().split('\n');
  assert.equal(libraryPath, copy);
  assert.match(version, /^\d+\.\d+\.\d+/);
});

test('a missing DISKQ_LIB fails with a build hint', () => {
  const child = runChild(
    `try { require('.').Producer; } catch (e) { console.log(e.code); console.log(e.message); process.exit(0); }
     process.exit(1);`,
    { DISKQ_LIB: '/nonexistent/libdiskq.so' },
  );
  assert.equal(child.status, 0, child.stderr);
  const [code, message] = child.stdout.trim().split('\n');
  assert.equal(code, 'DQ_LIBRARY_NOT_FOUND');
  assert.match(message, /DISKQ_LIB=\/nonexistent\/libdiskq\.so/);
  assert.match(message, /cargo build --release --lib/);
});

test('no built library fails with a build hint', (t) => {
  // A copy of the package whose repository root has no target/ folder.
  const root = tempDir(t);
  const copy = path.join(root, 'bindings', 'node');
  fs.mkdirSync(copy, { recursive: true });
  fs.copyFileSync(path.join(PACKAGE, 'index.js'), path.join(copy, 'index.js'));
  fs.cpSync(path.join(PACKAGE, 'lib'), path.join(copy, 'lib'), { recursive: true });

  const child = runChild(
    `try { require('.').load(); } catch (e) { console.log(e.code); console.log(e.message); process.exit(0); }
     process.exit(1);`,
    { DISKQ_LIB: undefined },
    copy,
  );
  assert.equal(child.status, 0, child.stderr);
  const [code, message] = child.stdout.trim().split('\n');
  assert.equal(code, 'DQ_LIBRARY_NOT_FOUND');
  assert.ok(message.includes(path.join(root, 'target', 'release', libraryFileName())), message);
  assert.ok(message.includes(`\`cargo build --release --lib\` in ${root}`), message);
});

test('an explicit library path that does not exist fails', () => {
  assert.throws(() => diskq.load({ library: '/nonexistent/x.so' }), {
    code: 'DQ_LIBRARY_NOT_FOUND',
    message: /the library path \/nonexistent\/x\.so/,
  });
});

test('DISKQ_NODE_BACKEND picks the backend', () => {
  for (const backend of BACKENDS) {
    const child = runChild(`console.log(require('.').load().backend)`, { DISKQ_NODE_BACKEND: backend });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), backend);
  }
  const unset = runChild(`console.log(require('.').load().backend)`, { DISKQ_NODE_BACKEND: undefined });
  assert.equal(unset.stdout.trim(), diskq.DEFAULT_BACKEND);
});

test('an unknown backend name fails', () => {
  assert.throws(() => diskq.load({ backend: 'ctypes' }), {
    code: 'DQ_BACKEND_UNKNOWN',
    message: /unknown diskq backend "ctypes".*koffi, ffi-napi/,
  });
  const child = runChild(`try { require('.').Producer } catch (e) { console.log(e.code) }`, { DISKQ_NODE_BACKEND: 'nope' });
  assert.equal(child.stdout.trim(), 'DQ_BACKEND_UNKNOWN');
});

test('version matches Cargo.toml', () => {
  const manifest = fs.readFileSync(path.join(REPO_ROOT, 'Cargo.toml'), 'utf8');
  const version = manifest.match(/^version = "([^"]+)"/m)[1];
  for (const backend of BACKENDS) {
    assert.equal(binding(backend).version(), version);
  }
});

test('bindings are cached per backend and library', () => {
  for (const backend of BACKENDS) {
    assert.equal(binding(backend), binding(backend));
  }
  if (BACKENDS.length > 1) assert.notEqual(binding(BACKENDS[0]), binding(BACKENDS[1]));
});
