//! Exact arithmetic on `Decimal`s and exact conversion to integer minor units.
//!
//! `rust_decimal`'s own `+` and `*` (and `checked_add`/`checked_mul`) silently round when a result
//! needs more than 96 bits of mantissa: `79228162514264337593543950335 + 0.000000000001` gives
//! back the left operand. Money must be exact to the smallest unit, so the helpers here work on the
//! `i128` mantissas and fail rather than round: sums of driver quantities and money stay exact or
//! stop loudly.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{MAX_SCALE, MoneyError};

/// An amount in integer minor units: `value × 10^-scale`. `12.5` at scale 12 is
/// `12_500_000_000_000` units of 1e-12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Units {
    value: i128,
    scale: u32,
}

impl Units {
    /// `value` minor units at `scale` decimal places (`scale ≤ 28`).
    pub fn new(value: i128, scale: u32) -> Result<Self, MoneyError> {
        if scale > MAX_SCALE {
            return Err(MoneyError::ScaleTooLarge { scale });
        }
        Ok(Self { value, scale })
    }

    /// The integer number of minor units.
    pub fn value(self) -> i128 {
        self.value
    }

    /// Decimal places of one minor unit.
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// Converts exactly; fails with [`MoneyError::Inexact`] when `d` has non-zero digits beyond
    /// `scale`.
    pub fn from_decimal(d: Decimal, scale: u32) -> Result<Self, MoneyError> {
        if scale > MAX_SCALE {
            return Err(MoneyError::ScaleTooLarge { scale });
        }
        let (m, s) = (d.mantissa(), d.scale());
        let value = if scale >= s {
            checked_pow10(scale - s).and_then(|p| m.checked_mul(p))
        } else {
            let p = checked_pow10(s - scale).ok_or(MoneyError::ScaleTooLarge { scale: s })?;
            if m % p != 0 {
                return Err(MoneyError::Inexact { value: d, scale });
            }
            Some(m / p)
        };
        let value = value.ok_or_else(|| MoneyError::Overflow { what: format!("{d} at scale {scale}") })?;
        Ok(Self { value, scale })
    }

    /// Converts back; fails when the value needs more than `Decimal`'s 96-bit mantissa at this
    /// scale.
    pub fn to_decimal(self) -> Result<Decimal, MoneyError> {
        Decimal::try_from_i128_with_scale(self.value, self.scale)
            .map_err(|_| MoneyError::Overflow { what: format!("{} units at scale {}", self.value, self.scale) })
    }
}

/// `10^k` as `i128`, `None` above `10^38`. See [`crate::pow10_i128`] for the unchecked `const`
/// version the scan uses with scales it controls.
pub fn checked_pow10(k: u32) -> Option<i128> {
    10i128.checked_pow(k)
}

/// `mantissa × 10^-scale` as a `Decimal`, exactly, moving trailing zeros between mantissa and scale
/// as needed (`1500 × 10^-30` is `0.0000…15` at scale 28); `None` when no exact `Decimal` exists.
///
/// A zero keeps the scale it was given, clamped to `0..=28` (`0.00` stays `0.00`), as the sums of
/// attribution always did.
pub fn decimal_from_parts(mut mantissa: i128, mut scale: i64) -> Option<Decimal> {
    if mantissa == 0 {
        // The loops below would end here too, but only after up to |scale| steps.
        let scale = u32::try_from(scale.clamp(0, i64::from(MAX_SCALE))).ok()?;
        return Decimal::try_from_i128_with_scale(0, scale).ok();
    }
    while scale < 0 {
        mantissa = mantissa.checked_mul(10)?;
        scale += 1;
    }
    // Too many places, or too many digits for 96 bits: drop trailing zeros (exact) while we can.
    while (scale > i64::from(MAX_SCALE) || Decimal::try_from_i128_with_scale(mantissa, 0).is_err())
        && scale > 0
        && mantissa % 10 == 0
    {
        mantissa /= 10;
        scale -= 1;
    }
    let scale = u32::try_from(scale).ok()?;
    Decimal::try_from_i128_with_scale(mantissa, scale).ok()
}

