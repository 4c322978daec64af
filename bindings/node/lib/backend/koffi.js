'use strict';

// The koffi backend: calls libdiskq through koffi (https://koffi.dev),
// which ships prebuilt binaries through npm. Same interface as
// ffi-napi.js; lib/backend/index.js describes it.

const koffi = require('koffi');

function create(libraryPath) {
  const lib = koffi.load(libraryPath);

  // Handles stay opaque `void *` values (BigInt in koffi); structs and
  // strings go in as Buffers laid out by lib/layout.js.
  const fn = {
    version: lib.func('const char *dq_version(void)'),
    statusStr: lib.func('const char *dq_status_str(int32_t status)'),
    lastErrorMessage: lib.func('const char *dq_last_error_message(void)'),
    producerOptionsDefault: lib.func('int32_t dq_producer_options_default(void *out, size_t size)'),
    producerOpen: lib.func('int32_t dq_producer_open(const void *dir, const void *options, void *out)'),
    producerPush: lib.func('int32_t dq_producer_push(void *p, const void *json, size_t len)'),
    producerPushTransition: lib.func('int32_t dq_producer_push_transition(void *p, const void *t)'),
    producerPushTransitions: lib.func(
      'int32_t dq_producer_push_transitions(void *p, const void *items, size_t count, void *out_accepted)',
    ),
    producerFlush: lib.func('int32_t dq_producer_flush(void *p)'),
    producerClose: lib.func('int32_t dq_producer_close(void *p)'),
    producerFree: lib.func('void dq_producer_free(void *p)'),
    consumerOptionsDefault: lib.func('int32_t dq_consumer_options_default(void *out, size_t size)'),
    consumerOpen: lib.func('int32_t dq_consumer_open(const void *dir, const void *options, void *out)'),
    consumerPoll: lib.func('int32_t dq_consumer_poll(void *c, void *out_result)'),
    consumerClose: lib.func('int32_t dq_consumer_close(void *c)'),
    consumerFree: lib.func('void dq_consumer_free(void *c)'),
  };

  return {
    name: 'koffi',
    libraryPath,
    addressOf: (buffer) => Number(koffi.address(buffer)),
    handleFrom: (outBuffer) => outBuffer.readBigUInt64LE(0),
    version: () => fn.version(),
    statusName: (status) => fn.statusStr(status),
    lastErrorMessage: () => fn.lastErrorMessage(),
    producerOptionsDefault: (buf, size) => fn.producerOptionsDefault(buf, size),
    producerOpen: (dir, options, out) => fn.producerOpen(dir, options, out),
    producerPush: (p, buf, len) => fn.producerPush(p, buf, len),
    producerPushTransition: (p, buf) => fn.producerPushTransition(p, buf),
    producerPushTransitions: (p, buf, count, accepted) =>
      fn.producerPushTransitions(p, buf, count, accepted),
    producerFlush: (p) => fn.producerFlush(p),
    producerClose: (p) => fn.producerClose(p),
    producerFree: (p) => fn.producerFree(p),
    consumerOptionsDefault: (buf, size) => fn.consumerOptionsDefault(buf, size),
    consumerOpen: (dir, options, out) => fn.consumerOpen(dir, options, out),
    consumerPoll: (c, result) => fn.consumerPoll(c, result),
    consumerClose: (c) => fn.consumerClose(c),
    consumerFree: (c) => fn.consumerFree(c),
  };
}

module.exports = { create };
