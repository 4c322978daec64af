//! Reading any file of a queue as JSON lines: lots in every state
//! (`.part`, `.ready`, claimed, `.done`, quarantined), gzip-compressed
//! archives (`.done.gz`) and output files, for `diskq cat` and
//! `diskq verify`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio;

/// Size of the read buffer in front of a lot file.
const READ_BUFFER: usize = 256 * 1024;

/// Opens a lot or output file for reading its lines. A name ending in
/// `.gz` is decompressed on the fly.
///
/// # Errors
///
/// `Io` if the file cannot be opened, is a symbolic link or is not a
/// regular file. `InvalidConfig` for a `.gz` file when diskq was built
/// without the `gzip` feature.
pub fn open_lot_file(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = fsio::open_regular(path, false).map_err(|e| Error::io("open", path, e))?;
    if path.extension().is_some_and(|ext| ext == "gz") {
        return gzip_reader(path, file);
    }
    Ok(Box::new(BufReader::with_capacity(READ_BUFFER, file)))
}

#[cfg(feature = "gzip")]
fn gzip_reader(_path: &Path, file: File) -> Result<Box<dyn BufRead + Send>> {
    // MultiGzDecoder also reads files made of several gzip members, as
    // `cat a.gz b.gz` makes.
    let decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, file));
    Ok(Box::new(BufReader::with_capacity(READ_BUFFER, decoder)))
}

#[cfg(not(feature = "gzip"))]
fn gzip_reader(path: &Path, _file: File) -> Result<Box<dyn BufRead + Send>> {
    let msg = format!(
        "cannot read {}: diskq was built without the `gzip` feature",
        path.display()
    );
    Err(Error::new(crate::error::ErrorKind::InvalidConfig, msg))
}

/// What [`copy_lines`] and [`write_json_lines`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Complete lines copied, or records decoded from a binary lot.
    pub lines: u64,
    /// True when an incomplete last line or record was left out: a
    /// `.part` lot ends in one while its producer writes.
    pub incomplete_tail: bool,
}

/// Writes the file at `path` to `out` as JSON lines: a JSON lot or output
/// file line by line, a binary lot decoded record by record, a `.gz`
/// file decompressed first. An incomplete last line or record is left
/// out and reported.
///
/// # Errors
///
/// As [`open_lot_file`]; `Io` when a read fails or a binary record is
/// corrupt (the records before it are written). A failed write of `out`
/// is returned as `Io` whose [`Error::io_error`] holds the write's error,
/// such as `BrokenPipe`.
pub fn write_json_lines(path: &Path, out: &mut dyn Write) -> Result<CopyReport> {
    let mut reader = open_lot_file(path)?;
    let binary = reader
        .fill_buf()
        .map_err(|e| Error::io("read", path, e))?
        .starts_with(crate::binary::MAGIC);
    if !binary {
        return copy_lines(&mut reader, out).map_err(|e| Error::io("copy", path, e));
    }
    let mut counted = CountingWriter {
        inner: out,
        lines: 0,
    };
    match crate::binary::lot_to_json_lines(&mut reader, &mut counted) {
        Ok(records) => Ok(CopyReport {
            lines: records,
            incomplete_tail: false,
        }),
        // A record cut short by the end of the file is a torn tail.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(CopyReport {
            lines: counted.lines,
            incomplete_tail: true,
        }),
        Err(e) => Err(Error::io("decode binary lot", path, e)),
    }
}

/// Counts the lines written through it.
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    lines: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies the complete lines of `reader` to `out`, leaving out an
/// incomplete last line.
///
/// # Errors
///
/// The `io::Error` of a failed read or write. A read error names no
/// path; the caller adds it.
pub fn copy_lines(reader: &mut dyn BufRead, out: &mut dyn Write) -> io::Result<CopyReport> {
    let mut report = CopyReport::default();
    // Bytes of a line that started in an earlier buffer and has not ended.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let len = buf.len();
        match memchr::memrchr(b'\n', buf) {
            Some(last) => {
                if !pending.is_empty() {
                    out.write_all(&pending)?;
                    pending.clear();
                }
                out.write_all(&buf[..=last])?;
                report.lines += memchr::memchr_iter(b'\n', &buf[..=last]).count() as u64;
                pending.extend_from_slice(&buf[last + 1..]);
            }
            None => pending.extend_from_slice(buf),
        }
        reader.consume(len);
    }
    report.incomplete_tail = !pending.is_empty();
    Ok(report)
}

/// A reader that computes the CRC-32 of every byte read through it.
pub(crate) struct HashingReader<R> {
    pub inner: R,
    pub crc: crc32fast::Hasher,
}

impl<R: BufRead> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for HashingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        // The bytes being consumed are the front of the buffer that the
        // caller just received from fill_buf, so this call only returns it.
        if let Ok(buf) = self.inner.fill_buf() {
            self.crc.update(&buf[..amount.min(buf.len())]);
        }
        self.inner.consume(amount);
    }
}

/// Reads one line, with its `\n` if any, into `buf` (cleared first).
/// Returns the bytes read, 0 at the end. Past `limit` bytes the rest of
/// the line is read and dropped, and `Ok(None)` marks it as too long.
pub(crate) fn read_bounded_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0usize;
    let mut too_long = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            buf.extend_from_slice(&available[..take]);
            if buf.len() > limit {
                too_long = true;
                buf.clear();
            }
        }
        total += take;
        reader.consume(take);
        if done {
            break;
        }
    }
    if too_long {
        return Ok(None);
    }
    Ok(Some(total))
}

/// Reads a whole small file, such as a quarantined lot's `.reason`.
pub(crate) fn read_small(path: &Path, limit: u64) -> Option<String> {
    let file = File::open(path).ok()?;
    let mut text = String::new();
    file.take(limit).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_left_out() {
        let input = b"{\"a\":1}\n{\"b\":2}\n{\"c\":";
        let mut reader = BufReader::with_capacity(5, &input[..]);
        let mut out = Vec::new();
        let report = copy_lines(&mut reader, &mut out).unwrap();
        assert_eq!(out, b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(report.lines, 2);
        assert!(report.incomplete_tail);
    }

    #[test]
    fn hashing_reader_sees_every_byte() {
        let input = b"one\ntwo\nthree";
        let mut reader = HashingReader {
            inner: BufReader::with_capacity(3, &input[..]),
            crc: crc32fast::Hasher::new(),
        };
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(reader.crc.finalize(), crc32fast::hash(input));
    }

    #[test]
    fn bounded_line_drops_long_lines() {
        let input = b"0123456789\nabc\n";
        let mut reader = BufReader::with_capacity(4, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(read_bounded_line(&mut reader, &mut buf, 5).unwrap(), None);
        assert_eq!(
            read_bounded_line(&mut reader, &mut buf, 5).unwrap(),
            Some(4)
        );
        assert_eq!(buf, b"abc\n");
        assert_eq!(
            read_bounded_line(&mut reader, &mut buf, 5).unwrap(),
            Some(0)
        );
    }
}
