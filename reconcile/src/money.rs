//! Exact decimal arithmetic for money and quantities.
//!
//! `rust_decimal`'s operators panic on overflow and on division by zero; the helpers here return
//! [`Error::Overflow`] instead, so a hostile input cannot abort the process. [`parse_decimal`] reads the
//! numbers the app writes (`12.34`, `-0.5`, and JavaScript's `2e-7`) straight into a `Decimal` and fails
//! rather than round when a number has more digits than a `Decimal` holds.
//!
//! [`round_preserving_total`] is the largest-remainder rounding used by the finance export: every part is
//! rounded to the scale so that the parts sum to the rounded total exactly.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{Error, Result};

/// Rounding used wherever this crate rounds money for people: half away from zero (`0.125 → 0.13`,
/// `-0.125 → -0.13`), the commercial rule accountants expect.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Rounds `d` to `dp` decimal places with [`ROUNDING`].
pub fn round(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, ROUNDING)
}

pub(crate) fn overflow(what: impl Into<String>) -> Error {
    Error::Overflow { what: what.into() }
}

/// `a + b`, or [`Error::Overflow`].
pub(crate) fn add(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_add(b).ok_or_else(|| overflow(format!("{a} + {b}")))
}

/// `a − b`, or [`Error::Overflow`].
pub(crate) fn sub(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_sub(b).ok_or_else(|| overflow(format!("{a} - {b}")))
}

/// `a × b`, or [`Error::Overflow`] (the product is rounded to 28 significant digits when it needs more).
pub(crate) fn mul(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_mul(b).ok_or_else(|| overflow(format!("{a} * {b}")))
}

/// `a ÷ b` (28 significant digits), or [`Error::Overflow`]; callers make sure `b ≠ 0`.
pub(crate) fn div(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_div(b).ok_or_else(|| overflow(format!("{a} / {b}")))
}

/// Σ `values`, or [`Error::Overflow`].
pub(crate) fn sum<I: IntoIterator<Item = Decimal>>(values: I) -> Result<Decimal> {
    values.into_iter().try_fold(Decimal::ZERO, add)
}

/// `part / whole × 100`, or `None` when `whole` is 0; the denominator is `|whole|` so that the sign of the
/// result is the sign of `part`.
pub(crate) fn pct(part: Decimal, whole: Decimal) -> Result<Option<Decimal>> {
    if whole.is_zero() {
        return Ok(None);
    }
    Ok(Some(div(mul(part, Decimal::ONE_HUNDRED)?, whole.abs())?))
}

/// Parses a decimal number exactly: optional sign, digits with an optional `.` fraction, and an optional
/// exponent (`2e-7`, `1.5E3`). Surrounding ASCII whitespace is ignored. `None` for anything else
/// (including `NaN`, `1,5`, `1_000`, hex) and for numbers that a `Decimal` cannot hold without rounding.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let t = text.trim_ascii();
    let (base, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let digits = base.strip_prefix(['+', '-']).unwrap_or(base);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !ok_digits(int) || !ok_digits(frac) {
        return None;
    }
    let mut value = Decimal::from_str_exact(base.strip_prefix('+').unwrap_or(base)).ok()?;
    if let Some(exp) = exp {
        let e_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if e_digits.is_empty() || !ok_digits(e_digits) || e_digits.len() > 3 {
            return None;
        }
        let e: i64 = exp.strip_prefix('+').unwrap_or(exp).parse().ok()?;
        value = shift(value, e)?;
    }
    Some(value)
}

/// `value × 10^e` exactly, or `None`.
fn shift(value: Decimal, e: i64) -> Option<Decimal> {
    let (mut m, mut s) = (value.mantissa(), i64::from(value.scale()) - e);
    while s < 0 {
        m = m.checked_mul(10)?;
        s += 1;
    }
    while s > i64::from(Decimal::MAX_SCALE) && m % 10 == 0 && m != 0 {
        m /= 10;
        s -= 1;
    }
    if m == 0 {
        return Some(Decimal::ZERO);
    }
    Decimal::try_from_i128_with_scale(m, u32::try_from(s).ok()?).ok()
}

