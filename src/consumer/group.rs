//! Group commit for the durable consumer.
//!
//! A durable consumer syncs twice after each claim, once for the output
//! and twice after each archive rename. For a run of waiting lots it
//! claims several at once, each under the offset its lines will have, and
//! syncs the claims once. Then it copies the lots one after another,
//! syncs the output once, and archives them with one more pair of folder
//! syncs.
//!
//! The offsets are computed from the lot files' sizes, so they hold only
//! while each lot reaches the output byte for byte. That is the case for
//! lots written by a diskq producer into a JSON lines output. A lot may
//! turn out otherwise: it changes on the way, is bad, or cannot be read.
//! Then the lots claimed after it are handed back to `incoming/` before
//! anything else is written. A lot whose lines were rewritten is committed
//! with the lots before it, since its own offset is right. A bad or
//! unreadable lot is settled alone, as outside a group, after the lots
//! before it are committed.
//!
//! After a crash, recovery archives each claim whose bytes are complete
//! in the output and cuts the output at the first one that is not (see
//! [`crate::recovery::recover_consumer`]). Every archive rename of a group
//! follows the sync of all its bytes, so no lot after a cut can be
//! archived.

use std::path::PathBuf;

use super::{Consumer, CopiedLot, PollReport};
use crate::config::OutputFormat;
use crate::error::{Error, Result};
use crate::fsio;
use crate::lot::ReadyName;

/// Most lots claimed together. A group is also cut at the output's line
/// limit, so that it never spans a rollover.
const MAX_GROUP: usize = 32;

/// A lot claimed as part of a group.
struct Claimed {
    /// Position of its name among the names of the group.
    index: usize,
    name: String,
    ready: ReadyName,
    path: PathBuf,
    /// Offset of its first line in the output.
    offset: u64,
    /// Size of the lot file, which is also the number of bytes its lines
    /// take in the output when they are copied unchanged.
    size: u64,
}

impl Consumer {
    /// Returns how many of the waiting lots `names` to consume as one
    /// group: 1 (no group) unless the consumer is durable and writes JSON
    /// lines, and the lots carry checksums.
    pub(super) fn group_len(&self, names: &[String]) -> usize {
        if !self.opts.durable || self.opts.output_format != OutputFormat::JsonLines {
            return 1;
        }
        let max_lines = self.opts.max_output_lines;
        let mut lines = self.output.as_ref().map_or(0, |out| out.lines);
        let mut count = 0;
        for name in names.iter().take(MAX_GROUP) {
            let Some((lot_lines, _)) = ReadyName::parse(name).and_then(|r| r.checksum) else {
                break;
            };
            // A lot of no lines is bad, and breaks the group. Committing
            // the lots before it must not fill the output, or the claim
            // made for it would name a finished file.
            if lot_lines == 0 {
                break;
            }
            if lines + lot_lines > max_lines {
                // The first lot rolls the output over before it is claimed.
                if count > 0 || lines == 0 {
                    break;
                }
                lines = 0;
            }
            lines += lot_lines;
            count += 1;
        }
        count.max(1)
    }

    /// Consumes `names` (all with checksums, as [`Consumer::group_len`]
    /// chose them) with one sync of the claims, one of the output and one
    /// of the archive for all of them. Returns how many of the names it
    /// dealt with: all of them, or, after a lot that broke the group, the
    /// names up to that lot. The lots after it are back in `incoming/`.
    pub(super) fn consume_group(
        &mut self,
        names: &[String],
        report: &mut PollReport,
    ) -> (usize, Result<()>) {
        let first = ReadyName::parse(&names[0]).expect("group_len checked the names");
        if let Err(e) = self.prepare_output(&first, report) {
            return (names.len(), Err(e));
        }
        let (claims, claim_error) = self.claim_group(names);
        // The names up to the last claim, or up to a claim that failed.
        let handled = match (&claim_error, claims.last()) {
            (Some((index, _)), _) => index + 1,
            (None, Some(lot)) => lot.index + 1,
            (None, None) => names.len(),
        };
        let claim_error = claim_error.map(|(_, e)| e);
        let result = self.settle_group(&claims, report);
        match (result, claim_error) {
            // The lots after the one that broke the group, including one
            // whose claim failed, are retried after it.
            (Ok(Some(index)), _) => (index + 1, Ok(())),
            (Ok(None), error) => (handled, error.map_or(Ok(()), Err)),
            (Err(e), _) => (handled, Err(e)),
        }
    }

