//! Skips runs of plain JSON numbers 64 bytes at a time.
//!
//! Observations and masks are long arrays of numbers such as
//! `-0.482913,0.1,1,0`, and checking them one byte at a time costs about
//! twenty instructions per byte. [`skip_numbers`] instead sorts each
//! 64-byte block into five bit masks (digits, zeros, commas, dots,
//! minus signs; SSE2 does that on x86-64) and checks the number grammar
//! with a few word operations on the masks.
//!
//! It covers numbers of the form `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, each
//! followed by a comma, with no whitespace. It never rejects anything:
//! it only returns how far the text is certainly such numbers. Anything
//! else (an exponent, a space, the closing bracket, an error) ends the
//! skip at the last comma before it, and the byte-wise checker takes over
//! there and gives the verdict. The skip therefore cannot change what is
//! accepted; it only changes how fast.

/// Bytes per block: one bit of a `u64` mask each.
const BLOCK: usize = 64;

/// The classes of the bytes of one block, bit `i` for byte `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Masks {
    /// `0` to `9`.
    digit: u64,
    /// `0` alone, for the leading-zero rule.
    zero: u64,
    comma: u64,
    dot: u64,
    minus: u64,
}

/// The state carried from one block to the next: the classes of the last
/// byte of the previous block, and the carry of the fraction-run sum.
#[derive(Debug, Clone, Copy)]
struct Carry {
    digit: u64,
    comma: u64,
    dot: u64,
    minus: u64,
    /// The previous byte is a `0` that starts an integer part.
    lead_zero: u64,
    /// A run of digits after a dot reaches the end of the previous block.
    fraction: u64,
}

/// A skipped run: where the numbers end and where the block scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skip {
    /// Position just after the last comma that ends a checked number, or
    /// the start if there is none. Everything before it is valid.
    pub(crate) end: usize,
    /// Position of the first byte that stopped the scan (the byte-wise
    /// checker has to pass it before a new skip can go further), or the
    /// start of the first block that did not fit in the text.
    pub(crate) stop: usize,
}

/// Skips the numbers-and-commas prefix of `text[start..]`, where `start`
/// is where an array element begins (just after `[` or `,`).
pub(crate) fn skip_numbers(text: &[u8], start: usize) -> Skip {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { x86::skip_avx2(text, start) };
        }
        scan(text, start, x86::classify_sse2)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    scan(text, start, classify_bytes)
}

/// Runs the block loop of [`skip_numbers`] with the classification that
/// the CPU supports.
#[inline(always)]
fn scan(text: &[u8], start: usize, classify: impl Fn(&[u8; BLOCK]) -> Masks) -> Skip {
    let mut carry = Carry {
        digit: 0,
        // The element start counts as the byte after a separator.
        comma: 1,
        dot: 0,
        minus: 0,
        lead_zero: 0,
        fraction: 0,
    };
    let mut end = start;
    let mut pos = start;
    while let Some(block) = text.get(pos..pos + BLOCK) {
        let block: &[u8; BLOCK] = block.try_into().expect("the slice has 64 bytes");
        let m = classify(block);
        let (errors, next) = check_block(&m, &carry);
        if errors != 0 {
            let first_error = errors.trailing_zeros();
            let commas = m.comma & ((1u64 << first_error) - 1);
            if commas != 0 {
                end = pos + BLOCK - commas.leading_zeros() as usize;
            }
            return Skip {
                end,
                stop: pos + first_error as usize,
            };
        }
        if m.comma != 0 {
            end = pos + BLOCK - m.comma.leading_zeros() as usize;
        }
        carry = next;
        pos += BLOCK;
    }
    Skip { end, stop: pos }
}

