//! Robust statistics in `Decimal`: median, MAD and a square root.
//!
//! Forecast intervals and anomaly scores use the median and the median absolute deviation (MAD) because
//! a single credit or spike day would drag a mean and a standard deviation far off. `1.4826 × MAD`
//! ([`MAD_SCALE`]) estimates the standard deviation of normally distributed data, which makes robust
//! z-scores comparable to ordinary ones.
//!
//! `rust_decimal`'s `maths` feature is not enabled in this workspace, so [`sqrt`] is a Newton iteration
//! on `Decimal` (see there); nothing here touches `f64`.

use rust_decimal::Decimal;

use crate::error::Result;
use crate::money::{add, div, sub};

/// `1.4826`: the factor that turns a MAD into a standard-deviation estimate (1 / Φ⁻¹(3/4)).
pub const MAD_SCALE: Decimal = Decimal::from_parts(14826, 0, 0, false, 4);

/// The median of `values` (the mean of the two middle values for an even count); `None` when empty.
pub fn median(values: &[Decimal]) -> Result<Option<Decimal>> {
    let mut v = values.to_vec();
    v.sort();
    let n = v.len();
    if n == 0 {
        return Ok(None);
    }
    if n % 2 == 1 {
        return Ok(Some(v[n / 2]));
    }
    Ok(Some(div(add(v[n / 2 - 1], v[n / 2])?, Decimal::TWO)?))
}

/// The median absolute deviation from `center`; `None` when empty.
pub fn mad(values: &[Decimal], center: Decimal) -> Result<Option<Decimal>> {
    let deviations = values.iter().map(|v| sub(*v, center).map(|d| d.abs())).collect::<Result<Vec<_>>>()?;
    median(&deviations)
}

/// The square root of `x ≥ 0` to about 27 significant digits; `None` for negative `x`.
///
/// Newton's iteration `r ← r / 2 + (x / r) / 2`, started at `max(x, 1)` (which is ≥ √x, so the iterates fall
/// monotonically onto the root). It stops when an iterate no longer decreases (the last digit has
/// settled) or after 200 steps, far more than the ~100 that `x` near the `Decimal` maximum needs.
pub fn sqrt(x: Decimal) -> Result<Option<Decimal>> {
    if x.is_sign_negative() && !x.is_zero() {
        return Ok(None);
    }
    if x.is_zero() {
        return Ok(Some(Decimal::ZERO));
    }
    let mut r = x.max(Decimal::ONE);
    for _ in 0..200 {
        // r/2 + (x/r)/2 rather than (r + x/r)/2: no overflow for x near Decimal::MAX.
        let next = add(div(r, Decimal::TWO)?, div(div(x, r)?, Decimal::TWO)?)?;
        if next >= r {
            break;
        }
        r = next;
    }
    Ok(Some(r))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    #[test]
    fn median_and_mad() {
        assert_eq!(median(&[]).unwrap(), None);
        assert_eq!(median(&[d("3"), d("1"), d("2")]).unwrap(), Some(d("2")));
        assert_eq!(median(&[d("4"), d("1"), d("3"), d("2")]).unwrap(), Some(d("2.5")));
        // |1-3|,|2-3|,|3-3|,|4-3|,|100-3| = 2,1,0,1,97 → median 1.
        let v = [d("1"), d("2"), d("3"), d("4"), d("100")];
        assert_eq!(mad(&v, d("3")).unwrap(), Some(d("1")));
        assert_eq!(mad(&[d("5"), d("5")], d("5")).unwrap(), Some(Decimal::ZERO));
    }

    #[test]
    fn square_roots() {
        assert_eq!(sqrt(d("0")).unwrap(), Some(Decimal::ZERO));
        assert_eq!(sqrt(d("-1")).unwrap(), None);
        assert_eq!(sqrt(d("16")).unwrap(), Some(d("4")));
        assert_eq!(sqrt(d("1")).unwrap(), Some(d("1")));
        let r2 = sqrt(d("2")).unwrap().unwrap();
        assert!((r2 - d("1.4142135623730950488016887242")).abs() < d("1e-26"));
        let small = sqrt(d("0.0004")).unwrap().unwrap();
        assert!((small - d("0.02")).abs() < d("1e-26"));
        assert_eq!(sqrt(d("10000000000000000000000000000")).unwrap(), Some(d("100000000000000")));
        assert!(sqrt(Decimal::MAX).unwrap().is_some());
    }
}
