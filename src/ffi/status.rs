//! Status codes and the per-thread last error message.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};

use super::boundary::guard_value;
use crate::error::{Error, ErrorKind};

/// Result of a fallible diskq call: `DQ_STATUS_OK` or one of the
/// `DQ_STATUS_*` codes. Codes never change meaning; new ones are only
/// appended.
pub type dq_status = i32;

/// Success.
pub const DQ_STATUS_OK: dq_status = 0;
/// A required pointer argument was NULL.
pub const DQ_STATUS_NULL_ARGUMENT: dq_status = 1;
/// An argument or option is out of range, or a path is unusable.
pub const DQ_STATUS_INVALID_ARGUMENT: dq_status = 2;
/// A pushed line is not exactly one JSON object in UTF-8.
pub const DQ_STATUS_INVALID_JSON: dq_status = 3;
/// A float is NaN or infinite; the message names the field.
pub const DQ_STATUS_NON_FINITE: dq_status = 4;
/// A transition field is invalid (a string that is not UTF-8, a mask
/// entry other than 0 or 1, a flag other than 0 or 1).
pub const DQ_STATUS_INVALID_FIELD: dq_status = 5;
/// A line is longer than the maximum line length.
pub const DQ_STATUS_LINE_TOO_LONG: dq_status = 6;
/// A system call failed (disk full, I/O error, permissions).
pub const DQ_STATUS_IO: dq_status = 7;
/// The handle was closed.
pub const DQ_STATUS_CLOSED: dq_status = 8;
/// An fsync failed earlier; the producer rejects every call.
pub const DQ_STATUS_POISONED: dq_status = 9;
/// Another process holds this consumer id.
pub const DQ_STATUS_LOCKED: dq_status = 10;
/// diskq panicked; this is a bug in diskq. The handle should be freed.
pub const DQ_STATUS_PANIC: dq_status = 11;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    let clean = message.replace('\0', "\\0");
    let c = CString::new(clean).expect("NUL bytes were replaced");
    LAST_ERROR.with(|slot| *slot.borrow_mut() = c);
}

/// Maps an error to its status code and records its message.
pub(crate) fn fail(err: &Error) -> dq_status {
    set_last_error(&err.to_string());
    match err.kind() {
        ErrorKind::Io => DQ_STATUS_IO,
        ErrorKind::InvalidJson => DQ_STATUS_INVALID_JSON,
        ErrorKind::NonFinite => DQ_STATUS_NON_FINITE,
        ErrorKind::InvalidField => DQ_STATUS_INVALID_FIELD,
        ErrorKind::LineTooLong => DQ_STATUS_LINE_TOO_LONG,
        ErrorKind::InvalidConfig => DQ_STATUS_INVALID_ARGUMENT,
        ErrorKind::Closed => DQ_STATUS_CLOSED,
        ErrorKind::Poisoned => DQ_STATUS_POISONED,
        ErrorKind::Locked => DQ_STATUS_LOCKED,
    }
}

/// Returns the message of the last failed diskq call on this thread, or
/// an empty string if none failed yet.
///
/// Ownership: the string belongs to diskq. It stays valid until the next
/// diskq call on the same thread; copy it to keep it. Never NULL.
///
/// Thread safety: each thread has its own message.
#[no_mangle]
pub extern "C" fn dq_last_error_message() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// Copies this thread's last error message into `buf` of `len` bytes,
/// cut to fit, always NUL-terminated when `len` > 0. Writes the number of
/// bytes copied, without the NUL, to `out_written` (which may be NULL).
///
/// Returns `DQ_STATUS_NULL_ARGUMENT` if `buf` is NULL while `len` > 0.
///
/// Thread safety: each thread has its own message.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_last_error_copy(
    buf: *mut c_char,
    len: usize,
    out_written: *mut usize,
) -> dq_status {
    if buf.is_null() && len > 0 {
        return DQ_STATUS_NULL_ARGUMENT;
    }
    let copied = LAST_ERROR.with(|slot| {
        let message = slot.borrow();
        let bytes = message.as_bytes();
        if len == 0 {
            return 0;
        }
        let n = bytes.len().min(len - 1);
        // SAFETY: the caller promises `buf` points to `len` writable
        // bytes, and n + 1 <= len; the source is our own CString, which
        // cannot overlap a caller's buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
        n
    });
    if !out_written.is_null() {
        // SAFETY: checked for NULL above; the caller promises it is valid.
        unsafe { *out_written = copied };
    }
    DQ_STATUS_OK
}

/// Returns a static, NUL-terminated name for a status code, such as
/// "DQ_STATUS_IO", or "DQ_STATUS_UNKNOWN" for a value that is not one.
///
/// Ownership: static; never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn dq_status_str(status: i32) -> *const c_char {
    let name: &'static CStr = match status {
        DQ_STATUS_OK => c"DQ_STATUS_OK",
        DQ_STATUS_NULL_ARGUMENT => c"DQ_STATUS_NULL_ARGUMENT",
        DQ_STATUS_INVALID_ARGUMENT => c"DQ_STATUS_INVALID_ARGUMENT",
        DQ_STATUS_INVALID_JSON => c"DQ_STATUS_INVALID_JSON",
        DQ_STATUS_NON_FINITE => c"DQ_STATUS_NON_FINITE",
        DQ_STATUS_INVALID_FIELD => c"DQ_STATUS_INVALID_FIELD",
        DQ_STATUS_LINE_TOO_LONG => c"DQ_STATUS_LINE_TOO_LONG",
        DQ_STATUS_IO => c"DQ_STATUS_IO",
        DQ_STATUS_CLOSED => c"DQ_STATUS_CLOSED",
        DQ_STATUS_POISONED => c"DQ_STATUS_POISONED",
        DQ_STATUS_LOCKED => c"DQ_STATUS_LOCKED",
        DQ_STATUS_PANIC => c"DQ_STATUS_PANIC",
        _ => c"DQ_STATUS_UNKNOWN",
    };
    name.as_ptr()
}

/// Returns the version of the library as a static "major.minor.patch"
/// string.
///
/// Ownership: static; never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn dq_version() -> *const c_char {
    guard_value(std::ptr::null(), || {
        const VERSION: &CStr =
            match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
                Ok(v) => v,
                Err(_) => panic!("the package version contains no NUL"),
            };
        VERSION.as_ptr()
    })
}
