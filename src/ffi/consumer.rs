//! `dq_consumer`: the C handle over [`Consumer`].

use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;

use super::boundary::{
    check_null, flag, guard, path_arg, read_versioned, try_status, write_versioned,
};
use super::status::*;
use crate::archive::Retention;
use crate::config::{ConsumerOptions, OutputFormat};
use crate::consumer::Consumer;

/// A consumer consolidating one queue's lots into output files, JSON
/// lines or binary.
///
/// Created by `dq_consumer_open`, released by `dq_consumer_free`.
/// Thread safety: calls on one handle are serialized by an internal lock,
/// so any thread may use it, but `dq_consumer_free` must not race with
/// any other call on it.
pub struct dq_consumer {
    inner: Mutex<Consumer>,
}

/// Options for `dq_consumer_open`. Fill with `dq_consumer_options_default`
/// first, then change what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dq_consumer_options {
    /// Size in bytes of the struct as the caller compiled it, set by
    /// `dq_consumer_options_default`. It lets a library with more fields
    /// read an older caller's struct; do not change it.
    pub struct_size: usize,
    /// Output folder, NUL-terminated; NULL means "dataset/transitions"
    /// relative to the working directory. Borrowed for the call.
    pub output_dir: *const c_char,
    /// Consumer id, NUL-terminated: 1 to 32 ASCII letters, digits, `-`
    /// or `_`; NULL means "main". Borrowed for the call.
    pub consumer_id: *const c_char,
    /// An output file rolls over before a lot would pass this many lines.
    pub max_output_lines: u64,
    /// Lines longer than this make their lot invalid.
    pub max_line_bytes: u64,
    /// 1: fsync output and directories before each lot is archived.
    pub durable: u8,
    /// Milliseconds between scans for dead producers' `.part` lots; 0
    /// turns the scan off.
    pub recover_interval_ms: u64,
    /// 1 (the default): parse every line as JSON. 0: trust lots whose
    /// name carries a checksum, and check them by CRC-32, line count and
    /// line form only. That is faster, but a forged lot may then carry
    /// bad JSON.
    pub full_validation: u8,
    /// 1: compress archived lots into `.done.gz` (needs the `gzip`
    /// feature, on by default).
    pub compress_archive: u8,
    /// Archived lots older than this many milliseconds are deleted; 0
    /// keeps them.
    pub archive_max_age_ms: u64,
    /// The oldest archived lots are deleted until the archive fits in
    /// this many bytes; 0 means no limit.
    pub archive_max_bytes: u64,
    /// DQ_OUTPUT_JSON_LINES (0, the default): output files
    /// `queue_transitions_<time>_<id>.jsonl` of JSON lines.
    /// DQ_OUTPUT_BINARY (1): files `queue_transitions_<time>_<id>.dqb`
    /// holding the binary records of binary lots after the magic "DQB1";
    /// a lot with a JSON line that is not a transition is quarantined.
    /// Added after `archive_max_bytes`: a caller whose `struct_size` ends
    /// before it gets JSON lines.
    pub output_format: u8,
}

/// `dq_consumer_options.output_format`: JSON lines, one object per line.
pub const DQ_OUTPUT_JSON_LINES: u8 = 0;
/// `dq_consumer_options.output_format`: binary records, as in binary lots.
pub const DQ_OUTPUT_BINARY: u8 = 1;

/// Counts of what one `dq_consumer_poll` did.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct dq_poll_result {
    /// Lots appended to the output and archived.
    pub lots: u64,
    /// Lines appended.
    pub lines: u64,
    /// Bytes appended.
    pub bytes: u64,
    /// Lots set aside in quarantine/.
    pub quarantined: u64,
    /// Output files finished (renamed to .jsonl or .dqb).
    pub finished_files: u64,
}

