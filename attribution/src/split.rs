//! The exact split: largest remainder (Hamilton) in integer minor units.
//!
//! Given a total `T` (a [`Decimal`]) and non-negative weights `wᵢ`, [`split`] returns parts that
//!
//! * sum to `T` **exactly** (checked on every call in integer units; a violation is
//!   [`SplitError::Internal`]);
//! * are proportional to the weights up to one minor unit at `scale` (`10^-scale`);
//! * are deterministic: independent of input order, byte-identical across runs.
//!
//! # Method
//! 1. `T` becomes an integer `t` of minor units at `scale` ([`Units`]; it must be exact at that scale).
//!    A negative total (credit, refund) is split as `|t|` and the parts negated, so a credit splits exactly
//!    like the charge it reverses.
//! 2. Weights are validated (`≥ 0`), merged per tenant (duplicates add), zero weights dropped, and
//!    brought to the common scale of all weights as integers `wᵢ` with `W = Σ wᵢ`. This step is exact:
//!    no ratio is ever formed in floating or rounded decimal arithmetic.
//! 3. `qᵢ = ⌊t·wᵢ / W⌋`, `rᵢ = t·wᵢ mod W`; the `R = t − Σ qᵢ` (`0 ≤ R < n`) leftover units go one
//!    each to the `R` tenants with the largest `rᵢ` (all fractional parts share the denominator `W`, so
//!    comparing `rᵢ` compares `t·wᵢ/W − qᵢ`). Ties go to the smaller tenant id.
//!
//! Integers are `u128` when everything fits (the common case: an amount of 10^9 at scale 12 times a weight
//! of 10^15 is ~10^36). Otherwise the call is redone with 512-bit integers (`wide.rs`), which hold every
//! product that valid `Decimal` inputs can produce; so huge weights (GB-second sums, byte-hours) never fail
//! and never lose precision.
//!
//! With no positive weight there is nothing to split by: [`Split::NoDriver`], and the caller keeps the whole
//! amount unattributed with a reason (cost is never dropped). Tenants with zero weight get no part.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;

#[cfg(debug_assertions)]
use crate::money::exact_sum;
use crate::money::{MAX_SCALE, MoneyError, Units};
use crate::tenant::TenantId;
use crate::wide::{U512, Uint};

mod add;
pub use add::{Added, SplitScratch};

/// Why a split could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("weight of tenant {tenant} is negative ({weight}); weights must be >= 0")]
    NegativeWeight { tenant: TenantId, weight: Decimal },
    #[error("total {total} cannot be split at scale {scale}: {source}")]
    Total { total: Decimal, scale: u32, source: MoneyError },
    #[error("a part of {total} at scale {scale} does not fit a Decimal")]
    Overflow { total: Decimal, scale: u32 },
    /// A broken invariant (conservation); a bug, never bad input. Stop before anything is written.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The outcome of [`split`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Split {
    /// One part per tenant with a positive weight, sorted by tenant id; parts sum to the total exactly.
    Parts(Vec<(TenantId, Decimal)>),
    /// No positive weight: nothing to split by. The caller keeps the amount unattributed.
    NoDriver,
}

/// Splits `total` over `weights` at `scale` decimal places (see the module docs).
///
/// ```
/// use curflow_attribution::{split, Split, TenantId};
/// use rust_decimal::Decimal;
/// let t = |s: &str| TenantId::new(s).unwrap();
/// let parts = split(Decimal::new(5, 2), &[(t("b"), Decimal::ONE), (t("a"), Decimal::ONE)], 2).unwrap();
/// // 0.05 over two equal weights: 0.025 each, one cent left over goes to the smaller id.
/// assert_eq!(parts, Split::Parts(vec![(t("a"), Decimal::new(3, 2)), (t("b"), Decimal::new(2, 2))]));
/// ```
pub fn split(total: Decimal, weights: &[(TenantId, Decimal)], scale: u32) -> Result<Split, SplitError> {
    Ok(match Shares::new(weights)? {
        Some(shares) => Split::Parts(shares.split(total, scale)?),
        None => Split::NoDriver,
    })
}

