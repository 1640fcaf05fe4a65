//! The one decimal text parser of the workspace.
//!
//! CUR CSV cells (`0.0010569617`, `1.81E-8`), evidence log fields (`12.34`, `2600`), JSON numbers
//! written by the app (`2e-7`), rule files and stored DynamoDB numbers all go through [`scan`], which
//! reads the digits into an integer mantissa and a power of ten without ever touching `f64`. Two
//! entry points finish the job:
//!
//! * [`parse_scaled`]: a scaled `i128` at a given scale, for the scan's hot path. Digits beyond the
//!   scale are rounded half to even (the convention for financial aggregates; CUR values seen so far
//!   never need it, they have ≤ 11 places).
//! * [`parse_decimal`]: an exact [`Decimal`], for everything else. It never rounds: a number a
//!   `Decimal` cannot hold exactly is an error.
//!
//! ## Accepted syntax
//! Optional surrounding ASCII whitespace, an optional sign (`+`/`-`), ASCII digits with at most one
//! `.` and at least one digit (`12`, `-0.5`, `.5`, `5.`), then optionally `e`/`E`, an optional sign
//! and 1–3 digits (`2e-7`, `1.2E+3`, `1.81E-08`). Nothing else: no `_`, no `,`, no `NaN`/`inf`, no
//! hex, no Unicode digits. A value either is an exact number or its line is malformed.
//!
//! ## Where the three former parsers disagreed, and what this one does
//! The pipeline (`parse_scaled`), attribution (`parse_exact`) and reconcile (`parse_decimal`) each
//! had a parser; where they differed this one takes the stricter rule that is still correct:
//! * **Whitespace**: only ASCII whitespace is trimmed (reconcile's rule); the other two trimmed
//!   Unicode whitespace such as U+00A0. The scan trims cells with `str::trim` itself before calling
//!   [`parse_scaled`], so CSV reading is unchanged.
//! * **Exponent**: 1–3 digits (reconcile's rule; attribution allowed 4, the pipeline any `i64`).
//!   Every float formatter (C, Java, JavaScript, Python, Excel) writes at most 3, and no non-zero
//!   `Decimal` needs more; `1e-500`, which the pipeline read as 0, is now malformed.
//! * **More than 38 significant digits** (scaled entry): the pipeline kept 37 and silently
//!   *truncated* further fraction digits (no rounding) and replaced further integer digits by zeros
//!   (a 38-digit integer at scale 0 lost its last digit). Now 38 digits are kept exactly and the
//!   rest take part in the half-to-even rounding; a result of 10^38 or more (beyond Arrow's
//!   `Decimal128(38, _)`) is [`MoneyError::OutOfRange`], where the pipeline only refused values
//!   beyond `i128`.
//! * **Trailing zeros beyond `Decimal`'s limits** (Decimal entry): `1.23456789012345678901234567890`
//!   (29 places, the last a zero) is exactly `1.2345678901234567890123456789`; attribution accepted
//!   it, reconcile refused it as "30 significant digits". It is accepted: nothing is rounded. A
//!   non-zero 30th significant digit is still refused.

use rust_decimal::Decimal;

use crate::{MoneyError, decimal_from_parts, pow10_i128};

/// Significant digits kept exactly in the mantissa: every 38-digit integer fits an `i128`.
const MAX_DIGITS: u32 = 38;
/// The largest exponent text (`e-999`): enough for every float formatter, and it bounds the
/// arithmetic below without further checks.
const MAX_EXPONENT_DIGITS: usize = 3;

/// Why [`scan`] or [`parse_scaled`] failed, before the text is attached (the hot path does not
/// allocate until a value is bad).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    NotANumber,
    OutOfRange,
}

/// A number read by [`scan`]: `±(mantissa + tail) × 10^exp10`, with `0 ≤ tail < 1` made of the
/// digits beyond the 38th significant one.
#[derive(Debug, Clone, Copy)]
struct Parts {
    negative: bool,
    /// At most [`MAX_DIGITS`] significant digits.
    mantissa: i128,
    exp10: i64,
    /// The first digit beyond the 38th significant one (0 if none).
    tail_first: u8,
    /// Whether any digit after `tail_first` is non-zero.
    tail_sticky: bool,
    /// Whether any digit was beyond the 38th significant one (even zeros).
    dropped: bool,
}

