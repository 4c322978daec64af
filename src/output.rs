//! Consolidated output files.
//!
//! A consumer appends to `queue_transitions_<time>_<id>.jsonl.open` and
//! renames it to `queue_transitions_<time>_<id>.jsonl` when it rolls over
//! or closes, so a reader globbing `*.jsonl` only ever sees finished files
//! made of whole lines. `<time>` is UTC, like `20261204T161549.123456Z`.
//!
//! With [`OutputFormat::Binary`] the names end in `.dqb.open` and `.dqb`
//! instead, and a file holds the `DQB1` magic followed by whole records
//! in the format of binary lots (see `binary.rs`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::binary;
use crate::config::OutputFormat;
use crate::error::{Error, Result};
use crate::fsio;

/// Prefix of every output file name.
pub const OUTPUT_PREFIX: &str = "queue_transitions_";
/// Suffix of a finished output file.
pub const OUTPUT_SUFFIX: &str = ".jsonl";
/// Suffix of the output file a consumer is appending to.
pub const OPEN_SUFFIX: &str = ".jsonl.open";
/// Suffix of a finished binary output file.
pub const BINARY_OUTPUT_SUFFIX: &str = ".dqb";
/// Suffix of the binary output file a consumer is appending to.
pub const BINARY_OPEN_SUFFIX: &str = ".dqb.open";

impl OutputFormat {
    /// Returns the suffixes of a finished and of an open output file.
    pub(crate) fn suffixes(self) -> (&'static str, &'static str) {
        match self {
            OutputFormat::JsonLines => (OUTPUT_SUFFIX, OPEN_SUFFIX),
            OutputFormat::Binary => (BINARY_OUTPUT_SUFFIX, BINARY_OPEN_SUFFIX),
        }
    }

    /// Returns the bytes that start every file of this format.
    fn header(self) -> &'static [u8] {
        match self {
            OutputFormat::JsonLines => b"",
            OutputFormat::Binary => binary::MAGIC,
        }
    }
}

/// Returns the format and the part before the suffix of an output file
/// name, finished (`open` false) or open.
pub(crate) fn split_output_name(name: &str, open: bool) -> Option<(OutputFormat, &str)> {
    [OutputFormat::JsonLines, OutputFormat::Binary]
        .into_iter()
        .find_map(|format| {
            let (finished_suffix, open_suffix) = format.suffixes();
            let suffix = if open { open_suffix } else { finished_suffix };
            let base = name.strip_prefix(OUTPUT_PREFIX)?.strip_suffix(suffix)?;
            Some((format, base))
        })
}

/// The output file a consumer is appending to.
#[derive(Debug)]
pub(crate) struct OutputFile {
    pub file: File,
    pub dir: PathBuf,
    /// File name, ending in [`OPEN_SUFFIX`] or [`BINARY_OPEN_SUFFIX`].
    pub name: String,
    pub format: OutputFormat,
    /// Bytes of the header and of committed lots; the file holds nothing
    /// past this.
    pub len: u64,
    /// Lines (or records) of committed lots.
    pub lines: u64,
}

