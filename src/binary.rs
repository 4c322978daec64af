//! The compact binary lot format, for runs where JSON text costs too
//! much disk and parsing.
//!
//! A binary lot starts with the 4-byte magic `DQB1`, which no JSON lot can
//! start with, so the consumer tells the formats apart by content and
//! lot names stay the same. Records follow, all integers little-endian:
//!
//! ```text
//! record   = u32 payload_len, u32 crc32(payload), payload
//! payload  = u32 n, n x f32 obs,
//!            u32 m, ceil(m / 8) bytes of mask bits (entry i is bit i % 8
//!                   of byte i / 8),
//!            i64 action, f64 reward, u8 done (0 or 1),
//!            u16 len, game id (UTF-8), u16 len, player id (UTF-8),
//!            u64 seq
//! ```
//!
//! Each record carries its own CRC-32, so a torn or corrupted record is
//! found without the lot's checksum, and the lot's name records the
//! record count and the CRC-32 of the whole file like a JSON lot's.

use crate::error::{Error, ErrorKind, Result};
use crate::json::TransitionRef;

/// First bytes of every binary lot.
pub const MAGIC: &[u8; 4] = b"DQB1";

/// Size of a record's header: payload length and CRC-32.
pub(crate) const RECORD_HEADER: usize = 8;

/// Appends `t` as one record to `out`.
///
/// # Errors
///
/// `NonFinite` for a NaN or infinite obs value or reward, `InvalidField`
/// for a mask entry other than 0 or 1 or an id longer than 65535 bytes.
/// On error `out` is left as it was.
pub fn encode_record(t: &TransitionRef<'_>, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    let result = encode_payload(t, out);
    if let Err(e) = result {
        out.truncate(start);
        return Err(e);
    }
    let payload_len = out.len() - start - RECORD_HEADER;
    let Ok(len) = u32::try_from(payload_len) else {
        out.truncate(start);
        let msg = format!("invalid transition: {payload_len} bytes do not fit one record");
        return Err(Error::new(ErrorKind::LineTooLong, msg));
    };
    let crc = crc32fast::hash(&out[start + RECORD_HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn encode_payload(t: &TransitionRef<'_>, out: &mut Vec<u8>) -> Result<()> {
    let invalid = |msg: String| Err(Error::new(ErrorKind::InvalidField, msg));
    let Ok(obs_len) = u32::try_from(t.obs.len()) else {
        return invalid(format!(
            "invalid transition: {} obs values are too many",
            t.obs.len()
        ));
    };
    let Ok(mask_len) = u32::try_from(t.mask.len()) else {
        return invalid(format!(
            "invalid transition: {} mask entries are too many",
            t.mask.len()
        ));
    };

    out.reserve(t.obs.len() * 4 + t.mask.len() / 8 + 64);
    out.extend_from_slice(&obs_len.to_le_bytes());
    for (i, &x) in t.obs.iter().enumerate() {
        if !x.is_finite() {
            return Err(crate::json::non_finite(&format!("obs[{i}]"), f64::from(x)));
        }
        out.extend_from_slice(&x.to_le_bytes());
    }

    out.extend_from_slice(&mask_len.to_le_bytes());
    for (chunk_index, chunk) in t.mask.chunks(8).enumerate() {
        let mut byte = 0u8;
        for (bit, &m) in chunk.iter().enumerate() {
            if m > 1 {
                let i = chunk_index * 8 + bit;
                return invalid(format!(
                    "invalid transition: mask[{i}] is {m}, expected 0 or 1"
                ));
            }
            byte |= m << bit;
        }
        out.push(byte);
    }

    if !t.reward.is_finite() {
        return Err(crate::json::non_finite("reward", t.reward));
    }
    out.extend_from_slice(&t.action.to_le_bytes());
    out.extend_from_slice(&t.reward.to_le_bytes());
    out.push(u8::from(t.done));
    for (field, text) in [("gameId", t.game_id), ("playerId", t.player_id)] {
        let Ok(len) = u16::try_from(text.len()) else {
            return invalid(format!(
                "invalid transition: {field} is longer than 65535 bytes"
            ));
        };
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(&t.seq.to_le_bytes());
    Ok(())
}

/// Reads the payload length and CRC-32 from a record header.
pub(crate) fn parse_header(header: &[u8; RECORD_HEADER]) -> (usize, u32) {
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    (len as usize, crc)
}

/// A transition decoded from a record, borrowing the payload's strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded<'a> {
    pub obs: Vec<f32>,
    pub mask: Vec<u8>,
    pub action: i64,
    pub reward: f64,
    pub done: bool,
    pub game_id: &'a str,
    pub player_id: &'a str,
    pub seq: u64,
}

impl Decoded<'_> {
    pub fn as_ref(&self) -> TransitionRef<'_> {
        TransitionRef {
            obs: &self.obs,
            mask: &self.mask,
            action: self.action,
            reward: self.reward,
            done: self.done,
            game_id: self.game_id,
            player_id: self.player_id,
            seq: self.seq,
        }
    }
}

impl Decoded<'_> {
    /// Checks what decoding leaves open and JSON needs: that every obs
    /// value and the reward are finite.
    pub fn check_finite(&self) -> std::result::Result<(), String> {
        if let Some(i) = self.obs.iter().position(|x| !x.is_finite()) {
            return Err(format!(
                "obs[{i}] is {}, which JSON cannot represent",
                self.obs[i]
            ));
        }
        if !self.reward.is_finite() {
            return Err(format!(
                "reward is {}, which JSON cannot represent",
                self.reward
            ));
        }
        Ok(())
    }
}

