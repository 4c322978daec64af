//! The panic guard and the pointer checks every exported function uses.

use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::status::{
    dq_status, set_last_error, DQ_STATUS_INVALID_ARGUMENT, DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_PANIC,
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