impl OutputFile {
    /// Creates a new output file for consumer `id` in `dir`, holding only
    /// the header of `format`.
    pub fn create(dir: &Path, id: &str, format: OutputFormat, durable: bool) -> Result<OutputFile> {
        let (finished_suffix, open_suffix) = format.suffixes();
        let stamp = timestamp();
        for n in 0u32.. {
            let time = if n == 0 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let base = format!("{OUTPUT_PREFIX}{time}_{id}");
            let name = format!("{base}{open_suffix}");
            let path = dir.join(&name);
            if dir.join(format!("{base}{finished_suffix}")).exists() {
                continue;
            }
            let file = match fsio::create_new(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("create output file", &path, e)),
            };
            // The lock, held as long as the file is open, tells recovery
            // that a live consumer owns it. Consumers of other queues may
            // share the folder and the id, and must not finish it.
            if !fsio::try_lock(&file).map_err(|e| Error::io("lock output file", &path, e))? {
                continue;
            }
            // A crash before the header is whole leaves a file that
            // recovery cuts to nothing and removes. Claims come later, so
            // their offsets never fall inside the header.
            let header = format.header();
            let ready = if header.is_empty() {
                Ok(())
            } else {
                fsio::write_all_at(&file, header, 0)
                    .map_err(|(_, e)| Error::io("write output file", &path, e))
            };
            let ready = ready.and_then(|()| {
                if durable {
                    fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))
                } else {
                    Ok(())
                }
            });
            if let Err(e) = ready {
                // Nothing names the file yet: remove it rather than leave
                // an empty open file for recovery to finish.
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            return Ok(OutputFile {
                file,
                dir: dir.to_path_buf(),
                name,
                format,
                len: header.len() as u64,
                lines: 0,
            });
        }
        unreachable!("the name loop only ends by returning")
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Renames the file to its finished name; removes it if it is empty.
    /// Returns the finished path, if any.
    pub fn finish(self, durable: bool) -> Result<Option<PathBuf>> {
        if durable {
            let path = self.path();
            self.file
                .sync_all()
                .map_err(|e| Error::io("fsync output file", &path, e))?;
        }
        finish_open_file(&self.dir, &self.name, durable)
    }
}

/// Renames the open output file `name` in `dir` to its finished name,
/// never over an existing file, or removes it if it holds no line or
/// record (a binary file with only its magic counts as empty).
pub(crate) fn finish_open_file(dir: &Path, name: &str, durable: bool) -> Result<Option<PathBuf>> {
    let path = dir.join(name);
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io("read output file", &path, e))?
        .len();
    let Some((format, middle)) = split_output_name(name, true) else {
        let msg = format!("{} is not an open output file", path.display());
        return Err(Error::new(crate::error::ErrorKind::InvalidConfig, msg));
    };
    if len <= format.header().len() as u64 {
        std::fs::remove_file(&path).map_err(|e| Error::io("remove empty output file", &path, e))?;
        return Ok(None);
    }
    let base = format!("{OUTPUT_PREFIX}{middle}");
    let (suffix, _) = format.suffixes();
    for n in 0u32.. {
        let finished = if n == 0 {
            dir.join(format!("{base}{suffix}"))
        } else {
            dir.join(format!("{base}-{n}{suffix}"))
        };
        match fsio::rename_noreplace(&path, &finished) {
            Ok(()) => {
                if durable {
                    fsio::sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
                }
                log::info!(target: "queue_consumer", "finished output file {}", finished.display());
                return Ok(Some(finished));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("rename output file to", &finished, e)),
        }
    }
    unreachable!("the name loop only ends by returning")
}

/// Returns the consumer id in an open output file's name, JSON lines or
/// binary, if it is one.
pub(crate) fn open_file_owner(name: &str) -> Option<&str> {
    let (_, middle) = split_output_name(name, true)?;
    let (_time, id) = middle.split_once('_')?;
    Some(id)
}

/// A transition read from a JSON line for a binary output file. A field
/// that a record has no room for is an error rather than dropped.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransitionLine<'a> {
    obs: Vec<f32>,
    mask: Vec<u8>,
    action: i64,
    reward: f64,
    done: bool,
    #[serde(borrow)]
    game_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    player_id: std::borrow::Cow<'a, str>,
    seq: u64,
}

