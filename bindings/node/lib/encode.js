'use strict';

// Packs JavaScript transitions into dq_transition structs.
//
// The structs and everything they point to (obs floats, mask bytes,
// NUL-terminated ids) go into one reusable off-heap Buffer, the arena:
//
//   [struct 0][struct 1]...[struct n-1][obs 0][mask 0][ids 0][obs 1]...
//
// so a whole batch crosses the FFI boundary as one pointer, and neither
// backend converts objects field by field. V8 never moves the memory of a
// Buffer allocated with allocUnsafeSlow, so the addresses written into
// the structs stay valid for the synchronous call that reads them.

const { TRANSITION } = require('./layout');
const { invalidType, invalidValue } = require('./errors');

const INITIAL_BYTES = 64 * 1024;
// An arena that grew past this for one large batch is dropped after it.
const KEEP_BYTES = 16 * 1024 * 1024;
const TWO_32 = 2 ** 32;
const MAX_I64 = 2n ** 63n - 1n;
const MIN_I64 = -(2n ** 63n);
const MAX_U64 = 2n ** 64n - 1n;
const ID_CACHE_LIMIT = 4096;

/** Thrown by pack for the item at `index`; items before it are packed. */
class PackError extends Error {
  constructor(index, cause) {
    super(cause.message);
    this.index = index;
    this.cause = cause;
  }
}

class TransitionPacker {
  constructor(addressOf) {
    this.addressOf = addressOf;
    this.ids = new Map();
    this.allocate(INITIAL_BYTES);
  }

  allocate(bytes) {
    this.buffer = Buffer.allocUnsafeSlow(bytes);
    const ab = this.buffer.buffer;
    const at = this.buffer.byteOffset;
    this.view = new DataView(ab, at, bytes);
    this.f32 = new Float32Array(ab, at, bytes >>> 2);
    this.base = this.addressOf(this.buffer);
  }

  /**
   * Packs `items[start..end)` as a struct array at offset 0 of the
   * arena. Returns the number packed: `end - start`, unless an item is
   * invalid, in which case it throws a PackError after packing the
   * items before it, so the caller can still push those.
   */
  pack(items, start, end) {
    const count = end - start;
    let used = count * TRANSITION.size;
    this.reserve(used, 0, 0);

    for (let k = 0; k < count; k++) {
      try {
        used = this.packOne(items[start + k], k * TRANSITION.size, used, k);
      } catch (err) {
        throw new PackError(start + k, err);
      }
    }
    return count;
  }

  /** Packs one transition as the struct at offset 0; throws the plain error if invalid. */
  pack1(t) {
    this.packOne(t, 0, TRANSITION.size, 0);
  }

  /** Drops an arena that one batch made very large. */
  release() {
    if (this.buffer.length > KEEP_BYTES) this.allocate(INITIAL_BYTES);
  }

  // Writes one struct at `at` and its data from `used`; returns the new end
  // of the data. `packed` structs before it are complete.
  packOne(t, at, used, packed) {
    if (t === null || typeof t !== 'object' || Array.isArray(t)) {
      throw invalidType('transition', 'an object', t);
    }
    const { obs, mask } = t;
    const obsLen = checkObs(obs);
    const maskLen = checkMask(mask);
    const gameId = this.idBytes(t.gameId, 'transition.gameId');
    const playerId = this.idBytes(t.playerId, 'transition.playerId');

    const need = 3 + obsLen * 4 + maskLen + gameId.length + playerId.length;
    this.reserve(used, need, packed);
    const view = this.view;

    // obs, 4-byte aligned so it can be written through the Float32Array.
    used = (used + 3) & ~3;
    const obsAt = used;
    if (Array.isArray(obs)) {
      for (let i = 0; i < obsLen; i++) {
        if (typeof obs[i] !== 'number') throw invalidType(`transition.obs[${i}]`, 'a number', obs[i]);
      }
    }
    this.f32.set(obs, obsAt >>> 2);
    used += obsLen * 4;

    const maskAt = used;
    writeMask(this.buffer, maskAt, mask, maskLen);
    used += maskLen;

    const gameAt = used;
    this.buffer.set(gameId, gameAt);
    used += gameId.length;
    const playerAt = used;
    this.buffer.set(playerId, playerAt);
    used += playerId.length;

    this.writePointer(at + TRANSITION.obs, obsAt);
    writeSize(view, at + TRANSITION.obs_len, obsLen);
    this.writePointer(at + TRANSITION.mask, maskAt);
    writeSize(view, at + TRANSITION.mask_len, maskLen);
    writeI64(view, at + TRANSITION.action, t.action, 'transition.action');
    view.setFloat64(at + TRANSITION.reward, checkReward(t.reward), true);
    view.setUint8(at + TRANSITION.done, checkDone(t.done));
    // Clear the padding after `done`, so packed bytes never depend on
    // what an earlier batch left there.
    for (let i = TRANSITION.done + 1; i < TRANSITION.game_id; i++) view.setUint8(at + i, 0);
    this.writePointer(at + TRANSITION.game_id, gameAt);
    this.writePointer(at + TRANSITION.player_id, playerAt);
    writeU64(view, at + TRANSITION.seq, t.seq, 'transition.seq');
    return used;
  }

