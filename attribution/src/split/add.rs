//! The split summed in place: [`Shares::add_split`] adds each tenant's part of an amount to a
//! running sum, so a month of 10,000 tenants × 31,000 shared lines is split without building
//! 310 million parts.
//!
//! The parts are exactly those of [`Shares::split_amounts`] (largest remainder, ties to the
//! smaller tenant id); only the arithmetic differs, because at that size a 128-bit division per
//! (line, tenant) dominates:
//!
//! * `qᵢ = ⌊t·wᵢ / W⌋` comes from the tenant's reciprocal `ρᵢ = ⌊wᵢ·2⁶⁴ / W⌋` (computed once per
//!   set of weights): `⌊t·ρᵢ / 2⁶⁴⌋` is `qᵢ` or `qᵢ − 1` for any `t < 2⁶⁴` (since
//!   `t·ρᵢ/2⁶⁴ > t·wᵢ/W − t/2⁶⁴`), and the exact remainder `rᵢ = t·wᵢ − qᵢ·W` tells which (one
//!   correction step). Every value is checked; a failed check falls back to the division.
//! * The `R = t − Σqᵢ` leftover units go to the `R` largest remainders. Instead of sorting
//!   `n` remainders, a histogram of their top 12 bits finds the bucket holding the `R`-th largest:
//!   every tenant above it gets a unit, and only that bucket's few members are ordered exactly.
//!   (Buckets are `rᵢ >> s`, monotone in `rᵢ`, so a higher bucket always means a larger remainder.)
//!
//! Amounts beyond `2⁶⁴` minor units, products `t·wᵢ` beyond `u128` and 512-bit weights take the
//! general path (the parts of [`Shares::split_amounts`], added one by one).

use super::{Repr, Shares, SplitError};

/// Buckets of the leftover-unit histogram: `2^BUCKET_BITS`.
const BUCKET_BITS: u32 = 12;

/// Reusable buffers of [`Shares::add_split`] (one per thread; no allocation per call once warm).
#[derive(Debug, Default)]
pub struct SplitScratch {
    remainders: Vec<u128>,
    /// Each tenant's bucket (`rᵢ >> s`), kept so the second pass compares 16-bit keys.
    keys: Vec<u16>,
    buckets: Vec<u32>,
    boundary: Vec<u32>,
}

/// What one [`Shares::add_split`] call gave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Tenants that received a non-zero part. Parts are monotone in the split's order (larger
    /// weight first, then smaller tenant id), so these are the first `nonzero` tenants of that order.
    pub nonzero: usize,
}

impl Shares {
    /// Adds tenant `i`'s part of `units` (an amount in integer minor units, any sign) to
    /// `sums[i][m]` for every `m` in `measures`: the parts [`Shares::split_amounts`] returns, summed
    /// in place (see the module docs). `sums` has one row per tenant, in tenant order.
    pub fn add_split<const M: usize>(
        &self,
        units: i128,
        sums: &mut [[i128; M]],
        measures: &[usize],
        scratch: &mut SplitScratch,
    ) -> Result<Added, SplitError> {
        let n = self.tenants.len();
        if sums.len() != n || measures.iter().any(|&m| m >= M) {
            return Err(SplitError::Internal(format!(
                "add_split: {} sums for {n} tenants, measures {measures:?} of {M}",
                sums.len()
            )));
        }
        if units == 0 {
            return Ok(Added { nonzero: 0 });
        }
        let negative = units < 0;
        let t = units.unsigned_abs();
        let mut add = Adder { sums, measures, negative, overflow: false };
        let nonzero = match &self.repr {
            Repr::Narrow { w, total, recip } => match fast_parts(t, w, *total, recip, &mut add, scratch)? {
                Some(nonzero) => nonzero,
                None => self.general(t, &mut add)?,
            },
            Repr::Wide { .. } => self.general(t, &mut add)?,
        };
        if add.overflow {
            return Err(SplitError::Internal("a tenant's summed part overflows 128 bits".into()));
        }
        Ok(Added { nonzero })
    }

    /// The general path: the parts as [`Shares::split_amounts`] computes them, added one by one.
    fn general<const M: usize>(&self, t: u128, add: &mut Adder<'_, M>) -> Result<usize, SplitError> {
        let parts =
            self.unsigned_parts(t).ok_or_else(|| SplitError::Internal(format!("split of {t} units overflowed")))?;
        let mut nonzero = 0;
        for (i, p) in parts.into_iter().enumerate() {
            if p != 0 {
                nonzero += 1;
                add.add(i, p);
            }
        }
        Ok(nonzero)
    }
}