/// `a + b`, exact or `None`.
pub fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let s = a.scale().max(b.scale());
    let ma = a.mantissa().checked_mul(checked_pow10(s - a.scale())?)?;
    let mb = b.mantissa().checked_mul(checked_pow10(s - b.scale())?)?;
    decimal_from_parts(ma.checked_add(mb)?, i64::from(s))
}

/// `a − b`, exact or `None`.
pub fn exact_sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    exact_add(a, -b)
}

/// `a × b`, exact or `None`.
pub fn exact_mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    let m = a.mantissa().checked_mul(b.mantissa())?;
    decimal_from_parts(m, i64::from(a.scale()) + i64::from(b.scale()))
}

/// Sums exactly; `None` when the sum (or a partial sum) has no exact `Decimal`.
pub fn exact_sum<I: IntoIterator<Item = Decimal>>(values: I) -> Option<Decimal> {
    values.into_iter().try_fold(Decimal::ZERO, exact_add)
}

/// An exact running sum of many `Decimal`s: one `i128` per scale, combined once at the end.
///
/// [`exact_add`] rescales both operands and checks the result's 96 bits on every step (about
/// 25 ns); the conservation check of a 500,000-line write adds three million values. Here an add
/// is one `i128` addition into the bucket of the value's scale (a 96-bit mantissa leaves room for
/// 2^31 adds before a bucket could overflow), and [`ExactSum::total`] rescales the 29 buckets to
/// the largest scale seen, as [`exact_add`] would have. The result equals folding the same values
/// with [`exact_add`], digit for digit and scale for scale, whenever that fold succeeds; it fails
/// (never rounds) when the total has no exact `Decimal`, and, unlike the fold, does not fail on a
/// partial sum that only a later value brings back into range.
#[derive(Debug, Clone, Default)]
pub struct ExactSum {
    by_scale: [i128; MAX_SCALE as usize + 1],
    /// Bit `k` set: a value of scale `k` was added (a zero's scale counts too: `0.00 + 0` is `0.00`).
    scales: u32,
    /// A bucket overflowed `i128` (more than 2^31 maximal values): the sum is out of range.
    overflowed: bool,
}

impl ExactSum {
    pub fn add(&mut self, value: Decimal) {
        let scale = value.scale();
        self.scales |= 1 << scale;
        // `scale() ≤ 28` for every Decimal, so the index is in range.
        if let Some(bucket) = self.by_scale.get_mut(scale as usize) {
            match bucket.checked_add(value.mantissa()) {
                Some(sum) => *bucket = sum,
                None => self.overflowed = true,
            }
        }
    }

