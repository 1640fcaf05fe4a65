//! Decimal arithmetic for reconciliation.
//!
//! The money rules (the one text parser, the rounding rule, largest-remainder rounding) are
//! [`curflow_money`]'s, re-exported here so `crate::money::…` and `curflow_reconcile::money::…` paths
//! keep working. What stays is reconcile's statistics arithmetic: `rust_decimal`'s checked operators,
//! which round to 28 significant digits when a result needs more (a mean, a ratio or a forecast has no
//! exact decimal anyway) but return [`Error::Overflow`] instead of panicking, so a hostile input cannot
//! abort the process.

use rust_decimal::Decimal;

pub use curflow_money::{ROUNDING, parse_decimal, round, round_preserving_total};

use crate::error::{Error, Result};

pub(crate) fn overflow(what: impl Into<String>) -> Error {
    Error::Overflow { what: what.into() }
}

/// `a + b`, or [`Error::Overflow`].
pub(crate) fn add(a: Decimal, b: Decimal) -> Result<Decimal> {
    a.checked_add(b).ok_or_else(|| overflow(format!("{a} + {b}")))
}

/// `a + b` for totals of amounts (actuals, estimates, exports, month-to-date): exact
/// ([`curflow_money::exact_add`], the workspace's one exact adder) or [`Error::Overflow`], never
/// rounded to 28 significant digits as [`add`] may be.
pub(crate) fn total(a: Decimal, b: Decimal) -> Result<Decimal> {
    curflow_money::exact_add(a, b)
        .ok_or_else(|| overflow(format!("the total {a} + {b} (more than 28 significant digits)")))
}

/// Σ `values` exactly, or [`Error::Overflow`]; see [`total`].
pub(crate) fn total_sum<I: IntoIterator<Item = Decimal>>(values: I) -> Result<Decimal> {
    values.into_iter().try_fold(Decimal::ZERO, total)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    use curflow_money::testing::d;

    #[test]
    fn pct_handles_zero() {
        assert_eq!(pct(d("5"), Decimal::ZERO).unwrap(), None);
        assert_eq!(pct(d("-5"), d("50")).unwrap(), Some(d("-10")));
    }
}
