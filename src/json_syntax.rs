//! A JSON syntax checker that allocates nothing for the usual nesting
//! depth. It accepts the texts that serde_json parses into values, by the
//! RFC 8259 grammar plus three limits that serde_json also enforces:
//! nesting up to 127 levels, numbers within the range of f64 (a reader
//! would turn a larger one into an infinity), and `\u` escapes that form
//! valid UTF-16 (no lone surrogates). Bytes above 0x7f can only sit
//! inside strings in valid JSON, so UTF-8 is checked there, string by
//! string, and the rest of the text needs no second pass.

use crate::json_numbers;

/// Properties of a text that passed the check, so that the caller does
/// not have to scan it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// A raw `\n` or `\r` occurs (as whitespace between tokens).
    pub(crate) line_break: bool,
    /// A byte above 0x7f occurs (inside a string).
    pub(crate) non_ascii: bool,
}

/// Returns true if `text` is one JSON value in valid UTF-8, with optional
/// whitespace around it.
#[cfg(test)]
pub(crate) fn is_json(text: &[u8]) -> bool {
    check(text).is_some()
}

/// Checks that `text` is one JSON value in valid UTF-8, with optional
/// whitespace around it. Returns `None` if it is not.
pub(crate) fn check(text: &[u8]) -> Option<Facts> {
    let mut checker = Checker {
        text,
        pos: 0,
        inline: [0; INLINE_DEPTH],
        depth: 0,
        deep: Vec::new(),
        facts: Facts {
            line_break: false,
            non_ascii: false,
        },
    };
    checker.run().then_some(checker.facts)
}

const INLINE_DEPTH: usize = 32;

/// Deepest nesting accepted, as in serde_json, whose limit of 128 counts
/// the level that fails.
const MAX_DEPTH: usize = 127;

/// End state of a run of numbers at the start of an array.
enum Run {
    /// The array closed after numbers only (or was empty).
    Closed,
    /// An element is not a number: the general loop takes over there.
    Other,
    /// A number or separator is malformed.
    Invalid,
}

struct Checker<'a> {
    text: &'a [u8],
    pos: usize,
    // The open brackets, innermost last: the first INLINE_DEPTH in a
    // fixed array, the rest on the heap.
    inline: [u8; INLINE_DEPTH],
    depth: usize,
    deep: Vec<u8>,
    facts: Facts,
}

