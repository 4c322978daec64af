//! JSON line validation and the transition encoder.
//!
//! Every line that enters a lot is one JSON object, valid UTF-8, with no
//! raw `\n` or `\r` and no raw U+2028 or U+2029 (which some JSON-lines
//! readers split on). Pushed lines are checked here; the encoder writes
//! typed transitions in the same form.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::float;
use crate::json_syntax;

/// One self-play transition, as it appears in a lot.
///
/// Serializes with serde to the same bytes as the crate's own encoder, so
/// `serde_json::from_str::<Transition>` reads back any output line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// The observation as the acting player saw it.
    pub obs: Vec<f32>,
    /// Legal-move mask: 1 where the move is legal, else 0.
    pub mask: Vec<u8>,
    /// The move taken.
    pub action: i64,
    /// The reward received for this move.
    pub reward: f64,
    /// True on the last move of the game.
    pub done: bool,
    /// The game's id.
    pub game_id: String,
    /// The acting player's id.
    pub player_id: String,
    /// Position of this transition in the player's game, from 0.
    pub seq: u64,
}

/// A borrowed view of a [`Transition`], so callers that hold the fields
/// elsewhere (the C ABI) can push without copying them.
#[derive(Debug, Clone, Copy)]
pub struct TransitionRef<'a> {
    /// See [`Transition::obs`].
    pub obs: &'a [f32],
    /// See [`Transition::mask`].
    pub mask: &'a [u8],
    /// See [`Transition::action`].
    pub action: i64,
    /// See [`Transition::reward`].
    pub reward: f64,
    /// See [`Transition::done`].
    pub done: bool,
    /// See [`Transition::game_id`].
    pub game_id: &'a str,
    /// See [`Transition::player_id`].
    pub player_id: &'a str,
    /// See [`Transition::seq`].
    pub seq: u64,
}

impl Transition {
    /// Returns a borrowed view of this transition.
    pub fn as_ref(&self) -> TransitionRef<'_> {
        TransitionRef {
            obs: &self.obs,
            mask: &self.mask,
            action: self.action,
            reward: self.reward,
            done: self.done,
            game_id: &self.game_id,
            player_id: &self.player_id,
            seq: self.seq,
        }
    }
}

/// Appends `t` as one JSON line (with its `\n`) to `out`.
///
/// # Errors
///
/// `NonFinite` if an obs value or the reward is NaN or infinite, and
/// `InvalidField` if a mask entry is not 0 or 1. On error `out` is left
/// as it was.
pub fn encode_transition(t: &TransitionRef<'_>, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let result = encode_fields(t, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_fields(t: &TransitionRef<'_>, out: &mut Vec<u8>) -> Result<()> {
    let mut ints = itoa::Buffer::new();

    // Room for the shortest form of every float and mask entry, so the
    // loops below never grow the buffer. An f32 takes at most 17 bytes
    // ("-0.00000123456789"), plus its comma.
    out.reserve(
        96 + t.obs.len() * 18 + t.mask.len() * 2 + t.game_id.len() * 6 + t.player_id.len() * 6,
    );
    out.extend_from_slice(b"{\"obs\":[");
    if let Err(i) = float::write_f32_list(out, t.obs) {
        return Err(non_finite(&format!("obs[{i}]"), f64::from(t.obs[i])));
    }

    out.extend_from_slice(b"],\"mask\":[");
    for (i, &m) in t.mask.iter().enumerate() {
        if m > 1 {
            let msg = format!("invalid transition: mask[{i}] is {m}, expected 0 or 1");
            return Err(Error::new(ErrorKind::InvalidField, msg));
        }
        if i > 0 {
            out.push(b',');
        }
        out.push(b'0' + m);
    }

    out.extend_from_slice(b"],\"action\":");
    out.extend_from_slice(ints.format(t.action).as_bytes());

    if !t.reward.is_finite() {
        return Err(non_finite("reward", t.reward));
    }
    out.extend_from_slice(b",\"reward\":");
    out.extend_from_slice(zmij::Buffer::new().format_finite(t.reward).as_bytes());

    out.extend_from_slice(if t.done {
        b",\"done\":true"
    } else {
        b",\"done\":false"
    });
    out.extend_from_slice(b",\"gameId\":");
    write_json_string(out, t.game_id);
    out.extend_from_slice(b",\"playerId\":");
    write_json_string(out, t.player_id);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(ints.format(t.seq).as_bytes());
    out.extend_from_slice(b"}\n");
    Ok(())
}