/// Decodes a record's payload, after its CRC-32 was checked.
///
/// # Errors
///
/// A message saying what is malformed: a length past the end, a `done`
/// other than 0 or 1, an id that is not UTF-8, bytes left over.
pub(crate) fn decode_payload(payload: &[u8]) -> std::result::Result<Decoded<'_>, String> {
    let mut r = Reader {
        bytes: payload,
        pos: 0,
    };
    let obs_len = r.u32()? as usize;
    let obs_bytes = r.take(obs_len.checked_mul(4).ok_or("obs length overflows")?)?;
    let obs = obs_bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();

    let mask_len = r.u32()? as usize;
    let bits = r.take(mask_len.div_ceil(8))?;
    let mask = (0..mask_len)
        .map(|i| (bits[i / 8] >> (i % 8)) & 1)
        .collect();

    let action = i64::from_le_bytes(r.array()?);
    let reward = f64::from_le_bytes(r.array()?);
    let done = match r.take(1)?[0] {
        0 => false,
        1 => true,
        other => return Err(format!("done is {other}, expected 0 or 1")),
    };
    let game_id = r.text("gameId")?;
    let player_id = r.text("playerId")?;
    let seq = u64::from_le_bytes(r.array()?);
    if r.pos != payload.len() {
        return Err(format!(
            "{} bytes left over after the record",
            payload.len() - r.pos
        ));
    }
    Ok(Decoded {
        obs,
        mask,
        action,
        reward,
        done,
        game_id,
        player_id,
        seq,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("record ends before its field at byte {}", self.pos));
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn text(&mut self, field: &str) -> std::result::Result<&'a str, String> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| format!("{field} is not valid UTF-8"))
    }
}

/// Returns the length of the longest prefix of a binary lot made of
/// whole records whose checksums match, and the number of records in it:
/// what recovery keeps of a dead producer's binary `.part`.
pub(crate) fn complete_prefix(file: &std::fs::File, len: u64) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::FileExt;

    let mut pos = MAGIC.len() as u64;
    let mut records = 0;
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; RECORD_HEADER];
        if pos + RECORD_HEADER as u64 > len {
            return Ok((pos, records));
        }
        file.read_exact_at(&mut header, pos)?;
        let (payload_len, crc) = parse_header(&header);
        let end = pos + (RECORD_HEADER + payload_len) as u64;
        if end > len {
            return Ok((pos, records));
        }
        payload.resize(payload_len, 0);
        file.read_exact_at(&mut payload, pos + RECORD_HEADER as u64)?;
        if crc32fast::hash(&payload) != crc {
            return Ok((pos, records));
        }
        pos = end;
        records += 1;
    }
}

/// Counts the whole records of a binary file from their headers, without
/// reading or checking the payloads. Returns the count and whether bytes
/// of an incomplete record follow them. A file without the magic has no
/// records.
pub(crate) fn count_records(file: &std::fs::File) -> std::io::Result<(u64, bool)> {
    use std::os::unix::fs::FileExt;

    let len = file.metadata()?.len();
    let mut head = [0u8; 4];
    if len < MAGIC.len() as u64 {
        return Ok((0, len > 0));
    }
    file.read_exact_at(&mut head, 0)?;
    if &head != MAGIC {
        return Ok((0, true));
    }
    let mut pos = MAGIC.len() as u64;
    let mut records = 0;
    while pos < len {
        let mut header = [0u8; RECORD_HEADER];
        if pos + RECORD_HEADER as u64 > len {
            return Ok((records, true));
        }
        file.read_exact_at(&mut header, pos)?;
        let (payload_len, _) = parse_header(&header);
        let end = pos + (RECORD_HEADER + payload_len) as u64;
        if end > len {
            return Ok((records, true));
        }
        pos = end;
        records += 1;
    }
    Ok((records, false))
}