impl Parts {
    fn tail_is_zero(&self) -> bool {
        self.tail_first == 0 && !self.tail_sticky
    }
}

/// Reads the syntax described in the module docs (already trimmed) into [`Parts`].
#[inline]
fn scan(s: &[u8]) -> Result<Parts, Bad> {
    let (negative, mut i) = match s.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        Some(_) => (false, 0),
        None => return Err(Bad::NotANumber),
    };
    let mut mantissa: i128 = 0;
    let mut digits = 0u32; // significant digits accumulated (leading zeros skipped)
    let mut frac_len: i64 = 0; // fraction digits in the mantissa
    let mut dropped_int: i64 = 0; // integer digits beyond MAX_DIGITS (they keep the magnitude)
    let (mut tail_first, mut tail_sticky, mut dropped) = (0u8, false, false);
    let mut seen_digit = false;
    let mut seen_dot = false;
    while i < s.len() {
        let c = s[i];
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                if digits < MAX_DIGITS {
                    mantissa = mantissa * 10 + i128::from(c - b'0');
                    if mantissa != 0 {
                        digits += 1;
                    }
                    if seen_dot {
                        frac_len += 1;
                    }
                } else {
                    // Rare (more digits than any amount has): kept for rounding, not lost.
                    if dropped {
                        tail_sticky |= c != b'0';
                    } else {
                        tail_first = c - b'0';
                        dropped = true;
                    }
                    if !seen_dot {
                        dropped_int += 1;
                    }
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => break,
            _ => return Err(Bad::NotANumber),
        }
        i += 1;
    }
    if !seen_digit {
        return Err(Bad::NotANumber);
    }
    let exponent = match s.get(i + 1..) {
        Some(e) => exponent(e)?,
        None => 0, // no `e`
    };
    // Bounded: |exponent| ≤ 999 and the digit counts are at most the text length.
    let exp10 = exponent + dropped_int - frac_len;
    Ok(Parts { negative, mantissa, exp10, tail_first, tail_sticky, dropped })
}

/// The exponent after `e`/`E`: an optional sign and 1 to [`MAX_EXPONENT_DIGITS`] ASCII digits.
#[inline]
fn exponent(e: &[u8]) -> Result<i64, Bad> {
    let (negative, digits) = match e.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, e),
    };
    if digits.is_empty() || digits.len() > MAX_EXPONENT_DIGITS {
        return Err(Bad::NotANumber);
    }
    let mut value: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(Bad::NotANumber);
        }
        value = value * 10 + i64::from(c - b'0');
    }
    Ok(if negative { -value } else { value })
}

/// Parses decimal text (`-12.5`, `.5`, `1.81E-8`, `+3e2`) to a scaled integer with `scale` decimal
/// places, exactly; see the module docs for the syntax.
///
/// Digits beyond `scale` are rounded half to even (banker's rounding), the convention for financial
/// aggregates; CUR values seen so far never need it (≤ 11 places). Fails with
/// [`MoneyError::NotANumber`] for malformed text and [`MoneyError::OutOfRange`] when the result
/// needs more than 38 digits (Arrow's `Decimal128` precision).
///
/// `#[inline]`: the scan calls this once per CSV cell from another crate.
#[inline]
pub fn parse_scaled(text: &str, scale: u32) -> Result<i128, MoneyError> {
    match scaled(text.trim_ascii().as_bytes(), scale) {
        Ok(v) => Ok(v),
        Err(bad) => Err(scaled_error(text, bad)),
    }
}

#[cold]
fn scaled_error(text: &str, bad: Bad) -> MoneyError {
    match bad {
        Bad::NotANumber => MoneyError::not_a_number(text),
        Bad::OutOfRange => MoneyError::out_of_range(text, "more than 38 digits at the requested scale"),
    }
}

