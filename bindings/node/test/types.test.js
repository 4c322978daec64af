'use strict';

// index.d.ts type-checks a sample of API use with the TypeScript compiler.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

test('declarations compile with a sample of API use', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const usage = path.join(__dirname, 'types', 'usage.ts');
  const run = spawnSync(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'commonjs', '--types', 'node', usage],
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 0, `tsc reported:\n${run.stdout}${run.stderr}`);
});
