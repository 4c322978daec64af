//! Shortest round-trip formatting of `f32` obs values.
//!
//! [`write_f32_list`] appends exactly the bytes of
//! `zmij::Buffer::format_finite` (zmij 1.0.23, the formatter serde_json
//! uses), so lines read the same as before. It computes the common case
//! itself and hands everything else to zmij. On obs values of six
//! significant digits it takes about half the instructions of zmij and
//! its copy into the line (callgrind on the ignored test
//! `cost_on_six_digit_values`).
//!
//! zmij prints an `f32` in plain notation when the decimal exponent of its
//! first printed digit lies in -6..=12, so from 0.000001 to below 1e13.
//! The fast path covers the part of that range with binary exponents
//! -19..=22, |x| in [2^-19, 2^23), which is about [1.9e-6, 8.4e6), plus
//! zero. There every step fits in a `u64`, and the coarser of the two
//! decimal grids below has a step of at most 1, so no step needs a
//! division.
//!
//! # Method
//!
//! Write |x| = m * 2^-s with a 24-bit m and s in 1..=42. Every real number
//! strictly inside the round-trip interval reads back as x. The interval
//! reaches half an ulp (2^-s / 2) to each side, except for a significand of
//! exactly 2^23, whose lower neighbor is only half as far away, so its lower
//! half-gap is a quarter ulp.
//!
//! The shortest output is the decimal number with the fewest digits that
//! lies in the interval, and among several such numbers the one nearest to
//! x. Let `k` be the largest number of fraction digits whose grid step
//! 10^-k is still wider than the interval. That grid contains at most one
//! point of the interval, and every coarser grid is part of it. The grid
//! with k + 1 fraction digits has a step no wider than the interval, so it
//! contains at least one point. So the result is the one point on the k grid
//! if there is one (with its trailing zeros removed), else the point of
//! the k + 1 grid nearest to x. Both grids are computed exactly from
//! m * 10^k, whose integer part and remainder in units of 2^-s are a shift
//! and a mask.
//!
//! The function leaves every case it does not decide to zmij: a candidate
//! exactly on the interval's boundary (zmij includes it when m is even), a
//! candidate exactly halfway between two grid points, and a power-of-two
//! significand whose nearest point falls outside the shorter lower half of
//! the interval. The exhaustive test at the bottom compares every finite
//! `f32` with zmij.

/// Fraction digits and the power of ten of one grid, for one binary
/// exponent.
#[derive(Clone, Copy)]
struct Grid {
    /// The number of fraction digits k of the coarser grid.
    fraction_digits: u32,
    /// 10^k.
    pow10: u64,
}

/// The largest binary shift s (|x| = m * 2^-s) of the fast path: |x| >=
/// 2^-19, so every value prints in plain notation.
const MAX_SHIFT: u32 = 42;

/// Biased exponents of the fast path: 2^-19 <= |x| < 2^23.
const FAST_EXPONENTS: std::ops::RangeInclusive<u32> = (127 - 19)..=(127 + 22);

/// Returns the coarser grid for shift `s`: the largest k with 10^-k wider
/// than the round-trip interval, whose width is 2^-s, or 3/4 * 2^-s for a
/// power-of-two significand.
const fn grid_for(s: u32, power_of_two: bool) -> Grid {
    // Compare 10^-k > width as width_quarters * 10^k < 2^(s + 2), with
    // the width in quarters of an ulp.
    let width_quarters: u128 = if power_of_two { 3 } else { 4 };
    let limit: u128 = 1 << (s + 2);
    let mut fraction_digits = 0;
    let mut pow10: u128 = 1;
    while width_quarters * pow10 * 10 < limit {
        pow10 *= 10;
        fraction_digits += 1;
    }
    Grid {
        fraction_digits,
        pow10: pow10 as u64,
    }
}