impl Checker<'_> {
    fn run(&mut self) -> bool {
        loop {
            // A value starts here.
            self.skip_ws();
            let Some(&b) = self.text.get(self.pos) else {
                return false;
            };
            // Every array or object counts toward the nesting limit, also
            // those closed at once or read as a run of numbers.
            if matches!(b, b'{' | b'[') && self.depth >= MAX_DEPTH {
                return false;
            }
            let ok = match b {
                b'{' => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        true
                    } else {
                        if !self.push(b'{') || !self.key() {
                            return false;
                        }
                        continue;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    self.skip_ws();
                    match self.number_run() {
                        Run::Closed => true,
                        Run::Invalid => false,
                        Run::Other => {
                            if !self.push(b'[') {
                                return false;
                            }
                            continue;
                        }
                    }
                }
                b'"' => self.string(),
                b'-' | b'0'..=b'9' => self.number(),
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                b'n' => self.literal(b"null"),
                _ => false,
            };
            if !ok {
                return false;
            }

            // After a value: close what is finished, then expect the next
            // element or member.
            loop {
                self.skip_ws();
                let Some(top) = self.top() else {
                    return self.pos == self.text.len();
                };
                match (self.peek(), top) {
                    (Some(b','), b'{') => {
                        self.pos += 1;
                        self.skip_ws();
                        if !self.key() {
                            return false;
                        }
                        break;
                    }
                    (Some(b','), _) => {
                        self.pos += 1;
                        break;
                    }
                    (Some(b'}'), b'{') | (Some(b']'), b'[') => {
                        self.pos += 1;
                        self.pop();
                    }
                    _ => return false,
                }
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => {}
                b'\n' | b'\r' => self.facts.line_break = true,
                _ => return,
            }
            self.pos += 1;
        }
    }

    /// Opens an array or object; returns false past the nesting limit.
    #[must_use]
    fn push(&mut self, b: u8) -> bool {
        if self.depth >= MAX_DEPTH {
            return false;
        }
        if self.depth < INLINE_DEPTH {
            self.inline[self.depth] = b;
        } else {
            self.deep.push(b);
        }
        self.depth += 1;
        true
    }

    fn pop(&mut self) {
        self.depth -= 1;
        if self.depth >= INLINE_DEPTH {
            self.deep.pop();
        }
    }

    fn top(&self) -> Option<u8> {
        match self.depth {
            0 => None,
            d if d <= INLINE_DEPTH => Some(self.inline[d - 1]),
            _ => self.deep.last().copied(),
        }
    }

    /// Reads `"key"` and the `:` after it, at the current position.
    fn key(&mut self) -> bool {
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.skip_ws();
        if self.peek() != Some(b':') {
            return false;
        }
        self.pos += 1;
        true
    }

    fn string(&mut self) -> bool {
        self.pos += 1;
        loop {
            let rest = &self.text[self.pos..];
            let Some((i, unusual)) = quote_or_backslash(rest) else {
                return false;
            };
            if unusual {
                let span = &rest[..i];
                if span.iter().any(|&c| c < 0x20) {
                    return false;
                }
                // A multi-byte character cannot contain `"` or `\`, so
                // each span between them is valid UTF-8 on its own or not
                // at all.
                if std::str::from_utf8(span).is_err() {
                    return false;
                }
                self.facts.non_ascii = true;
            }
            self.pos += i + 1;
            if rest[i] == b'"' {
                return true;
            }
            match self.peek() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
                Some(b'u') => {
                    self.pos += 1;
                    let Some(unit) = self.hex4() else {
                        return false;
                    };
                    match unit {
                        0xd800..=0xdbff => {
                            // A high surrogate must be followed by an
                            // escaped low one.
                            if !self.text[self.pos..].starts_with(b"\\u") {
                                return false;
                            }
                            self.pos += 2;
                            if !matches!(self.hex4(), Some(0xdc00..=0xdfff)) {
                                return false;
                            }
                        }
                        0xdc00..=0xdfff => return false,
                        _ => {}
                    }
                }
                _ => return false,
            }
        }
    }

    /// Reads the four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Option<u32> {
        let hex = self.text.get(self.pos..self.pos + 4)?;
        let text = std::str::from_utf8(hex).ok()?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(text, 16).ok()
    }

    /// Reads the elements of an array just opened, as long as they are
    /// numbers: the common shape of observations and masks, checked here
    /// without the general loop's per-value bookkeeping.
    fn number_run(&mut self) -> Run {
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Run::Closed;
        }
        // Where the block-wise skip may run again: past the byte that
        // stopped it last time.
        let mut retry = self.pos;
        loop {
            if self.pos >= retry {
                let skip = json_numbers::skip_numbers(self.text, self.pos);
                self.pos = skip.end;
                retry = skip.stop.saturating_add(1);
                self.skip_ws();
            }
            match self.peek() {
                Some(b'-' | b'0'..=b'9') => {}
                _ => return Run::Other,
            }
            if !self.number() {
                return Run::Invalid;
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Run::Closed;
                }
                _ => return Run::Invalid,
            }
        }
    }

    fn number(&mut self) -> bool {
        let text = self.text;
        let mut p = self.pos;
        let digits = |p: usize| skip_digits(text, p);

        if text.get(p) == Some(&b'-') {
            p += 1;
        }
        let int_start = p;
        match text.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => p = digits(p + 1),
            _ => return false,
        }
        let int_digits = p - int_start;
        let mut exponent = false;
        if text.get(p) == Some(&b'.') {
            let end = digits(p + 1);
            if end == p + 1 {
                return false;
            }
            p = end;
        }
        if let Some(b'e' | b'E') = text.get(p) {
            exponent = true;
            p += 1;
            if let Some(b'+' | b'-') = text.get(p) {
                p += 1;
            }
            let end = digits(p);
            if end == p {
                return false;
            }
            p = end;
        }
        // Only an exponent or a very long integer part can leave the
        // range of f64; those rare numbers are parsed to find out.
        let token = &text[self.pos..p];
        if (exponent || int_digits > 300) && !parses_finite(token) {
            return false;
        }
        self.pos = p;
        true
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }
}

/// Returns the position of the first `"` or `\` in `text`, and whether a
/// byte before it is a control character or above 0x7f. Keys and ids are
/// short, so the first 16 bytes are read eight at a time in a word, which
/// ends them sooner than a vector search could start. Longer strings get
/// the vector search.
fn quote_or_backslash(text: &[u8]) -> Option<(usize, bool)> {
    const SHORT: usize = 16;
    let mut p = 0;
    while let Some(chunk) = text.get(p..p + 8).filter(|_| p < SHORT) {
        let word = u64::from_le_bytes(chunk.try_into().expect("the slice has 8 bytes"));
        let stops = zero_bytes(word ^ repeat(b'"')) | zero_bytes(word ^ repeat(b'\\'));
        let unusual = below(word, 0x20) | (word & HIGH);
        if stops != 0 {
            // The bytes before the first stop: every bit below its high bit.
            let before = (stops & stops.wrapping_neg()) - 1;
            let at = p + (stops.trailing_zeros() / 8) as usize;
            return Some((at, unusual & before != 0 || has_unusual(&text[..p])));
        }
        p += 8;
    }
    let end = p + memchr::memchr2(b'"', b'\\', &text[p..])?;
    Some((end, has_unusual(&text[..end])))
}