/// Returns the bits of the bytes of a block that break the number
/// grammar given what came before them (or that are outside the five
/// classes), and the state for the next block. A bit is set only where
/// the byte-wise checker would stop. The rules look back only, so a byte
/// is judged by the bytes before it.
fn check_block(m: &Masks, c: &Carry) -> (u64, Carry) {
    let after_digit = (m.digit << 1) | c.digit;
    let after_comma = (m.comma << 1) | c.comma;
    let after_dot = (m.dot << 1) | c.dot;
    let after_minus = (m.minus << 1) | c.minus;

    // A zero that starts an integer part; a digit may not follow it.
    let lead_zero = m.zero & (after_comma | after_minus);
    let after_lead_zero = (lead_zero << 1) | c.lead_zero;

    // The first byte after each run of digits that follows a dot: adding
    // the run's first bit to the digit mask carries through the run and
    // sets the bit after it. A second dot or a minus may not sit there.
    let fraction_starts = m.digit & after_dot;
    let (sum, o1) = m.digit.overflowing_add(fraction_starts);
    let (sum, o2) = sum.overflowing_add(c.fraction);
    let fraction_ends = sum & !m.digit;

    let known = m.digit | m.comma | m.dot | m.minus;
    let mut errors = !known
        // A comma or a dot needs a digit before it.
        | ((m.comma | m.dot) & !after_digit)
        // A minus sign only starts an element.
        | (m.minus & !after_comma)
        | (m.digit & after_lead_zero)
        | (fraction_ends & (m.dot | m.minus));
    // A block of digits only is left to the byte-wise checker, which
    // limits the length of integer parts. So a run here never reaches
    // 128 digits.
    if m.digit == u64::MAX {
        errors |= 1;
    }
    let next = Carry {
        digit: m.digit >> 63,
        comma: m.comma >> 63,
        dot: m.dot >> 63,
        minus: m.minus >> 63,
        lead_zero: lead_zero >> 63,
        fraction: u64::from(o1 | o2),
    };
    (errors, next)
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86 {
    use super::{scan, Masks, Skip, BLOCK};
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8,
        _mm256_movemask_epi8, _mm256_set1_epi8, _mm256_sub_epi8, _mm_cmpeq_epi8, _mm_loadu_si128,
        _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8, _mm_sub_epi8,
    };

    /// [`scan`] compiled for AVX2, so that the AVX2 classification is
    /// inlined into the loop.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn skip_avx2(text: &[u8], start: usize) -> Skip {
        // SAFETY: this function only runs on a CPU with AVX2.
        scan(text, start, |block| unsafe { classify_avx2(block) })
    }

    /// Classifies 32 bytes per instruction.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn classify_avx2(block: &[u8; BLOCK]) -> Masks {
        // SAFETY: each unaligned load reads 32 of the 64 bytes of `block`,
        // and the caller guarantees AVX2.
        unsafe {
            let lo = _mm256_loadu_si256(block.as_ptr().cast::<__m256i>());
            let hi = _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>());
            let bits = |l: __m256i, h: __m256i| {
                u64::from(_mm256_movemask_epi8(l) as u32)
                    | (u64::from(_mm256_movemask_epi8(h) as u32) << 32)
            };
            let eq = |b: u8| {
                let b = _mm256_set1_epi8(b as i8);
                bits(_mm256_cmpeq_epi8(lo, b), _mm256_cmpeq_epi8(hi, b))
            };
            // Bytes `0` to `9` become 0 to 9; every other byte wraps to
            // a value above 9, so min(x, 9) == x picks the digits.
            let zero = _mm256_set1_epi8(b'0' as i8);
            let nine = _mm256_set1_epi8(9);
            let lo_off = _mm256_sub_epi8(lo, zero);
            let hi_off = _mm256_sub_epi8(hi, zero);
            Masks {
                digit: bits(
                    _mm256_cmpeq_epi8(_mm256_min_epu8(lo_off, nine), lo_off),
                    _mm256_cmpeq_epi8(_mm256_min_epu8(hi_off, nine), hi_off),
                ),
                zero: eq(b'0'),
                comma: eq(b','),
                dot: eq(b'.'),
                minus: eq(b'-'),
            }
        }
    }

    /// Classifies 16 bytes per instruction with SSE2, which every x86-64
    /// CPU has.
    pub(super) fn classify_sse2(block: &[u8; BLOCK]) -> Masks {
        let mut m = Masks {
            digit: 0,
            zero: 0,
            comma: 0,
            dot: 0,
            minus: 0,
        };
        for (i, chunk) in block.chunks_exact(16).enumerate() {
            let shift = 16 * i;
            // SAFETY: the build enables SSE2, which is all these
            // intrinsics need, and the unaligned load reads the 16 bytes
            // of `chunk`, no more.
            unsafe {
                let bits = |v: __m128i| u64::from(_mm_movemask_epi8(v) as u16);
                let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
                let offset = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
                let digit = _mm_cmpeq_epi8(_mm_min_epu8(offset, _mm_set1_epi8(9)), offset);
                m.digit |= bits(digit) << shift;
                m.zero |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'0' as i8))) << shift;
                m.comma |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8))) << shift;
                m.dot |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8))) << shift;
                m.minus |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'-' as i8))) << shift;
            }
        }
        m
    }

    #[cfg(test)]
    pub(super) fn classify_all(block: &[u8; BLOCK]) -> Vec<Masks> {
        let mut all = vec![classify_sse2(block)];
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            all.push(unsafe { classify_avx2(block) });
        }
        all
    }
}