const fn grid_table(power_of_two: bool) -> [Grid; MAX_SHIFT as usize + 1] {
    let mut table = [Grid {
        fraction_digits: 0,
        pow10: 1,
    }; MAX_SHIFT as usize + 1];
    let mut s = 1;
    while s <= MAX_SHIFT {
        table[s as usize] = grid_for(s, power_of_two);
        s += 1;
    }
    table
}

/// Coarser grids by shift s: index 0 for other significands, index 1
/// for a significand of 2^23. Entry 0 of each is unused.
static GRIDS: [[Grid; MAX_SHIFT as usize + 1]; 2] = [grid_table(false), grid_table(true)];

/// The maximum length of one `f32`'s text, in bytes: "-0.00000123456789".
const MAX_LEN: usize = 17;

/// Appends `values` separated by commas, each in the shortest decimal
/// form that reads back as the same `f32`, byte for byte as
/// `zmij::Buffer::format_finite` writes it.
///
/// # Errors
///
/// Returns the index of the first NaN or infinite value. `out` then
/// contains the values before it, each followed by a comma.
pub(crate) fn write_f32_list(out: &mut Vec<u8>, values: &[f32]) -> Result<(), usize> {
    // Each value takes at most MAX_LEN bytes and a comma. The fast path
    // stores at most MAX_LEN bytes from the value's start, so while value
    // i is written, no byte past start + (i + 1) * (MAX_LEN + 1) changes.
    out.reserve(values.len() * (MAX_LEN + 1));
    let mut len = out.len();
    let mut base = out.as_mut_ptr();

    for (i, &x) in values.iter().enumerate() {
        // SAFETY: by the reserve above (or the one in push_with_zmij),
        // the capacity has room for len + (values.len() - i) *
        // (MAX_LEN + 1) bytes, enough for this value's stores and comma.
        // Bytes up to `len` are written, all ASCII.
        unsafe {
            match write_fast(base.add(len), x) {
                Some(written) => len += written,
                None if !x.is_finite() => {
                    out.set_len(len);
                    return Err(i);
                }
                None => {
                    out.set_len(len);
                    push_with_zmij(out, x, values.len() - i);
                    len = out.len();
                    base = out.as_mut_ptr();
                }
            }
            base.add(len).write(b',');
        }
        len += 1;
    }

    // Drop the comma after the last value.
    // SAFETY: bytes up to `len` are written, all ASCII.
    unsafe { out.set_len(len - usize::from(!values.is_empty())) };
    Ok(())
}

/// Appends `x` through zmij, then reserves room for the `remaining`
/// values from this one on, as [`write_f32_list`] expects.
#[inline(never)]
fn push_with_zmij(out: &mut Vec<u8>, x: f32, remaining: usize) {
    out.extend_from_slice(zmij::Buffer::new().format_finite(x).as_bytes());
    out.reserve(remaining * (MAX_LEN + 1));
}

/// Writes `x` at `dst` and returns the length, if it is zero or in the
/// fast path's range and not one of the cases left to zmij. Else returns
/// None, always for a NaN or an infinity.
///
/// # Safety
///
/// `dst` must be valid for MAX_LEN bytes of writes. Bytes past the
/// returned length may be overwritten too.
#[inline(always)]
unsafe fn write_fast(dst: *mut u8, x: f32) -> Option<usize> {
    let bits = x.to_bits();
    let negative = (bits >> 31) as usize;
    let exponent = (bits >> 23) & 0xff;
    let fraction = bits & 0x7f_ffff;

    // None for zero, which has no significant digits.
    let digits = if FAST_EXPONENTS.contains(&exponent) {
        // |x| = m * 2^-s, with s in 1..=42.
        let m = u64::from(fraction | 1 << 23);
        let shift = 150 - exponent;
        let found = if fraction == 0 {
            shortest_digits::<true>(m, shift)
        } else {
            shortest_digits::<false>(m, shift)
        };
        Some(found?)
    } else if bits << 1 == 0 {
        None
    } else {
        return None;
    };

    // SAFETY: the sign takes one byte at most, and the text 16 at most,
    // within the MAX_LEN bytes the caller provides.
    unsafe {
        dst.write(b'-');
        let text = dst.add(negative);
        let len = match digits {
            Some((digits, fraction_digits)) => write_plain(text, digits, fraction_digits),
            None => {
                text.cast::<[u8; 3]>().write_unaligned(*b"0.0");
                3
            }
        };
        Some(negative + len)
    }
}