#[inline]
fn scaled(s: &[u8], scale: u32) -> Result<i128, Bad> {
    const LIMIT: i128 = pow10_i128(38);
    let p = scan(s)?;
    // value × 10^scale = (mantissa + tail) × 10^shift
    let shift = p.exp10 + i64::from(scale);
    let magnitude = if shift >= 0 {
        if p.mantissa == 0 {
            0
        } else if shift > 38 || (shift > 0 && p.dropped) {
            // A dropped digit means 38 kept ones, so anything times 10 is ≥ 10^38.
            return Err(Bad::OutOfRange);
        } else {
            let m = p.mantissa.checked_mul(pow10_i128(shift as u32)).ok_or(Bad::OutOfRange)?;
            // shift == 0 here if digits were dropped: round on them.
            let up = p.tail_first > 5 || (p.tail_first == 5 && (p.tail_sticky || m % 2 == 1));
            m + i128::from(up)
        }
    } else {
        let down = (-shift) as u32; // shift ≥ -(2000 + text length): fits
        if down > 38 {
            0 // mantissa < 10^38, so the value is below 0.1 units
        } else {
            round_half_even_div(p.mantissa, pow10_i128(down), p.tail_is_zero())
        }
    };
    if magnitude >= LIMIT {
        return Err(Bad::OutOfRange);
    }
    Ok(if p.negative { -magnitude } else { magnitude })
}

/// `(n + tail) / d` for non-negative `n`, `d` a power of ten ≥ 10, rounded half to even; `tail` is
/// a fraction in `[0, 1)` known only by whether it is zero (it decides exact ties).
#[inline]
fn round_half_even_div(n: i128, d: i128, tail_is_zero: bool) -> i128 {
    let q = n / d;
    let r = n % d;
    let half = d / 2;
    if r > half || (r == half && (!tail_is_zero || q % 2 == 1)) { q + 1 } else { q }
}

/// Parses decimal text (`12.34`, `-0.5`, `.5`, `13`, `1.5E+3`, `2e-7`) to a [`Decimal`], exactly;
/// see the module docs for the syntax.
///
/// Never rounds: fails with [`MoneyError::OutOfRange`] when no `Decimal` holds the value exactly
/// (more than 28 decimal places or 29 significant digits after dropping trailing zeros, or beyond
/// ±7.9 × 10^28), and with [`MoneyError::NotANumber`] for malformed text. The scale of the text is
/// kept (`1.50` stays `1.50`), as `Decimal::from_str` does.
pub fn parse_decimal(text: &str) -> Result<Decimal, MoneyError> {
    match short_plain_decimal(text.trim_ascii().as_bytes()) {
        Some(d) => Ok(d),
        None => parse_decimal_general(text),
    }
}

/// [`parse_decimal`] of any text (the fast path's reference).
fn parse_decimal_general(text: &str) -> Result<Decimal, MoneyError> {
    let out_of_range = || MoneyError::out_of_range(text, "no exact Decimal (28 decimal places, 29 digits)");
    let p = scan(text.trim_ascii().as_bytes()).map_err(|bad| match bad {
        Bad::NotANumber => MoneyError::not_a_number(text),
        Bad::OutOfRange => out_of_range(),
    })?;
    if !p.tail_is_zero() {
        return Err(out_of_range()); // a non-zero 39th significant digit: far beyond a Decimal
    }
    let m = if p.negative { -p.mantissa } else { p.mantissa };
    decimal_from_parts(m, -p.exp10).ok_or_else(out_of_range)
}

