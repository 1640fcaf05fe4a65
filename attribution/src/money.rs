//! Exact money and quantity arithmetic.
//!
//! Money is split in integer minor units at a recorded scale ([`Units`]): `12.5` at scale 12 is
//! `12_500_000_000_000` units of 1e-12. The pipeline hands amounts over as [`Decimal`] at
//! [`MONEY_SCALE`] (what the store keeps), so a conversion either is exact or fails; nothing here rounds.
//!
//! `rust_decimal`'s own `+` and `*` silently round when a result needs more than 96 bits of mantissa.
//! The helpers [`exact_add`] and [`exact_mul`] work on the `i128` mantissas instead and fail rather than
//! round, so sums of driver quantities and money stay exact or stop loudly. [`parse_exact`] reads numbers
//! from logs (`12.34`, `1e-3`, `2600`) straight into a `Decimal` without touching `f64`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Decimal places of money in curflow's store (the pipeline's `MONEY_SCALE`).
pub const MONEY_SCALE: u32 = 12;

/// The largest scale a [`Decimal`] can carry.
pub const MAX_SCALE: u32 = Decimal::MAX_SCALE;

/// Errors of exact conversion and arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("scale {scale} exceeds the maximum {MAX_SCALE}")]
    ScaleTooLarge { scale: u32 },
    #[error("{value} has more than {scale} decimal places; converting would lose digits")]
    Inexact { value: Decimal, scale: u32 },
    #[error("{what} does not fit the exact representation")]
    Overflow { what: String },
    #[error("not a decimal number: {text:?}")]
    Parse { text: String },
}

/// An amount in integer minor units: `value × 10^-scale`.
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

    /// Converts exactly; fails with [`MoneyError::Inexact`] when `d` has non-zero digits beyond `scale`.
    pub fn from_decimal(d: Decimal, scale: u32) -> Result<Self, MoneyError> {
        if scale > MAX_SCALE {
            return Err(MoneyError::ScaleTooLarge { scale });
        }
        let (m, s) = (d.mantissa(), d.scale());
        let value = if scale >= s {
            pow10(scale - s).and_then(|p| m.checked_mul(p))
        } else {
            let p = pow10(s - scale).ok_or(MoneyError::ScaleTooLarge { scale: s })?;
            if m % p != 0 {
                return Err(MoneyError::Inexact { value: d, scale });
            }
            Some(m / p)
        };
        let value = value.ok_or_else(|| MoneyError::Overflow { what: format!("{d} at scale {scale}") })?;
        Ok(Self { value, scale })
    }

    /// Converts back; fails when the value needs more than `Decimal`'s 96-bit mantissa at this scale.
    pub fn to_decimal(self) -> Result<Decimal, MoneyError> {
        Decimal::try_from_i128_with_scale(self.value, self.scale)
            .map_err(|_| MoneyError::Overflow { what: format!("{} units at scale {}", self.value, self.scale) })
    }
}

/// `10^k` as `i128` (`None` above `10^38`).
pub(crate) fn pow10(k: u32) -> Option<i128> {
    10i128.checked_pow(k)
}

/// Builds `mantissa × 10^-scale` exactly, moving trailing zeros between mantissa and scale as needed;
/// `None` when no exact `Decimal` exists.
pub(crate) fn decimal_from_parts(mut mantissa: i128, mut scale: i64) -> Option<Decimal> {
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
    let ma = a.mantissa().checked_mul(pow10(s - a.scale())?)?;
    let mb = b.mantissa().checked_mul(pow10(s - b.scale())?)?;
    decimal_from_parts(ma.checked_add(mb)?, i64::from(s))
}

/// `a × b`, exact or `None`.
pub fn exact_mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    let m = a.mantissa().checked_mul(b.mantissa())?;
    decimal_from_parts(m, i64::from(a.scale()) + i64::from(b.scale()))
}

/// Sums exactly; `None` on overflow.
pub fn exact_sum<I: IntoIterator<Item = Decimal>>(values: I) -> Option<Decimal> {
    values.into_iter().try_fold(Decimal::ZERO, exact_add)
}

/// Parses a plain or scientific decimal number exactly (`12.34`, `-0.5`, `.5`, `13`, `1.5E+3`, `2e-7`).
///
/// Only ASCII digits, one optional sign, one optional point and one optional exponent are accepted (no
/// `_`, no `NaN`/`inf`): the text of a log field either is an exact number or the line is malformed.
pub fn parse_exact(text: &str) -> Result<Decimal, MoneyError> {
    let err = || MoneyError::Parse { text: text.chars().take(64).collect() };
    let t = text.trim();
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let unsigned = mant.strip_prefix(['-', '+']).unwrap_or(mant);
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (unsigned, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !digits_ok(int_part) || !digits_ok(frac_part) {
        return Err(err());
    }
    let exp: i64 = match exp {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
            if digits.is_empty() || digits.len() > 4 || !digits_ok(digits) {
                return Err(err());
            }
            e.parse().map_err(|_| err())?
        }
    };
    // Build the mantissa from the digits ourselves: exact by construction, no intermediate rounding.
    let mut m: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        m = m.checked_mul(10).and_then(|m| m.checked_add(i128::from(b - b'0'))).ok_or_else(err)?;
    }
    if mant.starts_with('-') {
        m = -m;
    }
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| err())?;
    decimal_from_parts(m, frac_len - exp).ok_or_else(err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
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
    fn parse_exact_numbers() {
        assert_eq!(parse_exact("12.34").unwrap(), d("12.34"));
        assert_eq!(parse_exact("2600").unwrap(), d("2600"));
        assert_eq!(parse_exact(".5").unwrap(), d("0.5"));
        assert_eq!(parse_exact("-1.5E+3").unwrap(), d("-1500"));
        assert_eq!(parse_exact("2e-7").unwrap(), d("0.0000002"));
        assert_eq!(parse_exact("0.1").unwrap().to_string(), "0.1");
        for bad in ["", "-", ".", "1_0", "NaN", "inf", "1e", "1.2.3", "0x10", "1e99999"] {
            assert!(parse_exact(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exact_ops_do_not_round() {
        let big = d("79228162514264337593543950335"); // Decimal::MAX
        assert_eq!(exact_add(big, d("0.000000000001")), None);
        assert_eq!(exact_add(d("1.5"), d("2.25")), Some(d("3.75")));
        assert_eq!(exact_mul(d("202"), d("2048")).and_then(|x| exact_mul(x, d("0.0000009765625"))), Some(d("0.40400")));
        assert_eq!(exact_mul(d("0.0000000000000001"), d("0.0000000000000001")), None);
        assert_eq!(exact_sum([d("0.1"), d("0.2")]), Some(d("0.3")));
    }
}