/// Copies a lot to `out` as JSON lines: a JSON lot as it is, a binary lot
/// decoded record by record. Returns the number of lines written. Serves
/// inspection tools; the consumer has its own checked path.
///
/// # Errors
///
/// An `io::Error` of kind `InvalidData` for a malformed binary record.
pub fn lot_to_json_lines<R: std::io::BufRead, W: std::io::Write>(
    mut lot: R,
    mut out: W,
) -> std::io::Result<u64> {
    use std::io::{Error as IoError, ErrorKind as IoKind};

    if !lot.fill_buf()?.starts_with(MAGIC) {
        let mut lines = 0;
        let mut line = Vec::new();
        while lot.read_until(b'\n', &mut line)? > 0 {
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            out.write_all(&line)?;
            line.clear();
            lines += 1;
        }
        return Ok(lines);
    }

    lot.consume(MAGIC.len());
    let mut records = 0;
    let mut payload = Vec::new();
    let mut json = Vec::new();
    loop {
        let mut header = [0u8; RECORD_HEADER];
        match lot.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == IoKind::UnexpectedEof => return Ok(records),
            Err(e) => return Err(e),
        }
        let (len, crc) = parse_header(&header);
        payload.resize(len, 0);
        lot.read_exact(&mut payload)?;
        let bad = |msg: String| {
            IoError::new(
                IoKind::InvalidData,
                format!("record {}: {msg}", records + 1),
            )
        };
        if crc32fast::hash(&payload) != crc {
            return Err(bad("checksum mismatch".into()));
        }
        let decoded = decode_payload(&payload).map_err(bad)?;
        json.clear();
        crate::json::encode_transition(&decoded.as_ref(), &mut json)
            .map_err(|e| bad(e.to_string()))?;
        out.write_all(&json)?;
        records += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Transition;

    fn sample() -> Transition {
        Transition {
            obs: vec![0.5, -1.25, 3.0e-7],
            mask: vec![1, 0, 1, 1, 0, 0, 0, 1, 1],
            action: -4,
            reward: 1.0,
            done: true,
            game_id: "g-é".into(),
            player_id: "pB".into(),
            seq: 99,
        }
    }

    #[test]
    fn record_round_trips() {
        let t = sample();
        let mut out = Vec::new();
        encode_record(&t.as_ref(), &mut out).unwrap();
        let (len, crc) = parse_header(out[..8].try_into().unwrap());
        assert_eq!(len, out.len() - 8);
        assert_eq!(crc, crc32fast::hash(&out[8..]));
        let decoded = decode_payload(&out[8..]).unwrap();
        assert_eq!(decoded.obs, t.obs);
        assert_eq!(decoded.mask, t.mask);
        assert_eq!(decoded.game_id, t.game_id);
        assert_eq!(decoded.seq, t.seq);
    }

    #[test]
    fn nan_is_rejected_and_output_kept() {
        let mut t = sample();
        t.obs[1] = f32::NAN;
        let mut out = b"x".to_vec();
        let err = encode_record(&t.as_ref(), &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NonFinite);
        assert!(err.to_string().contains("obs[1]"), "{err}");
        assert_eq!(out, b"x");
    }

    #[test]
    fn non_finite_decoded_values_are_found() {
        let mut out = Vec::new();
        encode_record(&sample().as_ref(), &mut out).unwrap();
        let mut decoded = decode_payload(&out[8..]).unwrap();
        assert_eq!(decoded.check_finite(), Ok(()));
        decoded.obs[2] = f32::INFINITY;
        assert!(decoded.check_finite().unwrap_err().contains("obs[2]"));
        decoded.obs[2] = 0.0;
        decoded.reward = f64::NAN;
        assert!(decoded.check_finite().unwrap_err().contains("reward"));
    }

    #[test]
    fn records_are_counted_from_headers() {
        let mut bytes = MAGIC.to_vec();
        for _ in 0..3 {
            encode_record(&sample().as_ref(), &mut bytes).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.dqb");
        std::fs::write(&path, &bytes).unwrap();
        let count = |path: &std::path::Path| count_records(&std::fs::File::open(path).unwrap());
        assert_eq!(count(&path).unwrap(), (3, false));
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(count(&path).unwrap(), (2, true));
        std::fs::write(&path, MAGIC).unwrap();
        assert_eq!(count(&path).unwrap(), (0, false));
        std::fs::write(&path, b"{}\n").unwrap();
        assert_eq!(count(&path).unwrap(), (0, true));
    }

    #[test]
    fn truncated_payload_is_reported() {
        let mut out = Vec::new();
        encode_record(&sample().as_ref(), &mut out).unwrap();
        for cut in 8..out.len() - 1 {
            assert!(decode_payload(&out[8..cut]).is_err(), "cut at {cut}");
        }
    }
}