/// Classifies the bytes one at a time: the fallback for other targets and
/// the reference that the vector versions are tested against.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn classify_bytes(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks {
        digit: 0,
        zero: 0,
        comma: 0,
        dot: 0,
        minus: 0,
    };
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        if b.is_ascii_digit() {
            m.digit |= bit;
        }
        match b {
            b'0' => m.zero |= bit,
            b',' => m.comma |= bit,
            b'.' => m.dot |= bit,
            b'-' => m.minus |= bit,
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The classes of `block` by every vector version this CPU runs.
    fn classified(block: &[u8; BLOCK]) -> Vec<Masks> {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        return x86::classify_all(block);
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
        return vec![classify_bytes(block)];
    }

    /// True if `text` is numbers of the covered form, each followed by a
    /// comma: what `skip_numbers` may skip.
    fn plain_numbers(text: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(text) else {
            return false;
        };
        let Some(body) = text.strip_suffix(',') else {
            return text.is_empty();
        };
        body.split(',').all(|n| {
            let n = n.strip_prefix('-').unwrap_or(n);
            let (int, frac) = match n.split_once('.') {
                Some((i, f)) => (i, Some(f)),
                None => (n, None),
            };
            let int_ok = int == "0"
                || (!int.is_empty()
                    && !int.starts_with('0')
                    && int.bytes().all(|b| b.is_ascii_digit()));
            let frac_ok =
                frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
            int_ok && frac_ok
        })
    }

    /// Checks the contract of `skip_numbers` on `text` from every start.
    fn check(text: &[u8]) {
        for start in 0..text.len().min(80) {
            let skip = skip_numbers(text, start);
            assert!(skip.end >= start, "{skip:?} from {start}");
            assert!(skip.end <= text.len(), "{skip:?} from {start}");
            assert!(
                plain_numbers(&text[start..skip.end]),
                "skipped {:?} from {start} in {:?}",
                String::from_utf8_lossy(&text[start..skip.end]),
                String::from_utf8_lossy(text)
            );
            if skip.end > start {
                assert_eq!(text[skip.end - 1], b',');
            }
        }
    }

    #[test]
    fn skips_an_observation_array() {
        let body: String = (0..128)
            .map(|i| format!("{},", (f64::from(i) * 0.37).sin() * 0.9))
            .collect();
        let text = format!("{body}0.5],\"x\":1");
        let skip = skip_numbers(text.as_bytes(), 0);
        // Only whole blocks are read; the last one ends at `]`.
        let close = text.find(']').unwrap();
        assert!(skip.end > close - 64, "{skip:?} of {close}");
        assert_eq!(text.as_bytes()[skip.end - 1], b',');
        check(text.as_bytes());
    }

    #[test]
    fn stops_before_each_kind_of_fault() {
        let filler = "0.123456,".repeat(8);
        for bad in [
            "01,", "-,", "1.,", ".5,", "1..2,", "1.2.3,", "1-2,", "--1,", "1.2-3,", ",,", "1e5,",
            "1 ,", "00,", "-01,", "0.1.,", "+1,",
        ] {
            let text = format!("{filler}{bad}{filler}");
            let skip = skip_numbers(text.as_bytes(), 0);
            assert!(
                skip.end <= filler.len(),
                "{bad:?}: skipped to {} past {}",
                skip.end,
                filler.len()
            );
            check(text.as_bytes());
        }
    }

    #[test]
    fn leaves_long_digit_runs_to_the_checker() {
        let text = format!("{},1,", "9".repeat(400)).repeat(2);
        assert_eq!(skip_numbers(text.as_bytes(), 0).end, 0);
        let text = format!("0.{},1,", "9".repeat(400)).repeat(2);
        assert_eq!(skip_numbers(text.as_bytes(), 0).end, 0);
    }

    #[test]
    fn carries_state_across_blocks() {
        // Place a fault at every offset around the first block border.
        for shift in 50..80 {
            for bad in ["1.2.3,", "01,", "1.5-2,", "-.1,"] {
                let text = format!("{}{bad}{}", "7,".repeat(shift / 2), "3,".repeat(60));
                let text = format!("{}{text}", if shift % 2 == 1 { "4" } else { "" });
                check(text.as_bytes());
            }
        }
    }

    #[test]
    fn vector_and_byte_classes_agree() {
        let mut block = [0u8; BLOCK];
        for b in 0..=255u8 {
            block.fill(b);
            block[7] = b'0';
            block[33] = b',';
            for m in classified(&block) {
                assert_eq!(m, classify_bytes(&block), "byte {b}");
            }
        }
    }

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            (-1e6f64..1e6).prop_map(|x| format!("{x}")),
            (-1i64..2).prop_map(|x| x.to_string()),
            "-?(0|[1-9][0-9]{0,12})(\\.[0-9]{1,9})?",
            // Near misses.
            "[-0-9.,]{1,6}",
            "[-0-9.eE+ ]{1,4}",
        ]
    }

    proptest! {
        #[test]
        fn never_skips_an_invalid_number(
            numbers in proptest::collection::vec(number(), 0..60),
        ) {
            let text = numbers.join(",") + "]";
            check(text.as_bytes());
        }

        #[test]
        fn classes_agree_on_any_block(block in proptest::array::uniform32(any::<u8>())) {
            let mut full = [0u8; BLOCK];
            full[..32].copy_from_slice(&block);
            full[32..].copy_from_slice(&block);
            for m in classified(&full) {
                prop_assert_eq!(m, classify_bytes(&full));
            }
        }
    }
}