/// Validated, merged integer weights, reusable for several amounts (one line's cost measures share one
/// set of weights).
#[derive(Debug, Clone)]
pub struct Shares {
    tenants: Vec<TenantId>,
    /// `wᵢ` at the common scale, in tenant order, all > 0.
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// `recip[i]` is `min(⌊wᵢ·2⁶⁴ / W⌋, 2⁶⁴ − 1)`: with it [`Shares::add_split`] finds `⌊t·wᵢ / W⌋` with a
    /// multiplication and at most one correction instead of a 128-bit division (see `split/add.rs`).
    Narrow {
        w: Vec<u128>,
        total: u128,
        recip: Vec<u64>,
    },
    Wide {
        w: Vec<U512>,
        total: U512,
    },
}

impl Shares {
    /// Prepares `weights`; `Ok(None)` when no weight is positive (see [`Split::NoDriver`]).
    pub fn new(weights: &[(TenantId, Decimal)]) -> Result<Option<Self>, SplitError> {
        let mut common_scale = 0;
        for (tenant, w) in weights {
            if w.is_sign_negative() && !w.is_zero() {
                return Err(SplitError::NegativeWeight { tenant: tenant.clone(), weight: *w });
            }
            if !w.is_zero() {
                common_scale = common_scale.max(w.normalize().scale());
            }
        }
        let repr = match merge::<u128>(weights, common_scale) {
            Some(m) => m.map(|(t, w, total)| {
                let recip = w.iter().map(|&wi| reciprocal(wi, total)).collect();
                (t, Repr::Narrow { w, total, recip })
            }),
            None => merge::<U512>(weights, common_scale)
                .ok_or_else(|| SplitError::Internal("weights overflow 512 bits".into()))?
                .map(|(t, w, total)| (t, Repr::Wide { w, total })),
        };
        Ok(repr.map(|(tenants, repr)| Self { tenants, repr }))
    }

    /// The tenants with a positive weight, ascending.
    pub fn tenants(&self) -> &[TenantId] {
        &self.tenants
    }

    /// Splits one amount (see the module docs). Parts are returned at exactly `scale` decimal places, in
    /// tenant order, and sum to `total`.
    pub fn split(&self, total: Decimal, scale: u32) -> Result<Vec<(TenantId, Decimal)>, SplitError> {
        let amounts = self.split_amounts(total, scale)?;
        Ok(self.tenants.iter().cloned().zip(amounts).collect())
    }

    /// Like [`Shares::split`], but only the amounts, in the order of [`Shares::tenants`] (no tenant id is
    /// cloned: the allocator splits several measures with one set of shares).
    pub fn split_amounts(&self, total: Decimal, scale: u32) -> Result<Vec<Decimal>, SplitError> {
        let units = Units::from_decimal(total, scale).map_err(|source| SplitError::Total { total, scale, source })?;
        let parts = self
            .unsigned_parts(units.value().unsigned_abs())
            .ok_or_else(|| SplitError::Internal(format!("split of {total} overflowed 512-bit arithmetic")))?;

        let negative = units.value() < 0;
        let mut out = Vec::with_capacity(parts.len());
        let mut check: i128 = 0;
        for p in parts {
            let v = i128::try_from(p).map_err(|_| SplitError::Overflow { total, scale })?;
            let v = if negative { -v } else { v };
            check = check.checked_add(v).ok_or(SplitError::Overflow { total, scale })?;
            out.push(Decimal::try_from_i128_with_scale(v, scale).map_err(|_| SplitError::Overflow { total, scale })?);
        }
        // Conservation in integer units, on every call. Every part is `vᵢ × 10^-scale` and `total` is exactly
        // `units × 10^-scale` (checked by `Units::from_decimal`), so `Σ vᵢ == units` is `Σ parts == total`.
        // Debug builds re-check it in Decimal arithmetic as well.
        let conserved = check == units.value();
        #[cfg(debug_assertions)]
        let conserved = conserved && exact_sum(out.iter().copied()) == Some(total);
        if !conserved {
            return Err(SplitError::Internal(format!(
                "conservation violated: parts of {total} at scale {scale} sum to {check} units, expected {}",
                units.value()
            )));
        }
        Ok(out)
    }