/// Adds unsigned parts, with the amount's sign, to the chosen measures of `sums`.
struct Adder<'s, const M: usize> {
    sums: &'s mut [[i128; M]],
    measures: &'s [usize],
    negative: bool,
    overflow: bool,
}

impl<const M: usize> Adder<'_, M> {
    #[inline]
    fn add(&mut self, i: usize, part: u128) {
        let Ok(v) = i128::try_from(part) else {
            self.overflow = true;
            return;
        };
        let v = if self.negative { -v } else { v };
        let row = &mut self.sums[i];
        for &m in self.measures {
            match row[m].checked_add(v) {
                Some(s) => row[m] = s,
                None => self.overflow = true,
            }
        }
    }
}

/// The fast path; `Ok(None)` when `t` or `t·wᵢ` is too large for it.
fn fast_parts<const M: usize>(
    t: u128,
    w: &[u128],
    total: u128,
    recip: &[u64],
    add: &mut Adder<'_, M>,
    scratch: &mut SplitScratch,
) -> Result<Option<usize>, SplitError> {
    let Ok(t64) = u64::try_from(t) else { return Ok(None) };
    let Some(&w_max) = w.iter().max() else { return Ok(Some(0)) };
    if t.checked_mul(w_max).is_none() || total == 0 {
        return Ok(None);
    }
    let n = w.len();
    let shift = (128 - total.leading_zeros()).saturating_sub(BUCKET_BITS);
    let SplitScratch { remainders, keys, buckets, boundary } = scratch;
    remainders.clear();
    keys.clear();
    buckets.clear();
    buckets.resize(1 << BUCKET_BITS, 0);
    let mut assigned: u128 = 0;
    let mut nonzero = 0usize;
    // With W < 2⁶⁴ every weight and estimate fits 64 bits: single 64×64-bit multiplies.
    let total64 = u64::try_from(total).ok();
    for (i, (&wi, &ri)) in w.iter().zip(recip).enumerate() {
        let (q, r) = match total64 {
            Some(total64) => floor_narrow(t64, wi, ri, total64),
            None => floor_wide(t64, wi, ri, total),
        };
        assigned = assigned.checked_add(q).ok_or_else(|| SplitError::Internal("sum of parts overflows".into()))?;
        if q != 0 {
            nonzero += 1;
            add.add(i, q);
        }
        remainders.push(r);
        // r < total < 2^(shift + BUCKET_BITS): the bucket index is below 2^BUCKET_BITS (≤ 2^16).
        let key = (r >> shift) as u16;
        keys.push(key);
        buckets[usize::from(key)] += 1;
    }
    let left = t
        .checked_sub(assigned)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|&l| l < n.max(1))
        .ok_or_else(|| SplitError::Internal(format!("{t} units: parts sum to {assigned}")))?;
    if left == 0 {
        return Ok(Some(nonzero));
    }
    // The bucket holding the `left`-th largest remainder, and how many units go to its members.
    let mut above = 0usize;
    let mut cut = buckets.len();
    while cut > 0 {
        cut -= 1;
        let here = buckets[cut] as usize;
        if above + here >= left {
            break;
        }
        above += here;
    }
    let need = left - above;
    boundary.clear();
    for (i, &key) in keys.iter().enumerate() {
        let b = usize::from(key);
        if b > cut {
            nonzero += usize::from(t * w[i] < total); // its floor was 0
            add.add(i, 1);
        } else if b == cut {
            boundary.push(u32::try_from(i).map_err(|_| SplitError::Internal("more than 2^32 tenants".into()))?);
        }
    }
    if need < boundary.len() {
        boundary.select_nth_unstable_by(need - 1, |&a, &b| {
            remainders[b as usize].cmp(&remainders[a as usize]).then(a.cmp(&b))
        });
    }
    for &i in boundary.iter().take(need) {
        let i = i as usize;
        nonzero += usize::from(t * w[i] < total);
        add.add(i, 1);
    }
    Ok(Some(nonzero))
}

/// `(⌊t·w / W⌋, t·w mod W)` from the reciprocal estimate (see the module docs), for `W < 2⁶⁴`
/// (so `w ≤ W` and the estimate fit 64 bits too).
#[inline]
fn floor_narrow(t: u64, w: u128, reciprocal: u64, total: u64) -> (u128, u128) {
    let w = u64::try_from(w).unwrap_or(u64::MAX); // w ≤ total < 2⁶⁴
    let product = u128::from(t) * u128::from(w);
    let estimate = ((u128::from(t) * u128::from(reciprocal)) >> 64) as u64; // < 2⁶⁴: t, ρ < 2⁶⁴
    let total = u128::from(total);
    correct(product, u128::from(estimate), product.checked_sub(u128::from(estimate) * total), total)
}