    /// Syncs the claims of a group, copies the lots and commits them.
    /// Returns the index in the names of the lot that broke the group, if
    /// one did.
    fn settle_group(
        &mut self,
        claims: &[Claimed],
        report: &mut PollReport,
    ) -> Result<Option<usize>> {
        if claims.is_empty() {
            return Ok(None);
        }
        self.sync_claims()?;

        let mut copied = Vec::with_capacity(claims.len());
        for (i, lot) in claims.iter().enumerate() {
            let copy = if crate::archive::is_archived(&self.paths.archive, &lot.name) {
                None
            } else {
                self.copy_lot(&lot.path, &lot.ready, lot.offset).ok()
            };
            let unchanged = copy
                .as_ref()
                .is_some_and(|copy| copy.unchanged && copy.bytes == lot.size);
            if let Some(copy) = &copy {
                copied.push(CopiedLot {
                    name: lot.name.clone(),
                    claimed: lot.path.clone(),
                    lines: copy.lines,
                    bytes: copy.bytes,
                });
            }
            if unchanged {
                continue;
            }

            // The claims after this lot assumed its size: hand them back
            // before another byte is written.
            self.unclaim(&claims[i + 1..])?;
            if copy.is_some() {
                // Its lines reached the output, rewritten, right after the
                // lots before it: commit them all.
                self.commit(&copied, report)?;
                return Ok(Some(lot.index));
            }
            // It is bad or could not be read: commit the lots before it,
            // then settle it alone from its offset, which is now the end
            // of the committed output.
            self.commit(&copied, report)?;
            if self.output.is_none() {
                // The commit filled and finished the output, which this
                // lot's claim names: hand it back to be claimed anew.
                // (`group_len` keeps groups below the line limit, so this
                // is a safety net.)
                self.unclaim(std::slice::from_ref(lot))?;
                return Ok(Some(lot.index));
            }
            self.cut_output()?;
            self.settle(&lot.name, &lot.ready, lot.path.clone(), report)?;
            return Ok(Some(lot.index));
        }
        self.commit(&copied, report)?;
        Ok(None)
    }

    /// Claims the lots of a group in order, each at the offset after the
    /// one before. Stops at the first claim that fails. That error comes
    /// back with the index of its name beside the claims made, to be
    /// returned once they are settled.
    fn claim_group(&mut self, names: &[String]) -> (Vec<Claimed>, Option<(usize, Error)>) {
        let mut claims: Vec<Claimed> = Vec::with_capacity(names.len());
        let mut offset = self.output.as_ref().map_or(0, |out| out.len);
        for (index, name) in names.iter().enumerate() {
            let path = match self.claim(name, offset) {
                Ok(Some(path)) => path,
                // Another consumer took it.
                Ok(None) => continue,
                Err(e) => return (claims, Some((index, e))),
            };
            let ready = ReadyName::parse(name).expect("group_len checked the names");
            // A lot whose size cannot be read ends the group: the copy
            // reports what is wrong with it.
            let size = std::fs::symlink_metadata(&path)
                .ok()
                .filter(|meta| meta.is_file())
                .map(|meta| meta.len());
            claims.push(Claimed {
                index,
                name: name.clone(),
                ready,
                path,
                offset,
                size: size.unwrap_or(0),
            });
            match size {
                Some(size) => offset += size,
                None => break,
            }
        }
        (claims, None)
    }

    /// Returns claimed lots to `incoming/` and syncs both folders. If that
    /// fails, recovery settles them at the next poll.
    fn unclaim(&mut self, claims: &[Claimed]) -> Result<()> {
        if claims.is_empty() {
            return Ok(());
        }
        for lot in claims {
            let to = self.paths.incoming.join(&lot.name);
            if let Err(e) = fsio::rename_noreplace(&lot.path, &to) {
                self.needs_recovery = true;
                return Err(Error::io("return lot to", &to, e));
            }
        }
        if self.opts.durable {
            self.sync_claims()?;
        }
        Ok(())
    }
}