/// [`parse_decimal`]'s common case on a fast path: at most 18 characters of an optional `-`,
/// digits and at most one `.` (`305.18`, `10240`: log fields, most CSV amounts), so the mantissa
/// fits an `i64` and the scale is the number of digits after the point, as [`scan`] and
/// [`decimal_from_parts`] would make it. `None` for anything else (the general path decides).
#[inline]
fn short_plain_decimal(s: &[u8]) -> Option<Decimal> {
    if s.len() > 18 {
        return None;
    }
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    let (mut mantissa, mut scale, mut dot, mut any) = (0i64, 0u32, false, false);
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + i64::from(c - b'0');
                any = true;
                scale += u32::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    Decimal::try_from_i128_with_scale(i128::from(if negative { -mantissa } else { mantissa }), scale).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::MONEY_SCALE;
    use std::str::FromStr;

    use crate::testing::d;

    fn not_a_number(r: Result<impl std::fmt::Debug, MoneyError>) -> bool {
        matches!(r, Err(MoneyError::NotANumber { .. }))
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
        assert_eq!(p("1.81E-08"), Ok(18_100));
    }

    #[test]
    fn text_beyond_the_scale_rounds_half_to_even() {
        assert_eq!(parse_scaled("0.0000000000005", MONEY_SCALE), Ok(0));
        assert_eq!(parse_scaled("0.0000000000015", MONEY_SCALE), Ok(2));
        assert_eq!(parse_scaled("0.00000000000151", MONEY_SCALE), Ok(2));
        assert_eq!(parse_scaled("0.0000000000025", MONEY_SCALE), Ok(2));
        assert_eq!(parse_scaled("-0.0000000000025", MONEY_SCALE), Ok(-2));
        assert_eq!(parse_scaled("-0.0000000000035", MONEY_SCALE), Ok(-4));
        assert_eq!(parse_scaled("1e-999", MONEY_SCALE), Ok(0));
    }

    #[test]
    fn text_that_is_not_a_number_is_rejected() {
        for bad in ["", "abc", "1,5", "NaN", "inf", "--1", "1e", "1e+-3", ".", "-", "1.2.3", "12a", "1e+", "e5"] {
            assert!(not_a_number(parse_scaled(bad, MONEY_SCALE)), "{bad:?}");
        }
        assert!(matches!(parse_scaled("1e40", MONEY_SCALE), Err(MoneyError::OutOfRange { .. })));
    }

    #[test]
    fn digits_beyond_38_take_part_in_rounding() {
        // 38 significant digits are kept exactly (the former parser kept 37: this lost its last 8).
        let n38 = "12345678901234567890123456789012345678";
        assert_eq!(parse_scaled(n38, 0), Ok(i128::from_str(n38).unwrap()));
        // 25 integer + 13 fraction digits at scale 12: the 13th fraction digit rounds (it was cut).
        assert_eq!(
            parse_scaled("1234567890123456789012345.6789012345678", 12),
            Ok(1_234_567_890_123_456_789_012_345_678_901_234_568)
        );
        // Ties decided by the digits beyond the 38th.
        let q = |frac: &str| parse_scaled(&format!("1234567890123456789012345.{frac}"), 12);
        let v = |last: i128| 1_234_567_890_123_456_789_012_345_678_901_234_000 + last;
        assert_eq!(q("6789012345665"), Ok(v(566)), "a tie goes to the even neighbour");
        assert_eq!(q("678901234566500"), Ok(v(566)), "zeros beyond the 38th digit keep the tie");
        assert_eq!(q("67890123456650001"), Ok(v(567)), "a later non-zero digit breaks the tie");
        assert_eq!(q("67890123456651"), Ok(v(567)));
        assert_eq!(q("6789012345675"), Ok(v(568)));
        assert_eq!(q("67890123456649999"), Ok(v(566)));
        // Integer digits beyond 38 keep the magnitude, and 10^38 or more is out of range.
        let too_big = format!("{n38}0");
        assert!(matches!(parse_scaled(&too_big, 0), Err(MoneyError::OutOfRange { .. })));
        assert!(matches!(
            parse_scaled("99999999999999999999999999999999999999.5", 0),
            Err(MoneyError::OutOfRange { .. })
        ));
        assert_eq!(parse_scaled("99999999999999999999999999999999999999.4", 0), Ok(pow10_i128(38) - 1));
        assert_eq!(parse_scaled(&format!("{too_big}e-2"), 0), Ok(i128::from_str(&n38[..37]).unwrap() + 1));
        assert!(matches!(parse_scaled("1.5e26", MONEY_SCALE), Err(MoneyError::OutOfRange { .. })));
    }

    #[test]
    fn exponents_have_at_most_three_digits() {
        assert_eq!(parse_scaled("1e-012", MONEY_SCALE), Ok(1));
        for bad in ["1e0001", "1e-1000", "0e1000"] {
            assert!(not_a_number(parse_scaled(bad, MONEY_SCALE)), "{bad:?}");
            assert!(not_a_number(parse_decimal(bad)), "{bad:?}");
        }
    }

    #[test]
    fn only_ascii_whitespace_is_trimmed() {
        assert_eq!(parse_decimal("\t 12.5\n").unwrap(), d("12.5"));
        assert!(not_a_number(parse_decimal("\u{a0}12.5")));
        assert!(not_a_number(parse_scaled("12.5\u{2003}", MONEY_SCALE)));
    }

    #[test]
    fn parse_decimal_is_exact() {
        assert_eq!(parse_decimal("12.34").unwrap(), d("12.34"));
        assert_eq!(parse_decimal("2600").unwrap(), d("2600"));
        assert_eq!(parse_decimal(".5").unwrap(), d("0.5"));
        assert_eq!(parse_decimal("-1.5E+3").unwrap(), d("-1500"));
        assert_eq!(parse_decimal("2e-7").unwrap(), d("0.0000002"));
        assert_eq!(parse_decimal("0.1").unwrap().to_string(), "0.1");
        assert_eq!(parse_decimal("12.34").unwrap().to_string(), "12.34");
        assert_eq!(parse_decimal(" -0.5 ").unwrap().to_string(), "-0.5");
        assert_eq!(parse_decimal("+3").unwrap().to_string(), "3");
        assert_eq!(parse_decimal("2e-7").unwrap().to_string(), "0.0000002");
        assert_eq!(parse_decimal("1.5E3").unwrap().to_string(), "1500");
        assert_eq!(parse_decimal("1.50").unwrap().to_string(), "1.50");
        assert_eq!(parse_decimal("0.00").unwrap().to_string(), "0.00");
        assert_eq!(parse_decimal("5.").unwrap().to_string(), "5");
        assert_eq!(parse_decimal("0.0000166667").unwrap().to_string(), "0.0000166667");
        assert_eq!(parse_decimal("1E-12").unwrap(), d("0.000000000001"));
        assert_eq!(parse_decimal("79228162514264337593543950335").unwrap(), Decimal::MAX);
        for bad in
            ["", "-", ".", "1,5", "1_000", "1_0", "NaN", "inf", "0x10", "1e", "1e+", "abc", "1.2.3", "e5", "1e99999"]
        {
            assert!(not_a_number(parse_decimal(bad)), "{bad:?}");
        }
    }

    #[test]
    fn parse_decimal_refuses_rather_than_rounds() {
        // 30 significant digits do not fit: refused, not rounded.
        assert!(matches!(parse_decimal("1.23456789012345678901234567891"), Err(MoneyError::OutOfRange { .. })));
        // ... but a trailing zero is not a significant digit: exact (reconcile's parser refused it).
        assert_eq!(parse_decimal("1.23456789012345678901234567890").unwrap(), d("1.2345678901234567890123456789"));
        assert!(matches!(parse_decimal("79228162514264337593543950336"), Err(MoneyError::OutOfRange { .. })));
        assert!(matches!(parse_decimal("1e-29"), Err(MoneyError::OutOfRange { .. })));
        assert!(matches!(parse_decimal("1e29"), Err(MoneyError::OutOfRange { .. })));
        assert!(matches!(parse_decimal(&format!("1.{}1", "0".repeat(40))), Err(MoneyError::OutOfRange { .. })));
        assert_eq!(parse_decimal(&format!("1.{}", "0".repeat(60))).unwrap(), Decimal::ONE);
        assert_eq!(parse_decimal("0e-50").unwrap(), Decimal::ZERO);
        assert_eq!(parse_decimal("1e28").unwrap(), d("10000000000000000000000000000"));
    }

    proptest::proptest! {
        /// The fast path gives what the general one gives, digit for digit and scale for scale.
        #[test]
        fn short_plain_decimals_read_as_the_general_path_reads_them(text in "[-+]?[0-9]{0,12}[.]?[0-9]{0,9}[.]?") {
            if let Some(fast) = short_plain_decimal(text.as_bytes()) {
                let general = parse_decimal_general(&text).unwrap();
                proptest::prop_assert_eq!((fast.mantissa(), fast.scale()), (general.mantissa(), general.scale()), "{}", text);
            } else if text.len() <= 18 && !text.starts_with('+') && text.matches('.').count() < 2 {
                proptest::prop_assert!(parse_decimal_general(&text).is_err(), "{}", text);
            }
            proptest::prop_assert_eq!(parse_decimal(&text).ok(), parse_decimal_general(&text).ok());
        }
    }

    #[test]
    fn both_entry_points_agree() {
        for text in ["0.1", "1.81E-8", "-12.5", "+.5", "5.", "1E+2", "0", "-0", "123456.789012", "1e-12"] {
            let dec = parse_decimal(text).unwrap();
            let scaled = parse_scaled(text, MONEY_SCALE).unwrap();
            assert_eq!(Decimal::from_i128_with_scale(scaled, MONEY_SCALE), dec, "{text}");
        }
    }

    #[test]
    fn errors_name_the_text() {
        let e = parse_decimal("12a").unwrap_err();
        assert_eq!(e.to_string(), "not a decimal number: \"12a\"");
        let long = "x".repeat(200);
        assert_eq!(parse_decimal(&long).unwrap_err(), MoneyError::NotANumber { text: "x".repeat(64) });
    }
}
