//! The fast path's table from a packed group key to its group.
//!
//! A `HashMap` while it is small, then open addressing with linear probing in one array of
//! 24-byte slots. Why not a `HashMap` throughout: at a million groups the table is tens of MB and
//! nearly every row's probe misses the cache. In the open table a key's first slot is known from
//! its hash alone, so the row loop asks for it some rows ahead ([`GroupTable::prefetch`]) and the
//! probe finds it cached; a probe then reads consecutive memory. Why not open addressing
//! throughout: while the table fits in the caches, `hashbrown`'s probe is cheaper (a
//! low-cardinality month took ~5 % more CPU). Keys are only added (the table is dropped or
//! cleared whole), so there are no tombstones.

use std::collections::HashMap;

use curflow_model::fxhash::FxBuild;
use prefetch_index::prefetch_index;

/// Groups beyond which the table is an [`OpenTable`] (a `HashMap` of this many is ~2 MB, about
/// what stays in this machine's caches beside the row loop's other data).
const OPEN_FROM: usize = 65_536;

/// Packed key (`u128`) → group index (below `u32::MAX`).
#[derive(Debug)]
pub(super) enum GroupTable {
    Small(HashMap<u128, u32, FxBuild>),
    Open(OpenTable),
}

impl Default for GroupTable {
    fn default() -> Self {
        GroupTable::Small(HashMap::default())
    }
}

impl GroupTable {
    /// Number of keys.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        match self {
            GroupTable::Small(map) => map.len(),
            GroupTable::Open(table) => table.len,
        }
    }

    /// Bytes held (for the memory pool's accounting).
    pub(super) fn memory_bytes(&self) -> usize {
        match self {
            GroupTable::Small(map) => map.capacity() * (size_of::<(u128, u32)>() + 1),
            GroupTable::Open(table) => table.memory_bytes(),
        }
    }

    /// Whether probes are worth prefetching ([`Self::prefetch`] does nothing otherwise).
    pub(super) fn prefetches(&self) -> bool {
        matches!(self, GroupTable::Open(_))
    }

    /// Asks the CPU for `key`'s first slot, to be probed a little later.
    #[inline]
    pub(super) fn prefetch(&self, key: u128) {
        if let GroupTable::Open(table) = self {
            table.prefetch(key);
        }
    }

    /// The group of `key`; a key not in the table gets the group `new` makes (which must be below
    /// `u32::MAX`, else it is refused with `too_many`).
    #[inline]
    pub(super) fn get_or_insert_with<E>(
        &mut self,
        key: u128,
        new: impl FnOnce() -> Result<u32, E>,
        too_many: impl FnOnce() -> E,
    ) -> Result<u32, E> {
        match self {
            GroupTable::Open(table) => table.get_or_insert_with(key, new, too_many),
            GroupTable::Small(map) => {
                if let Some(&group) = map.get(&key) {
                    return Ok(group);
                }
                let group = new()?;
                if group == u32::MAX {
                    return Err(too_many());
                }
                map.insert(key, group);
                if map.len() > OPEN_FROM {
                    self.open();
                }
                Ok(group)
            }
        }
    }

    /// Adds a key known not to be in the table (what [`Self::clear`] emptied), with its group.
    pub(super) fn insert_new(&mut self, key: u128, group: u32) {
        match self {
            GroupTable::Open(table) => table.insert_new(key, group),
            GroupTable::Small(map) => {
                map.insert(key, group);
                if map.len() > OPEN_FROM {
                    self.open();
                }
            }
        }
    }

    /// Removes every key, keeping the memory (the table is about to be filled again).
    pub(super) fn clear(&mut self) {
        match self {
            GroupTable::Small(map) => map.clear(),
            GroupTable::Open(table) => table.clear(),
        }
    }

    /// From a `HashMap` to an [`OpenTable`] of the same keys.
    fn open(&mut self) {
        let GroupTable::Small(map) = self else { return };
        let mut table = OpenTable::with_slots((map.len() * 4).div_ceil(3).next_power_of_two() * 2);
        for (&key, &group) in map.iter() {
            table.insert_new(key, group);
        }
        *self = GroupTable::Open(table);
    }
}

