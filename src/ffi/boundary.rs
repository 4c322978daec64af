//! The panic guard and the pointer checks every exported function uses.

use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::status::{
    dq_status, set_last_error, DQ_STATUS_INVALID_ARGUMENT, DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_OK,
    DQ_STATUS_PANIC,
};

/// Runs `body`, turning a panic into `DQ_STATUS_PANIC` with a message.
pub(crate) fn guard(body: impl FnOnce() -> dq_status) -> dq_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(status) => status,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            set_last_error(&format!("internal error in diskq (a bug): {what}"));
            DQ_STATUS_PANIC
        }
    }
}

/// Runs `body` for a function without a status, returning `fallback`
/// if it panics.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Fails with `DQ_STATUS_NULL_ARGUMENT` naming `what` if `ptr` is NULL.
pub(crate) fn check_null<T>(ptr: *const T, what: &str) -> Result<(), dq_status> {
    if ptr.is_null() {
        set_last_error(&format!("{what} is NULL"));
        return Err(DQ_STATUS_NULL_ARGUMENT);
    }
    Ok(())
}

/// Borrows a NUL-terminated path.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that stays valid
/// for `'a`.
pub(crate) unsafe fn path_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a Path, dq_status> {
    check_null(ptr, what)?;
    // SAFETY: not NULL (checked above); the caller promises termination
    // and lifetime.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    if bytes.is_empty() {
        set_last_error(&format!("{what} is empty"));
        return Err(DQ_STATUS_INVALID_ARGUMENT);
    }
    Ok(Path::new(OsStr::from_bytes(bytes)))
}

/// Borrows `len` bytes at `ptr`; NULL with length 0 is empty.
///
/// # Safety
///
/// Unless NULL, `ptr` points to `len` readable bytes valid for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], dq_status> {
    if len == 0 {
        return Ok(&[]);
    }
    check_null(ptr, what)?;
    if len.saturating_mul(std::mem::size_of::<T>()) > isize::MAX as usize {
        set_last_error(&format!("{what} length {len} is too large"));
        return Err(DQ_STATUS_INVALID_ARGUMENT);
    }
    // SAFETY: not NULL, the total size fits in isize (checked above), and
    // the caller promises `len` valid elements for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows a NUL-terminated UTF-8 string field of a transition.
///
/// # Safety
///
/// As [`path_arg`].
pub(crate) unsafe fn str_field<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, dq_status> {
    check_null(ptr, what)?;
    // SAFETY: not NULL (checked above); the caller promises termination
    // and lifetime.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        set_last_error(&format!(
            "invalid transition: {what} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ));
        super::status::DQ_STATUS_INVALID_FIELD
    })
}

/// Reads a 0/1 flag.
pub(crate) fn flag(value: u8, what: &str) -> Result<bool, dq_status> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => {
            set_last_error(&format!("{what} is {other}, expected 0 or 1"));
            Err(DQ_STATUS_INVALID_ARGUMENT)
        }
    }
}

/// Returns the status held by a `Result` of checks, or runs on.
macro_rules! try_status {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(status) => return status,
        }
    };
}
pub(crate) use try_status;

/// Largest `struct_size` accepted in an options struct; anything above
/// is taken for an uninitialized field rather than a newer struct.
const MAX_STRUCT_SIZE: usize = 4096;

/// Writes the first `size` bytes of `value` to `out`, with `value`'s
/// leading `struct_size` field set to the number of bytes written. A
/// caller built against an older header passes its smaller `sizeof` and
/// gets only the fields it knows.
///
/// # Safety
///
/// `out` is NULL or points to `size` writable bytes. `T` is a `repr(C)`
/// struct whose first field is a `usize` named `struct_size`.
pub(crate) unsafe fn write_versioned<T: Copy>(
    out: *mut T,
    size: usize,
    value: T,
    what: &str,
) -> dq_status {
    if let Err(status) = check_null(out, what) {
        return status;
    }
    if size < std::mem::size_of::<usize>() {
        set_last_error(&format!(
            "size {size} is too small for {what}; pass sizeof the struct"
        ));
        return DQ_STATUS_INVALID_ARGUMENT;
    }
    let n = size.min(std::mem::size_of::<T>());
    let mut value = value;
    // SAFETY: T starts with a usize (the caller's contract), so its first
    // bytes are that field; `value` is a local we own.
    unsafe { (&mut value as *mut T).cast::<usize>().write(n) };
    // SAFETY: `out` is not NULL and has `size` >= n writable bytes (the
    // caller's contract); `value` has size_of::<T>() >= n readable bytes.
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), out.cast::<u8>(), n)
    };
    DQ_STATUS_OK
}

/// Reads an options struct whose leading `struct_size` says how many of
/// its bytes the caller filled; fields past that keep `default`'s values.
///
/// # Safety
///
/// `ptr` is not NULL and points to at least `struct_size` readable bytes,
/// with `struct_size` as its first `usize`. `T` as in [`write_versioned`].
pub(crate) unsafe fn read_versioned<T: Copy>(
    ptr: *const T,
    default: T,
    what: &str,
) -> Result<T, dq_status> {
    // SAFETY: the caller promises at least the leading usize is readable.
    let size = unsafe { ptr.cast::<usize>().read_unaligned() };
    if !(std::mem::size_of::<usize>()..=MAX_STRUCT_SIZE).contains(&size) {
        set_last_error(&format!(
            "{what}.struct_size is {size}; fill the struct with its _default function first"
        ));
        return Err(DQ_STATUS_INVALID_ARGUMENT);
    }
    let n = size.min(std::mem::size_of::<T>());
    let mut value = default;
    // SAFETY: the caller promises `size` >= n readable bytes at `ptr`, and
    // every field of these structs accepts any bit pattern (integers and
    // raw pointers).
    unsafe {
        std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), n)
    };
    Ok(value)
}
