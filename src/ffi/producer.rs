//! `dq_producer`: the C handle over [`Producer`].

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{
    check_null, flag, guard, path_arg, read_versioned, slice_arg, str_field, try_status,
    write_versioned,
};
use super::status::*;
use crate::config::{LotFormat, ProducerOptions};
use crate::error::{Error, ErrorKind};
use crate::json::TransitionRef;
use crate::producer::Producer;

/// A producer writing transitions into one queue directory.
///
/// Created by `dq_producer_open`, released by `dq_producer_free`.
/// Thread safety: an internal lock lets several threads of one process
/// push, flush and close through the same handle at once, but
/// `dq_producer_free` must not race with any other call on it.
pub struct dq_producer {
    inner: Producer,
}

/// Options for `dq_producer_open`. Fill with `dq_producer_options_default`
/// first, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dq_producer_options {
    /// Size in bytes of the struct as the caller compiled it, set by
    /// `dq_producer_options_default`. It lets a library with more fields
    /// read an older caller's struct; do not change it.
    pub struct_size: usize,
    /// A lot is published once it holds this many transitions (> 0).
    pub max_lot_lines: u64,
    /// A lot is published before it would pass this many bytes (> 0).
    pub max_lot_bytes: u64,
    /// A lot is published once it is this many milliseconds old, even
    /// without further pushes. 0 turns the age limit off.
    pub max_lot_age_ms: u64,
    /// Longer pushed lines are rejected (> 0).
    pub max_line_bytes: u64,
    /// 1: every push is handed to the kernel before it returns, so a
    /// crash of the process loses no accepted push. 0: accepted pushes
    /// are safe once `dq_producer_flush` returns.
    pub write_through: u8,
    /// 1: fsync each lot and its directory around publishing, so a
    /// flushed lot survives power loss.
    pub durable: u8,
    /// 1: publish the `.part` lots of dead producers when opening.
    pub recover_on_open: u8,
    /// DQ_LOT_JSON (0, the default): lots of JSON lines. DQ_LOT_BINARY
    /// (1): lots of binary records, smaller and faster to write, which
    /// consumers read like JSON lots; `dq_producer_push` then accepts
    /// transitions only. Other values are invalid.
    pub format: u8,
}

/// `dq_producer_options.format`: one JSON object per line.
pub const DQ_LOT_JSON: u8 = 0;
/// `dq_producer_options.format`: length-prefixed binary records.
pub const DQ_LOT_BINARY: u8 = 1;

/// One transition, pushed by `dq_producer_push_transition` without any
/// JSON library on the C side. All pointers are borrowed for the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dq_transition {
    /// Observation values; NULL is allowed when `obs_len` is 0. NaN and
    /// infinities are rejected with DQ_STATUS_NON_FINITE.
    pub obs: *const f32,
    /// Number of values at `obs`.
    pub obs_len: usize,
    /// Legal-move mask, each entry 0 or 1; NULL is allowed when
    /// `mask_len` is 0.
    pub mask: *const u8,
    /// Number of entries at `mask`.
    pub mask_len: usize,
    /// The move taken.
    pub action: i64,
    /// The reward; must be finite.
    pub reward: f64,
    /// 1 on the last move of the game, else 0.
    pub done: u8,
    /// Game id: NUL-terminated UTF-8, not NULL.
    pub game_id: *const c_char,
    /// Player id: NUL-terminated UTF-8, not NULL.
    pub player_id: *const c_char,
    /// Position of the transition in the player's game.
    pub seq: u64,
}

