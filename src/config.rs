//! Producer and consumer options.

use std::path::PathBuf;
use std::time::Duration;

use crate::archive::Retention;

/// Default maximum number of transitions in one lot.
pub const DEFAULT_MAX_LOT_LINES: u64 = 500;
/// Default maximum size of one lot, in bytes.
pub const DEFAULT_MAX_LOT_BYTES: u64 = 512 * 1024;
/// Default maximum age of a lot before it is published anyway.
pub const DEFAULT_MAX_LOT_AGE: Duration = Duration::from_secs(2);
/// Default maximum length of one JSON line, in bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Default number of lines in one output file before it rolls over.
pub const DEFAULT_MAX_OUTPUT_LINES: u64 = 5000;
/// Default interval between two polls of `incoming/`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default output folder, relative to the working directory.
pub const DEFAULT_OUTPUT_DIR: &str = "dataset/transitions";
/// Default consumer id.
pub const DEFAULT_CONSUMER_ID: &str = "main";

/// Options for [`Producer::open`](crate::Producer::open).
#[derive(Debug, Clone)]
pub struct ProducerOptions {
    /// A lot is published once it holds this many transitions.
    pub max_lot_lines: u64,
    /// A lot is published before it would grow past this many bytes. A
    /// single line longer than this still makes a lot of its own.
    pub max_lot_bytes: u64,
    /// A lot is published once it is this old, even if no push comes to
    /// trigger it: a background thread watches the age. `None` turns the
    /// limit and the thread off.
    pub max_lot_age: Option<Duration>,
    /// Pushed lines longer than this are rejected.
    pub max_line_bytes: usize,
    /// Hand every push to the kernel before it returns, so a crash of the
    /// process loses nothing that `push` accepted. When false, up to
    /// `write_buffer_bytes` of accepted lines wait in memory until the
    /// next write, and only `flush` and `close` acknowledge them.
    pub write_through: bool,
    /// Size of the in-memory buffer in front of the `.part` file.
    pub write_buffer_bytes: usize,
    /// fsync each lot before publishing it and the directory after, so a
    /// published lot survives power loss.
    pub durable: bool,
    /// Publish the `.part` files of dead producers when opening.
    pub recover_on_open: bool,
    /// The encoding of the lots this producer writes.
    pub format: LotFormat,
}

/// How a producer encodes transitions in its lots. Consumers read both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LotFormat {
    /// One JSON object per line: readable with `cat`, any JSON accepted.
    #[default]
    Json,
    /// Length-prefixed binary records with their own CRC-32, float32 obs
    /// and a bit-packed mask. Holds transitions only; consumers turn them
    /// into the same JSON lines as [`LotFormat::Json`].
    Binary,
}

/// How a consumer encodes its output files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputFormat {
    /// One JSON object per line, in `queue_transitions_<time>_<id>.jsonl`.
    #[default]
    JsonLines,
    /// The records of [`LotFormat::Binary`] after the `DQB1` magic, in
    /// `queue_transitions_<time>_<id>.dqb`. Holds transitions only: a lot
    /// with a JSON line that is not one goes to quarantine.
    /// [`crate::lot_to_json_lines`] and `diskq cat` turn a file back into
    /// JSON lines.
    Binary,
}

impl Default for ProducerOptions {
    fn default() -> ProducerOptions {
        ProducerOptions {
            max_lot_lines: DEFAULT_MAX_LOT_LINES,
            max_lot_bytes: DEFAULT_MAX_LOT_BYTES,
            max_lot_age: Some(DEFAULT_MAX_LOT_AGE),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            write_through: false,
            write_buffer_bytes: 64 * 1024,
            durable: false,
            recover_on_open: true,
            format: LotFormat::Json,
        }
    }
}

/// Options for [`Consumer::open`](crate::Consumer::open).
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Folder of the consolidated output files; created if missing.
    pub output_dir: PathBuf,
    /// The encoding of the output files.
    pub output_format: OutputFormat,
    /// An output file rolls over before a lot would take it past this
    /// many lines (records, in binary output). A single lot longer than
    /// this gets a file of its own.
    pub max_output_lines: u64,
    /// Interval between two polls in [`Consumer::run`](crate::Consumer::run).
    pub poll_interval: Duration,
    /// Names this consumer's output files and its lock. At most one live
    /// process per id and queue: ASCII letters, digits, `-` and `_`.
    pub consumer_id: String,
    /// Lines longer than this make their lot invalid.
    pub max_line_bytes: usize,
    /// fsync each output write before archiving its lot, and every
    /// directory after a rename in it.
    pub durable: bool,
    /// Compress each archived lot into `archive/<lot>.done.gz` (needs the
    /// `gzip` feature). Lots are compressed at the end of each poll, off
    /// the path between claim and archive.
    pub compress_archive: bool,
    /// Limits on what `archive/` keeps; the oldest lots beyond them are
    /// deleted. No limit by default.
    pub retention: Retention,
    /// How often the retention limits are applied. Applying them lists
    /// `archive/`, so it is kept off every poll.
    pub retention_interval: Duration,
    /// [`Consumer::run`](crate::Consumer::run) logs a one-line summary
    /// (throughput, backlog, totals) at this interval. `None` turns it off.
    pub summary_interval: Option<Duration>,
    /// Wake [`Consumer::run`](crate::Consumer::run) through an inotify
    /// watch on `incoming/` as soon as a lot is published, with a full
    /// listing every `poll_interval` as a safety net. When false, or when
    /// the watch cannot be set up, the consumer only polls.
    pub watch: bool,
    /// Parse every line of every lot as JSON (the default). When false,
    /// lots that carry a checksum in their name are trusted to come from a
    /// diskq producer, which parsed each line already, and are checked
    /// only by CRC-32, line count and line form (UTF-8, `{` to `}`, no
    /// `\r`). That is several times faster, but a lot forged with a
    /// matching checksum can then carry a line that is not JSON.
    pub full_validation: bool,
    /// How often the consumer publishes `.part` files whose producers
    /// have died. `None` leaves them to `diskq recover` and to producers.
    pub recover_interval: Option<Duration>,
}

impl Default for ConsumerOptions {
    fn default() -> ConsumerOptions {
        ConsumerOptions {
            output_dir: PathBuf::from(DEFAULT_OUTPUT_DIR),
            output_format: OutputFormat::JsonLines,
            max_output_lines: DEFAULT_MAX_OUTPUT_LINES,
            poll_interval: DEFAULT_POLL_INTERVAL,
            consumer_id: DEFAULT_CONSUMER_ID.to_string(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            durable: false,
            full_validation: true,
            watch: true,
            compress_archive: false,
            retention: Retention::default(),
            retention_interval: Duration::from_secs(60),
            summary_interval: Some(Duration::from_secs(60)),
            recover_interval: Some(Duration::from_secs(10)),
        }
    }
}