    /// The parts of `t` minor units (largest remainder), in tenant order; `u128` arithmetic when it
    /// fits, 512-bit otherwise. `None` only if even 512 bits overflow (no valid input does).
    fn unsigned_parts(&self, t: u128) -> Option<Vec<u128>> {
        match &self.repr {
            Repr::Narrow { w, total: wt, .. } => largest_remainder(t, w, *wt).or_else(|| {
                let w: Vec<U512> = w.iter().map(|&x| <U512 as Uint>::from_u128(x)).collect();
                largest_remainder(t, &w, <U512 as Uint>::from_u128(*wt))
            }),
            Repr::Wide { w, total: wt } => largest_remainder(t, w, *wt),
        }
    }

    /// The tenant with the largest weight (the first in tenant order among equals), leaving out
    /// `skip` (the pseudo tenant of usage without a tenant); `None` when no other tenant is left.
    /// By the split's order it receives, for every amount, a part at least as large in magnitude as
    /// any other tenant's.
    pub fn heaviest(&self, skip: Option<usize>) -> Option<usize> {
        fn first_max<U: Ord>(w: &[U], skip: Option<usize>) -> Option<usize> {
            let mut best: Option<usize> = None;
            for (i, wi) in w.iter().enumerate() {
                if Some(i) != skip && best.is_none_or(|b| *wi > w[b]) {
                    best = Some(i);
                }
            }
            best
        }
        match &self.repr {
            Repr::Narrow { w, .. } => first_max(w, skip),
            Repr::Wide { w, .. } => first_max(w, skip),
        }
    }

    /// The tenant's integer weight as a fraction of the total, rounded to `dp` places (for display only:
    /// amounts never go through this).
    pub fn share_of(&self, index: usize, dp: u32) -> Option<Decimal> {
        let dp = dp.min(MAX_SCALE);
        let scale = crate::money::pow10(dp)?.unsigned_abs();
        let q = match &self.repr {
            Repr::Narrow { w, total, .. } => {
                let wi = *w.get(index)?;
                ratio(wi, *total, scale)
                    .or_else(|| ratio(<U512 as Uint>::from_u128(wi), <U512 as Uint>::from_u128(*total), scale))
            }
            Repr::Wide { w, total } => ratio(*w.get(index)?, *total, scale),
        }?;
        Units::new(i128::try_from(q).ok()?, dp).ok()?.to_decimal().ok()
    }
}

/// `min(⌊w·2⁶⁴ / total⌋, 2⁶⁴ − 1)` for `0 < w ≤ total` (see [`Repr::Narrow`]).
fn reciprocal(w: u128, total: u128) -> u64 {
    let exact = match w.checked_mul(1 << 64) {
        Some(num) => (num / total).try_into().ok(),
        None => {
            let num = <U512 as Uint>::from_u128(w).mul_checked(<U512 as Uint>::from_u128(1 << 64));
            num.and_then(|n| n.div_rem_checked(<U512 as Uint>::from_u128(total)))
                .and_then(|(q, _)| q.to_u128())
                .and_then(|q| q.try_into().ok())
        }
    };
    exact.unwrap_or(u64::MAX)
}

/// `round_half_up(w / total × scale)`.
fn ratio<U: Uint>(w: U, total: U, scale: u128) -> Option<u128> {
    let num = w.mul_checked(U::from_u128(scale))?.mul_checked(U::from_u128(2))?.add_checked(total)?;
    let (q, _) = num.div_rem_checked(total.mul_checked(U::from_u128(2))?)?;
    q.to_u128()
}

