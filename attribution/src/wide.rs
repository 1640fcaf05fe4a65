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

    /// The hand-written 512-bit integer this module used before `ruint` (Knuth's Algorithm D on 64-bit
    /// limbs), kept for one commit to show that `ruint` gives identical results.
    mod legacy {
        use proptest::prelude::*;
        use std::cmp::Ordering;

        const LIMBS: usize = 8;

        /// A 512-bit unsigned integer, little-endian 64-bit limbs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub(super) struct OldU512(pub(super) [u64; LIMBS]);

        impl Ord for OldU512 {
            fn cmp(&self, other: &Self) -> Ordering {
                self.0.iter().rev().cmp(other.0.iter().rev())
            }
        }

        impl PartialOrd for OldU512 {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl OldU512 {
            pub(super) fn from_u128(v: u128) -> Self {
                let mut l = [0u64; LIMBS];
                l[0] = v as u64;
                l[1] = (v >> 64) as u64;
                Self(l)
            }

            pub(super) fn to_u128(self) -> Option<u128> {
                if self.0[2..].iter().any(|&x| x != 0) {
                    return None;
                }
                Some(u128::from(self.0[0]) | (u128::from(self.0[1]) << 64))
            }

            /// Number of significant limbs (0 for zero).
            fn len(&self) -> usize {
                self.0.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1)
            }

            pub(super) fn checked_add(self, o: Self) -> Option<Self> {
                let mut out = [0u64; LIMBS];
                let mut carry = 0u128;
                for (i, slot) in out.iter_mut().enumerate() {
                    let s = u128::from(self.0[i]) + u128::from(o.0[i]) + carry;
                    *slot = s as u64;
                    carry = s >> 64;
                }
                (carry == 0).then_some(Self(out))
            }

            pub(super) fn checked_mul(self, o: Self) -> Option<Self> {
                let (la, lb) = (self.len(), o.len());
                if la + lb > LIMBS + 1 {
                    return None;
                }
                let mut out = [0u64; 2 * LIMBS];
                for i in 0..la {
                    let mut carry = 0u128;
                    for j in 0..lb {
                        let t = u128::from(self.0[i]) * u128::from(o.0[j]) + u128::from(out[i + j]) + carry;
                        out[i + j] = t as u64;
                        carry = t >> 64;
                    }
                    out[i + lb] = carry as u64;
                }
                if out[LIMBS..].iter().any(|&x| x != 0) {
                    return None;
                }
                let mut l = [0u64; LIMBS];
                l.copy_from_slice(&out[..LIMBS]);
                Some(Self(l))
            }

            /// `(self / d, self % d)`; `None` when `d` is zero.
            pub(super) fn div_rem(self, d: Self) -> Option<(Self, Self)> {
                let n = d.len();
                if n == 0 {
                    return None;
                }
                let m = self.len();
                if m < n || self < d {
                    return Some((Self::default(), self));
                }
                if n == 1 {
                    // Short division: one u128 division per limb.
                    let dv = u128::from(d.0[0]);
                    let mut q = [0u64; LIMBS];
                    let mut rem = 0u128;
                    for i in (0..m).rev() {
                        let cur = (rem << 64) | u128::from(self.0[i]);
                        q[i] = (cur / dv) as u64;
                        rem = cur % dv;
                    }
                    return Some((Self(q), Self::from_u128(rem)));
                }
                // Algorithm D. Normalise so the divisor's top limb has its high bit set.
                let s = d.0[n - 1].leading_zeros();
                let mut vn = [0u64; LIMBS];
                for i in (1..n).rev() {
                    vn[i] = shl_pair(d.0[i], d.0[i - 1], s);
                }
                vn[0] = d.0[0] << s;
                let mut un = [0u64; LIMBS + 1];
                un[m] = shr_carry(self.0[m - 1], s);
                for i in (1..m).rev() {
                    un[i] = shl_pair(self.0[i], self.0[i - 1], s);
                }
                un[0] = self.0[0] << s;

                const B: u128 = 1 << 64;
                let mut q = [0u64; LIMBS];
                for j in (0..=m - n).rev() {
                    let num = (u128::from(un[j + n]) << 64) | u128::from(un[j + n - 1]);
                    let top = u128::from(vn[n - 1]);
                    let mut qhat = num / top;
                    let mut rhat = num % top;
                    while qhat >= B || qhat * u128::from(vn[n - 2]) > ((rhat << 64) | u128::from(un[j + n - 2])) {
                        qhat -= 1;
                        rhat += top;
                        if rhat >= B {
                            break;
                        }
                    }
                    // Multiply and subtract.
                    let mut k: i128 = 0;
                    for i in 0..n {
                        let p = qhat * u128::from(vn[i]);
                        let t = i128::from(un[i + j]) - k - i128::from(p as u64);
                        un[i + j] = t as u64;
                        k = (p >> 64) as i128 - (t >> 64);
                    }
                    let t = i128::from(un[j + n]) - k;
                    un[j + n] = t as u64;
                    q[j] = qhat as u64;
                    if t < 0 {
                        // Rare: qhat was one too large; add the divisor back.
                        q[j] = q[j].wrapping_sub(1);
                        let mut carry = 0u128;
                        for i in 0..n {
                            let t = u128::from(un[i + j]) + u128::from(vn[i]) + carry;
                            un[i + j] = t as u64;
                            carry = t >> 64;
                        }
                        un[j + n] = un[j + n].wrapping_add(carry as u64);
                    }
                }
                // Unnormalise the remainder.
                let mut r = [0u64; LIMBS];
                for i in 0..n - 1 {
                    r[i] = shr_pair(un[i], un[i + 1], s);
                }
                r[n - 1] = shr_pair(un[n - 1], un[n], s);
                Some((Self(q), Self(r)))
            }
        }

        /// High limb of `(hi:lo) << s` for `s < 64`.
        fn shl_pair(hi: u64, lo: u64, s: u32) -> u64 {
            if s == 0 { hi } else { (hi << s) | (lo >> (64 - s)) }
        }

        /// Bits shifted out of `x << s`.
        fn shr_carry(x: u64, s: u32) -> u64 {
            if s == 0 { 0 } else { x >> (64 - s) }
        }

        /// Low limb of `(hi:lo) >> s` for `s < 64`.
        fn shr_pair(lo: u64, hi: u64, s: u32) -> u64 {
            if s == 0 { lo } else { (lo >> s) | (hi << (64 - s)) }
        }
        /// Reference: schoolbook binary long division.
        fn div_rem_bits(a: OldU512, d: OldU512) -> (OldU512, OldU512) {
            let mut q = OldU512::default();
            let mut r = OldU512::default();
            for bit in (0..512).rev() {
                // r = r << 1 | bit
                let mut carry = (a.0[bit / 64] >> (bit % 64)) & 1;
                for limb in r.0.iter_mut() {
                    let next = *limb >> 63;
                    *limb = (*limb << 1) | carry;
                    carry = next;
                }
                if r >= d {
                    let mut borrow = 0u128;
                    for i in 0..LIMBS {
                        let t = u128::from(r.0[i]).wrapping_sub(u128::from(d.0[i])).wrapping_sub(borrow);
                        r.0[i] = t as u64;
                        borrow = (t >> 127) & 1;
                    }
                    q.0[bit / 64] |= 1 << (bit % 64);
                }
            }
            (q, r)
        }

        fn arb_u512(max_limbs: usize) -> impl Strategy<Value = OldU512> {
            (prop::collection::vec(any::<u64>(), 0..=max_limbs), 0u32..64, any::<bool>()).prop_map(
                |(v, shift, sparse)| {
                    let mut l = [0u64; LIMBS];
                    for (i, x) in v.into_iter().enumerate() {
                        // Sparse values exercise the qhat-correction and add-back paths (long runs of 0 / 1 bits).
                        l[i] = if sparse { (u64::MAX >> shift) ^ (x & 0xff) } else { x };
                    }
                    OldU512(l)
                },
            )
        }

        proptest! {
            #[test]
            fn knuth_matches_reference(a in arb_u512(8), d in arb_u512(5)) {
                prop_assume!(d != OldU512::default());
                let (q, r) = a.div_rem(d).unwrap();
                prop_assert_eq!((q, r), div_rem_bits(a, d));
                // and q*d + r == a
                prop_assert_eq!(q.checked_mul(d).and_then(|x| x.checked_add(r)), Some(a));
            }

            #[test]
            fn matches_u128(a in any::<u128>(), d in 1u128..) {
                let (q, r) = OldU512::from_u128(a).div_rem(OldU512::from_u128(d)).unwrap();
                prop_assert_eq!((q.to_u128(), r.to_u128()), (Some(a / d), Some(a % d)));
            }
        }

        #[test]
        fn mul_overflow_and_zero_divisor() {
            let big = OldU512([u64::MAX; LIMBS]);
            assert_eq!(big.checked_mul(OldU512::from_u128(2)), None);
            assert_eq!(big.checked_add(OldU512::from_u128(1)), None);
            assert_eq!(big.div_rem(OldU512::default()), None);
            assert_eq!(OldU512::from_u128(u128::MAX).to_u128(), Some(u128::MAX));
        }
    }

    use legacy::OldU512;

    fn old_of(v: U512) -> OldU512 {
        OldU512(*v.as_limbs())
    }

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

        #[test]
        fn ruint_equals_the_hand_written_code(a in arb(8), b in arb(8), d in arb(5)) {
            let (oa, ob, od) = (old_of(a), old_of(b), old_of(d));
            prop_assert_eq!(a.add_checked(b).map(old_of), oa.checked_add(ob));
            prop_assert_eq!(a.mul_checked(b).map(old_of), oa.checked_mul(ob));
            prop_assert_eq!(a.mul_checked(d).map(old_of), oa.checked_mul(od));
            prop_assert_eq!(a.div_rem_checked(d).map(|(q, r)| (old_of(q), old_of(r))), oa.div_rem(od));
            prop_assert_eq!(a.div_rem_checked(b).map(|(q, r)| (old_of(q), old_of(r))), oa.div_rem(ob));
            prop_assert_eq!(Uint::to_u128(a), oa.to_u128());
            prop_assert_eq!(Uint::to_u128(d), od.to_u128());
        }

        #[test]
        fn from_u128_round_trips(a in any::<u128>(), d in 1u128..) {
            prop_assert_eq!(old_of(<U512 as Uint>::from_u128(a)), OldU512::from_u128(a));
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
