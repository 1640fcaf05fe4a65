//! Scaled integers: `f64` → `i128` at a fixed scale, and `i128` → `Decimal`.
//!
//! CUR delivers costs as Parquet `double` or as CSV text (often in scientific notation, `1.81E-8`).
//! The scan converts each value **once**, at the Arrow edge, to a scaled integer (`i128` in Arrow's
//! `Decimal128`), sums those exactly inside DataFusion, and hands them to the rest of the program as
//! [`rust_decimal::Decimal`]. No float is ever added. Text goes through [`crate::parse_scaled`];
//! doubles through [`f64_to_scaled`] / [`f64s_to_scaled`], here.
//!
//! ## Which decimal does a `double` stand for?
//! A Parquet `double` like `0.1` is not exactly 0.1. We recover the decimal the producer meant:
//! multiply by `10^k`, round to the nearest integer, where `k ≤ scale` is the largest power that
//! keeps `|v·10^k| < 2^50`. Within that range the double's relative error (≤ 2^-52 after the
//! multiplication) is below 1/4 of a unit, so rounding returns the exact scaled integer for every
//! decimal with at most `k` fractional digits, i.e. for every value with ≤ 15 significant digits
//! (the most a double can carry faithfully). Values that need more digits were never exact in
//! the file; they are rounded at the scale. This is vectorisable and about as fast as a cast.

use rust_decimal::Decimal;

const POW10_F64: [f64; 19] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/// `10^n` as i128 for n in 0..=38.
pub const fn pow10_i128(n: u32) -> i128 {
    let mut v: i128 = 1;
    let mut i = 0;
    while i < n {
        v *= 10;
        i += 1;
    }
    v
}

/// Largest integer magnitude (2^50) for which `round(v · 10^k)` is exact; see the module docs.
const EXACT_LIMIT: f64 = 1_125_899_906_842_624.0;

/// Converts a `double` to a scaled integer with `scale` decimal places (see module docs).
/// Returns `None` for NaN, infinities and magnitudes that do not fit an `i128` at this scale.
#[inline]
pub fn f64_to_scaled(v: f64, scale: u32) -> Option<i128> {
    debug_assert!(scale <= 18);
    let mut k = scale;
    loop {
        let x = v * POW10_F64[k as usize];
        if x.abs() < EXACT_LIMIT {
            // Rounding is exact here and fits an i64 because |x| < 2^50.
            return Some(i128::from(round_half_away(x)) * pow10_i128(scale - k));
        }
        if k == 0 {
            break;
        }
        k -= 1;
    }
    // |v| >= 2^50: the double is (almost) an integer already. Guard the i128 range (1e38) with
    // room for the scale factor; NaN and infinities fail this comparison too.
    if v.is_finite() && v.abs() < 1e24 { Some((v.round() as i128) * pow10_i128(scale)) } else { None }
}

/// `x.round()` (half away from zero) as an integer, for `|x| < 2^50`.
///
/// `f64::round` is a libm call on the x86-64 baseline (no SSE4.1 `roundsd`); truncating with
/// `as i64` is one instruction, and `x - trunc(x)` is exact here (Sterbenz: for `|x| >= 1` both
/// operands are within a factor of 2; below 1 the truncation is 0), so the correction is exact.
///
/// Branch-free: a double that stands for a decimal lands just above or just below an integer
/// after scaling, at random, so a branch on the fraction mispredicts about every other value.
#[inline]
fn round_half_away(x: f64) -> i64 {
    let truncated = x as i64;
    let fraction = x - truncated as f64;
    // Wrapping: only a saturated (out-of-range) value can overflow, and callers redo those.
    truncated.wrapping_add(i64::from(fraction >= 0.5)).wrapping_sub(i64::from(fraction <= -0.5))
}