/// Fills `*out` with the default consumer options: output folder
/// "dataset/transitions", id "main", 5000 lines per output file, 16 MiB
/// maximum line, durable off, dead-producer scan every 10000 ms, full
/// validation on, archive kept plain and whole, JSON lines output. Pass
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
pub unsafe extern "C" fn dq_consumer_options_default(
    out: *mut dq_consumer_options,
    size: usize,
) -> dq_status {
    guard(|| {
        // SAFETY: the caller promises `size` writable bytes at `out`.
        unsafe { write_versioned(out, size, default_options(), "options") }
    })
}

fn default_options() -> dq_consumer_options {
    let d = ConsumerOptions::default();
    dq_consumer_options {
        struct_size: std::mem::size_of::<dq_consumer_options>(),
        output_dir: std::ptr::null(),
        consumer_id: std::ptr::null(),
        max_output_lines: d.max_output_lines,
        max_line_bytes: d.max_line_bytes as u64,
        durable: u8::from(d.durable),
        recover_interval_ms: d.recover_interval.map_or(0, |i| i.as_millis() as u64),
        full_validation: u8::from(d.full_validation),
        compress_archive: u8::from(d.compress_archive),
        archive_max_age_ms: 0,
        archive_max_bytes: 0,
        output_format: match d.output_format {
            OutputFormat::Binary => DQ_OUTPUT_BINARY,
            _ => DQ_OUTPUT_JSON_LINES,
        },
    }
}

/// # Safety
///
/// The string pointers in `o` are NULL or NUL-terminated.
unsafe fn convert_options(o: &dq_consumer_options) -> Result<ConsumerOptions, dq_status> {
    let mut opts = ConsumerOptions::default();
    if !o.output_dir.is_null() {
        // SAFETY: the caller promises a NUL-terminated string.
        opts.output_dir = PathBuf::from(unsafe { path_arg(o.output_dir, "output_dir")? });
    }
    if !o.consumer_id.is_null() {
        // SAFETY: not NULL; the caller promises a NUL-terminated string.
        let id = unsafe { CStr::from_ptr(o.consumer_id) }.to_bytes();
        opts.consumer_id = OsStr::from_bytes(id).to_string_lossy().into_owned();
    }
    opts.max_output_lines = o.max_output_lines;
    opts.max_line_bytes = usize::try_from(o.max_line_bytes).map_err(|_| {
        set_last_error("max_line_bytes is too large");
        DQ_STATUS_INVALID_ARGUMENT
    })?;
    opts.durable = flag(o.durable, "durable")?;
    opts.full_validation = flag(o.full_validation, "full_validation")?;
    opts.compress_archive = flag(o.compress_archive, "compress_archive")?;
    opts.retention = Retention {
        max_age: (o.archive_max_age_ms > 0).then(|| Duration::from_millis(o.archive_max_age_ms)),
        max_bytes: (o.archive_max_bytes > 0).then_some(o.archive_max_bytes),
    };
    opts.recover_interval =
        (o.recover_interval_ms > 0).then(|| Duration::from_millis(o.recover_interval_ms));
    opts.output_format = match o.output_format {
        DQ_OUTPUT_JSON_LINES => OutputFormat::JsonLines,
        DQ_OUTPUT_BINARY => OutputFormat::Binary,
        other => {
            set_last_error(&format!(
                "output_format is {other}, expected DQ_OUTPUT_JSON_LINES (0) or DQ_OUTPUT_BINARY (1)"
            ));
            return Err(DQ_STATUS_INVALID_ARGUMENT);
        }
    };
    Ok(opts)
}