/// Returns true if a byte of `text` is a control character or above 0x7f.
/// Both kinds fall outside 0x20..=0x7f.
fn has_unusual(text: &[u8]) -> bool {
    text.iter().any(|&c| c.wrapping_sub(0x20) > 0x5f)
}

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Returns `b` in every byte of a word.
const fn repeat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// Sets the high bit of each byte of `word` that is zero, and no other bit.
/// Adding 0x7f to the low seven bits sets a byte's high bit unless they
/// were all zero, and no carry crosses a byte since 0x7f + 0x7f < 0x100.
fn zero_bytes(word: u64) -> u64 {
    !(((word & LOW7) + LOW7) | word) & HIGH
}

/// Sets the high bit of each byte of `word` that is below `n` (`n` at most
/// 0x80), and no other bit, by the same carry-free sum as [`zero_bytes`].
fn below(word: u64, n: u8) -> u64 {
    !(((word & LOW7) + repeat(0x80 - n)) | word) & HIGH
}

/// Returns true if a JSON number token is within the range of f64.
fn parses_finite(token: &[u8]) -> bool {
    std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// Returns the position of the first byte at or after `p` that is not an
/// ASCII digit. Looks at eight bytes per step while they are available.
fn skip_digits(text: &[u8], mut p: usize) -> usize {
    while let Some(chunk) = text.get(p..p + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("the slice has 8 bytes"));
        // A digit becomes 0..=9; adding 0x76 to the low seven bits sets a
        // byte's high bit exactly when it held more than 9, and the OR
        // with `v` flags bytes that had it set already. No carry crosses
        // a byte, because (0x7f + 0x76) < 0x100.
        let v = word ^ 0x3030_3030_3030_3030;
        let non_digits = (((v & LOW7) + 0x7676_7676_7676_7676) | v) & HIGH;
        if non_digits != 0 {
            return p + (non_digits.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
    while p < text.len() && text[p].is_ascii_digit() {
        p += 1;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_masks_match_each_byte() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[at] = b;
                let word = u64::from_le_bytes(bytes);
                let bit = 0x80u64 << (8 * at);
                assert_eq!(zero_bytes(word) & bit != 0, b == 0, "zero, byte {b}");
                assert_eq!(below(word, 0x20) & bit != 0, b < 0x20, "below, byte {b}");
                assert_eq!(zero_bytes(word) & !bit, 0, "zero, other bytes");
                assert_eq!(below(word, 0x20) & !bit, 0, "below, other bytes");
            }
        }
    }

    #[test]
    fn quote_or_backslash_finds_end_and_unusual_bytes() {
        // Each text, then the position of its end and whether a byte
        // before it is unusual.
        type Case = (&'static [u8], Option<(usize, bool)>);
        let cases: [Case; 12] = [
            (b"abc\"", Some((3, false))),
            (b"abcdefghij\"xyz", Some((10, false))),
            (b"a\\b\"", Some((1, false))),
            (b"\"", Some((0, false))),
            (b"ab\tc\"", Some((4, true))),
            (b"ab\xc3\xa9\"", Some((4, true))),
            (b"abcdefgh\x01\"", Some((9, true))),
            (b"abcdefghijklmnopqrstuvwxyz\"", Some((26, false))),
            (b"abcdefghijklmnopqrstuvw\x7fyz\"", Some((26, false))),
            (b"abcdefghijklmnopqrst\x80uvwxyz\"", Some((27, true))),
            (b"abc\"\x01", Some((3, false))),
            (b"abcdefghijklmnopqrstuvwxyz", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                quote_or_backslash(text),
                expected,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn skip_digits_finds_first_non_digit() {
        for text in [
            "",
            "1",
            "12345678",
            "123456789",
            "12345678x",
            "1234567/",
            "0123:",
            "9a",
            "x",
        ] {
            let expected = text
                .bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(text.len());
            assert_eq!(skip_digits(text.as_bytes(), 0), expected, "{text:?}");
        }
        for b in 0..=255u8 {
            let mut text = *b"00000000";
            text[3] = b;
            let expected = if b.is_ascii_digit() { 8 } else { 3 };
            assert_eq!(skip_digits(&text, 0), expected, "byte {b}");
        }
    }
}