/// A key and its group; `tag` is the group + 1, and 0 marks a free slot, so a new table is zeroed
/// memory whose unused pages are never touched.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    low: u64,
    high: u64,
    tag: u32,
}

/// The fewest slots a table has.
const MIN_SLOTS: usize = 16;

/// The open-addressing table: kept at most three-quarters full (it doubles beyond).
#[derive(Debug)]
pub(super) struct OpenTable {
    slots: Vec<Slot>,
    /// 64 − log2 of the number of slots: a key's first slot is the top bits of its hash.
    shift: u32,
    len: usize,
}

impl OpenTable {
    fn with_slots(slots: usize) -> Self {
        let slots = slots.max(MIN_SLOTS);
        Self { slots: vec![Slot::default(); slots], shift: 64 - slots.trailing_zeros(), len: 0 }
    }

    fn memory_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
    }

    /// The first slot to probe for `key`: the top bits of a full mix of both words (MurmurHash3's
    /// 64-bit finaliser). A multiplication alone is not enough: packed keys that differ only in
    /// the top bits of a word (the last fields of a layout) would differ only in the top bits of
    /// the product, so a few home slots would take them all and probes would run long.
    #[inline]
    fn home(&self, key: u128) -> usize {
        let (low, high) = (key as u64, (key >> 64) as u64);
        let mut hash = low ^ high.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        hash = (hash ^ (hash >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash = (hash ^ (hash >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^= hash >> 33;
        // At least 16 slots: the shift is at most 60, and the index below the number of slots.
        (hash >> self.shift) as usize
    }

    #[inline]
    fn prefetch(&self, key: u128) {
        prefetch_index(&self.slots, self.home(key));
    }

    /// The slot holding `key` (`Ok`), or the free slot that ends its probe (`Err`).
    #[inline]
    fn find(&self, key: u128) -> Result<usize, usize> {
        let (low, high) = (key as u64, (key >> 64) as u64);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let slot = self.slots[i];
            if slot.tag == 0 {
                return Err(i);
            }
            if slot.low == low && slot.high == high {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// See [`GroupTable::get_or_insert_with`].
    #[inline]
    fn get_or_insert_with<E>(
        &mut self,
        key: u128,
        new: impl FnOnce() -> Result<u32, E>,
        too_many: impl FnOnce() -> E,
    ) -> Result<u32, E> {
        let free = match self.find(key) {
            Ok(i) => return Ok(self.slots[i].tag - 1),
            Err(free) => free,
        };
        let group = new()?;
        let tag = group.checked_add(1).ok_or_else(too_many)?;
        let free = if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
            match self.find(key) {
                Err(free) => free,
                Ok(i) => return Ok(self.slots[i].tag - 1), // not reached: the key was not there
            }
        } else {
            free
        };
        self.put(free, key, tag);
        Ok(group)
    }

    fn insert_new(&mut self, key: u128, group: u32) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        if let (Err(free), Some(tag)) = (self.find(key), group.checked_add(1)) {
            self.put(free, key, tag);
        }
    }

    fn put(&mut self, i: usize, key: u128, tag: u32) {
        self.slots[i] = Slot { low: key as u64, high: (key >> 64) as u64, tag };
        self.len += 1;
    }

    fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.len = 0;
    }

    /// Twice the slots, every key stored again.
    fn grow(&mut self) {
        let old = std::mem::replace(self, Self::with_slots(self.slots.len() * 2));
        for slot in old.slots.iter().filter(|s| s.tag != 0) {
            let key = (u128::from(slot.high) << 64) | u128::from(slot.low);
            if let Err(free) = self.find(key) {
                self.put(free, key, slot.tag);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A deterministic stream of pseudo-random numbers (SplitMix64).
    fn numbers(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    /// Against a `HashMap`: keys drawn from a small set (so most lookups find one), keys that
    /// differ only in the high word or only in a few low bits (packed keys), through many
    /// doublings, with clears and re-inserts as a repack does.
    #[test]
    fn it_is_a_map_from_keys_to_the_groups_they_were_given() {
        let mut next = numbers(7);
        for (round, distinct) in [10u64, 1_000, 50_000, 200_000].into_iter().enumerate() {
            let mut table = GroupTable::default();
            let mut model: HashMap<u128, u32> = HashMap::new();
            for _ in 0..distinct * 3 {
                let r = next() % distinct;
                let key = match round % 3 {
                    0 => u128::from(r) << 64,      // the high word only
                    1 => u128::from(r) | 1 << 100, // a few low bits, a constant high field
                    _ => u128::from(r.wrapping_mul(0x1234_5678_9abc_def1)) << 20 | u128::from(r),
                };
                let fresh = u32::try_from(model.len()).unwrap();
                let got = table.get_or_insert_with(key, || Ok::<_, ()>(fresh), || ()).unwrap();
                let want = *model.entry(key).or_insert(fresh);
                assert_eq!(got, want, "key {key:#x}");
                table.prefetch(key);
            }
            assert_eq!(table.len(), model.len());
            assert_eq!(matches!(table, GroupTable::Open(_)), model.len() > OPEN_FROM, "open beyond {OPEN_FROM}");
            if let GroupTable::Open(open) = &table {
                assert!(open.len * 4 <= open.slots.len() * 3, "kept at most three-quarters full");
            }
            // A repack: cleared, every key stored again under another value.
            table.clear();
            assert_eq!(table.len(), 0);
            for (key, group) in &model {
                table.insert_new(key.rotate_left(7), *group);
            }
            for (key, group) in &model {
                let got = table.get_or_insert_with(key.rotate_left(7), || Err("not there"), || "full");
                assert_eq!(got, Ok(*group));
            }
            assert_eq!(table.len(), model.len());
        }
    }

    /// Keys that differ only in the top bits of a word (the last fields of a packed layout)
    /// still spread over the table: probes stay short.
    #[test]
    fn keys_differing_only_in_their_top_bits_spread() {
        for shift in [40u32, 52, 104, 116] {
            let mut table = OpenTable::with_slots(16);
            for i in 0..4_096u32 {
                let key = u128::from(i) << shift | 0x55;
                table.get_or_insert_with(key, || Ok::<_, ()>(i), || ()).unwrap();
            }
            let longest = (0..4_096u32)
                .map(|i| {
                    let key = u128::from(i) << shift | 0x55;
                    let found = table.find(key).unwrap();
                    (found + table.slots.len() - table.home(key)) % table.slots.len()
                })
                .max()
                .unwrap();
            assert!(longest < 64, "shift {shift}: a probe of {longest} slots");
        }
    }

    #[test]
    fn a_group_of_u32_max_is_refused_and_nothing_is_stored() {
        let mut table = GroupTable::default();
        assert_eq!(
            table.get_or_insert_with(5, || Ok::<_, &str>(u32::MAX), || "too many groups"),
            Err("too many groups")
        );
        assert_eq!(table.len(), 0);
        assert_eq!(table.get_or_insert_with(5, || Ok::<_, &str>(3), || "too many groups"), Ok(3));
        assert_eq!(table.get_or_insert_with(5, || Err("made again"), || "too many groups"), Ok(3));
    }

    #[test]
    fn an_open_table_refuses_a_group_of_u32_max_too() {
        let mut table = OpenTable::with_slots(16);
        assert_eq!(
            table.get_or_insert_with(5, || Ok::<_, &str>(u32::MAX), || "too many groups"),
            Err("too many groups")
        );
        assert_eq!(table.len, 0);
    }

    #[test]
    fn slots_are_24_bytes() {
        assert_eq!(size_of::<Slot>(), 24);
    }
}