/// Parses a JSON line as a transition and appends it to `out` as one
/// binary record. On error `out` is left as it was, and the message says
/// why the line cannot go to a binary output file.
///
/// NOTE: obs values are parsed as f64 and rounded to f32, as a binary
/// record stores them. A value written by a diskq producer reads back
/// unchanged; a value with more digits than an f32 holds loses them.
pub(crate) fn append_json_as_record(
    line: &[u8],
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    let t: TransitionLine<'_> = serde_json::from_slice(line)
        .map_err(|e| format!("invalid JSON line: binary output holds transitions only: {e}"))?;
    let t = crate::json::TransitionRef {
        obs: &t.obs,
        mask: &t.mask,
        action: t.action,
        reward: t.reward,
        done: t.done,
        game_id: &t.game_id,
        player_id: &t.player_id,
        seq: t.seq,
    };
    binary::encode_record(&t, out).map_err(|e| e.to_string())
}

fn timestamp() -> String {
    humantime::format_rfc3339_micros(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_read_from_open_name() {
        let name = "queue_transitions_20261204T161549.123456Z-1_bot_a.jsonl.open";
        assert_eq!(open_file_owner(name), Some("bot_a"));
        let binary = "queue_transitions_20261204T161549.123456Z_bot-b.dqb.open";
        assert_eq!(open_file_owner(binary), Some("bot-b"));
        assert_eq!(open_file_owner("queue_transitions_x_a.jsonl"), None);
        assert_eq!(open_file_owner("queue_transitions_x_a.dqb"), None);
        assert_eq!(open_file_owner("queue_transitions_x_a.txt.open"), None);
    }

    #[test]
    fn binary_file_starts_with_magic_and_empty_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputFile::create(dir.path(), "m", OutputFormat::Binary, false).unwrap();
        assert!(out.name.ends_with(BINARY_OPEN_SUFFIX), "{}", out.name);
        assert_eq!(out.len, binary::MAGIC.len() as u64);
        assert_eq!(std::fs::read(out.path()).unwrap(), binary::MAGIC);
        let path = out.path();
        assert_eq!(out.finish(false).unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn binary_file_finishes_as_dqb() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputFile::create(dir.path(), "m", OutputFormat::Binary, false).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(out.path())
            .and_then(|mut f| io::Write::write_all(&mut f, &[0; 8]))
            .unwrap();
        let finished = out.finish(false).unwrap().expect("a file with a record");
        let name = finished.file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with(BINARY_OUTPUT_SUFFIX), "{name}");
        assert!(!name.ends_with(BINARY_OPEN_SUFFIX), "{name}");
    }

    #[test]
    fn json_line_becomes_the_record_of_its_transition() {
        let t = crate::json::Transition {
            obs: vec![0.1, -2.5],
            mask: vec![1, 0, 1],
            action: -3,
            reward: 0.5,
            done: true,
            game_id: "g\u{2028}\"".into(),
            player_id: "pA".into(),
            seq: 7,
        };
        let line = serde_json::to_vec(&t).unwrap();
        let mut got = b"x".to_vec();
        append_json_as_record(&line, &mut got).unwrap();
        let mut want = b"x".to_vec();
        binary::encode_record(&t.as_ref(), &mut want).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn json_line_that_is_no_transition_is_rejected() {
        let cases: [&[u8]; 4] = [
            br#"{"not":"a transition"}"#,
            br#"{"obs":[],"mask":[],"action":1,"reward":0,"done":false,"gameId":"g","playerId":"p","seq":0,"extra":1}"#,
            br#"{"obs":[],"mask":[2],"action":1,"reward":0,"done":false,"gameId":"g","playerId":"p","seq":0}"#,
            br#"{"obs":[1e39],"mask":[],"action":1,"reward":0,"done":false,"gameId":"g","playerId":"p","seq":0}"#,
        ];
        for line in cases {
            let mut out = b"x".to_vec();
            let err = append_json_as_record(line, &mut out).unwrap_err();
            assert_eq!(out, b"x", "{err}");
            assert!(err.contains("transition"), "{err}");
        }
    }

    #[test]
    fn timestamp_has_no_separators() {
        let stamp = timestamp();
        assert!(!stamp.contains(':') && !stamp.contains('_'), "{stamp}");
        assert!(stamp.ends_with('Z'), "{stamp}");
    }
}