/// Weights → (tenants, integer weights, total) at `scale`, merged per tenant and without zeros.
/// `None` when `U` is too narrow; `Some(None)` when no weight is positive.
#[allow(clippy::type_complexity)]
fn merge<U: Uint>(weights: &[(TenantId, Decimal)], scale: u32) -> Option<Option<(Vec<TenantId>, Vec<U>, U)>> {
    let mut merged: BTreeMap<&TenantId, U> = BTreeMap::new();
    let ten = U::from_u128(10);
    for (tenant, w) in weights {
        if w.is_zero() {
            continue;
        }
        let mut v = U::from_u128(w.mantissa().unsigned_abs());
        for _ in w.scale()..scale {
            v = v.mul_checked(ten)?;
        }
        // A weight with a larger scale than `scale` has trailing zeros (scale is the max normalised scale).
        for _ in scale..w.scale() {
            let (q, r) = v.div_rem_checked(ten)?;
            if r != U::from_u128(0) {
                return None;
            }
            v = q;
        }
        let slot = merged.entry(tenant).or_insert(U::from_u128(0));
        *slot = slot.add_checked(v)?;
    }
    if merged.is_empty() {
        return Some(None);
    }
    let mut total = U::from_u128(0);
    for v in merged.values() {
        total = total.add_checked(*v)?;
    }
    let (tenants, w) = merged.into_iter().map(|(t, v)| (t.clone(), v)).unzip();
    Some(Some((tenants, w, total)))
}

