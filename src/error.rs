//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::Path;

/// A specialized `Result` whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// An error from a producer, a consumer or a maintenance command.
///
/// The message names the file or the field involved. [`Error::kind`] tells
/// the cause, and whether the handle that returned it is still usable.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<io::Error>,
}

/// The cause of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A system call failed: open, write, fsync, rename. The source holds
    /// the `io::Error`. A producer stays usable after a failed write or
    /// rename (the data stays buffered and the call can be retried), but
    /// not after a failed fsync, which poisons it.
    Io,
    /// A pushed line is not one valid JSON object. Nothing was written and
    /// the producer stays usable.
    InvalidJson,
    /// A float field holds NaN or an infinity, which JSON cannot encode.
    /// Nothing was written and the producer stays usable.
    NonFinite,
    /// A transition field is invalid (a string that is not UTF-8, a mask
    /// entry other than 0 or 1). Nothing was written.
    InvalidField,
    /// A line is longer than the configured maximum line length.
    LineTooLong,
    /// An option is out of range, or a path is unusable. Returned by the
    /// `open` functions.
    InvalidConfig,
    /// The producer or consumer was closed. The handle stays closed.
    Closed,
    /// An earlier fsync failed, so the data already handed to the kernel
    /// may be lost. The producer rejects every later call; open a new one.
    Poisoned,
    /// Another consumer process holds this consumer id.
    Locked,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Wraps an I/O error with what was being done and on which path.
    pub(crate) fn io(action: &str, path: &Path, source: io::Error) -> Error {
        Error {
            kind: ErrorKind::Io,
            message: format!("failed to {action} {}: {source}", path.display()),
            source: Some(source),
        }
    }

    /// Returns the cause of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Returns the underlying `io::Error`, if a system call failed.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }

    /// Returns true if the input was rejected and nothing was written, so
    /// the caller can fix the input and go on with the same handle.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::InvalidJson
                | ErrorKind::NonFinite
                | ErrorKind::InvalidField
                | ErrorKind::LineTooLong
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
