'use strict';

// The ffi-napi backend: calls libdiskq through the ffi-napi API. It uses
// the maintained fork @makeomatic/ffi-napi (with @makeomatic/ref-napi),
// whose npm packages carry prebuilt binaries, because installing the
// original ffi-napi 4.0.3 on Node.js 20 fails (README.md, Install).
// Same interface as koffi.js, which lib/backend/index.js describes.

const ffi = require('@makeomatic/ffi-napi');
const ref = require('@makeomatic/ref-napi');

function create(libraryPath) {
  const lib = ffi.Library(libraryPath, {
    dq_version: ['string', []],
    dq_status_str: ['string', ['int32']],
    dq_last_error_message: ['string', []],
    dq_producer_options_default: ['int32', ['pointer', 'size_t']],
    dq_producer_open: ['int32', ['pointer', 'pointer', 'pointer']],
    dq_producer_push: ['int32', ['pointer', 'pointer', 'size_t']],
    dq_producer_push_transition: ['int32', ['pointer', 'pointer']],
    dq_producer_push_transitions: ['int32', ['pointer', 'pointer', 'size_t', 'pointer']],
    dq_producer_flush: ['int32', ['pointer']],
    dq_producer_close: ['int32', ['pointer']],
    dq_producer_free: ['void', ['pointer']],
    dq_consumer_options_default: ['int32', ['pointer', 'size_t']],
    dq_consumer_open: ['int32', ['pointer', 'pointer', 'pointer']],
    dq_consumer_poll: ['int32', ['pointer', 'pointer']],
    dq_consumer_close: ['int32', ['pointer']],
    dq_consumer_free: ['void', ['pointer']],
  });

  return {
    name: 'ffi-napi',
    libraryPath,
    addressOf: (buffer) => ref.address(buffer),
    // A handle is a zero-length Buffer whose address is the C pointer.
    handleFrom: (outBuffer) => ref.readPointer(outBuffer, 0, 0),
    version: () => lib.dq_version(),
    statusName: (status) => lib.dq_status_str(status),
    lastErrorMessage: () => lib.dq_last_error_message(),
    producerOptionsDefault: (buf, size) => lib.dq_producer_options_default(buf, size),
    producerOpen: (dir, options, out) => lib.dq_producer_open(dir, options, out),
    producerPush: (p, buf, len) => lib.dq_producer_push(p, buf, len),
    producerPushTransition: (p, buf) => lib.dq_producer_push_transition(p, buf),
    producerPushTransitions: (p, buf, count, accepted) =>
      lib.dq_producer_push_transitions(p, buf, count, accepted),
    producerFlush: (p) => lib.dq_producer_flush(p),
    producerClose: (p) => lib.dq_producer_close(p),
    producerFree: (p) => lib.dq_producer_free(p),
    consumerOptionsDefault: (buf, size) => lib.dq_consumer_options_default(buf, size),
    consumerOpen: (dir, options, out) => lib.dq_consumer_open(dir, options, out),
    consumerPoll: (c, result) => lib.dq_consumer_poll(c, result),
    consumerClose: (c) => lib.dq_consumer_close(c),
    consumerFree: (c) => lib.dq_consumer_free(c),
  };
}

module.exports = { create };
