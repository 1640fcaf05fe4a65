//! Fixed-width unsigned integers for the split's exact arithmetic.
//!
//! The largest-remainder split computes `⌊T·wᵢ / W⌋` and `T·wᵢ mod W` exactly. `T` (minor units) fits
//! 127 bits; a weight brought to the common scale of all weights can need ~190 bits (a 96-bit `Decimal`
//! mantissa times up to 10^28), and the total weight a few bits more. So the product needs ~320 bits:
//! [`U512`] holds it with room to spare, and no valid input can overflow. The common case (everything fits
//! `u128`) never comes here; see `split.rs`.
//!
//! [`U512`] is `ruint`'s (alloy-rs/ruint: stack-allocated limbs, Knuth division, property-tested
//! upstream), which replaced a hand-written Algorithm D. Chosen over `bnum` (pre-1.0, with breaking
//! minor releases), `crypto-bigint` (constant-time, which the split does not need and would pay for) and
//! the heap-allocating `num-bigint` (so that [`Uint`] stays `Copy`); with default features off its only
//! dependency is its own `uint!` macro crate. This module only adapts it and `u128` to the [`Uint`] trait
//! the split is generic over. Replaced on clarity and maintenance grounds, without a benchmark: the wide
//! path only runs for weights or products beyond `u128`, which ordinary months never produce.

pub(crate) use ruint::aliases::U512;

/// The unsigned arithmetic the split needs, implemented for `u128` (fast path) and [`U512`].
pub(crate) trait Uint: Copy + Ord {
    fn from_u128(v: u128) -> Self;
    fn to_u128(self) -> Option<u128>;
    fn add_checked(self, o: Self) -> Option<Self>;
    fn mul_checked(self, o: Self) -> Option<Self>;
    fn div_rem_checked(self, d: Self) -> Option<(Self, Self)>;
}

impl Uint for u128 {
    fn from_u128(v: u128) -> Self {
        v
    }
    fn to_u128(self) -> Option<u128> {
        Some(self)
    }
    fn add_checked(self, o: Self) -> Option<Self> {
        self.checked_add(o)
    }
    fn mul_checked(self, o: Self) -> Option<Self> {
        self.checked_mul(o)
    }
    fn div_rem_checked(self, d: Self) -> Option<(Self, Self)> {
        (d != 0).then(|| (self / d, self % d))
    }
}

impl Uint for U512 {
    fn from_u128(v: u128) -> Self {
        // Cannot panic: every u128 fits 512 bits.
        U512::from(v)
    }
    fn to_u128(self) -> Option<u128> {
        u128::try_from(&self).ok()
    }
    fn add_checked(self, o: Self) -> Option<Self> {
        self.checked_add(o)
    }
    fn mul_checked(self, o: Self) -> Option<Self> {
        self.checked_mul(o)
    }
    fn div_rem_checked(self, d: Self) -> Option<(Self, Self)> {
        // `div_rem` panics on a zero divisor only; that case is `None` here.
        (!d.is_zero()).then(|| self.div_rem(d))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Random 512-bit values of up to `max_limbs` significant limbs, dense or with long runs of 0/1 bits.
    fn arb(max_limbs: usize) -> impl Strategy<Value = U512> {
        (prop::collection::vec(any::<u64>(), 0..=max_limbs), 0u32..64, any::<bool>()).prop_map(|(v, shift, sparse)| {
            let mut l = [0u64; 8];
            for (i, x) in v.into_iter().enumerate() {
                l[i] = if sparse { (u64::MAX >> shift) ^ (x & 0xff) } else { x };
            }
            U512::from_limbs(l)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Division is exact: `q·d + r == a` with `r < d`.
        #[test]
        fn div_rem_is_exact(a in arb(8), d in arb(5)) {
            prop_assume!(!d.is_zero());
            let (q, r) = a.div_rem_checked(d).unwrap();
            prop_assert!(r < d);
            prop_assert_eq!(q.mul_checked(d).and_then(|x| x.add_checked(r)), Some(a));
        }

        #[test]
        fn from_u128_round_trips(a in any::<u128>(), d in 1u128..) {
            let (q, r) = <U512 as Uint>::from_u128(a).div_rem_checked(<U512 as Uint>::from_u128(d)).unwrap();
            prop_assert_eq!((Uint::to_u128(q), Uint::to_u128(r)), (Some(a / d), Some(a % d)));
        }
    }

    #[test]
    fn overflow_and_zero_divisor() {
        assert_eq!(U512::MAX.mul_checked(<U512 as Uint>::from_u128(2)), None);
        assert_eq!(U512::MAX.add_checked(<U512 as Uint>::from_u128(1)), None);
        assert_eq!(U512::MAX.div_rem_checked(U512::ZERO), None);
        assert_eq!(Uint::to_u128(<U512 as Uint>::from_u128(u128::MAX)), Some(u128::MAX));
        assert_eq!(Uint::to_u128(U512::MAX), None);
    }
}
