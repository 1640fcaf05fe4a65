//! Exact money and quantity representation.
//!
//! CUR delivers costs as Parquet `double` or as CSV text (often in scientific notation, `1.81E-8`).
//! We convert each value **once**, at the Arrow edge, to a scaled integer (`i128` in Arrow's
//! `Decimal128`), sum those exactly inside DataFusion, and hand them to the rest of the program as
//! [`rust_decimal::Decimal`]. No float is ever added.
//!
//! * Money uses [`MONEY_SCALE`] = 12 decimal places. Real CUR costs carry up to 11 (measured on the
//!   public sample: `lineItem/UnblendedCost` has 11), so 12 leaves a digit of headroom.
//! * Usage quantities use [`QUANTITY_SCALE`] = 10 places: quantities such as S3 byte-hours reach
//!   1e15+ per line, and a month of them must still fit in `Decimal`'s 96-bit mantissa.
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

/// Decimal places kept for money (costs, fees, credits).
pub const MONEY_SCALE: u32 = 12;
/// Decimal places kept for usage quantities.
pub const QUANTITY_SCALE: u32 = 10;
/// Arrow precision used for every scaled value (the maximum for `Decimal128`).
pub const DECIMAL_PRECISION: u8 = 38;

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

/// `d` as the shortest exact decimal text, the same as `d.normalize().to_string()` (`-1.5`,
/// `0.000001`, `12`), for writing amounts to stores.
///
/// `Decimal`'s own formatting divides its 96-bit mantissa once per digit; this formats the
/// mantissa as one integer and places the point, several times faster on the ~300,000 amounts
/// of a month's store write.
pub fn decimal_text(d: Decimal) -> String {
    let d = d.normalize();
    let digits = d.mantissa().unsigned_abs().to_string();
    let scale = d.scale() as usize;
    let mut out = String::with_capacity(digits.len() + scale + 3);
    if d.is_sign_negative() && !d.is_zero() {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    }
    out
}

/// Why a text value could not be read as a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseDecimalError {
    /// Not a decimal number (`abc`, `1,5`, `NaN`, `--1`).
    NotANumber,
    /// A number, but too large for 38 digits at the requested scale.
    OutOfRange,
}

/// Parses decimal text (`-12.5`, `.5`, `1.81E-8`, `+3e2`) to a scaled integer, exactly.
///
/// Digits beyond `scale` are rounded half-to-even (banker's rounding), the convention for
/// financial aggregates; CUR values seen so far never need it (≤ 11 places).
pub fn parse_scaled(text: &str, scale: u32) -> Result<i128, ParseDecimalError> {
    let s = text.trim().as_bytes();
    let (negative, mut i) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        Some(_) => (false, 0),
        None => return Err(ParseDecimalError::NotANumber),
    };
    let mut mantissa: i128 = 0;
    let mut digits = 0u32; // significant digits accumulated (leading zeros skipped)
    let mut frac_len: i64 = 0;
    let mut dropped: i64 = 0; // integer digits dropped because the mantissa was full
    let mut seen_digit = false;
    let mut seen_dot = false;
    while i < s.len() {
        let c = s[i];
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                if digits < 37 {
                    mantissa = mantissa * 10 + i128::from(c - b'0');
                    if mantissa != 0 {
                        digits += 1;
                    }
                    if seen_dot {
                        frac_len += 1;
                    }
                } else if !seen_dot {
                    dropped += 1; // keep magnitude; precision beyond 37 digits is lost on purpose
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => break,
            _ => return Err(ParseDecimalError::NotANumber),
        }
        i += 1;
    }
    if !seen_digit {
        return Err(ParseDecimalError::NotANumber);
    }
    let mut exponent: i64 = 0;
    if i < s.len() {
        // s[i] is 'e' or 'E'
        let exp_text = std::str::from_utf8(&s[i + 1..]).map_err(|_| ParseDecimalError::NotANumber)?;
        if exp_text.is_empty() || exp_text.starts_with("+-") {
            return Err(ParseDecimalError::NotANumber);
        }
        exponent = exp_text.parse::<i64>().map_err(|_| ParseDecimalError::NotANumber)?;
        if exponent.abs() > 400 {
            return if mantissa == 0 || exponent < 0 { Ok(0) } else { Err(ParseDecimalError::OutOfRange) };
        }
    }
    // value = mantissa * 10^(exponent + dropped - frac_len); we want value * 10^scale.
    let shift = exponent + dropped - frac_len + i64::from(scale);
    let scaled = if shift >= 0 {
        let shift = u32::try_from(shift).map_err(|_| ParseDecimalError::OutOfRange)?;
        if shift > 38 {
            if mantissa == 0 {
                0
            } else {
                return Err(ParseDecimalError::OutOfRange);
            }
        } else {
            mantissa.checked_mul(pow10_i128(shift)).ok_or(ParseDecimalError::OutOfRange)?
        }
    } else {
        let shift = u32::try_from(-shift).map_err(|_| ParseDecimalError::OutOfRange)?;
        if shift > 38 { 0 } else { round_half_even_div(mantissa, pow10_i128(shift)) }
    };
    Ok(if negative { -scaled } else { scaled })
}