/// Fills `*out` with the default producer options: 500 transitions or
/// 512 KiB per lot, 2000 ms maximum lot age, 16 MiB maximum line,
/// write-through off, durable off, recovery on open on. Pass
/// `sizeof *out` as `size`: a library newer than the caller's header then
/// writes only the fields the caller knows, and records `size` in
/// `struct_size`.
///
/// Errors: DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_INVALID_ARGUMENT when
/// `size` cannot hold `struct_size`.
///
/// Thread safety: any thread.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_options_default(
    out: *mut dq_producer_options,
    size: usize,
) -> dq_status {
    guard(|| {
        // SAFETY: the caller promises `size` writable bytes at `out`.
        unsafe { write_versioned(out, size, default_options(), "options") }
    })
}

fn default_options() -> dq_producer_options {
    let d = ProducerOptions::default();
    dq_producer_options {
        struct_size: std::mem::size_of::<dq_producer_options>(),
        max_lot_lines: d.max_lot_lines,
        max_lot_bytes: d.max_lot_bytes,
        max_lot_age_ms: d.max_lot_age.map_or(0, |a| a.as_millis() as u64),
        max_line_bytes: d.max_line_bytes as u64,
        write_through: u8::from(d.write_through),
        durable: u8::from(d.durable),
        recover_on_open: u8::from(d.recover_on_open),
        format: match d.format {
            LotFormat::Binary => DQ_LOT_BINARY,
            _ => DQ_LOT_JSON,
        },
    }
}

fn convert_options(o: &dq_producer_options) -> Result<ProducerOptions, dq_status> {
    let max_line_bytes = usize::try_from(o.max_line_bytes).map_err(|_| {
        set_last_error("max_line_bytes is too large");
        DQ_STATUS_INVALID_ARGUMENT
    })?;
    Ok(ProducerOptions {
        max_lot_lines: o.max_lot_lines,
        max_lot_bytes: o.max_lot_bytes,
        max_lot_age: (o.max_lot_age_ms > 0).then(|| Duration::from_millis(o.max_lot_age_ms)),
        max_line_bytes,
        write_through: flag(o.write_through, "write_through")?,
        durable: flag(o.durable, "durable")?,
        recover_on_open: flag(o.recover_on_open, "recover_on_open")?,
        format: match o.format {
            DQ_LOT_JSON => LotFormat::Json,
            DQ_LOT_BINARY => LotFormat::Binary,
            other => {
                set_last_error(&format!(
                    "format is {other}, expected DQ_LOT_JSON (0) or DQ_LOT_BINARY (1)"
                ));
                return Err(DQ_STATUS_INVALID_ARGUMENT);
            }
        },
        ..ProducerOptions::default()
    })
}

/// Opens a producer on the queue directory `dir` (NUL-terminated, must
/// exist and be writable) and writes the new handle to `*out`.
/// `options` may be NULL for the defaults.
///
/// Errors: DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_INVALID_ARGUMENT (missing
/// or unwritable directory, bad option, `struct_size` not set by
/// `dq_producer_options_default`; the message names it),
/// DQ_STATUS_IO.
///
/// Ownership: free the handle with `dq_producer_free`.
/// Thread safety: any thread.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_open(
    dir: *const c_char,
    options: *const dq_producer_options,
    out: *mut *mut dq_producer,
) -> dq_status {
    guard(|| {
        try_status!(check_null(out, "out"));
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let dir = try_status!(unsafe { path_arg(dir, "queue directory") });
        let opts = if options.is_null() {
            ProducerOptions::default()
        } else {
            // SAFETY: not NULL; the caller promises a valid struct.
            // SAFETY: not NULL; the caller promises a struct filled by
            // dq_producer_options_default, at least struct_size bytes long.
            let options =
                try_status!(unsafe { read_versioned(options, default_options(), "options") });
            try_status!(convert_options(&options))
        };
        match Producer::open(dir, opts) {
            Ok(inner) => {
                let handle = Box::into_raw(Box::new(dq_producer { inner }));
                // SAFETY: not NULL (checked above); the caller promises it
                // points to writable memory for one pointer.
                unsafe { out.write(handle) };
                DQ_STATUS_OK
            }
            Err(e) => fail(&e),
        }
    })
}