/// Converts a run of doubles to scaled integers, appending to `out`; equal to [`f64_to_scaled`]
/// per value.
///
/// Two tight passes instead of one branchy one: every value is rounded at full scale without a
/// branch, and a vectorised scan finds the rare values outside the exact range
/// (`|v · 10^scale| ≥ 2^50`, or not finite), which are then redone one by one.
///
/// Returns `false` if some value cannot be converted (not finite, or beyond `i128`); its slot
/// holds 0 and the caller decides (an error, unless the slot is NULL). Slots of NULL values are
/// converted like any other (Arrow leaves them unspecified but initialised); the caller zeroes
/// them.
///
/// `#[inline]` (like [`f64_to_scaled`] and [`crate::parse_scaled`]): the scan calls these from
/// another crate now, and without it they could no longer be inlined into its per-batch loops.
#[inline]
pub fn f64s_to_scaled(values: &[f64], scale: u32, out: &mut Vec<i128>) -> bool {
    debug_assert!(scale <= 18);
    let factor = POW10_F64[scale as usize];
    let start = out.len();
    // Out-of-range values give a saturated (or, for NaN, zero) integer here, redone below.
    out.extend(values.iter().map(|&v| i128::from(round_half_away(v * factor))));
    // False for NaN too.
    let exact = |v: f64| (v * factor).abs() < EXACT_LIMIT;
    if values.iter().fold(true, |ok, &v| ok & exact(v)) {
        return true;
    }
    let mut all = true;
    for (slot, &v) in out[start..].iter_mut().zip(values) {
        if !exact(v) {
            *slot = f64_to_scaled(v, scale).unwrap_or_else(|| {
                all = false;
                0
            });
        }
    }
    all
}

/// A scaled integer as a `Decimal`; `None` if it exceeds `Decimal`'s 28 digits.
pub fn scaled_to_decimal(value: i128, scale: u32) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(value, scale).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{MONEY_SCALE, parse_scaled};

    #[test]
    fn doubles_recover_the_decimal_they_were_written_from() {
        for text in [
            "0.1",
            "0.0010569617",
            "1.81E-8",
            "9.984E-7",
            "12345.6789",
            "99999.9999999999",
            "-0.3",
            "0.00000000001",
            "562.123456789012",
            "1234567.12345678",
            "1e-12",
            "0",
        ] {
            let expected = parse_scaled(text, MONEY_SCALE).unwrap();
            let v: f64 = text.parse().unwrap();
            assert_eq!(f64_to_scaled(v, MONEY_SCALE), Some(expected), "{text}");
        }
    }

    #[test]
    fn rounding_without_libm_matches_f64_round() {
        let mut x = -1e6;
        while x < 1e6 {
            for v in [x, x + 0.5, x - 0.5, x + 0.49999999999999994, -(x + 0.5), x * 1.000_000_1] {
                assert_eq!(round_half_away(v), v.round() as i64, "{v}");
            }
            x += 123.25;
        }
        for v in [0.5, -0.5, 1.5, -1.5, 2.5, 0.49999999999999994, -0.0, 1e15 + 0.5, -(1e15 + 0.5), 4.5e-13] {
            assert_eq!(round_half_away(v), v.round() as i64, "{v}");
        }
    }

    #[test]
    fn batch_conversion_equals_the_scalar_one() {
        let values = [0.1, -0.3, 1.81e-8, 12345.6789, 99999.9999999999, 0.0, 1e-12, 562.123456789012];
        let values = [&values[..], &[2000.0, -123456789.123, 1e20]].concat();
        let mut out = Vec::new();
        assert!(f64s_to_scaled(&values, MONEY_SCALE, &mut out));
        let scalar: Vec<i128> = values.iter().map(|&v| f64_to_scaled(v, MONEY_SCALE).unwrap()).collect();
        assert_eq!(out, scalar);
        for bad in [f64::NAN, f64::INFINITY, 1e30] {
            let mut out = Vec::new();
            assert!(!f64s_to_scaled(&[1.0, bad], MONEY_SCALE, &mut out));
            assert_eq!(out, vec![pow10_i128(MONEY_SCALE), 0]);
        }
    }

    #[test]
    fn doubles_out_of_range_or_not_finite_are_rejected() {
        assert_eq!(f64_to_scaled(f64::NAN, MONEY_SCALE), None);
        assert_eq!(f64_to_scaled(f64::INFINITY, MONEY_SCALE), None);
        assert_eq!(f64_to_scaled(1e30, MONEY_SCALE), None);
        assert_eq!(f64_to_scaled(1e20, MONEY_SCALE), Some(pow10_i128(32)));
    }

    #[test]
    fn scaled_values_become_decimals() {
        assert_eq!(scaled_to_decimal(18_100, MONEY_SCALE).unwrap().to_string(), "0.000000018100");
        assert!(scaled_to_decimal(i128::MAX, MONEY_SCALE).is_none());
    }
}