pub(crate) fn non_finite(field: &str, value: f64) -> Error {
    let msg = format!(
        "invalid transition: {field} is {value}, and JSON cannot represent NaN or infinities"
    );
    Error::new(ErrorKind::NonFinite, msg)
}

/// Writes `s` as a JSON string. Escapes like serde_json, and also escapes
/// U+2028 and U+2029.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";

    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                Some(if bytes[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                })
            }
            _ => None,
        };
        if let Some(esc) = escape {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(esc);
            i += if b == 0xe2 { 3 } else { 1 };
            start = i;
        } else if b < 0x20 {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
            i += 1;
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Checks that `line` is one JSON object and returns it in line form:
/// raw `\n` and `\r` (which valid JSON holds only as whitespace between
/// tokens) removed, raw U+2028 and U+2029 (which it holds only inside
/// strings) escaped. A trailing `\n` is not expected and is removed too.
///
/// # Errors
///
/// `LineTooLong` over `max_len` bytes, `NonFinite` for a NaN or
/// infinity token, `InvalidJson` for anything else that is not exactly
/// one JSON object. The message names the field where parsing failed.
pub fn validate_line(line: &[u8], max_len: usize) -> Result<Cow<'_, [u8]>> {
    if line.len() > max_len {
        let msg = format!(
            "line of {} bytes exceeds the maximum of {max_len} bytes",
            line.len()
        );
        return Err(Error::new(ErrorKind::LineTooLong, msg));
    }
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => {
            let msg = "invalid JSON line: expected a JSON object starting with `{`";
            return Err(Error::new(ErrorKind::InvalidJson, msg));
        }
        None => {
            return Err(Error::new(
                ErrorKind::InvalidJson,
                "invalid JSON line: empty",
            ))
        }
    }
    // The check covers UTF-8 too. Only a failed line is read again, to
    // say what is wrong with it.
    let Some(facts) = json_syntax::check(line) else {
        if let Err(e) = std::str::from_utf8(line) {
            let msg = format!(
                "invalid JSON line: not valid UTF-8 at byte {}",
                e.valid_up_to()
            );
            return Err(Error::new(ErrorKind::InvalidJson, msg));
        }
        return Err(describe_invalid(line));
    };
    Ok(normalize(line, facts))
}