    /// The exact total, or `None` when it has no exact `Decimal` (more than 28 significant digits
    /// at the largest scale added).
    pub fn total(&self) -> Option<Decimal> {
        if self.overflowed {
            return None;
        }
        // The fold starts from `Decimal::ZERO` (scale 0), so scale 0 is always "seen".
        let top = 31 - (self.scales | 1).leading_zeros();
        let mut sum: i128 = 0;
        for (scale, &bucket) in self.by_scale.iter().enumerate().take(top as usize + 1) {
            if bucket != 0 {
                let shift = top - scale as u32;
                sum = sum.checked_add(bucket.checked_mul(checked_pow10(shift)?)?)?;
            }
        }
        decimal_from_parts(sum, i64::from(top))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use crate::testing::d;

    #[test]
    fn exact_sum_equals_the_exact_add_fold_digit_for_digit() {
        let cases: Vec<Vec<Decimal>> = vec![
            vec![],
            vec![d("0.00")],
            vec![d("0.00"), d("0")],
            vec![d("1.5"), d("-0.25"), d("3"), d("0.0000000001")],
            vec![d("79228162514264337593543950335"), d("-1")],
            vec![d("0.1234567890123456789012345678"), d("-0.1234567890123456789012345678"), d("7")],
            vec![d("1.10"), d("2.200"), d("-3.3")],
            (0..1000).map(|i| Decimal::new(i * 7919 - 500_000, (i % 13) as u32)).collect(),
        ];
        for values in cases {
            let mut sum = ExactSum::default();
            values.iter().for_each(|v| sum.add(*v));
            let (got, want) = (sum.total().unwrap(), exact_sum(values.iter().copied()).unwrap());
            assert_eq!((got, got.scale(), got.to_string()), (want, want.scale(), want.to_string()), "{values:?}");
        }
    }

    #[test]
    fn exact_sum_fails_instead_of_rounding() {
        // 29 significant digits: no exact Decimal (rust_decimal's `+` would round it away).
        let mut sum = ExactSum::default();
        sum.add(d("79228162514264337593543950335"));
        sum.add(d("0.000000000001"));
        assert_eq!(sum.total(), None);
        assert_eq!(exact_sum([d("79228162514264337593543950335"), d("0.000000000001")]), None);
        // A partial sum out of range that a later value brings back is fine (the fold fails).
        let mut sum = ExactSum::default();
        for v in [d("79228162514264337593543950335"), d("79228162514264337593543950335")] {
            sum.add(v);
        }
        sum.add(d("-79228162514264337593543950335"));
        assert_eq!(sum.total(), Some(d("79228162514264337593543950335")));
    }

    #[test]
    fn units_round_trip_and_refuse_loss() {
        let u = Units::from_decimal(d("12.5"), 12).unwrap();
        assert_eq!(u.value(), 12_500_000_000_000);
        assert_eq!(u.to_decimal().unwrap(), d("12.5"));
        assert_eq!(Units::from_decimal(d("1.2300"), 2).unwrap().value(), 123);
        assert!(matches!(Units::from_decimal(d("1.234"), 2), Err(MoneyError::Inexact { .. })));
        assert!(matches!(Units::from_decimal(d("1"), 29), Err(MoneyError::ScaleTooLarge { .. })));
        assert!(matches!(Units::from_decimal(Decimal::MAX, 28), Err(MoneyError::Overflow { .. })));
        assert_eq!(Units::from_decimal(d("-0.000000000001"), 12).unwrap().value(), -1);
    }

    #[test]
    fn exact_ops_do_not_round() {
        let big = d("79228162514264337593543950335"); // Decimal::MAX
        assert_eq!(exact_add(big, d("0.000000000001")), None);
        assert_eq!(exact_add(d("1.5"), d("2.25")), Some(d("3.75")));
        assert_eq!(exact_sub(d("1.5"), d("2.25")), Some(d("-0.75")));
        assert_eq!(exact_sub(big, d("-0.000000000001")), None);
        assert_eq!(exact_mul(d("202"), d("2048")).and_then(|x| exact_mul(x, d("0.0000009765625"))), Some(d("0.40400")));
        assert_eq!(exact_mul(d("0.0000000000000001"), d("0.0000000000000001")), None);
        assert_eq!(exact_sum([d("0.1"), d("0.2")]), Some(d("0.3")));
    }

    #[test]
    fn zero_keeps_its_scale_and_is_fast_at_any_scale() {
        assert_eq!(exact_add(d("0.10"), d("-0.10")).unwrap().to_string(), "0.00");
        assert_eq!(decimal_from_parts(0, -1_000_000_000).unwrap().to_string(), "0");
        assert_eq!(decimal_from_parts(0, 1_000_000_000).unwrap().scale(), MAX_SCALE);
        assert_eq!(decimal_from_parts(15, -2), Some(d("1500")));
        assert_eq!(decimal_from_parts(1500, 30), Some(d("0.0000000000000000000000000015")));
        assert_eq!(decimal_from_parts(1501, 30), None);
    }
}