/// Returns the digits of the shortest decimal in the round-trip interval
/// of m * 2^-s, as an integer and its number of fraction digits, or None
/// for the cases left to zmij. `POWER_OF_TWO` is true for m = 2^23,
/// whose lower half-gap is half the upper one.
///
/// The integer has 6 to 9 digits: the point found on the k + 1 grid is
/// within one ulp of m times a power of ten in 1..10, and 2^23 <= m < 2^24,
/// so it has 7 to 9 digits, and a point on the k grid has one digit less.
#[inline(always)]
fn shortest_digits<const POWER_OF_TWO: bool>(m: u64, s: u32) -> Option<(u64, u32)> {
    debug_assert!((1..=MAX_SHIFT).contains(&s));
    let grid = GRIDS[usize::from(POWER_OF_TWO)][s as usize];
    let pow10 = grid.pow10;
    let one = 1u64 << s;

    // x * 10^k = q + r / 2^s. Distances below are in units of 2^-s / 4
    // on the k grid, where one ulp of x is 4 * 10^k. The k + 1 grid is
    // ten times finer, so there the ulp is 40 * 10^k. Since m < 2^24
    // and 10^k <= 10^12, m * 10^k < 2^64.
    let scaled = m * pow10;
    let q = scaled >> s;
    let r = scaled & (one - 1);
    let lower_half_gap = if POWER_OF_TWO { pow10 } else { 2 * pow10 };
    let upper_half_gap = 2 * pow10;

    // The k grid: q below x, q + 1 above. The interval is narrower than
    // this grid's step, so at most one of them lies inside or on its
    // boundary. Which one varies at random from value to value, so the
    // test avoids a branch on it. With equal half-gaps only the nearer
    // one can be inside.
    let below = 4 * r;
    let above = 4 * (one - r);
    let round_up = above < below;
    let inside = if POWER_OF_TWO {
        below < lower_half_gap || above < upper_half_gap
    } else {
        below.min(above) < upper_half_gap
    };
    if inside {
        return Some((q + u64::from(round_up), grid.fraction_digits));
    }
    if below == lower_half_gap || above == upper_half_gap {
        return None;
    }

    // The k + 1 grid: x * 10^(k+1) = 10q + 10r / 2^s. 10r < 10 * 2^42.
    let finer = 10 * r;
    let q = 10 * q + (finer >> s);
    let r = finer & (one - 1);
    if 2 * r == one {
        return None;
    }
    let round_up = 2 * r > one;
    let (distance, half_gap) = if round_up {
        (4 * (one - r), 10 * upper_half_gap)
    } else {
        (4 * r, 10 * lower_half_gap)
    };
    if distance >= half_gap {
        return None;
    }
    Some((q + u64::from(round_up), grid.fraction_digits + 1))
}

/// ASCII '0' in each of 8 bytes.
const ZEROS: u64 = u64::from_le_bytes([b'0'; 8]);

