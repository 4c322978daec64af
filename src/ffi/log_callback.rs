//! `dq_set_log_callback`: hands diskq's log records to the C host.

use std::ffi::{c_char, c_void, CString};

use parking_lot::RwLock;

use super::boundary::guard;
use super::status::*;

/// Receives one log record. `level` is 1 (error) to 5 (trace); `target`
/// and `message` are NUL-terminated UTF-8, valid only during the call.
/// May be called from any thread, including diskq's own lot age thread.
pub type dq_log_callback = Option<
    unsafe extern "C" fn(
        level: i32,
        target: *const c_char,
        message: *const c_char,
        user_data: *mut c_void,
    ),
>;

struct Sink {
    callback: unsafe extern "C" fn(i32, *const c_char, *const c_char, *mut c_void),
    user_data: usize,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

struct CallbackLogger;

impl log::Log for CallbackLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        SINK.read().is_some()
    }

    fn log(&self, record: &log::Record<'_>) {
        let sink = SINK.read();
        let Some(sink) = sink.as_ref() else { return };
        let clean =
            |s: String| CString::new(s.replace('\0', "\\0")).expect("NUL bytes were replaced");
        let target = clean(record.target().to_string());
        let message = clean(record.args().to_string());
        // SAFETY: the host registered this function for exactly this
        // signature; both strings outlive the call.
        unsafe {
            (sink.callback)(
                record.level() as i32,
                target.as_ptr(),
                message.as_ptr(),
                sink.user_data as *mut c_void,
            )
        };
    }

    fn flush(&self) {}
}

static LOGGER: CallbackLogger = CallbackLogger;

/// Sends diskq's log records up to `max_level` (1 error, 2 warn, 3 info,
/// 4 debug, 5 trace; 0 turns logging off) to `callback` with `user_data`.
/// A NULL callback turns logging off.
///
/// diskq uses the Rust `log` facade. If the process already installed
/// another Rust logger, this returns DQ_STATUS_INVALID_ARGUMENT and
/// records go to that logger.
///
/// Thread safety: any thread; the callback must be safe to call from
/// several threads at once.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_set_log_callback(
    callback: dq_log_callback,
    user_data: *mut c_void,
    max_level: i32,
) -> dq_status {
    guard(|| {
        let filter = match max_level {
            0 => log::LevelFilter::Off,
            1 => log::LevelFilter::Error,
            2 => log::LevelFilter::Warn,
            3 => log::LevelFilter::Info,
            4 => log::LevelFilter::Debug,
            5 => log::LevelFilter::Trace,
            other => {
                set_last_error(&format!("max_level is {other}, expected 0 to 5"));
                return DQ_STATUS_INVALID_ARGUMENT;
            }
        };
        if log::set_logger(&LOGGER).is_err()
            && !std::ptr::eq(
                log::logger() as *const _ as *const u8,
                &LOGGER as *const _ as *const u8,
            )
        {
            set_last_error("another logger is already installed in this process");
            return DQ_STATUS_INVALID_ARGUMENT;
        }
        *SINK.write() = callback.map(|callback| Sink {
            callback,
            user_data: user_data as usize,
        });
        log::set_max_level(if callback.is_some() {
            filter
        } else {
            log::LevelFilter::Off
        });
        DQ_STATUS_OK
    })
}
