'use strict';

// camelCase option objects to dq_producer_options and dq_consumer_options.
// Each struct is first filled by the library's own _default function, so
// an option left out keeps the library's default.

const { PRODUCER_OPTIONS, CONSUMER_OPTIONS, fillSize } = require('./layout');
const { invalidType, invalidValue } = require('./errors');
const { writeU64 } = require('./encode');

// Values of the enum-like options, as the C constants number them.
const FORMATS = Object.freeze({ json: 0, binary: 1 });

// option name -> [struct field, kind, choices for kind 'choice']
const PRODUCER_FIELDS = {
  maxLotLines: ['max_lot_lines', 'u64'],
  maxLotBytes: ['max_lot_bytes', 'u64'],
  maxLotAgeMs: ['max_lot_age_ms', 'u64'],
  maxLineBytes: ['max_line_bytes', 'u64'],
  writeThrough: ['write_through', 'flag'],
  durable: ['durable', 'flag'],
  recoverOnOpen: ['recover_on_open', 'flag'],
  format: ['format', 'choice', FORMATS],
};

const CONSUMER_FIELDS = {
  outputDir: ['output_dir', 'string'],
  consumerId: ['consumer_id', 'string'],
  maxOutputLines: ['max_output_lines', 'u64'],
  maxLineBytes: ['max_line_bytes', 'u64'],
  durable: ['durable', 'flag'],
  recoverIntervalMs: ['recover_interval_ms', 'u64'],
  fullValidation: ['full_validation', 'flag'],
  compressArchive: ['compress_archive', 'flag'],
  archiveMaxAgeMs: ['archive_max_age_ms', 'u64'],
  archiveMaxBytes: ['archive_max_bytes', 'u64'],
  outputFormat: ['output_format', 'choice', FORMATS],
};

/** Returns a NUL-terminated UTF-8 Buffer of a path or name. */
function cString(value, what) {
  if (typeof value !== 'string') throw invalidType(what, 'a string', value);
  if (value.includes('\0')) throw invalidValue(what, 'contains a NUL character');
  if (!value.isWellFormed()) throw invalidValue(what, 'contains a lone surrogate');
  // Not from Buffer's shared pool: its address goes into C structs.
  const length = Buffer.byteLength(value, 'utf8');
  const bytes = Buffer.allocUnsafeSlow(length + 1);
  bytes.write(value, 0, 'utf8');
  bytes[length] = 0;
  return bytes;
}

/**
 * Fills a struct Buffer from `options`. Returns the Buffer and the
 * string Buffers its pointers refer to, which the caller keeps alive
 * until the call that reads the struct returns.
 */
function encodeOptions(options, fields, layout, fillDefault, addressOf, kind) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalidType(`${kind} options`, 'an object', options);
  }

  const struct = Buffer.alloc(fillSize(layout));
  const status = fillDefault(struct);
  if (status !== 0) throw new Error(`dq_${kind}_options_default failed with status ${status}`);

  const view = new DataView(struct.buffer, struct.byteOffset, struct.length);
  const strings = [];
  for (const [name, value] of Object.entries(options)) {
    if (!Object.hasOwn(fields, name)) {
      throw invalidValue(
        `${kind} option "${name}"`,
        `is not known; expected one of ${Object.keys(fields).join(', ')}`,
      );
    }
    if (value === undefined) continue;

    const [field, type, choices] = fields[name];
    const at = layout[field];
    const what = `${kind} option ${name}`;
    if (type === 'u64') {
      writeU64(view, at, value, what);
    } else if (type === 'choice') {
      if (typeof value !== 'string' || !Object.hasOwn(choices, value)) {
        throw invalidValue(what, `must be one of ${Object.keys(choices).join(', ')}`);
      }
      view.setUint8(at, choices[value]);
    } else if (type === 'flag') {
      if (typeof value !== 'boolean') throw invalidType(what, 'a boolean', value);
      view.setUint8(at, value ? 1 : 0);
    } else {
      const bytes = cString(value, what);
      strings.push(bytes);
      const address = addressOf(bytes);
      view.setBigUint64(at, BigInt(address), true);
    }
  }
  return { struct, strings };
}

/**
 * Returns the library's defaults as a camelCase object. Numbers above
 * 2^53 come back as BigInts. A string option whose default is NULL comes
 * back as null, which means the library's built-in value.
 */
function decodeDefaults(fields, layout, fillDefault, kind) {
  const struct = Buffer.alloc(fillSize(layout));
  const status = fillDefault(struct);
  if (status !== 0) throw new Error(`dq_${kind}_options_default failed with status ${status}`);

  const defaults = {};
  for (const [name, [field, type, choices]] of Object.entries(fields)) {
    const at = layout[field];
    if (type === 'choice') {
      const choice = Object.keys(choices).find((key) => choices[key] === struct[at]);
      if (choice === undefined) {
        throw new Error(`dq_${kind}_options_default set ${field} to ${struct[at]}, which this binding does not know`);
      }
      defaults[name] = choice;
    } else if (type === 'u64') {
      const value = struct.readBigUInt64LE(at);
      defaults[name] = value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
    } else if (type === 'flag') {
      defaults[name] = struct[at] !== 0;
    } else if (struct.readBigUInt64LE(at) === 0n) {
      defaults[name] = null;
    } else {
      // The library's defaults are NULL for both string options, so the
      // binding has no code to read a C string out of its memory.
      throw new Error(`dq_${kind}_options_default set ${field}, which this binding cannot read`);
    }
  }
  return defaults;
}

function producerDefaults(backend) {
  return decodeDefaults(PRODUCER_FIELDS, PRODUCER_OPTIONS, (buf) => backend.producerOptionsDefault(buf, PRODUCER_OPTIONS.size), 'producer');
}

function consumerDefaults(backend) {
  return decodeDefaults(CONSUMER_FIELDS, CONSUMER_OPTIONS, (buf) => backend.consumerOptionsDefault(buf, CONSUMER_OPTIONS.size), 'consumer');
}

function producerOptions(backend, options) {
  return encodeOptions(
    options,
    PRODUCER_FIELDS,
    PRODUCER_OPTIONS,
    (buf) => backend.producerOptionsDefault(buf, PRODUCER_OPTIONS.size),
    backend.addressOf,
    'producer',
  );
}

function consumerOptions(backend, options) {
  return encodeOptions(
    options,
    CONSUMER_FIELDS,
    CONSUMER_OPTIONS,
    (buf) => backend.consumerOptionsDefault(buf, CONSUMER_OPTIONS.size),
    backend.addressOf,
    'consumer',
  );
}

module.exports = {
  producerOptions,
  consumerOptions,
  producerDefaults,
  consumerDefaults,
  cString,
  PRODUCER_FIELDS,
  CONSUMER_FIELDS,
};