/// Opens a consumer on the queue directory `dir` and writes the handle
/// to `*out`. `options` may be NULL for the defaults. Takes the lock of
/// the consumer id and repairs what a crashed consumer with that id left.
///
/// Errors: DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_INVALID_ARGUMENT (bad
/// directory or option), DQ_STATUS_LOCKED (another process runs a
/// consumer with this id on this queue), DQ_STATUS_IO.
///
/// Ownership: free the handle with `dq_consumer_free`.
/// Thread safety: any thread.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_consumer_open(
    dir: *const c_char,
    options: *const dq_consumer_options,
    out: *mut *mut dq_consumer,
) -> dq_status {
    guard(|| {
        try_status!(check_null(out, "out"));
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let dir = try_status!(unsafe { path_arg(dir, "queue directory") });
        let opts = if options.is_null() {
            ConsumerOptions::default()
        } else {
            // SAFETY: not NULL; the caller promises a valid struct.
            // SAFETY: not NULL; the caller promises a struct filled by
            // dq_consumer_options_default, at least struct_size bytes long.
            let options =
                try_status!(unsafe { read_versioned(options, default_options(), "options") });
            // SAFETY: its string pointers are NULL or NUL-terminated.
            try_status!(unsafe { convert_options(&options) })
        };
        match Consumer::open(dir, opts) {
            Ok(consumer) => {
                let handle = Box::into_raw(Box::new(dq_consumer {
                    inner: Mutex::new(consumer),
                }));
                // SAFETY: not NULL; the caller promises writable memory.
                unsafe { out.write(handle) };
                DQ_STATUS_OK
            }
            Err(e) => fail(&e),
        }
    })
}

/// Runs one poll cycle: claims, appends and archives every waiting lot.
/// Writes what it did to `*out_result`, which may be NULL.
///
/// Errors: DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_IO (a lot failed and was
/// returned to incoming/ for the next poll to retry; the other lots of
/// the cycle were still consumed), DQ_STATUS_CLOSED.
///
/// Thread safety: calls on one handle are serialized.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_consumer_poll(
    c: *mut dq_consumer,
    out_result: *mut dq_poll_result,
) -> dq_status {
    guard(|| {
        try_status!(check_null(c, "consumer"));
        // SAFETY: not NULL; the caller promises a live handle.
        let consumer = unsafe { &(*c).inner };
        match consumer.lock().poll() {
            Ok(report) => {
                if !out_result.is_null() {
                    let result = dq_poll_result {
                        lots: report.lots,
                        lines: report.lines,
                        bytes: report.bytes,
                        quarantined: report.quarantined,
                        finished_files: report.finished_files.len() as u64,
                    };
                    // SAFETY: not NULL; the caller promises writable memory.
                    unsafe { out_result.write(result) };
                }
                DQ_STATUS_OK
            }
            Err(e) => fail(&e),
        }
    })
}

/// Finishes the current output file, closes the consumer and releases
/// its id, so another consumer may open with it. Later polls and a second
/// close return DQ_STATUS_CLOSED. If finishing the output fails, the
/// consumer stays open and keeps its id.
///
/// Thread safety: calls on one handle are serialized.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_consumer_close(c: *mut dq_consumer) -> dq_status {
    guard(|| {
        try_status!(check_null(c, "consumer"));
        // SAFETY: not NULL; the caller promises a live handle.
        let consumer = unsafe { &(*c).inner };
        match consumer.lock().close() {
            Ok(()) => DQ_STATUS_OK,
            Err(e) => fail(&e),
        }
    })
}

/// Releases a consumer, closing it first if needed (an error of that
/// close is logged) and releasing its id. NULL is accepted and ignored.
///
/// Call exactly once per handle; using it afterwards is undefined
/// behaviour that diskq cannot detect.
///
/// Thread safety: no other call on the same handle may run at the same
/// time or later.
///
/// # Safety
///
/// Each pointer argument is NULL or valid as described above, and a
/// handle argument comes from its `_open` function and was not freed.
#[no_mangle]
pub unsafe extern "C" fn dq_consumer_free(c: *mut dq_consumer) {
    if c.is_null() {
        return;
    }
    guard(|| {
        // SAFETY: not NULL; the caller promises a live handle that no
        // other thread uses any more.
        drop(unsafe { Box::from_raw(c) });
        DQ_STATUS_OK
    });
}