/// Returns the producer behind a handle, or the NULL status.
///
/// # Safety
///
/// `p` is NULL or a live handle from `dq_producer_open`.
unsafe fn producer<'a>(p: *const dq_producer) -> Result<&'a Producer, dq_status> {
    check_null(p, "producer")?;
    // SAFETY: not NULL; the caller promises a live handle.
    Ok(unsafe { &(*p).inner })
}

/// Pushes one JSON object of `len` bytes at `json` (UTF-8, no NUL
/// needed). Whitespace and line breaks around and between tokens are
/// allowed; line breaks are removed.
///
/// Errors: DQ_STATUS_INVALID_JSON, DQ_STATUS_NON_FINITE (a NaN or
/// Infinity token, with the field named), DQ_STATUS_LINE_TOO_LONG,
/// DQ_STATUS_IO, DQ_STATUS_CLOSED, DQ_STATUS_POISONED. On any error the
/// transition was not accepted and nothing pushed before is lost.
///
/// Thread safety: may be called from several threads on one handle.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_push(
    p: *mut dq_producer,
    json: *const u8,
    len: usize,
) -> dq_status {
    guard(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let producer = try_status!(unsafe { producer(p) });
        let max = producer_max_line(producer);
        if len > max.saturating_add(2) {
            let err = Error::new(
                ErrorKind::LineTooLong,
                format!("line of {len} bytes exceeds the maximum of {max} bytes"),
            );
            return fail(&err);
        }
        // SAFETY: the caller promises `len` readable bytes at `json`.
        let line = try_status!(unsafe { slice_arg(json, len, "json") });
        match producer.push_json(line) {
            Ok(()) => DQ_STATUS_OK,
            Err(e) => fail(&e),
        }
    })
}

fn producer_max_line(producer: &Producer) -> usize {
    producer.max_line_bytes()
}

/// Converts a C transition into a borrowed Rust one.
///
/// # Safety
///
/// The pointers inside `t` follow the rules documented on `dq_transition`.
unsafe fn transition_ref<'a>(t: &'a dq_transition) -> Result<TransitionRef<'a>, dq_status> {
    // SAFETY (all four): the caller promises the struct's pointers are
    // valid for the lengths and terminations that its docs state.
    let obs = unsafe { slice_arg(t.obs, t.obs_len, "obs")? };
    let mask = unsafe { slice_arg(t.mask, t.mask_len, "mask")? };
    let game_id = unsafe { str_field(t.game_id, "game_id")? };
    let player_id = unsafe { str_field(t.player_id, "player_id")? };
    let done = flag(t.done, "done").map_err(|_| DQ_STATUS_INVALID_FIELD)?;
    Ok(TransitionRef {
        obs,
        mask,
        action: t.action,
        reward: t.reward,
        done,
        game_id,
        player_id,
        seq: t.seq,
    })
}

/// Pushes one transition given as a C struct; diskq encodes it as JSON.
///
/// Errors: DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_NON_FINITE (the message
/// names the field, such as `obs[3]` or `reward`),
/// DQ_STATUS_INVALID_FIELD (non-UTF-8 id, mask entry or `done` not 0/1),
/// DQ_STATUS_LINE_TOO_LONG, DQ_STATUS_IO, DQ_STATUS_CLOSED,
/// DQ_STATUS_POISONED. On any error the transition was not accepted.
///
/// Thread safety: may be called from several threads on one handle.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_push_transition(
    p: *mut dq_producer,
    t: *const dq_transition,
) -> dq_status {
    guard(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let producer = try_status!(unsafe { producer(p) });
        try_status!(check_null(t, "transition"));
        // SAFETY: not NULL; the caller promises a valid struct whose
        // pointers follow its documented rules.
        let t = try_status!(unsafe { transition_ref(&*t) });
        match producer.push_ref(&t) {
            Ok(()) => DQ_STATUS_OK,
            Err(e) => fail(&e),
        }
    })
}

