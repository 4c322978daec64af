//! The fast line validator and the fast obs formatter against slow
//! references.
//!
//! * `validate_line` must accept exactly the lines that serde_json reads
//!   as a JSON object, and return them with raw `\n` and `\r` removed and
//!   raw U+2028 and U+2029 escaped. The inputs aim at the 64-byte blocks
//!   of the number skip, the 8-byte words of the string scan and the
//!   UTF-8 check inside strings.
//! * Each obs value that `encode_transition` writes must be the text of
//!   `zmij::Buffer::format_finite`, and read back as the same `f32` bits,
//!   also after a trip through a real queue.
//!
//! Every generated case comes from a fixed seed, so a run is repeatable.

mod common;

use std::path::Path;

use common::rng::Rng;

use diskq::{
    encode_transition, validate_line, Consumer, ConsumerOptions, Producer, ProducerOptions,
    Transition,
};

/// A `max_len` that no line here reaches.
const NO_LIMIT: usize = 1 << 24;

/// Computes the reference result for `line`: its normal form if
/// serde_json reads it as a JSON object, else None.
fn reference(line: &[u8]) -> Option<Vec<u8>> {
    match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => return None,
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        if rest.starts_with("\u{2028}".as_bytes()) {
            out.extend_from_slice(b"\\u2028");
            i += 3;
        } else if rest.starts_with("\u{2029}".as_bytes()) {
            out.extend_from_slice(b"\\u2029");
            i += 3;
        } else {
            if !matches!(line[i], b'\n' | b'\r') {
                out.push(line[i]);
            }
            i += 1;
        }
    }
    Some(out)
}

/// Counts the lines compared with the reference.
#[derive(Default)]
struct Compared(usize);

impl Compared {
    /// Asserts that `validate_line` gives the reference result on `line`.
    fn check(&mut self, line: &[u8]) {
        self.0 += 1;
        let ours = validate_line(line, NO_LIMIT).map(|l| l.into_owned());
        let expected = reference(line);
        match (&ours, &expected) {
            (Ok(got), Some(want)) => assert_eq!(
                got.escape_ascii().to_string(),
                want.escape_ascii().to_string(),
                "normal form of {}",
                line.escape_ascii()
            ),
            (Err(_), None) => {}
            (Ok(_), None) => panic!(
                "validate_line accepted a line that serde_json rejects: {}",
                line.escape_ascii()
            ),
            (Err(e), Some(_)) => panic!(
                "validate_line rejected a line that serde_json accepts: {}: {e}",
                line.escape_ascii()
            ),
        }
    }

    fn check_str(&mut self, line: &str) {
        self.check(line.as_bytes());
    }

    fn report(&self, label: &str) {
        println!("{label}: {} lines compared with serde_json", self.0);
    }
}

/// Returns `line` with `bytes` inserted at `at`.
fn inserted(line: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = line[..at].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(&line[at..]);
    out
}

/// Array bodies made of numbers that the block skip covers, each long
/// enough to span at least three 64-byte blocks.
fn number_bodies() -> Vec<String> {
    let mut rng = Rng::new(0xb0d1e5);
    let shapes: [fn(&mut Rng) -> String; 6] = [
        |r| (r.below(2)).to_string(),
        |r| format!("{}", r.below(1000)),
        |r| format!("-0.{:06}", r.below(1_000_000)),
        |r| format!("{}.{}", r.below(100), r.below(100)),
        |r| format!("-{}", r.below(10)),
        |r| {
            let x = f32::from_bits(r.next_u64() as u32 & 0x3f7f_ffff);
            zmij::Buffer::new().format_finite(x).to_string()
        },
    ];
    let mut bodies = Vec::new();
    for shape in shapes {
        let mut body = String::new();
        while body.len() < 220 {
            if !body.is_empty() {
                body.push(',');
            }
            body.push_str(&shape(&mut rng));
        }
        bodies.push(body);
    }
    // A mix of all shapes.
    let mut body = String::new();
    while body.len() < 220 {
        if !body.is_empty() {
            body.push(',');
        }
        let shape = rng.pick(&shapes);
        body.push_str(&shape(&mut rng));
    }
    bodies.push(body);
    bodies
}