  // Makes room for `need` more bytes after `used`, moving the arena if
  // needed and relocating the pointers of the `packed` complete structs.
  reserve(used, need, packed) {
    const total = used + need;
    if (total <= this.buffer.length) return;

    const old = this.buffer;
    const oldBase = this.base;
    let bytes = old.length;
    while (bytes < total) bytes *= 2;
    this.allocate(bytes);
    old.copy(this.buffer, 0, 0, used);

    for (let k = 0; k < packed; k++) {
      const at = k * TRANSITION.size;
      for (const field of [TRANSITION.obs, TRANSITION.mask, TRANSITION.game_id, TRANSITION.player_id]) {
        this.writePointer(at + field, this.readPointer(at + field) - oldBase);
      }
    }
  }

  writePointer(at, offset) {
    const address = this.base + offset;
    this.view.setUint32(at, address % TWO_32, true);
    this.view.setUint32(at + 4, Math.floor(address / TWO_32), true);
  }

  readPointer(at) {
    return this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * TWO_32;
  }

  // Returns an id as NUL-terminated UTF-8, cached because bots repeat the
  // same few ids on every push.
  idBytes(id, what) {
    let bytes = this.ids.get(id);
    if (bytes !== undefined) return bytes;
    if (typeof id !== 'string') throw invalidType(what, 'a string', id);
    if (id.includes('\0')) throw invalidValue(what, 'contains a NUL character, which C strings cannot hold');
    if (!id.isWellFormed()) throw invalidValue(what, 'contains a lone surrogate, which UTF-8 cannot encode');
    bytes = Buffer.from(`${id}\0`, 'utf8');
    if (this.ids.size >= ID_CACHE_LIMIT) this.ids.clear();
    this.ids.set(id, bytes);
    return bytes;
  }
}

function checkObs(obs) {
  if (obs instanceof Float32Array || obs instanceof Float64Array || Array.isArray(obs)) {
    return obs.length;
  }
  throw invalidType('transition.obs', 'an array of numbers, a Float32Array or a Float64Array', obs);
}

function checkMask(mask) {
  if (mask instanceof Uint8Array || Array.isArray(mask)) return mask.length;
  throw invalidType('transition.mask', 'an array of 0/1 values or a Uint8Array', mask);
}

// Copies the mask. A Uint8Array goes as it is, and the library rejects
// entries other than 0 or 1 with DQ_STATUS_INVALID_FIELD. Array entries
// that do not fit a byte are rejected here, because a byte would wrap.
function writeMask(buffer, at, mask, len) {
  if (mask instanceof Uint8Array) {
    buffer.set(mask, at);
    return;
  }
  for (let i = 0; i < len; i++) {
    const m = mask[i];
    if (m === 0 || m === 1) {
      buffer[at + i] = m;
    } else if (typeof m === 'boolean') {
      buffer[at + i] = m ? 1 : 0;
    } else if (Number.isInteger(m) && m >= 0 && m <= 255) {
      buffer[at + i] = m;
    } else {
      throw invalidType(`transition.mask[${i}]`, '0, 1 or a boolean', m);
    }
  }
}

// NaN and infinities pass on to the library, which rejects them with
// DQ_STATUS_NON_FINITE and names the field.
function checkReward(reward) {
  if (typeof reward !== 'number') throw invalidType('transition.reward', 'a number', reward);
  return reward;
}

function checkDone(done) {
  if (done === true || done === 1) return 1;
  if (done === false || done === 0) return 0;
  throw invalidType('transition.done', 'a boolean', done);
}

function writeSize(view, at, n) {
  view.setUint32(at, n, true);
  view.setUint32(at + 4, 0, true);
}

function writeI64(view, at, v, what) {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw invalidType(what, 'a safe integer or a BigInt', v);
    if (v >= 0 && v < TWO_32) {
      view.setUint32(at, v, true);
      view.setUint32(at + 4, 0, true);
    } else {
      view.setBigInt64(at, BigInt(v), true);
    }
    return;
  }
  if (typeof v === 'bigint') {
    if (v < MIN_I64 || v > MAX_I64) throw invalidValue(what, `${v} does not fit in a signed 64-bit integer`);
    view.setBigInt64(at, v, true);
    return;
  }
  throw invalidType(what, 'an integer', v);
}

function writeU64(view, at, v, what) {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw invalidType(what, 'a non-negative safe integer or a BigInt', v);
    }
    if (v < TWO_32) {
      view.setUint32(at, v, true);
      view.setUint32(at + 4, 0, true);
    } else {
      view.setBigUint64(at, BigInt(v), true);
    }
    return;
  }
  if (typeof v === 'bigint') {
    if (v < 0n || v > MAX_U64) throw invalidValue(what, `${v} does not fit in an unsigned 64-bit integer`);
    view.setBigUint64(at, v, true);
    return;
  }
  throw invalidType(what, 'a non-negative integer', v);
}

module.exports = { TransitionPacker, PackError, writeU64 };
