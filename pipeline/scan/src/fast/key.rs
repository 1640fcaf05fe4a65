//! The group key of the fast path: every field of a cost line's key as a small code, packed into
//! one `u128`.
//!
//! Hashing and comparing one packed word per row instead of eleven fields (or six words of 32-bit
//! ids) is most of what makes the aggregation cheap. Each field gets just the bits its codes need
//! so far; when a column's distinct values outgrow its bits the partition re-packs its groups
//! into a wider [`KeyLayout`] (a few times per scan, each costing one pass over the groups, not
//! the rows). A month whose fields need more than [`KEY_BITS`] bits together cannot be packed;
//! the scan then reports it and the file takes the generic plan.

use std::collections::HashMap;

use curflow_model::fxhash::FxBuild;

/// Fields of the key: billing period, usage day, then the text ids in the order of
/// [`super::KEY_TEXT`].
pub(super) const KEY_FIELDS: usize = 2 + super::KEY_TEXT;
pub(super) const F_PERIOD: usize = 0;
pub(super) const F_DAY: usize = 1;
/// Field of key text column `t` (see [`super::KEY_TEXT`]).
pub(super) const fn text_field(t: usize) -> usize {
    2 + t
}

/// Marks rows that are not aggregated (split-cost child rows); never part of a packed key.
pub(super) const SKIP: u128 = 1 << 127;
/// Bits available to the fields together.
pub(super) const KEY_BITS: u32 = 127;

/// Where each field sits in a packed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct KeyLayout {
    shift: [u32; KEY_FIELDS],
    width: [u32; KEY_FIELDS],
}

/// Bits needed for codes `0..n`.
fn bits_for(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

impl KeyLayout {
    /// The narrowest layout for `sizes[f]` codes per field, or `None` beyond `limit` bits.
    pub(super) fn for_sizes(sizes: &[usize; KEY_FIELDS], limit: u32) -> Option<Self> {
        let mut layout = Self::default();
        let mut at = 0u32;
        for (f, &n) in sizes.iter().enumerate() {
            layout.shift[f] = at;
            layout.width[f] = bits_for(n);
            at = at.checked_add(layout.width[f])?;
        }
        (at <= limit.min(KEY_BITS)).then_some(layout)
    }

    /// Whether every field's codes `0..sizes[f]` fit.
    pub(super) fn fits(&self, sizes: &[usize; KEY_FIELDS]) -> bool {
        self.width.iter().zip(sizes).all(|(&w, &n)| bits_for(n) <= w)
    }

    /// `code` in field `f`'s place.
    #[inline]
    pub(super) fn bits(&self, f: usize, code: u32) -> u128 {
        u128::from(code) << self.shift[f]
    }

    /// The bits of field `f`, in place.
    #[inline]
    pub(super) fn mask(&self, f: usize) -> u128 {
        ((1u128 << self.width[f]) - 1) << self.shift[f]
    }

    /// The code of field `f` in `key`.
    #[inline]
    pub(super) fn field(&self, key: u128, f: usize) -> u32 {
        let mask = (1u128 << self.width[f]) - 1;
        ((key >> self.shift[f]) & mask) as u32
    }

    pub(super) fn pack(&self, fields: &[u32; KEY_FIELDS]) -> u128 {
        fields.iter().enumerate().fold(0, |key, (f, &code)| key | self.bits(f, code))
    }

    pub(super) fn unpack(&self, key: u128) -> [u32; KEY_FIELDS] {
        std::array::from_fn(|f| self.field(key, f))
    }
}

/// Distinct dates (days since the epoch) of one date field, as dense codes from 0.
#[derive(Default)]
pub(super) struct DateCodes {
    codes: HashMap<i32, u32, FxBuild>,
    values: Vec<i32>,
    /// Timestamps repeat (hourly lines of one day): most rows hit the last date.
    last: Option<(i32, u32)>,
}

impl DateCodes {
    #[inline]
    pub(super) fn code(&mut self, day: i32) -> u32 {
        if let Some((d, c)) = self.last
            && d == day
        {
            return c;
        }
        let next = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        let code = *self.codes.entry(day).or_insert(next);
        if code == next {
            self.values.push(day);
        }
        self.last = Some((day, code));
        code
    }

    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    pub(super) fn value(&self, code: u32) -> Option<i32> {
        self.values.get(code as usize).copied()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_take_the_bits_their_codes_need_and_round_trip() {
        let sizes = [1, 31, 51, 9, 20, 15, 605, 14, 1, 12, 2, 3, 5, 1, 1, 1, 2, 3, 1];
        let layout = KeyLayout::for_sizes(&sizes, KEY_BITS).unwrap();
        assert_eq!(layout.width, [0, 5, 6, 4, 5, 4, 10, 4, 0, 4, 1, 2, 3, 0, 0, 0, 1, 2, 0]);
        let fields = [0, 30, 50, 8, 19, 14, 604, 13, 0, 11, 1, 2, 4, 0, 0, 0, 1, 2, 0];
        let key = layout.pack(&fields);
        assert!(key < 1 << 51, "51 bits in all");
        assert_eq!(layout.unpack(key), fields);
        assert!(layout.fits(&sizes));
        let mut grown = sizes;
        grown[6] = 1025;
        assert!(!layout.fits(&grown), "1025 resource ids need 11 bits");
        assert!(KeyLayout::for_sizes(&grown, 51).is_none(), "beyond the limit");
        assert!(KeyLayout::for_sizes(&grown, 52).is_some());
    }

    #[test]
    fn date_codes_are_dense_and_stable() {
        let mut days = DateCodes::default();
        let codes: Vec<u32> = [20_400, 20_400, 20_401, 20_400, -3].iter().map(|&d| days.code(d)).collect();
        assert_eq!(codes, vec![0, 0, 1, 0, 2]);
        assert_eq!((days.len(), days.value(2), days.value(3)), (3, Some(-3), None));
    }
}
