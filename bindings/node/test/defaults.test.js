'use strict';

// The defaults that README.md and index.d.ts state are the ones the
// library fills in, so the docs cannot drift from the library silently.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { BACKENDS, binding } = require('./helpers');

const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const DECLARATIONS = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

/** Parses a documented default such as "500", "16 MiB", "2000 (0 turns it off)" or "false". */
function parseDefault(text) {
  const flag = text.match(/^(true|false)\b/);
  if (flag) return flag[1] === 'true';
  const number = text.match(/^(\d+)(?: (KiB|MiB))?/);
  assert.ok(number, `cannot read the default "${text}"`);
  const scale = { KiB: 1024, MiB: 1024 * 1024 }[number[2]] || 1;
  return Number(number[1]) * scale;
}

/** Returns { option: default } from the README table whose header row follows `heading`. */
function readmeDefaults(heading) {
  const section = README.slice(README.indexOf(heading));
  const defaults = {};
  for (const line of section.split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    const cells = line.match(/^\| `(\w+)` \| `\w+` \| (.+) \|$/);
    if (cells && !cells[2].startsWith('`')) defaults[cells[1]] = parseDefault(cells[2]);
  }
  return defaults;
}

/** Returns { option: default } from the "(default X" comments of an interface in index.d.ts. */
function declaredDefaults(name) {
  const body = DECLARATIONS.slice(DECLARATIONS.indexOf(`export interface ${name} {`));
  const end = body.indexOf('\n}');
  const defaults = {};
  for (const [, text, option] of body.slice(0, end).matchAll(/\(default ([^)]*)\)[^\n]*\*\/\n\s+(\w+)\?:/g)) {
    if (!text.startsWith('"')) defaults[option] = parseDefault(text);
  }
  return defaults;
}

// The doc parsers skip string defaults (quoted or in backticks), which
// the tests below check one by one.
function withoutStrings(defaults) {
  return Object.fromEntries(
    Object.entries(defaults).filter(([, v]) => v !== null && typeof v !== 'string'),
  );
}

for (const backend of BACKENDS) {
  const { Producer, Consumer } = binding(backend);

  test(`producer defaults match the docs (${backend})`, () => {
    const library = Producer.defaultOptions();
    assert.equal(library.format, 'json');
    assert.deepEqual(readmeDefaults('### `Producer.open(dir, options?)`'), withoutStrings(library));
    assert.deepEqual(declaredDefaults('ProducerOptions'), withoutStrings(library));
  });

  test(`consumer defaults match the docs (${backend})`, () => {
    const library = Consumer.defaultOptions();
    assert.equal(library.outputDir, null);
    assert.equal(library.consumerId, null);
    assert.equal(library.outputFormat, 'json');
    assert.deepEqual(readmeDefaults('### `Consumer.open(dir, options?)`'), withoutStrings(library));
    assert.deepEqual(declaredDefaults('ConsumerOptions'), withoutStrings(library));
  });
}
