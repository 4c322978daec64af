'use strict';

// Byte layouts of the C structs of include/diskq.h, computed with the C
// rules for 64-bit platforms: pointers and size_t are 8 bytes, and each
// field is aligned to its size. Both backends pass these structs as plain
// buffers, so this one table serves both. test/layout.test.js compiles
// the header with the C compiler and checks every offset and size here.

const TYPES = {
  ptr: 8,
  size_t: 8,
  u64: 8,
  i64: 8,
  f64: 8,
  u8: 1,
};

// Buffers for structs that the library fills (options defaults, poll
// results) get at least this many bytes, so a library built from newer
// sources that appended fields writes into slack instead of past the end.
const FILL_SLACK_BYTES = 256;

function struct(fields) {
  const layout = {};
  let offset = 0;
  let align = 1;
  for (const [name, type] of fields) {
    const size = TYPES[type];
    offset = Math.ceil(offset / size) * size;
    layout[name] = offset;
    offset += size;
    align = Math.max(align, size);
  }
  layout.size = Math.ceil(offset / align) * align;
  return Object.freeze(layout);
}

const PRODUCER_OPTIONS = struct([
  ['struct_size', 'size_t'],
  ['max_lot_lines', 'u64'],
  ['max_lot_bytes', 'u64'],
  ['max_lot_age_ms', 'u64'],
  ['max_line_bytes', 'u64'],
  ['write_through', 'u8'],
  ['durable', 'u8'],
  ['recover_on_open', 'u8'],
  ['format', 'u8'],
]);

const CONSUMER_OPTIONS = struct([
  ['struct_size', 'size_t'],
  ['output_dir', 'ptr'],
  ['consumer_id', 'ptr'],
  ['max_output_lines', 'u64'],
  ['max_line_bytes', 'u64'],
  ['durable', 'u8'],
  ['recover_interval_ms', 'u64'],
  ['full_validation', 'u8'],
  ['compress_archive', 'u8'],
  ['archive_max_age_ms', 'u64'],
  ['archive_max_bytes', 'u64'],
  // Not a Node option yet: the library's default (JSON lines) applies.
  ['output_format', 'u8'],
]);

const POLL_RESULT = struct([
  ['lots', 'u64'],
  ['lines', 'u64'],
  ['bytes', 'u64'],
  ['quarantined', 'u64'],
  ['finished_files', 'u64'],
]);

const TRANSITION = struct([
  ['obs', 'ptr'],
  ['obs_len', 'size_t'],
  ['mask', 'ptr'],
  ['mask_len', 'size_t'],
  ['action', 'i64'],
  ['reward', 'f64'],
  ['done', 'u8'],
  ['game_id', 'ptr'],
  ['player_id', 'ptr'],
  ['seq', 'u64'],
]);

/** Returns the bytes to allocate for a struct that the library fills. */
function fillSize(layout) {
  return Math.max(layout.size, FILL_SLACK_BYTES);
}

function checkPlatform() {
  if (!['x64', 'arm64', 'ppc64', 'riscv64', 's390x', 'loong64'].includes(process.arch)) {
    throw new Error(
      `diskq's Node.js binding supports 64-bit platforms only; this one is ${process.arch}`,
    );
  }
  if (require('node:os').endianness() !== 'LE') {
    throw new Error("diskq's Node.js binding supports little-endian platforms only");
  }
}

module.exports = {
  PRODUCER_OPTIONS,
  CONSUMER_OPTIONS,
  POLL_RESULT,
  TRANSITION,
  fillSize,
  checkPlatform,
};
