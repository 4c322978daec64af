//! `dq_queue_stat`: the numbers of `diskq stat` for C callers.

use std::ffi::c_char;

use super::boundary::{check_null, guard, path_arg, try_status};
use super::status::*;
use crate::stat::{stat_with, StatOptions};

/// A snapshot of one queue, filled by `dq_queue_stat`. Every field is a
/// count, a size in bytes or a time in milliseconds. Fields are never
/// reordered or removed; new ones would come with a new function.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct dq_queue_stats {
    /// `.ready` lots waiting in incoming/.
    pub ready_lots: u64,
    /// Lines in those lots, from their names.
    pub ready_lines: u64,
    /// Bytes in those lots.
    pub ready_bytes: u64,
    /// Age of the oldest waiting lot by modification time; 0 when none
    /// waits.
    pub oldest_ready_age_ms: u64,
    /// `.part` lots being written, or left by dead producers.
    pub part_lots: u64,
    /// Lots claimed by a consumer and not yet archived.
    pub processing_lots: u64,
    /// Time since the oldest claim was made; 0 when there is none.
    pub oldest_processing_age_ms: u64,
    /// Files in archive/, plain and compressed.
    pub archived_lots: u64,
    /// Lines in archive/, from the lot names.
    pub archived_lines: u64,
    /// Lots in quarantine/.
    pub quarantined_lots: u64,
    /// Length of the throughput window (60000).
    pub window_ms: u64,
    /// Lots archived within the window. Lots per second is
    /// `window_lots * 1000.0 / window_ms`.
    pub window_lots: u64,
    /// Lines of those lots.
    pub window_lines: u64,
    /// Uncompressed bytes of those lots.
    pub window_bytes: u64,
    /// Mean lines per lot over the lots archived within the window and
    /// those waiting, rounded down; 0 when there are none.
    pub avg_lot_lines: u64,
    /// Mean bytes per lot over the same lots, rounded down.
    pub avg_lot_bytes: u64,
    /// Consumer ids that have opened this queue.
    pub consumers: u64,
    /// Consumer ids whose lock is held now.
    pub consumers_running: u64,
    /// Finished output files in the consumers' output folders.
    pub output_files: u64,
    /// Lines in the consumers' output files, finished and open.
    pub output_lines: u64,
}

/// Counts what the queue at `dir` holds and how fast it drained over the
/// last 60 seconds, and writes it to `*out`.
///
/// This lists every folder of the queue, `archive/` included, and reads
/// every output file to count its lines: on a queue with a large archive
/// or dataset it takes seconds, so call it from a monitoring thread, not
/// from a bot's hot loop. It reads only, and takes no lock.
///
/// Errors: DQ_STATUS_NULL_ARGUMENT, DQ_STATUS_INVALID_ARGUMENT (`dir` is
/// empty or not a directory), DQ_STATUS_IO (a folder cannot be listed).
///
/// Ownership: `dir` is borrowed for the call; `*out` belongs to the
/// caller.
/// Thread safety: any thread, any number at once.
///
/// # Safety
///
/// `dir` is NULL or a NUL-terminated string; `out` is NULL or points to
/// writable memory for one `dq_queue_stats`.
#[no_mangle]
pub unsafe extern "C" fn dq_queue_stat(dir: *const c_char, out: *mut dq_queue_stats) -> dq_status {
    guard(|| {
        try_status!(check_null(out, "out"));
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let dir = try_status!(unsafe { path_arg(dir, "queue directory") });
        let s = match stat_with(dir, &StatOptions::default()) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
        let stats = dq_queue_stats {
            ready_lots: s.ready_lots,
            ready_lines: s.ready_lines,
            ready_bytes: s.ready_bytes,
            oldest_ready_age_ms: s.oldest_ready_age_ms.unwrap_or(0),
            part_lots: s.part_lots,
            processing_lots: s.processing_lots,
            oldest_processing_age_ms: s.oldest_processing_age_ms.unwrap_or(0),
            archived_lots: s.archived_lots,
            archived_lines: s.archived_lines,
            quarantined_lots: s.quarantined_lots,
            window_ms: s.window_ms,
            window_lots: s.window_lots,
            window_lines: s.window_lines,
            window_bytes: s.window_bytes,
            avg_lot_lines: s.avg_lot_lines as u64,
            avg_lot_bytes: s.avg_lot_bytes as u64,
            consumers: s.consumers.len() as u64,
            consumers_running: s.consumers_running(),
            output_files: s.output_files,
            output_lines: s.output_lines,
        };
        // SAFETY: not NULL (checked above); the caller promises writable
        // memory for one dq_queue_stats.
        unsafe { out.write(stats) };
        DQ_STATUS_OK
    })
}