/// Writes `digits / 10^fraction_digits` in zmij's plain notation at
/// `dst`, without sign, and returns its length: no trailing zeros, "0."
/// before a value below 1, and ".0" after an integer.
///
/// # Safety
///
/// `dst` must be valid for 16 bytes of writes. The caller ensures
/// 10^5 <= `digits` < 10^9 and a value from 10^-6 to below 10^7, as the
/// fast path's range and `shortest_digits` do.
#[inline(always)]
unsafe fn write_plain(dst: *mut u8, digits: u64, fraction_digits: u32) -> usize {
    debug_assert!((100_000..1_000_000_000).contains(&digits));

    // The first eight digits, padded with zeros on the right, and the
    // ninth. Shorter numbers, the usual case, need no division.
    let (first_eight, ninth, count) = if digits < 1_000_000 {
        (digits * 100, 0, 6)
    } else if digits < 10_000_000 {
        (digits * 10, 0, 7)
    } else if digits < 100_000_000 {
        (digits, 0, 8)
    } else {
        (digits / 10, digits % 10, 9)
    };
    let text = ascii_digits8(first_eight as u32);
    let ninth = b'0' + ninth as u8;
    let significant = if ninth == b'0' {
        8 - ((text - ZEROS).leading_zeros() / 8) as usize
    } else {
        9
    };

    // The decimal exponent of the first digit, -6..=6 in the fast range.
    let exponent = count - 1 - fraction_digits as i32;
    debug_assert!((-6..=6).contains(&exponent));

    if exponent < 0 {
        // "0.", then -exponent - 1 zeros, then the digits: at most
        // 2 + 5 + 9 = 16 bytes.
        let first = (1 - exponent) as usize;
        // SAFETY: every write ends by byte first + 9 <= 16.
        unsafe {
            dst.cast::<[u8; 8]>().write_unaligned(*b"0.000000");
            dst.add(first)
                .cast::<[u8; 8]>()
                .write_unaligned(text.to_le_bytes());
            dst.add(first + 8).write(ninth);
        }
        first + significant
    } else {
        // The first exponent + 1 digits, '.', the other digits: 10 bytes.
        // An integer keeps one fraction digit, a '0'.
        let integer_digits = exponent as usize + 1;
        let point = 8 * integer_digits as u32;
        let integer_mask = (1u64 << point) - 1;
        let with_point =
            (text & integer_mask) | (u64::from(b'.') << point) | ((text & !integer_mask) << 8);
        // SAFETY: the writes cover bytes 0..10.
        unsafe {
            dst.cast::<[u8; 8]>()
                .write_unaligned(with_point.to_le_bytes());
            dst.add(8).write((text >> 56) as u8);
            dst.add(9).write(ninth);
        }
        let fraction = significant.saturating_sub(integer_digits).max(1);
        integer_digits + 1 + fraction
    }
}

