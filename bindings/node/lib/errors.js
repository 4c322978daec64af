'use strict';

// Status codes of include/diskq.h. The library's dq_status_str gives the
// same names at run time; this table serves code that has no library
// loaded yet (and the TypeScript declarations).
const STATUS = Object.freeze({
  DQ_STATUS_OK: 0,
  DQ_STATUS_NULL_ARGUMENT: 1,
  DQ_STATUS_INVALID_ARGUMENT: 2,
  DQ_STATUS_INVALID_JSON: 3,
  DQ_STATUS_NON_FINITE: 4,
  DQ_STATUS_INVALID_FIELD: 5,
  DQ_STATUS_LINE_TOO_LONG: 6,
  DQ_STATUS_IO: 7,
  DQ_STATUS_CLOSED: 8,
  DQ_STATUS_POISONED: 9,
  DQ_STATUS_LOCKED: 10,
  DQ_STATUS_PANIC: 11,
});

/**
 * A failed diskq call: `code` is the status name (such as
 * 'DQ_STATUS_NON_FINITE'), `status` its number, and the message is the
 * library's own, read on the thread that made the call.
 */
class DiskqError extends Error {
  constructor(message, code, status) {
    super(message);
    this.name = 'DiskqError';
    this.code = code;
    this.status = status;
  }
}

// Errors for arguments that the binding rejects before calling the
// library, with the codes Node.js itself uses for such errors.
function invalidType(what, expected, value) {
  const err = new TypeError(`${what} must be ${expected}, got ${describe(value)}`);
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function invalidValue(what, reason) {
  const err = new RangeError(`${what} ${reason}`);
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `${typeof value} ${String(value)}`;
}

module.exports = { STATUS, DiskqError, invalidType, invalidValue };
