//! diskq: a crash-safe disk queue between self-play game bots and the
//! stage that consumes their transitions.
//!
//! Producers append one JSON object per line to a `.part` lot and publish
//! it by an atomic rename to `.ready`. A consumer claims lots by renaming
//! them into `processing/`, appends their lines to rolling JSONL output
//! files and archives them. Every language uses this crate: Rust through
//! [`Producer`] and [`Consumer`], C and Node.js through the C ABI in
//! [`ffi`] (header `include/diskq.h`).
//!
//! # On-disk layout
//!
//! ```text
//! <queue>/incoming/<id>.part                    a live producer's lot
//! <queue>/incoming/<id>.<lines>.<crc32>.ready   published, waiting
//! <queue>/processing/<ready>~<output>~<offset>  claimed by a consumer
//! <queue>/archive/<ready>.done                  consumed
//! <queue>/quarantine/<ready> and <ready>.reason rejected, with the reason
//! <queue>/consumers/<id>.lock, <id>.out         consumer lock, output folder
//! <output>/queue_transitions_<time>_<id>.jsonl  finished output files
//! <output>/queue_transitions_<time>_<id>.jsonl.open   the one being filled
//! <output>/queue_transitions_<time>_<id>.dqb(.open)   the same, binary output
//! ```
//!
//! # Crash states
//!
//! | killed while                    | left on disk                      | recovery                              |
//! |---------------------------------|-----------------------------------|---------------------------------------|
//! | a producer writes a lot         | unlocked `.part`, maybe torn tail | cut the torn line, publish the rest   |
//! | a producer creates a lot        | unlocked `.<id>.new`, empty       | removed                               |
//! | a consumer copies a lot         | claim in `processing/`, output with a partial lot | cut output to the claim's offset, return the lot |
//! | a consumer archives a lot       | claim (output complete) or `.done` | archive the claim, or nothing to do |
//! | a consumer rolls over           | `.jsonl.open` or `.dqb.open`       | torn tail cut, renamed to `.jsonl` or `.dqb` (removed if empty) |
//!
//! Producers publish the leftovers of dead producers when they open, the
//! consumer does it at an interval, and `diskq recover` does both kinds of
//! recovery on demand. A consumer repairs its own id's state when it opens.
//!
//! # Guarantees
//!
//! * A line that `push` accepted reaches the output exactly once as soon
//!   as it is in the `.part` file: at once with
//!   [`ProducerOptions::write_through`], otherwise at the latest when
//!   [`Producer::flush`] or [`Producer::close`] returns. Until then a
//!   crash may lose it, but never duplicates it.
//! * Renames never replace an existing file, and files are created
//!   exclusively.
//! * With `durable` set on both sides, every rename is preceded by an
//!   fsync of the file it publishes and followed by an fsync of the
//!   directories before anything that depends on it, so what was
//!   acknowledged also survives power loss. (A durable consumer shares
//!   these syncs among the lots it claims together.) Without `durable`,
//!   only crashes of processes are covered.
//! * Lots whose checksum, line count or lines are wrong go to
//!   `quarantine/`; the consumer carries on.

#![deny(missing_docs)]

mod archive;
mod binary;
mod cat;
mod config;
mod consumer;
mod error;
pub mod ffi;
mod float;
mod fsio;
mod json;
mod json_numbers;
mod json_syntax;
mod lot;
mod metrics;
mod output;
mod producer;
mod prometheus;
mod recovery;
mod stat;
mod verify;
mod watch;

pub use archive::{apply_retention, Retention, RetentionReport, DONE_GZ_SUFFIX};
pub use binary::{lot_to_json_lines, MAGIC as BINARY_LOT_MAGIC};
pub use cat::{copy_lines, open_lot_file, write_json_lines, CopyReport};
pub use config::{
    ConsumerOptions, LotFormat, OutputFormat, ProducerOptions, DEFAULT_CONSUMER_ID,
    DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_LOT_AGE, DEFAULT_MAX_LOT_BYTES, DEFAULT_MAX_LOT_LINES,
    DEFAULT_MAX_OUTPUT_LINES, DEFAULT_OUTPUT_DIR, DEFAULT_POLL_INTERVAL,
};
pub use consumer::{Consumer, ConsumerStats, PollReport};
pub use error::{Error, ErrorKind, Result};
pub use json::{encode_transition, validate_line, Transition, TransitionRef};
pub use lot::{QueuePaths, ReadyName};
pub use metrics::{Monitor, Throughput, DEFAULT_RESYNC_INTERVAL};
pub use output::{
    BINARY_OPEN_SUFFIX, BINARY_OUTPUT_SUFFIX, OPEN_SUFFIX, OUTPUT_PREFIX, OUTPUT_SUFFIX,
};
pub use producer::{Producer, ProducerStats};
pub use prometheus::{prometheus_text, PrometheusSample};
pub use recovery::{
    recover_consumer, recover_parts, recover_queue, ConsumerRecovery, ConsumerReport, PartReport,
    QueueRecovery,
};
pub use stat::{stat, stat_with, ConsumerState, QueueStats, StatOptions, DEFAULT_STAT_WINDOW};
pub use verify::{verify, Problem, ProblemKind, VerifyOptions, VerifyReport};

/// Returns the output folder that consumer `id` of the queue at `dir`
/// recorded when it last opened.
pub fn recorded_output_dir(dir: &std::path::Path, id: &str) -> Option<std::path::PathBuf> {
    consumer::recorded_output_dir(&QueuePaths::new(dir), id)
}

/// Compiles the Rust examples in README.md as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