/// `n / d` for non-negative `n`, positive `d`, rounded half to even.
fn round_half_even_div(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    let twice = r * 2;
    if twice > d || (twice == d && q % 2 == 1) { q + 1 } else { q }
}

/// A scaled integer as a `Decimal`; `None` if it exceeds `Decimal`'s 28 digits.
pub fn scaled_to_decimal(value: i128, scale: u32) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(value, scale).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_equals_rust_decimals_normalized_display() {
        let mut samples: Vec<Decimal> = [
            "0",
            "-0",
            "0.000",
            "-0.5",
            "12",
            "120",
            "1.50",
            "-1234.567890000000",
            "0.000000000001",
            "-0.000000000000000000000000001",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "7.9228162514264337593543950335",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = i128::from(x as i64) * i128::from((x >> 40) as u32 + 1);
            samples.push(Decimal::from_i128_with_scale(mantissa, (x % 29) as u32));
        }
        for d in samples {
            assert_eq!(decimal_text(d), d.normalize().to_string(), "{d:?}");
        }
    }

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
    fn text_in_every_cur_notation_parses_exactly() {
        let p = |t| parse_scaled(t, MONEY_SCALE);
        assert_eq!(p("1.81E-8"), Ok(18_100));
        assert_eq!(p("9.984e-7"), Ok(998_400));
        assert_eq!(p("0.0010569617"), Ok(1_056_961_700));
        assert_eq!(p("-12.5"), Ok(-12_500_000_000_000));
        assert_eq!(p("+.5"), Ok(500_000_000_000));
        assert_eq!(p("5."), Ok(5_000_000_000_000));
        assert_eq!(p("1E+2"), Ok(100_000_000_000_000));
        assert_eq!(p(" 7 "), Ok(7_000_000_000_000));
        assert_eq!(p("0E-10"), Ok(0));
    }

    #[test]
    fn text_beyond_the_scale_rounds_half_to_even() {
        assert_eq!(parse_scaled("0.0000000000005", MONEY_SCALE), Ok(0));
        assert_eq!(parse_scaled("0.0000000000015", MONEY_SCALE), Ok(2));
        assert_eq!(parse_scaled("0.00000000000151", MONEY_SCALE), Ok(2));
        assert_eq!(parse_scaled("0.0000000000025", MONEY_SCALE), Ok(2));
    }

    #[test]
    fn text_that_is_not_a_number_is_rejected() {
        for bad in ["", "abc", "1,5", "NaN", "inf", "--1", "1e", "1e+-3", ".", "-", "1.2.3", "12a"] {
            assert_eq!(parse_scaled(bad, MONEY_SCALE), Err(ParseDecimalError::NotANumber), "{bad:?}");
        }
        assert_eq!(parse_scaled("1e40", MONEY_SCALE), Err(ParseDecimalError::OutOfRange));
    }

    #[test]
    fn scaled_values_become_decimals() {
        assert_eq!(scaled_to_decimal(18_100, MONEY_SCALE).unwrap().to_string(), "0.000000018100");
        assert!(scaled_to_decimal(i128::MAX, MONEY_SCALE).is_none());
    }
}