/// Pushes `count` transitions from the array `items` in one call, in
/// order, stopping at the first that fails. Writes how many were
/// accepted to `out_accepted` (may be NULL), on success and on failure.
///
/// Errors: those of `dq_producer_push_transition`, for the first item
/// that failed; the message gives its index.
///
/// Thread safety: may be called from several threads on one handle;
/// items of concurrent calls may interleave.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_push_transitions(
    p: *mut dq_producer,
    items: *const dq_transition,
    count: usize,
    out_accepted: *mut usize,
) -> dq_status {
    guard(|| {
        let mut accepted = 0usize;
        let status = (|| {
            // SAFETY: the caller promises a live handle or NULL.
            let producer = try_status!(unsafe { producer(p) });
            // SAFETY: the caller promises `count` valid structs at `items`.
            let items = try_status!(unsafe { slice_arg(items, count, "items") });
            for (i, item) in items.iter().enumerate() {
                // SAFETY: each struct's pointers follow the documented rules.
                let status = match unsafe { transition_ref(item) } {
                    Ok(t) => match producer.push_ref(&t) {
                        Ok(()) => DQ_STATUS_OK,
                        Err(e) => fail(&e),
                    },
                    Err(status) => status,
                };
                if status != DQ_STATUS_OK {
                    prefix_last_error(&format!("item {i}: "));
                    return status;
                }
                accepted += 1;
            }
            DQ_STATUS_OK
        })();
        if !out_accepted.is_null() {
            // SAFETY: not NULL; the caller promises it is writable.
            unsafe { out_accepted.write(accepted) };
        }
        status
    })
}

fn prefix_last_error(prefix: &str) {
    // SAFETY: dq_last_error_message never returns NULL and the string
    // stays valid until the next set on this thread, which comes after
    // the copy.
    let current = unsafe { std::ffi::CStr::from_ptr(dq_last_error_message()) };
    let message = format!("{prefix}{}", current.to_string_lossy());
    set_last_error(&message);
}

/// Publishes the current lot now. When this returns DQ_STATUS_OK, every
/// accepted transition is in a published lot.
///
/// Errors: DQ_STATUS_IO (the data stays pending; call again later),
/// DQ_STATUS_CLOSED, DQ_STATUS_POISONED.
///
/// Thread safety: may be called from several threads on one handle.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_flush(p: *mut dq_producer) -> dq_status {
    guard(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let producer = try_status!(unsafe { producer(p) });
        match producer.flush() {
            Ok(()) => DQ_STATUS_OK,
            Err(e) => fail(&e),
        }
    })
}

/// Publishes what is pending and closes the producer. The handle stays
/// allocated: later pushes and a second close return DQ_STATUS_CLOSED.
/// On DQ_STATUS_IO the producer stays open, so the caller can free disk
/// space and close again.
///
/// Thread safety: may be called from several threads on one handle.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_close(p: *mut dq_producer) -> dq_status {
    guard(|| {
        // SAFETY: the caller promises a live handle or NULL.
        let producer = try_status!(unsafe { producer(p) });
        match producer.close() {
            Ok(()) => DQ_STATUS_OK,
            Err(e) => fail(&e),
        }
    })
}

/// Releases a producer, first closing it if that was not done. An error
/// of that last close is logged, not returned: call `dq_producer_close`
/// first to see it. NULL is accepted and ignored.
///
/// Call exactly once per handle. Using a handle after this call, or
/// freeing it twice, is undefined behaviour that diskq cannot detect.
///
/// Thread safety: no other call on the same handle may run at the same
/// time or later.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_producer_free(p: *mut dq_producer) {
    if p.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: not NULL; the caller promises a live handle from
        // dq_producer_open that no other thread uses any more.
        drop(unsafe { Box::from_raw(p) });
        DQ_STATUS_OK
    });
}