/// [`floor_narrow`] for any `W` (`t·w` fits 128 bits: checked by the caller).
#[inline]
fn floor_wide(t: u64, w: u128, reciprocal: u64, total: u128) -> (u128, u128) {
    let product = u128::from(t) * w;
    let estimate = (u128::from(t) * u128::from(reciprocal)) >> 64;
    correct(product, estimate, estimate.checked_mul(total).and_then(|qw| product.checked_sub(qw)), total)
}

/// The estimate `q` with its remainder `r = t·w − q·W` (`None` if negative) made exact: one
/// correction step, or the division if the estimate was off by more (never, for a right ρ).
#[inline]
fn correct(product: u128, q: u128, r: Option<u128>, total: u128) -> (u128, u128) {
    match r {
        Some(r) if r < total => (q, r),
        Some(r) if r - total < total => (q + 1, r - total),
        _ => (product / total, product % total),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tenant::TenantId;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    /// `add_split` into fresh sums against `split_amounts`, for one amount in minor units at scale 12.
    fn check(weights: &[(String, Decimal)], units: i128) {
        let weights: Vec<(TenantId, Decimal)> =
            weights.iter().map(|(t, w)| (TenantId::new(t.clone()).unwrap(), *w)).collect();
        let Some(shares) = Shares::new(&weights).unwrap() else { return };
        let total = Decimal::try_from_i128_with_scale(units, 12).unwrap();
        let want = shares.split_amounts(total, 12).unwrap();
        let mut sums = vec![[0i128; 3]; shares.tenants().len()];
        let added = shares.add_split(units, &mut sums, &[0, 2], &mut SplitScratch::default()).unwrap();
        for (i, p) in want.iter().enumerate() {
            let got = Decimal::try_from_i128_with_scale(sums[i][0], 12).unwrap();
            assert_eq!(got, *p, "tenant {i} of {units} units");
            assert_eq!(sums[i][2], sums[i][0]);
            assert_eq!(sums[i][1], 0);
        }
        assert_eq!(added.nonzero, want.iter().filter(|p| !p.is_zero()).count());
        // The non-zero parts are the first `nonzero` of the split's order (weight desc, id asc).
        let mut order: Vec<usize> = (0..want.len()).collect();
        let w: Vec<Decimal> =
            shares.tenants().iter().map(|t| weights.iter().filter(|(u, _)| u == t).map(|(_, w)| *w).sum()).collect();
        order.sort_by(|&a, &b| w[b].cmp(&w[a]).then(a.cmp(&b)));
        for (rank, &i) in order.iter().enumerate() {
            assert_eq!(!want[i].is_zero(), rank < added.nonzero, "tenant {i} at rank {rank}");
        }
    }

    fn weights_of(raw: &[(u8, u64, u32)]) -> Vec<(String, Decimal)> {
        raw.iter()
            .map(|&(t, m, s)| (format!("t{t:03}"), Decimal::new(i64::try_from(m % (1 << 62)).unwrap(), s % 16)))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn same_parts_as_split_amounts(
            raw in prop::collection::vec((any::<u8>(), any::<u64>(), 0u32..16), 1..40),
            units in any::<i64>(),
            big in any::<bool>(),
        ) {
            let units = if big { i128::from(units) << 30 } else { i128::from(units) };
            check(&weights_of(&raw), units);
        }

        #[test]
        fn equal_and_tiny_weights(n in 1usize..300, units in -100_000i128..100_000, w in 1i64..5) {
            let weights: Vec<(String, Decimal)> = (0..n).map(|i| (format!("t{i:04}"), Decimal::new(w, 0))).collect();
            check(&weights, units);
        }
    }

    #[test]
    fn beyond_the_fast_path() {
        // 2^64 units and more: the general path.
        let w = vec![("a".to_string(), Decimal::new(3, 0)), ("b".to_string(), Decimal::new(7, 1))];
        check(&w, (1i128 << 64) + 12_345);
        check(&w, -(1i128 << 90));
        // Weights whose products with the amount pass u128.
        let w = vec![("a".to_string(), Decimal::MAX), ("b".to_string(), Decimal::new(1, 28))];
        check(&w, 1i128 << 60);
        // A single tenant takes everything.
        check(&[("a".to_string(), Decimal::new(5, 3))], 987_654_321);
    }

    #[test]
    fn many_tenants_one_bucket() {
        // 5,000 equal weights: every remainder in one bucket; the leftovers go to the smallest ids.
        let weights: Vec<(String, Decimal)> = (0..5_000).map(|i| (format!("t{i:05}"), Decimal::ONE)).collect();
        check(&weights, 12_499);
        check(&weights, -7);
    }
}