/// Returns the 8 ASCII digits of `n` < 10^8, zero-padded on the left,
/// with the first digit in the lowest byte.
///
/// Splits n into lanes in one u64 (SWAR): two 4-digit halves in 32-bit
/// lanes, then 2-digit quarters in 16-bit lanes, then digits in bytes.
/// Each division by 100 or 10 is a multiply and shift that is exact for
/// the lane's range (n < 10^4 and n < 10^2), and no lane's product
/// carries into the next lane.
#[inline(always)]
fn ascii_digits8(n: u32) -> u64 {
    debug_assert!(n < 100_000_000);
    let n = u64::from(n);
    let halves = (n / 10_000) | (n % 10_000) << 32;
    let hundreds = ((halves * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let quarters = hundreds | (halves - hundreds * 100) << 16;
    let tens = ((quarters * 103) >> 10) & 0x000f_000f_000f_000f;
    let digits = tens | (quarters - tens * 10) << 8;
    digits + ZEROS
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn zmij_text(x: f32) -> String {
        zmij::Buffer::new().format_finite(x).to_string()
    }

    /// Returns the list writer's text for the one value `x`.
    fn our_text(x: f32) -> String {
        let mut out = b"prefix".to_vec();
        write_f32_list(&mut out, &[x]).unwrap();
        assert_eq!(&out[..6], b"prefix", "{x:e} changed earlier bytes");
        String::from_utf8(out[6..].to_vec()).expect("ASCII output")
    }

    /// Returns the fast path's text for `x`, or None if it leaves `x` to
    /// zmij.
    fn fast_text(x: f32) -> Option<Vec<u8>> {
        let mut buffer = [0u8; MAX_LEN];
        // SAFETY: the buffer has MAX_LEN bytes.
        let len = unsafe { write_fast(buffer.as_mut_ptr(), x) }?;
        Some(buffer[..len].to_vec())
    }

    fn assert_same_as_zmij(x: f32) {
        assert_eq!(our_text(x), zmij_text(x), "bits {:#010x}", x.to_bits());
    }

    /// Returns `x` and its neighbors one and two ulps away on each side,
    /// the finite ones of the same sign.
    fn neighbors(x: f32) -> Vec<f32> {
        let bits = x.to_bits();
        [-2i64, -1, 0, 1, 2]
            .iter()
            .filter_map(|d| u32::try_from(i64::from(bits) + d).ok())
            .map(f32::from_bits)
            .filter(|y| y.is_finite() && y.is_sign_negative() == x.is_sign_negative())
            .collect()
    }

    #[test]
    fn grids_bracket_interval_width() {
        for s in 1..=MAX_SHIFT {
            for (power_of_two, width_quarters) in [(false, 4u128), (true, 3)] {
                let grid = GRIDS[usize::from(power_of_two)][s as usize];
                let pow10 = u128::from(grid.pow10);
                let limit = 1u128 << (s + 2);
                assert_eq!(pow10, 10u128.pow(grid.fraction_digits), "s {s}");
                // 10^-k > width >= 10^-(k+1).
                assert!(width_quarters * pow10 < limit, "s {s}");
                assert!(width_quarters * pow10 * 10 >= limit, "s {s}");
            }
        }
    }

    #[test]
    fn ascii_digits8_matches_format() {
        let samples = (0..100_000_000u32)
            .step_by(9_973)
            .chain([0, 1, 9, 10, 99, 100, 9_999, 10_000, 10_001, 99_999_999]);
        for n in samples {
            let text = ascii_digits8(n).to_le_bytes();
            assert_eq!(text, format!("{n:08}").as_bytes(), "{n}");
        }
    }

    #[test]
    fn edge_cases_match_zmij() {
        let mut cases = vec![
            0.0,
            -0.0,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            f32::from_bits(1),
            f32::from_bits(0x007f_ffff),
            f32::from_bits(0x0040_0000),
            1.0,
            -1.0,
            0.1,
            0.2,
            0.3,
            1.5,
            3.0,
            1e-6,
            1e-7,
            9.999_999e-7,
            1e7,
            1e13,
            16_777_216.0,
            8_388_607.5,
            0.482_913,
            -0.482_913,
        ];

        // Powers of two, of ten, and the fast range's borders.
        for e in -149..=127 {
            cases.push(2f32.powi(e));
        }
        for e in -45..=38 {
            cases.push(format!("1e{e}").parse().unwrap());
        }
        for e in [-20, -19, 22, 23] {
            cases.push(2f32.powi(e));
        }

        for x in cases {
            for y in neighbors(x) {
                assert_same_as_zmij(y);
                assert_same_as_zmij(-y);
            }
        }
    }

    #[test]
    fn fast_range_borders() {
        let lowest = 2f32.powi(-19);
        let highest = 2f32.powi(23);
        assert!(fast_text(lowest).is_some());
        assert!(fast_text(-lowest).is_some());
        assert!(fast_text(f32::from_bits(lowest.to_bits() - 1)).is_none());
        assert!(fast_text(f32::from_bits(highest.to_bits() - 1)).is_some());
        assert!(fast_text(highest).is_none());
    }

    #[test]
    fn fast_path_covers_six_digit_values() {
        // The benchmark's obs values: k / 10^6 with k in 100000..=999999.
        for k in 100_000..1_000_000 {
            let x = k as f32 / 1e6;
            let text = fast_text(x).unwrap_or_else(|| panic!("{x} left the fast path"));
            assert_eq!(text, zmij_text(x).as_bytes(), "{x}");
        }
    }

    #[test]
    fn fast_path_covers_small_integers_and_halves() {
        for n in -1000..=1000 {
            for x in [n as f32, n as f32 + 0.5, n as f32 / 8.0] {
                let text = fast_text(x).unwrap_or_else(|| panic!("{x} left the fast path"));
                assert_eq!(text, zmij_text(x).as_bytes(), "{x}");
            }
        }
    }

    #[test]
    fn list_mixes_fast_and_zmij_values() {
        // Values beyond the fast range go through zmij between fast ones,
        // and an empty Vec grows on the way.
        let values: Vec<f32> = (0..300)
            .map(|i| match i % 4 {
                0 => -0.000_001_234_567_8,
                1 => 1.5e-20,
                2 => -3.402_823_5e38,
                _ => i as f32 / 7.0,
            })
            .collect();
        let mut out = Vec::new();
        write_f32_list(&mut out, &values).unwrap();
        let expected: Vec<String> = values.iter().map(|&x| zmij_text(x)).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected.join(","));
    }

    #[test]
    fn list_of_none_writes_nothing() {
        let mut out = b"[".to_vec();
        write_f32_list(&mut out, &[]).unwrap();
        assert_eq!(out, b"[");
    }

    #[test]
    fn list_reports_first_non_finite() {
        let mut out = b"[".to_vec();
        let err = write_f32_list(&mut out, &[0.5, 1e30, f32::NAN, f32::INFINITY]);
        assert_eq!(err, Err(2));
        assert_eq!(out, b"[0.5,1e+30,");
    }

    /// Generates decimals with 1 to 9 significant digits and exponents
    /// that cover plain and exponent notation, rounded to the nearest f32.
    fn short_decimal() -> impl Strategy<Value = f32> {
        (1u32..=9, any::<u64>(), -40i32..=38, any::<bool>()).prop_map(
            |(digits, raw, exponent, negative)| {
                let mantissa = raw % 10u64.pow(digits);
                let sign = if negative { "-" } else { "" };
                format!("{sign}{mantissa}e{exponent}").parse().unwrap()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn random_bits_match_zmij(x in any::<f32>().prop_filter("finite", |x| x.is_finite())) {
            prop_assert_eq!(our_text(x), zmij_text(x), "bits {:#010x}", x.to_bits());
        }

        #[test]
        fn short_decimals_match_zmij(x in short_decimal().prop_filter("finite", |x| x.is_finite())) {
            for y in neighbors(x) {
                prop_assert_eq!(our_text(y), zmij_text(y), "bits {:#010x}", y.to_bits());
            }
        }

        #[test]
        fn random_lists_match_zmij(values in prop::collection::vec(
            any::<f32>().prop_filter("finite", |x| x.is_finite()),
            0..40,
        )) {
            let mut out = Vec::new();
            write_f32_list(&mut out, &values).unwrap();
            let expected: Vec<String> = values.iter().map(|&x| zmij_text(x)).collect();
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected.join(","));
        }
    }

    /// Compares every finite f32 with zmij on two threads, both the fast
    /// path alone and the list writer. Takes a few minutes in release
    /// mode: `cargo test --release --lib float -- --ignored --nocapture`.
    #[test]
    #[ignore = "exhaustive, minutes in release mode"]
    fn every_f32_matches_zmij() {
        fn check(bits: std::ops::Range<u64>) -> (u64, u64, u64, Vec<u32>) {
            let (mut finite, mut fast, mut mismatches) = (0, 0, 0);
            let mut examples = Vec::new();
            let mut ours = Vec::with_capacity(32);
            let mut zmij = zmij::Buffer::new();
            for b in bits {
                let x = f32::from_bits(b as u32);
                if !x.is_finite() {
                    continue;
                }
                finite += 1;
                let expected = zmij.format_finite(x).as_bytes();
                let fast_ok = match fast_text(x) {
                    Some(text) => {
                        fast += 1;
                        text == expected
                    }
                    None => true,
                };
                ours.clear();
                write_f32_list(&mut ours, &[x]).unwrap();
                if !fast_ok || ours != expected {
                    mismatches += 1;
                    if examples.len() < 10 {
                        examples.push(b as u32);
                    }
                }
            }
            (finite, fast, mismatches, examples)
        }

        let half = 1u64 << 31;
        let other = std::thread::spawn(move || check(half..2 * half));
        let first = check(0..half);
        let second = other.join().expect("checking thread panicked");

        let finite = first.0 + second.0;
        let fast = first.1 + second.1;
        let mismatches = first.2 + second.2;
        println!("finite f32 values checked: {finite}");
        println!("taken by the fast path:    {fast}");
        println!("mismatches with zmij:      {mismatches}");
        for bits in first.3.iter().chain(&second.3) {
            let x = f32::from_bits(*bits);
            println!(
                "  {bits:#010x}: ours {:?}, fast {:?}, zmij {:?}",
                our_text(x),
                fast_text(x).map(String::from_utf8),
                zmij_text(x)
            );
        }
        assert_eq!(finite, (1u64 << 32) - (1 << 24), "finite count");
        assert_eq!(mismatches, 0);
    }

    /// Writes `values` as the encoder did before `write_f32_list`: a
    /// finiteness check, a comma and zmij for each value. Not inlined, so
    /// callgrind's --toggle-collect can count it alone.
    #[inline(never)]
    fn format_list_zmij(values: &[f32], out: &mut Vec<u8>) {
        let mut buffer = zmij::Buffer::new();
        for (i, &x) in values.iter().enumerate() {
            assert!(x.is_finite());
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(buffer.format_finite(x).as_bytes());
        }
    }

    /// Writes the same list with `write_f32_list`.
    #[inline(never)]
    fn format_list_ours(values: &[f32], out: &mut Vec<u8>) {
        write_f32_list(out, values).unwrap();
    }

    /// Times both list writers on the benchmark's kind of obs values: lists
    /// of 128 values of six significant digits in [-1, 1]. It cycles
    /// through 64 different lists, so that branch predictors cannot learn
    /// one list. For instruction counts, run it under callgrind with
    /// `--toggle-collect='*format_list_*'`.
    #[test]
    #[ignore = "measurement, prints times"]
    fn cost_on_six_digit_values() {
        // SplitMix64, so the values are the same on every run.
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let lists: Vec<Vec<f32>> = (0..64)
            .map(|_| {
                (0..128)
                    .map(|_| ((next() % 2_000_001) as i64 - 1_000_000) as f64 / 1e6)
                    .map(|x| x as f32)
                    .collect()
            })
            .collect();

        let rounds = std::env::var("FLOAT_COST_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        for values in &lists {
            let mut zmij_out = Vec::with_capacity(4096);
            let mut our_out = Vec::with_capacity(4096);
            format_list_zmij(values, &mut zmij_out);
            format_list_ours(values, &mut our_out);
            assert_eq!(our_out, zmij_out);
        }

        for (name, run) in [
            ("zmij", format_list_zmij as fn(&[f32], &mut Vec<u8>)),
            ("write_f32_list", format_list_ours),
        ] {
            let mut out = Vec::with_capacity(4096);
            let started = std::time::Instant::now();
            for round in 0..rounds {
                out.clear();
                run(std::hint::black_box(&lists[round % lists.len()]), &mut out);
                std::hint::black_box(&out);
            }
            let per_value = started.elapsed().as_secs_f64() * 1e9 / (rounds as f64 * 128.0);
            println!("{name}: {per_value:.2} ns per value over {rounds} lists");
        }
    }
}