/// Bytes that are inserted into, or written over, arrays of numbers.
const NUMBER_FAULTS: &[&[u8]] = &[
    b"-",
    b"0",
    b"1",
    b"9",
    b".",
    b",",
    b"e",
    b"E",
    b"+",
    b" ",
    b"\t",
    b"\r\n",
    b"]",
    b"[",
    b"x",
    b"\"",
    b"}",
    b"/",
    b":",
    b"\xc3\xa9",
    b"\x00",
    b"e5",
    b"E-3",
    b"00",
    b"-0",
    b".5",
];

#[test]
fn number_faults_at_every_block_offset() {
    let mut compared = Compared::default();
    for body in number_bodies() {
        // Two prefixes, so the array starts at different line offsets.
        for prefix in ["{\"obs\":[", "{\"a\":1, \"o\":["] {
            let line = format!("{prefix}{body}],\"mask\":[0,1]}}");
            let line = line.as_bytes();
            compared.check(line);
            let start = prefix.len();

            for offset in 0..=140.min(body.len()) {
                let at = start + offset;
                for fault in NUMBER_FAULTS {
                    compared.check(&inserted(line, at, fault));
                }
                if offset < body.len() {
                    let mut removed = line.to_vec();
                    removed.remove(at);
                    compared.check(&removed);
                    for fault in NUMBER_FAULTS.iter().filter(|f| f.len() == 1) {
                        let mut replaced = line.to_vec();
                        replaced[at] = fault[0];
                        compared.check(&replaced);
                    }
                }
            }
        }
    }
    compared.report("single faults");
}

#[test]
fn faults_after_the_skip_stops() {
    // A first stop that is valid JSON (the byte-wise checker passes it and
    // the skip runs again), then a second fault anywhere after it.
    let mut compared = Compared::default();
    let body = "0.25,-1,".repeat(40);
    let prefix = "{\"obs\":[";
    for first in [&b" "[..], b"1e5,", b"\r\n", b"-0.5E-2,", b"1 ,", b"\t"] {
        for first_at in (0..130).step_by(3) {
            // Element starts only, so the first stop leaves valid JSON.
            if first_at > 0 && body.as_bytes()[first_at - 1] != b',' {
                continue;
            }
            let line = format!("{prefix}{body}0],\"mask\":[]}}");
            let line = inserted(line.as_bytes(), prefix.len() + first_at, first);
            compared.check(&line);
            let from = prefix.len() + first_at + first.len();
            for second_at in from..(from + 140).min(line.len() - 14) {
                for fault in [&b"."[..], b"-", b"01", b"x", b",", b"e"] {
                    compared.check(&inserted(&line, second_at, fault));
                }
            }
        }
    }
    compared.report("faults after a stop");
}

#[test]
fn number_tokens_at_block_borders() {
    let tokens = [
        "-0",
        "-",
        "1.",
        ".5",
        "1.2.3",
        "01",
        "00",
        "-01",
        "0.0",
        "-0.0",
        "1e",
        "1e+",
        "1E-7",
        "1e+0",
        "0e0",
        "+1",
        "--1",
        "1-2",
        "0x1",
        "Infinity",
        "-Infinity",
        "NaN",
        "nan",
        "1.5e308",
        "1e309",
        "-1e309",
        "1e-400",
        "0.",
        "-.",
        "1..2",
        "1.-2",
        "1.e5",
        "1e5.5",
        "1e05",
        "-0e-0",
        "9007199254740993",
        "18446744073709551616",
        "-9223372036854775809",
        "true",
        "null",
        "\"s\"",
        "[]",
        "[1,2]",
        "[[1],[2,[3]]]",
        "{}",
        "{\"k\":[1]}",
        "1 2",
        " 1",
        "1 ",
        "\r\n1",
        "1\t",
    ];
    let mut compared = Compared::default();
    for filler in ["1,", "0.5,", "-12.75,", "0,"] {
        for count in 0..70 {
            let before = filler.repeat(count);
            for token in tokens {
                for after in [
                    "",
                    ",3,4",
                    ",0.125,-7,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
                ] {
                    compared.check_str(&format!("{{\"v\":[{before}{token}{after}]}}"));
                }
            }
        }
    }
    // The token at every offset from 0 to 140, odd ones too.
    for offset in (0..=140).filter(|&o| o != 1) {
        let before = shifted_filler(offset);
        for token in tokens {
            for after in [
                "",
                ",3,4",
                ",0.125,-7,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
            ] {
                compared.check_str(&format!("{{\"v\":[{before}{token}{after}]}}"));
            }
        }
    }
    compared.report("tokens at block borders");
}