/// Removes raw line breaks and escapes raw U+2028 and U+2029. Only valid
/// JSON may be passed: there these bytes never sit inside a token.
fn normalize(line: &[u8], facts: json_syntax::Facts) -> Cow<'_, [u8]> {
    // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8; a search for
    // their lead byte finds both in one pass, and JSON lines rarely hold
    // any other character that starts with it. An ASCII line has none.
    let has_break = facts.line_break;
    let has_separator = facts.non_ascii
        && memchr::memchr_iter(0xe2, line).any(|i| {
            line.get(i + 1) == Some(&0x80) && matches!(line.get(i + 2), Some(0xa8 | 0xa9))
        });
    if !has_break && !has_separator {
        return Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\n' | b'\r' => i += 1,
            0xe2 if line.get(i + 1) == Some(&0x80)
                && matches!(line.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                out.extend_from_slice(if line[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Parses an invalid line again, tracking the field path, to build an
/// error that names where it broke.
fn describe_invalid(line: &[u8]) -> Error {
    let path = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(line);
    let err = match (PathSeed { path: &path })
        .deserialize(&mut de)
        .and_then(|_| de.end())
    {
        Ok(()) => return Error::new(ErrorKind::InvalidJson, "invalid JSON line"),
        Err(e) => e,
    };
    let field = path.borrow().join("");
    let field = field.trim_start_matches('.');
    let where_ = if field.is_empty() {
        String::new()
    } else {
        format!(" in field `{field}`")
    };

    if err.to_string().starts_with("number out of range") {
        let msg = format!(
            "invalid JSON line: a number{where_} is beyond the range of f64, \
             which JSON readers turn into an infinity"
        );
        return Error::new(ErrorKind::NonFinite, msg);
    }
    let offset = byte_offset(line, err.line(), err.column());
    // The error of a NaN or infinity token sits where a value should start;
    // other errors near such text (a string holding "NaN") are left alone.
    let text = err.to_string();
    let at_value = ["expected value", "expected ident", "invalid number"]
        .iter()
        .any(|start| text.starts_with(start));
    if let Some(token) = non_finite_token(line, offset).filter(|_| at_value) {
        let msg = format!(
            "invalid JSON line: `{token}`{where_} is not a JSON number; \
             JSON cannot represent NaN or infinities"
        );
        return Error::new(ErrorKind::NonFinite, msg);
    }
    Error::new(
        ErrorKind::InvalidJson,
        format!("invalid JSON line{where_}: {err}"),
    )
}

/// Converts serde_json's 1-based line and column to a byte offset.
fn byte_offset(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match memchr::memchr(b'\n', &text[start..]) {
            Some(p) => start += p + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(text.len())
}

/// Returns the NaN or infinity spelling that starts near `offset`, if any.
fn non_finite_token(line: &[u8], offset: usize) -> Option<&'static str> {
    const TOKENS: [&str; 8] = [
        "-Infinity",
        "Infinity",
        "-inf",
        "inf",
        "NaN",
        "-NaN",
        "nan",
        "-nan",
    ];
    // serde_json reports the column of the last byte it read, which lies
    // somewhere inside the bad token, so look a few bytes back.
    let from = offset.saturating_sub(9);
    let to = (offset + 1).min(line.len());
    for start in from..to {
        for token in TOKENS {
            if line[start..].starts_with(token.as_bytes()) {
                return Some(token);
            }
        }
    }
    None
}

/// A seed that validates any JSON value while recording the path to the
/// value being read, so the path is left pointing at the failure.
struct PathSeed<'p> {
    path: &'p RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            self.path.borrow_mut().push(format!("[{index}]"));
            if seq
                .next_element_seed(PathSeed { path: self.path })?
                .is_none()
            {
                self.path.borrow_mut().pop();
                return Ok(());
            }
            self.path.borrow_mut().pop();
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.path.borrow_mut().push(format!(".{key}"));
            map.next_value_seed(PathSeed { path: self.path })?;
            self.path.borrow_mut().pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transition {
        Transition {
            obs: vec![0.1, -2.5, 1e-7, 3.0],
            mask: vec![1, 0, 1],
            action: -3,
            reward: 0.5,
            done: true,
            game_id: "g\"1\u{1}\u{2028}".into(),
            player_id: "pA".into(),
            seq: 42,
        }
    }

    #[test]
    fn encoder_matches_serde_json_without_separators() {
        let mut t = sample();
        t.game_id = "g\"1\u{1}\t".into();
        let mut out = Vec::new();
        encode_transition(&t.as_ref(), &mut out).unwrap();
        let expected = serde_json::to_string(&t).unwrap() + "\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn encoder_escapes_line_separator() {
        let mut out = Vec::new();
        encode_transition(&sample().as_ref(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\\u2028"), "{text}");
        let back: Transition = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn encoder_rejects_nan_obs_naming_index() {
        let mut t = sample();
        t.obs[2] = f32::NAN;
        let mut out = b"keep".to_vec();
        let err = encode_transition(&t.as_ref(), &mut out).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NonFinite);
        assert!(err.to_string().contains("obs[2]"), "{err}");
        assert_eq!(out, b"keep");
    }

    #[test]
    fn encoder_rejects_infinite_reward() {
        let mut t = sample();
        t.reward = f64::NEG_INFINITY;
        let err = encode_transition(&t.as_ref(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NonFinite);
        assert!(err.to_string().contains("reward"), "{err}");
    }

    #[test]
    fn encoder_rejects_mask_above_one() {
        let mut t = sample();
        t.mask[1] = 7;
        let err = encode_transition(&t.as_ref(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidField);
        assert!(err.to_string().contains("mask[1]"), "{err}");
    }

    #[test]
    fn validate_rejects_nan_token_naming_field() {
        for text in [
            r#"{"reward":NaN}"#,
            r#"{"reward":nan}"#,
            r#"{"a":{"reward":-Infinity}}"#,
        ] {
            let err = validate_line(text.as_bytes(), 1 << 20).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NonFinite, "{text}: {err}");
            assert!(err.to_string().contains("reward"), "{text}: {err}");
        }
    }

    #[test]
    fn validate_names_nested_field() {
        let err = validate_line(br#"{"obs":[1,2,x]}"#, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidJson);
        assert!(err.to_string().contains("obs[2]"), "{err}");
    }

    #[test]
    fn validate_rejects_non_objects() {
        for text in ["[1]", "1", "\"s\"", "", "  ", "{} {}", "{\"a\":1", "null"] {
            let err = validate_line(text.as_bytes(), 1 << 20).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidJson, "{text:?}: {err}");
        }
    }

    #[test]
    fn validate_rejects_bad_utf8() {
        let err = validate_line(b"{\"p\":\"p\xff\"}", 1 << 20).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[test]
    fn validate_compacts_pretty_json() {
        let line = validate_line(
            "{\r\n  \"a\": 1,\n  \"b\": \"x\u{2028}\"\n}\r\n".as_bytes(),
            1 << 20,
        )
        .unwrap();
        assert_eq!(&*line, br#"{  "a": 1,  "b": "x\u2028"}"#.as_slice());
    }

    #[test]
    fn validate_normalizes_each_case_alone() {
        let line = validate_line("{\"b\":\"x\u{2029}y\"}".as_bytes(), 1 << 20).unwrap();
        assert_eq!(&*line, br#"{"b":"x\u2029y"}"#.as_slice());
        let line = validate_line(b"{\"b\":\n1}", 1 << 20).unwrap();
        assert_eq!(&*line, br#"{"b":1}"#.as_slice());
        let line = validate_line(b"{\"b\":\r1}", 1 << 20).unwrap();
        assert_eq!(&*line, br#"{"b":1}"#.as_slice());
        // Other characters outside ASCII stay as they are.
        let line = validate_line("{\"b\":\"\u{e9}\u{2027}\"}".as_bytes(), 1 << 20).unwrap();
        assert!(matches!(line, Cow::Borrowed(_)));
    }

    #[test]
    fn syntax_check_agrees_with_serde_json() {
        let cases = [
            "{}",
            "{ }",
            "[]",
            "{\"a\":[1,2.5,-0.0,1e5,1E-5,2e+3]}",
            "{\"a\":\"\\u00e9\\n\\\"\"}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":+1}",
            "{\"a\":tru}",
            "{\"a\":true,}",
            "{,}",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "[1,]",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\t\"}",
            "{\"a\":[[[[]]]]}",
            "{\"a\":{\"b\":{}}}",
            "{\"a\":[}",
            "{\"a\":{]}",
            "{} x",
            " {} ",
            "{\"a\":null,\"b\":false}",
            "{\"a\":NaN}",
            "\"s\"",
            "1",
            "",
            "{\"a\":\"unterminated}",
            "{\"a\":1e999}",
            "{\"a\":-1e309}",
            "{\"a\":1e308}",
            "{\"a\":1e-999}",
            "{\"a\":\"\\udc00\"}",
            "{\"a\":\"\\ud83d\\ude00\"}",
            "{\"a\":\"\\ud83d\\u0041\"}",
            "{\"a\":\"\\ud83dx\"}",
        ];
        for case in cases {
            let ours = json_syntax::is_json(case.as_bytes());
            let serde = serde_json::from_slice::<serde_json::Value>(case.as_bytes()).is_ok();
            assert_eq!(ours, serde, "{case:?}");
        }
        // UTF-8 is checked inside strings, the only place where JSON
        // allows bytes above 0x7f.
        let byte_cases: [&[u8]; 14] = [
            b"{\"a\":\"0123456789abcdefghij\xff\"}",
            b"{\"a\":\"0123456789abcdefghij\t\"}",
            b"{\"a\":\"0123456789abcdefghij\xc3\xa9\\\"\xc3\xa9\"}",
            b"{\"a\":\"0123456789abcde\xc3\xa9\"}",
            b"{\"a\":\"\xc3\xa9\"}",
            b"{\"a\":\"\xc3\"}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"x\\n\xe2\x80\xa8\\\"\xf0\x9f\x98\x80\"}",
            b"{\"a\":\"\xf0\x9f\x98\\n\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"{\"a\":\"\xc0\xaf\"}",
            b"{\"\xe9\":1}",
            b"{\"a\":1}\xc3\xa9",
            b"{\"a\":[1,\xc3\xa9]}",
        ];
        for case in byte_cases {
            let ours = json_syntax::is_json(case);
            let serde = serde_json::from_slice::<serde_json::Value>(case).is_ok();
            assert_eq!(ours, serde, "{:?}", String::from_utf8_lossy(case));
        }
        for depth in [127, 128, 129, 200] {
            let deep = "[".repeat(depth) + &"]".repeat(depth);
            let serde = serde_json::from_slice::<serde_json::Value>(deep.as_bytes()).is_ok();
            assert_eq!(
                json_syntax::is_json(deep.as_bytes()),
                serde,
                "depth {depth}"
            );
        }
    }

    fn number_token() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            (-1.0f32..1.0).prop_map(|x| x.to_string()),
            (0u8..2).prop_map(|x| x.to_string()),
            "-?(0|[1-9][0-9]{0,4})(\\.[0-9]{1,7})?([eE][-+]?[0-9]{1,3})?",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]

        /// Long arrays of numbers take the block-wise skip; valid or with
        /// a fault anywhere, the verdict must be serde_json's.
        #[test]
        fn number_arrays_agree_with_serde_json(
            mut numbers in proptest::collection::vec(number_token(), 1..200),
            fault in proptest::option::of((
                proptest::arbitrary::any::<(proptest::sample::Index, proptest::sample::Index)>(),
                proptest::sample::select(b"-0123456789.,eE+ ]".to_vec()),
            )),
            sep in "(,|,|,|, )",
        ) {
            use proptest::prelude::*;
            // The fault: one byte inserted into one number.
            if let Some(((token_index, at), byte)) = fault {
                let token_index = token_index.index(numbers.len());
                let token = &mut numbers[token_index];
                token.insert(at.index(token.len() + 1), char::from(byte));
            }
            let line = format!("{{\"obs\":[{}],\"mask\":[0,1]}}", numbers.join(&sep));
            let ours = json_syntax::is_json(line.as_bytes());
            let serde = serde_json::from_str::<serde_json::Value>(&line).is_ok();
            prop_assert_eq!(ours, serde, "{}", line);
        }
    }

    #[test]
    fn validate_enforces_max_length() {
        let err = validate_line(br#"{"a":1}"#, 4).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LineTooLong);
    }
}
