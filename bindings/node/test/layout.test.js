'use strict';

// Checks lib/layout.js against include/diskq.h, compiled by the real C
// compiler: every field offset and every struct size.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const layout = require('../lib/layout');
const { REPO_ROOT } = require('../lib/library');
const { tempDir } = require('./helpers');

const STRUCTS = {
  dq_producer_options: layout.PRODUCER_OPTIONS,
  dq_consumer_options: layout.CONSUMER_OPTIONS,
  dq_poll_result: layout.POLL_RESULT,
  dq_transition: layout.TRANSITION,
};

test('struct layouts match the C header', (t) => {
  const dir = tempDir(t);
  const lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "diskq.h"', 'int main(void) {'];
  for (const [name, fields] of Object.entries(STRUCTS)) {
    lines.push(`  printf("${name} size %zu\\n", sizeof(${name}));`);
    for (const field of Object.keys(fields)) {
      if (field === 'size') continue;
      lines.push(`  printf("${name} ${field} %zu\\n", offsetof(${name}, ${field}));`);
    }
  }
  lines.push('  return 0;', '}');
  const source = path.join(dir, 'layout.c');
  fs.writeFileSync(source, `${lines.join('\n')}\n`);

  const exe = path.join(dir, 'layout');
  const cc = process.env.CC || 'cc';
  const compile = spawnSync(cc, ['-std=c99', '-Wall', '-Werror', '-I', path.join(REPO_ROOT, 'include'), source, '-o', exe], {
    encoding: 'utf8',
  });
  assert.equal(compile.status, 0, `${cc} failed:\n${compile.stderr}`);
  const run = spawnSync(exe, { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);

  for (const line of run.stdout.trim().split('\n')) {
    const [name, field, value] = line.split(' ');
    assert.equal(STRUCTS[name][field], Number(value), `${name}.${field}`);
  }
});