/// Returns valid array elements, each followed by a comma, that fill
/// exactly `len` bytes (`len` other than 1).
fn shifted_filler(len: usize) -> String {
    assert_ne!(len, 1, "no element with its comma takes one byte");
    if len % 2 == 0 {
        "7,".repeat(len / 2)
    } else {
        "-1,".to_string() + &"7,".repeat((len - 3) / 2)
    }
}

#[test]
fn fraction_runs_ending_at_block_borders() {
    // A fraction run of every length, ending at every offset around the
    // first two block borders, followed by each byte that may or may not
    // end it.
    let mut compared = Compared::default();
    for offset in (0..=70).filter(|&o| o != 1) {
        let before = shifted_filler(offset);
        for int in ["0", "-0", "12", "-3"] {
            for digits in 1..=70 {
                let fraction = "5".repeat(digits);
                for end in [
                    ".", "-", ",", "]", "e5", "E-1", " ", "0", ".5", "-5", ",-0.1",
                ] {
                    compared.check_str(&format!("{{\"v\":[{before}{int}.{fraction}{end},1,2,3]}}"));
                }
            }
        }
    }
    compared.report("fraction runs");
}

/// Returns the decimal sum of two non-negative integers in decimal.
fn add_decimal(a: &str, b: &str) -> String {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut digits = Vec::new();
    let mut carry = 0;
    for i in 0..a.len().max(b.len()) {
        let x = if i < a.len() {
            a[a.len() - 1 - i] - b'0'
        } else {
            0
        };
        let y = if i < b.len() {
            b[b.len() - 1 - i] - b'0'
        } else {
            0
        };
        let sum = x + y + carry;
        digits.push(b'0' + sum % 10);
        carry = sum / 10;
    }
    if carry > 0 {
        digits.push(b'0' + carry);
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

#[test]
fn long_digit_runs_and_f64_range() {
    // f64::MAX and the halfway point to 2^1024, above which a reader
    // rounds to infinity, written out as integers.
    let max = format!("{:.0}", f64::MAX);
    let halfway = add_decimal(&max, &format!("{:.0}", 2f64.powi(970)));
    let below_halfway = {
        let mut s = halfway.clone().into_bytes();
        let last = s.len() - 1;
        s[last] -= 1;
        String::from_utf8(s).unwrap()
    };
    let zeros = |n| "0".repeat(n);
    let mut tokens = vec![
        max.clone(),
        halfway.clone(),
        below_halfway.clone(),
        format!("-{halfway}"),
        format!("{below_halfway}.999999999"),
        format!("{halfway}e0"),
        format!("{below_halfway}e0"),
        format!("{halfway}e-1"),
        format!("{max}0"),
        format!("0.{max}e309"),
        format!("0.{below_halfway}e309"),
        format!("0.{halfway}e309"),
        "1.7976931348623157e308".into(),
        "1.7976931348623158e308".into(),
        "1.7976931348623159e308".into(),
        "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174".into(),
        "1e2147483647".into(),
        "1e2147483648".into(),
        "1e-2147483648".into(),
        "1e99999999999999999999".into(),
        "0e99999999999999999999".into(),
        "0.0e99999999999999999999".into(),
        "-0e400".into(),
        "0.000e309".into(),
        format!("0.{}1e400", zeros(400)),
        format!("0.{}1e401", zeros(400)),
        format!("0.{}1e99999999999999999999", zeros(10)),
        "1e-99999999999999999999".into(),
        "4.9e-324".into(),
        "2e-324".into(),
        "2.4703282292062328e-324".into(),
        format!("1{}e-400", zeros(400)),
        format!("1{}e-90", zeros(400)),
        format!("1{}e-91", zeros(400)),
    ];
    for n in (290..=312).chain([400, 1000]) {
        tokens.push(format!("1{}", zeros(n)));
        tokens.push(format!("-9{}", zeros(n)));
        tokens.push(format!("1{}.5", zeros(n)));
        tokens.push(format!("0.{}", "9".repeat(n)));
        tokens.push(format!("0{}", zeros(n)));
        tokens.push(format!("1{}e-10", zeros(n)));
    }

    let mut compared = Compared::default();
    for token in &tokens {
        compared.check_str(&format!("{{\"n\":{token}}}"));
        // Inside an array, starting at every offset of the first block,
        // so the run crosses one or two block borders.
        for count in (0..=130).filter(|&c| c != 1) {
            let before = shifted_filler(count);
            compared.check_str(&format!("{{\"v\":[{before}{token},1,2]}}"));
            compared.check_str(&format!("{{\"v\":[{before}{token}]}}"));
        }
    }
    compared.report("long numbers");
}

/// Pieces put into strings at every position: quotes, escapes, control
/// bytes, valid multi-byte UTF-8, line separators and invalid UTF-8.
fn string_pieces() -> Vec<Vec<u8>> {
    let mut pieces: Vec<Vec<u8>> = [
        &b"\""[..],
        b"\\",
        b"\\\"",
        b"\\\\",
        b"\\/",
        b"\\b\\f\\n\\r\\t",
        b"\\u0041",
        b"\\u00e9",
        b"\\u2028",
        b"\\ud83d\\ude00",
        b"\\ud83d",
        b"\\ude00",
        b"\\ud83d\\u0041",
        b"\\ud83dx",
        b"\\ud83d\\ud83d",
        b"\\u12",
        b"\\u12g4",
        b"\\x",
        b"\\U0041",
        b"\\",
        b"\x7f",
        "\u{e9}".as_bytes(),
        "\u{20ac}".as_bytes(),
        "\u{1f600}".as_bytes(),
        "\u{2028}".as_bytes(),
        "\u{2029}".as_bytes(),
        "a\u{2028}\u{2029}b".as_bytes(),
        "\u{2027}".as_bytes(),
        "\u{ffff}".as_bytes(),
        "\u{10ffff}".as_bytes(),
        b"\x80",
        b"\xbf",
        b"\xc0\xaf",
        b"\xc1\xbf",
        b"\xc3",
        b"\xc3\x28",
        b"\xe0\x80\x80",
        b"\xe0\x9f\xbf",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xe2\x80",
        b"\xe2\x80\xa8\xe2\x80",
        b"\xf0\x80\x80\x80",
        b"\xf0\x9f\x98",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xff",
        b"\xfe",
        "\u{e9}\\\"\u{e9}".as_bytes(),
        "\u{e9}\"".as_bytes(),
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    for control in (0u8..0x20).chain([0x7f]) {
        pieces.push(vec![control]);
    }
    pieces
}

#[test]
fn strings_around_word_borders() {
    let filler = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";
    let pieces = string_pieces();
    let mut compared = Compared::default();
    for len in 0..=40 {
        let text = &filler.as_bytes()[..len];
        for at in 0..=len {
            for piece in &pieces {
                let s = inserted(text, at, piece);
                // As a value, as a key, and as a value after other fields.
                let mut value = b"{\"k\":\"".to_vec();
                value.extend_from_slice(&s);
                value.extend_from_slice(b"\"}");
                compared.check(&value);

                let mut key = b"{\"".to_vec();
                key.extend_from_slice(&s);
                key.extend_from_slice(b"\":[1,2]}");
                compared.check(&key);

                let mut later = b"{\"obs\":[0.5,1],\"gameId\":\"".to_vec();
                later.extend_from_slice(&s);
                later.extend_from_slice(b"\",\"seq\":\"\xc3\xa9\"}");
                compared.check(&later);
            }
        }
    }
    compared.report("strings");
}

/// Valid lines that byte-level edits start from.
const SEED_LINES: &[&str] = &[
    "{}",
    "{\"obs\":[0.1,-0.25,1e-7,3.0],\"mask\":[1,0,1],\"action\":-3,\"reward\":0.5,\"done\":true,\"gameId\":\"g\\\"1\\u0001\u{2028}\",\"playerId\":\"pA\",\"seq\":42}",
    "{ \"a\" : [ 1 , [ 2 , { } ] , \"\u{e9}\u{2029}\" ] ,\r\n \"b\":{\"c\":null,\"d\":false,\"e\":true}}",
    "{\"\u{2028}k\u{2029}\":\"v\u{2028}\",\"n\":-0.0e+0,\"s\":\"\\ud83d\\ude00\u{1f600}\"}",
    "\r\n\t {\"x\":[[],[[]],{}],\"y\":\"\"}\r\n",
    "{\"a\":[0.000001,-1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26]}",
];

#[test]
fn edits_at_every_byte_of_valid_lines() {
    let inserts: Vec<&[u8]> = vec![
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b"\r\n",
        b"\x0c",
        b"\x0b",
        b"\x00",
        "\u{a0}".as_bytes(),
        "\u{feff}".as_bytes(),
        "\u{2028}".as_bytes(),
        "\u{2029}".as_bytes(),
        b"\xe2\x80",
        b"\xc3\xa9",
        b"\xff",
        b"\x80",
        b"\xed\xa0\x80",
        b",",
        b":",
        b"\"",
        b"\\",
        b"[",
        b"]",
        b"{",
        b"}",
        b"0",
        b"-",
        b".",
        b"e",
        b"null",
    ];
    let mut compared = Compared::default();
    for line in SEED_LINES {
        let line = line.as_bytes();
        compared.check(line);
        for at in 0..=line.len() {
            for piece in &inserts {
                compared.check(&inserted(line, at, piece));
            }
            if at < line.len() {
                let mut removed = line.to_vec();
                removed.remove(at);
                compared.check(&removed);
                for piece in inserts.iter().filter(|p| p.len() == 1) {
                    let mut replaced = line.to_vec();
                    replaced[at] = piece[0];
                    compared.check(&replaced);
                }
            }
        }
    }
    compared.report("edited lines");
}

#[test]
fn nesting_limit_matches_serde_json() {
    let inner = [
        "", "[]", "{}", "[1,2]", "1", "[[]]", "[1,[2]]", "[\"s\"]", "[1,{}]",
    ];
    let mut compared = Compared::default();
    for depth in 120..=132 {
        for inner in inner {
            // Arrays inside one object.
            let arrays = format!(
                "{{\"a\":{}{inner}{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            compared.check_str(&arrays);
            // Objects only.
            let objects = format!(
                "{}{}{inner}{}",
                "{\"a\":".repeat(depth),
                "[",
                "]".to_string() + &"}".repeat(depth)
            );
            compared.check_str(&objects);
            // Alternating objects and arrays.
            let mut open = String::new();
            let mut close = String::new();
            for level in 0..depth {
                if level % 2 == 0 {
                    open.push_str("{\"k\":");
                    close.insert(0, '}');
                } else {
                    open.push('[');
                    close.insert(0, ']');
                }
            }
            let value = if depth % 2 == 0 {
                if inner.is_empty() {
                    "0".to_string()
                } else {
                    inner.to_string()
                }
            } else {
                format!("[{inner}]")
            };
            compared.check_str(&format!("{open}{value}{close}"));
        }
    }
    compared.report("nesting");
}

/// Writes a random JSON value: numbers, strings, literals, and arrays or
/// objects up to `depth` levels.
fn random_value(rng: &mut Rng, depth: u32, out: &mut Vec<u8>) {
    let kind = if depth == 0 {
        rng.below(4)
    } else {
        rng.below(7)
    };
    match kind {
        0 => out.extend_from_slice(random_number(rng).as_bytes()),
        1 => random_string(rng, out),
        2 => out.extend_from_slice(rng.pick::<&[u8]>(&[&b"true"[..], b"false", b"null"])),
        3 => {
            // A long array of numbers, the shape the block skip is for.
            out.push(b'[');
            let n = rng.below(90);
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(random_number(rng).as_bytes());
            }
            out.push(b']');
        }
        4 | 5 => {
            out.push(b'[');
            let n = rng.below(5);
            for i in 0..n {
                if i > 0 {
                    out.extend_from_slice(rng.pick::<&[u8]>(&[&b","[..], b",", b", ", b"\r\n,"]));
                }
                random_value(rng, depth - 1, out);
            }
            out.push(b']');
        }
        _ => random_object(rng, depth - 1, out),
    }
}

fn random_object(rng: &mut Rng, depth: u32, out: &mut Vec<u8>) {
    out.push(b'{');
    let n = rng.below(5);
    for i in 0..n {
        if i > 0 {
            out.extend_from_slice(rng.pick::<&[u8]>(&[&b","[..], b",", b" , ", b",\n"]));
        }
        random_string(rng, out);
        out.extend_from_slice(rng.pick::<&[u8]>(&[&b":"[..], b":", b" : ", b":\r\n"]));
        random_value(rng, depth, out);
    }
    out.push(b'}');
}

fn random_number(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => rng.below(2).to_string(),
        1 => format!("-0.{:06}", rng.below(1_000_000)),
        2 => {
            let x = f32::from_bits(rng.next_u64() as u32);
            if x.is_finite() {
                zmij::Buffer::new().format_finite(x).to_string()
            } else {
                "0".into()
            }
        }
        3 => format!("{}", rng.next_u64() as i64),
        4 => format!("{}e{}", rng.below(1000), rng.below(700) as i64 - 350),
        _ => format!("{}.{}", rng.below(100_000), rng.below(100)),
    }
}

fn random_string(rng: &mut Rng, out: &mut Vec<u8>) {
    let pieces: [&[u8]; 12] = [
        b"a",
        b"abcdefg",
        b"0123456789abcdef",
        b" ",
        b"\\\"",
        b"\\\\",
        b"\\n",
        b"\\u00e9",
        "\u{e9}".as_bytes(),
        "\u{2028}".as_bytes(),
        "\u{1f600}".as_bytes(),
        b"\\ud83d\\ude00",
    ];
    out.push(b'"');
    for _ in 0..rng.below(6) {
        out.extend_from_slice(rng.pick::<&[u8]>(&pieces));
    }
    out.push(b'"');
}

#[test]
fn random_lines_with_random_edits() {
    let edits: [&[u8]; 20] = [
        b" ",
        b"\n",
        b"\r",
        b",",
        b"]",
        b"}",
        b"[",
        b"\"",
        b"\\",
        b"-",
        b"0",
        b".",
        b"e",
        b"\x01",
        b"\xe2\x80\xa8",
        b"\xc3",
        b"\xff",
        b"\xed\xa0\x80",
        b"1e999",
        b"\\u",
    ];
    let mut rng = Rng::new(0x005e_ed0f_11e5);
    let mut compared = Compared::default();
    let mut accepted = 0;
    for _ in 0..6000 {
        let mut line = Vec::new();
        random_object(&mut rng, 3, &mut line);
        for _ in 0..rng.below(3) {
            let at = rng.below(line.len() + 1);
            match rng.below(3) {
                0 => line = inserted(&line, at, rng.pick::<&[u8]>(&edits)),
                1 if at < line.len() => {
                    line.remove(at);
                }
                _ if at < line.len() => line[at] = rng.pick(&edits)[0],
                _ => {}
            }
        }
        if reference(&line).is_some() {
            accepted += 1;
        }
        compared.check(&line);
    }
    // The generator must produce both verdicts in good numbers, or the
    // comparison tests little.
    assert!(accepted > 1000, "only {accepted} valid lines");
    assert!(
        compared.0 - accepted > 1000,
        "only {accepted} invalid lines"
    );
    compared.report("random lines");
    println!("random lines: {accepted} of them valid");
}

/// Values at the borders of the formatter's fast path and its special
/// cases, with neighbors.
fn tricky_f32() -> Vec<f32> {
    let mut base = vec![
        0.0,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::EPSILON,
        f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        0.1,
        0.3,
        1.0,
        1e-6,
        1e-7,
        9.999_999e-7,
        1e7,
        1e13,
        8_388_607.5,
        16_777_216.0,
        0.482_913,
    ];
    for e in -149..=127 {
        base.push(2f32.powi(e));
    }
    for e in -45..=38 {
        base.push(format!("1e{e}").parse().unwrap());
        base.push(format!("5e{e}").parse().unwrap());
    }
    let mut values = Vec::new();
    for x in base {
        let bits = x.to_bits() as i64;
        for d in -3..=3 {
            if let Ok(b) = u32::try_from(bits + d) {
                let y = f32::from_bits(b);
                if y.is_finite() && y >= 0.0 {
                    values.push(y);
                    values.push(-y);
                }
            }
        }
    }
    // Odd multiples of powers of two: with a negative exponent their exact
    // decimal ends in 5, so it can lie halfway between two shorter decimals.
    for e in -20..=23 {
        for k in [1u32, 3, 5, 7, 99, 12_345, 8_388_607, 16_777_215] {
            let x = k as f32 * 2f32.powi(e);
            values.push(x);
            values.push(-x);
        }
    }
    values
}

/// Checks every value of `values` through `encode_transition`: the obs
/// text must be zmij's, value by value, and read back bit for bit.
/// Returns the number of values checked.
fn check_obs_text(values: &[f32]) -> usize {
    let mut checked = 0;
    let mut zmij = zmij::Buffer::new();
    for chunk in values.chunks(97) {
        let t = Transition {
            obs: chunk.to_vec(),
            mask: vec![1],
            action: 0,
            reward: 0.0,
            done: false,
            game_id: "g".into(),
            player_id: "p".into(),
            seq: 0,
        };
        let mut line = Vec::new();
        encode_transition(&t.as_ref(), &mut line).unwrap();
        let text = std::str::from_utf8(&line).unwrap();
        let obs = text
            .strip_prefix("{\"obs\":[")
            .and_then(|rest| rest.split_once(']'))
            .map(|(obs, _)| obs)
            .unwrap_or_else(|| panic!("no obs array in {text}"));
        let expected: Vec<String> = chunk
            .iter()
            .map(|&x| zmij.format_finite(x).to_string())
            .collect();
        let got: Vec<&str> = obs.split(',').collect();
        assert_eq!(got.len(), chunk.len(), "obs count in {text}");
        for (i, &x) in chunk.iter().enumerate() {
            assert_eq!(
                got[i],
                expected[i],
                "obs text of bits {:#010x}",
                x.to_bits()
            );
        }

        let back: Transition = serde_json::from_str(text.trim_end()).unwrap();
        for (i, (&x, &y)) in chunk.iter().zip(&back.obs).enumerate() {
            assert_eq!(
                x.to_bits(),
                y.to_bits(),
                "obs[{i}] {x:e} read back as {y:e} from {}",
                got[i]
            );
        }
        checked += chunk.len();
    }
    checked
}

#[test]
fn obs_text_matches_zmij_on_borders_and_ties() {
    let checked = check_obs_text(&tricky_f32());
    println!("border and tie values: {checked}");
}

#[test]
fn obs_text_matches_zmij_on_random_values() {
    let mut rng = Rng::new(0xf32_f32);
    let mut values = Vec::new();

    // Any bit pattern, then bit patterns inside the fast path's binary
    // exponents -19..=22, then short decimals as obs values often are.
    while values.len() < 60_000 {
        let x = f32::from_bits(rng.next_u64() as u32);
        if x.is_finite() {
            values.push(x);
        }
    }
    for _ in 0..60_000 {
        let exponent = (127 - 19 + rng.below(42)) as u32;
        let bits = (rng.next_u64() as u32 & 0x807f_ffff) | exponent << 23;
        values.push(f32::from_bits(bits));
    }
    for _ in 0..30_000 {
        let digits = 1 + rng.below(9) as u32;
        let mantissa = rng.next_u64() % 10u64.pow(digits);
        let exponent = rng.below(30) as i32 - 15;
        values.push(format!("{mantissa}e{exponent}").parse().unwrap());
    }
    // Subnormals.
    for _ in 0..5_000 {
        values.push(f32::from_bits(rng.next_u64() as u32 & 0x807f_ffff));
    }
    let checked = check_obs_text(&values);
    println!("random values: {checked}");
}

#[test]
fn obs_text_matches_zmij_on_whole_ranges() {
    // Every f32 in short runs that start at the fast path's borders and
    // at values where the shortest text changes length.
    let mut values = Vec::new();
    for start in [
        2f32.powi(-19),
        2f32.powi(23),
        1e-6,
        1e-5,
        0.1,
        1.0,
        1e6,
        1e7,
        8_388_607.0,
    ] {
        let bits = start.to_bits();
        for b in bits - 4096..bits + 4096 {
            let x = f32::from_bits(b);
            values.push(x);
            values.push(-x);
        }
    }
    let checked = check_obs_text(&values);
    println!("whole ranges: {checked}");
}

fn read_output_lines(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

#[test]
fn queue_keeps_obs_bits_and_normal_forms() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    let out = root.path().join("out");
    std::fs::create_dir(&queue).unwrap();

    // Typed transitions carrying the tricky values, then raw lines that
    // need normalizing.
    let values = tricky_f32();
    let mut expected_lines = Vec::new();
    let mut pushed = Vec::new();
    let producer = Producer::open(&queue, ProducerOptions::default()).unwrap();
    for (seq, chunk) in values.chunks(50).enumerate() {
        let t = Transition {
            obs: chunk.to_vec(),
            mask: vec![0, 1],
            action: seq as i64,
            reward: f64::from(chunk[0]),
            done: seq % 2 == 0,
            game_id: format!("g\u{2028}{seq}"),
            player_id: "p\u{2029}A".into(),
            seq: seq as u64,
        };
        let mut line = Vec::new();
        encode_transition(&t.as_ref(), &mut line).unwrap();
        line.pop();
        expected_lines.push(String::from_utf8(line).unwrap());
        producer.push(&t).unwrap();
        pushed.push(Some(t));
    }
    for line in SEED_LINES {
        let normal = reference(line.as_bytes()).unwrap();
        expected_lines.push(String::from_utf8(normal).unwrap());
        producer.push_json(line.as_bytes()).unwrap();
        pushed.push(None);
    }
    producer.close().unwrap();

    let mut consumer = Consumer::open(
        &queue,
        ConsumerOptions {
            output_dir: out.clone(),
            ..ConsumerOptions::default()
        },
    )
    .unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();

    let lines = read_output_lines(&out);
    assert_eq!(lines.len(), expected_lines.len(), "output line count");
    for (i, (got, want)) in lines.iter().zip(&expected_lines).enumerate() {
        assert_eq!(got, want, "output line {i}");
        let Some(t) = &pushed[i] else { continue };
        let back: Transition = serde_json::from_str(got).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.obs), bits(&t.obs), "obs bits of line {i}");
        assert_eq!(back.game_id, t.game_id, "gameId of line {i}");
    }
}