/// Rounds each of `amounts` to `dp` places so that the rounded parts sum **exactly** to the total
/// rounded to `dp` places (with [`ROUNDING`]): the largest-remainder method.
///
/// Every part first goes down to the floor at `dp` places; the units still missing to reach the rounded
/// total (never more than the number of parts with a remainder) go one each to the parts with the largest
/// remainders, ties to the earlier part. Credits (negative parts) work the same way. A part is never moved
/// by a full unit or more from its exact value, and a part that is already exact at `dp` places is never
/// changed.
pub fn round_preserving_total(amounts: &[Decimal], dp: u32) -> Result<Vec<Decimal>> {
    if dp > Decimal::MAX_SCALE {
        return Err(Error::Invalid(format!("cannot round to {dp} decimal places (at most {})", Decimal::MAX_SCALE)));
    }
    let unit = Decimal::new(1, dp);
    let total = round(sum(amounts.iter().copied())?, dp);
    let floors: Vec<Decimal> =
        amounts.iter().map(|a| a.round_dp_with_strategy(dp, RoundingStrategy::ToNegativeInfinity)).collect();
    let missing = div(sub(total, sum(floors.iter().copied())?)?, unit)?;
    let missing = missing
        .to_usize()
        .ok_or_else(|| Error::Invalid(format!("largest remainder: {missing} units to distribute")))?;
    let mut order: Vec<(Decimal, usize)> =
        amounts.iter().zip(&floors).enumerate().map(|(i, (a, f))| (*a - *f, i)).collect();
    // Largest remainder first, then the earlier index.
    order.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    let mut out = floors;
    for &(rem, i) in order.iter().take(missing) {
        if rem.is_zero() {
            break; // cannot happen (see the doc comment); kept so an exact part is never moved
        }
        out[i] = add(out[i], unit)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        parse_decimal(s).unwrap()
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(d("12.34").to_string(), "12.34");
        assert_eq!(d(" -0.5 ").to_string(), "-0.5");
        assert_eq!(d("+3").to_string(), "3");
        assert_eq!(d("2e-7").to_string(), "0.0000002");
        assert_eq!(d("1.5E3").to_string(), "1500");
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("0.0000166667").to_string(), "0.0000166667");
        for bad in ["", "-", ".", "1,5", "1_000", "NaN", "inf", "0x10", "1e", "1e+", "abc", "1.2.3", "e5", "1e99999"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
        // 30 significant digits do not fit: refused, not rounded.
        assert_eq!(parse_decimal("1.23456789012345678901234567890"), None);
    }

    #[test]
    fn pct_handles_zero() {
        assert_eq!(pct(d("5"), Decimal::ZERO).unwrap(), None);
        assert_eq!(pct(d("-5"), d("50")).unwrap(), Some(d("-10")));
    }

    #[test]
    fn largest_remainder() {
        let parts = round_preserving_total(&[d("0.333"), d("0.333"), d("0.334")], 2).unwrap();
        assert_eq!(parts, [d("0.33"), d("0.33"), d("0.34")]);
        // Σ = 0.015 → 0.02; floors are all 0.00 → two units, to the first two of three equal remainders.
        let parts = round_preserving_total(&[d("0.005"), d("0.005"), d("0.005")], 2).unwrap();
        assert_eq!(parts.iter().copied().sum::<Decimal>(), d("0.02"));
        assert_eq!(parts, [d("0.01"), d("0.01"), d("0.00")]);
        // Σ = 7.668 → 7.67; floors 10.00 and -2.34 (a credit floors away from zero) → one unit missing,
        // equal remainders 0.004 → the earlier part.
        let parts = round_preserving_total(&[d("10.004"), d("-2.336")], 2).unwrap();
        assert_eq!(parts, [d("10.01"), d("-2.34")]);
        assert_eq!(round_preserving_total(&[], 2).unwrap(), Vec::<Decimal>::new());
    }
}
