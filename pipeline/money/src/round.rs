//! Rounding money for people: the rounding rule, and largest-remainder rounding of parts.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::{MAX_SCALE, MoneyError, Units, exact_add, exact_sub, exact_sum};

/// Rounding used wherever curflow rounds money for people (reports, the finance export): half away
/// from zero (`0.125 → 0.13`, `-0.125 → -0.13`), the commercial rule accountants expect.
///
/// Not the rule of [`crate::parse_scaled`], which rounds digits beyond the store's 12 places half to
/// even (the convention for aggregates: no upward drift over millions of lines).
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Rounds `d` to `dp` decimal places with [`ROUNDING`].
pub fn round(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, ROUNDING)
}

/// Rounds each of `amounts` to `dp` places so that the rounded parts sum **exactly** to the total
/// rounded to `dp` places (with [`ROUNDING`]): the largest-remainder method.
///
/// Every part first goes down to the floor at `dp` places; the units still missing to reach the
/// rounded total (never more than the number of parts with a remainder) go one each to the parts
/// with the largest remainders, ties to the earlier part. Credits (negative parts) work the same
/// way. A part is never moved by a full unit or more from its exact value, and a part that is
/// already exact at `dp` places is never changed.
///
/// Sums are exact ([`exact_sum`]): when the total has no exact `Decimal` this fails with
/// [`MoneyError::Overflow`] instead of distributing the units of a silently rounded total.
pub fn round_preserving_total(amounts: &[Decimal], dp: u32) -> Result<Vec<Decimal>, MoneyError> {
    if dp > MAX_SCALE {
        return Err(MoneyError::ScaleTooLarge { scale: dp });
    }
    let overflow =
        |what: &str| MoneyError::Overflow { what: format!("largest remainder of {} parts: {what}", amounts.len()) };
    let unit = Decimal::new(1, dp);
    let total = round(exact_sum(amounts.iter().copied()).ok_or_else(|| overflow("the total"))?, dp);
    let floors: Vec<Decimal> =
        amounts.iter().map(|a| a.round_dp_with_strategy(dp, RoundingStrategy::ToNegativeInfinity)).collect();
    let floor_sum = exact_sum(floors.iter().copied()).ok_or_else(|| overflow("the sum of the floors"))?;
    // A whole number of units: the rounded total and the floors are all at `dp` places.
    let missing = Units::from_decimal(exact_sub(total, floor_sum).ok_or_else(|| overflow("the units missing"))?, dp)?;
    let missing =
        usize::try_from(missing.value()).map_err(|_| overflow(&format!("{} units to distribute", missing.value())))?;
    let mut order: Vec<(Decimal, usize)> = Vec::with_capacity(amounts.len());
    for (i, (a, f)) in amounts.iter().zip(&floors).enumerate() {
        // Exact in practice (the remainder is below one unit); checked so nothing can round.
        order.push((exact_sub(*a, *f).ok_or_else(|| overflow("a remainder"))?, i));
    }
    // Largest remainder first, then the earlier index.
    order.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    let mut out = floors;
    for &(rem, i) in order.iter().take(missing) {
        if rem.is_zero() {
            break; // cannot happen (see the doc comment); kept so an exact part is never moved
        }
        out[i] = exact_add(out[i], unit).ok_or_else(|| overflow("a rounded part"))?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use crate::testing::d;

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round(d("0.125"), 2), d("0.13"));
        assert_eq!(round(d("-0.125"), 2), d("-0.13"));
        assert_eq!(round(d("0.124"), 2), d("0.12"));
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

    #[test]
    fn largest_remainder_refuses_what_it_cannot_do_exactly() {
        assert_eq!(round_preserving_total(&[d("1")], 29), Err(MoneyError::ScaleTooLarge { scale: 29 }));
        let big = Decimal::MAX;
        assert!(matches!(round_preserving_total(&[big, d("0.000000000001")], 2), Err(MoneyError::Overflow { .. })));
    }
}