/// Encodes every finite `f32` and reads each line back with serde_json,
/// on two threads. Takes a few minutes in release mode: `cargo test
/// --release --test validator_equivalence -- --ignored --nocapture`.
#[test]
#[ignore = "exhaustive, minutes in release mode"]
fn every_f32_reads_back_through_serde_json() {
    fn check(bits: std::ops::Range<u64>) -> u64 {
        let mut checked = 0;
        let mut line = Vec::new();
        let mut t = Transition {
            obs: Vec::with_capacity(4096),
            mask: Vec::new(),
            action: 0,
            reward: 0.0,
            done: false,
            game_id: String::new(),
            player_id: String::new(),
            seq: 0,
        };
        let mut next = bits.start;
        while next < bits.end {
            let end = (next + 4096).min(bits.end);
            t.obs.clear();
            t.obs.extend(
                (next..end)
                    .map(|b| f32::from_bits(b as u32))
                    .filter(|x| x.is_finite()),
            );
            next = end;
            line.clear();
            encode_transition(&t.as_ref(), &mut line).unwrap();
            let back: Transition = serde_json::from_slice(&line).unwrap();
            for (x, y) in t.obs.iter().zip(&back.obs) {
                assert_eq!(x.to_bits(), y.to_bits(), "{x:e} read back as {y:e}");
            }
            assert_eq!(back.obs.len(), t.obs.len());
            checked += t.obs.len() as u64;
        }
        checked
    }

    let half = 1u64 << 31;
    let other = std::thread::spawn(move || check(half..2 * half));
    let checked = check(0..half) + other.join().expect("checking thread panicked");
    println!("finite f32 values read back: {checked}");
    assert_eq!(checked, (1u64 << 32) - (1 << 24), "finite count");
}