/// Largest remainder over integer weights `w` (all > 0, in tenant order) with sum `total`.
/// `None` when `U` overflows (the caller retries wider).
fn largest_remainder<U: Uint>(t: u128, w: &[U], total: U) -> Option<Vec<u128>> {
    let tt = U::from_u128(t);
    let mut q = Vec::with_capacity(w.len());
    let mut r = Vec::with_capacity(w.len());
    let mut assigned: u128 = 0;
    for &wi in w {
        let (qi, ri) = tt.mul_checked(wi)?.div_rem_checked(total)?;
        let qi = qi.to_u128()?;
        assigned = assigned.checked_add(qi)?;
        q.push(qi);
        r.push(ri);
    }
    let left = usize::try_from(t.checked_sub(assigned)?).ok()?;
    if left > 0 {
        if left >= w.len() {
            return None; // impossible: Σ (t·wᵢ/W − qᵢ) < n
        }
        // The `left` largest remainders, ties to the lower index (= smaller tenant id). A total order, so
        // the selected set is unique whatever the algorithm's internal order.
        let mut idx: Vec<usize> = (0..w.len()).collect();
        idx.select_nth_unstable_by(left - 1, |&a, &b| r[b].cmp(&r[a]).then(a.cmp(&b)));
        for &i in &idx[..left] {
            q[i] += 1;
        }
    }
    Some(q)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }
    use curflow_money::testing::d;
    fn parts(total: &str, w: &[(&str, &str)], scale: u32) -> Vec<(String, String)> {
        let w: Vec<_> = w.iter().map(|(a, b)| (t(a), d(b))).collect();
        match split(d(total), &w, scale).unwrap() {
            Split::Parts(p) => p.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            Split::NoDriver => panic!("no driver"),
        }
    }
    fn s(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn moneyphp_example() {
        // 5 cents by 70:30 = 3.5 and 1.5: both remainders are .5, a tie, so the leftover cent goes to the
        // smaller id "a" — by id, not by input position as in moneyphp (where the first ratio wins).
        assert_eq!(parts("0.05", &[("a", "70"), ("b", "30")], 2), s(&[("a", "0.04"), ("b", "0.01")]));
        assert_eq!(parts("0.05", &[("b", "70"), ("a", "30")], 2), s(&[("a", "0.02"), ("b", "0.03")]));
    }

    #[test]
    fn tie_break_by_tenant_id_ascending() {
        // 1 unit over three equal weights: the unit goes to the smallest id, whatever the input order.
        for order in [["c", "a", "b"], ["b", "c", "a"], ["a", "b", "c"]] {
            let w: Vec<(&str, &str)> = order.iter().map(|x| (*x, "1")).collect();
            assert_eq!(parts("0.01", &w, 2), s(&[("a", "0.01"), ("b", "0.00"), ("c", "0.00")]));
        }
        // 2 units over three: a and b.
        assert_eq!(
            parts("0.02", &[("c", "1"), ("b", "1"), ("a", "1")], 2),
            s(&[("a", "0.01"), ("b", "0.01"), ("c", "0.00")])
        );
        // Largest remainder beats id order: 10 units by 1:1:3 -> 2, 2, 6 exact; 7 units -> 1.4, 1.4, 4.2:
        // floors 1, 1, 4 (6), one left: remainders .4 .4 .2 -> "a".
        assert_eq!(
            parts("0.07", &[("a", "1"), ("b", "1"), ("z", "3")], 2),
            s(&[("a", "0.02"), ("b", "0.01"), ("z", "0.04")])
        );
        // Here the largest remainder is the last id: 0.08 by 1:1:6 -> 1, 1, 6 exact; 0.05 by 1:1:2 -> 1.25, 1.25, 2.5.
        assert_eq!(
            parts("0.05", &[("a", "1"), ("b", "1"), ("z", "2")], 2),
            s(&[("a", "0.01"), ("b", "0.01"), ("z", "0.03")])
        );
    }

    #[test]
    fn negative_totals_mirror_positive() {
        let w = [("a", "1"), ("b", "1"), ("c", "1")];
        assert_eq!(parts("0.10", &w, 2), s(&[("a", "0.04"), ("b", "0.03"), ("c", "0.03")]));
        assert_eq!(parts("-0.10", &w, 2), s(&[("a", "-0.04"), ("b", "-0.03"), ("c", "-0.03")]));
        let w = [("a", "2.5"), ("b", "0.5"), ("c", "7")];
        let pos = parts("123.456789", &w, 6);
        let neg = parts("-123.456789", &w, 6);
        for ((ta, pa), (tb, nb)) in pos.iter().zip(&neg) {
            assert_eq!(ta, tb);
            assert_eq!(d(pa), -d(nb));
        }
    }

    #[test]
    fn zero_weights_duplicates_and_no_driver() {
        assert_eq!(parts("1", &[("a", "0"), ("b", "2"), ("b", "1"), ("c", "1")], 0), s(&[("b", "1"), ("c", "0")]));
        assert_eq!(split(d("5"), &[], 2).unwrap(), Split::NoDriver);
        assert_eq!(split(d("5"), &[(t("a"), d("0")), (t("b"), d("0.000"))], 2).unwrap(), Split::NoDriver);
        assert!(matches!(split(d("5"), &[(t("a"), d("-1"))], 2), Err(SplitError::NegativeWeight { .. })));
    }

    #[test]
    fn total_must_be_exact_at_scale() {
        let w = [(t("a"), d("1"))];
        assert!(matches!(split(d("0.001"), &w, 2), Err(SplitError::Total { .. })));
        assert_eq!(split(d("0.0010"), &w, 3).unwrap(), Split::Parts(vec![(t("a"), d("0.001"))]));
    }

    #[test]
    fn huge_weights_take_the_wide_path() {
        // Weights with 28-digit mantissas at mixed scales: products far beyond u128.
        let w = [("a", "79228162514264337593543950335"), ("b", "0.0000000000000000000000000001"), ("c", "1")];
        let p = parts("1000000000.000000000001", &w, 12);
        assert_eq!(p, s(&[("a", "1000000000.000000000001"), ("b", "0.000000000000"), ("c", "0.000000000000")]));
        let w = [("a", "7922816251426433759354395033.5"), ("b", "7922816251426433759354395033.5")];
        assert_eq!(parts("0.000000000003", &w, 12), s(&[("a", "0.000000000002"), ("b", "0.000000000001")]));
    }

    #[test]
    fn share_is_rounded_for_display() {
        let sh = Shares::new(&[(t("a"), d("1")), (t("b"), d("2"))]).unwrap().unwrap();
        assert_eq!(sh.share_of(0, 4), Some(d("0.3333")));
        assert_eq!(sh.share_of(1, 4), Some(d("0.6667")));
        assert_eq!(sh.share_of(2, 4), None);
        // u128 would overflow in w × 10^12 × 2: the wide path answers.
        let huge = d("79228162514264337593543950335");
        let sh = Shares::new(&[(t("a"), huge), (t("b"), huge)]).unwrap().unwrap();
        assert_eq!(sh.share_of(0, 12), Some(d("0.5")));
    }
}
