//! The Lambda join's dedupe set: the request ids joined most recently, to drop duplicate REPORTs.
//!
//! A million ids take tens of MB, so nearly every probe of the set is a cache miss, and the join
//! runs one record at a time in input order: waiting for those misses was a sixth of the joining
//! thread's time. UUIDs (nearly all request ids) are therefore kept in a table of its own
//! ([`UuidTable`]) whose slot for a key is known before the probe, so the join prefetches it a few
//! records ahead ([`DoneSet::prefetch`]) and the probe finds it cached.

use std::collections::HashMap;

use prefetch_index::prefetch_index;

use super::lambda::{Fast, RequestKey, UuidKey};

/// The request ids joined most recently — the last `window` new ones. UUIDs are kept as two
/// words in a [`UuidTable`], other ids as text.
///
/// Each id is stored with the sequence number of its insertion and is a member while it is among
/// the last `window` ids inserted: exactly the set a FIFO of `window` ids would hold. Expired ids
/// are not removed one at a time (each removal is a cache miss in a table of tens of MB): when the
/// tables hold half a window more than the window, one sequential pass drops the expired ones.
#[derive(Debug)]
pub(crate) struct DoneSet {
    uuids: UuidTable,
    texts: HashMap<Box<str>, u64, Fast>,
    /// New ids inserted so far; the id inserted as the n-th is a member while n > inserted − window.
    inserted: u64,
    window: u64,
}

impl DoneSet {
    pub(crate) fn new(window: usize) -> Self {
        // Sized for the most ids it holds between purges (UUIDs: nearly all), so that it never
        // grows by rehashing tens of MB; untouched slots cost no memory until used.
        let most = window.saturating_add(window / 2).saturating_add(1).min(1 << 24);
        Self {
            uuids: UuidTable::with_capacity(most),
            texts: HashMap::default(),
            inserted: 0,
            window: u64::try_from(window).unwrap_or(u64::MAX),
        }
    }

    fn live(inserted: u64, window: u64, seq: u64) -> bool {
        seq.saturating_add(window) > inserted
    }

    pub(crate) fn contains(&self, key: &RequestKey) -> bool {
        let seq = match key {
            RequestKey::Uuid(v) => self.uuids.get(*v),
            RequestKey::Text(t) => self.texts.get(t).copied(),
        };
        seq.is_some_and(|seq| Self::live(self.inserted, self.window, seq))
    }

    /// Starts loading the memory that [`contains`](Self::contains) or
    /// [`insert`](Self::insert) of `key` will read (a UUID's slot), without waiting for it.
    pub(crate) fn prefetch(&self, key: &RequestKey) {
        if let RequestKey::Uuid(v) = key {
            self.uuids.prefetch(*v);
        }
    }

    /// `true` when the id was not a member (it is now, as the newest).
    pub(crate) fn insert(&mut self, key: RequestKey) -> bool {
        use std::collections::hash_map::Entry;
        let (inserted, window, next) = (self.inserted, self.window, self.inserted + 1);
        let fresh = |seq: &mut u64| {
            if Self::live(inserted, window, *seq) {
                return false;
            }
            *seq = next; // expired, not yet purged: inserted again as new
            true
        };
        let new = match key {
            RequestKey::Uuid(v) => match self.uuids.entry(v) {
                Some(seq) => fresh(seq),
                None => {
                    self.uuids.insert_new(v, next);
                    true
                }
            },
            RequestKey::Text(t) => match self.texts.entry(t) {
                Entry::Occupied(mut e) => fresh(e.get_mut()),
                Entry::Vacant(e) => {
                    e.insert(next);
                    true
                }
            },
        };
        if new {
            self.inserted = next;
            let stored = (self.uuids.len() + self.texts.len()) as u64;
            if stored > self.window.saturating_add(self.window / 2).max(1) {
                self.purge();
            }
        }
        new
    }

    /// Drops the expired ids (one pass over each table).
    fn purge(&mut self) {
        let (inserted, window) = (self.inserted, self.window);
        self.uuids.retain(|seq| Self::live(inserted, window, seq));
        self.texts.retain(|_, seq| Self::live(inserted, window, *seq));
    }

    /// Ids stored, members or expired (for the tests of the purge).
    #[cfg(test)]
    pub(crate) fn stored(&self) -> usize {
        self.uuids.len() + self.texts.len()
    }
}

/// A UUID and the sequence number of its insertion (never 0); `seq` 0: an empty slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    high: u64,
    low: u64,
    seq: u64,
}

/// UUIDs with a sequence number each: open addressing with linear probing in one array of 24-byte
/// slots, so a key's first slot is known from its hash alone (to prefetch it) and a probe reads
/// consecutive memory. Kept at most three-quarters full (it doubles beyond); entries are removed
/// only in bulk ([`retain`](Self::retain)), by backward shifting, so no tombstones.
#[derive(Debug)]
struct UuidTable {
    slots: Vec<Slot>,
    /// 64 − log2 of the number of slots: a key's first slot is the top bits of its hash.
    shift: u32,
    len: usize,
}

impl UuidTable {
    fn with_capacity(most: usize) -> Self {
        Self::with_slots(most.saturating_mul(4).div_ceil(3).max(8).next_power_of_two())
    }

    fn with_slots(slots: usize) -> Self {
        // Zeroed memory: the pages of slots never used are never touched.
        Self { slots: vec![Slot::default(); slots], shift: 64 - slots.trailing_zeros(), len: 0 }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The first slot to probe for `key`: the top bits of a multiplicative hash of its words
    /// (request ids are random UUIDs, but ids differing in one word only still spread).
    fn home(&self, key: UuidKey) -> usize {
        let hash = (key.0 ^ key.1.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // At least 8 slots: the shift is at most 61, and the index below the number of slots.
        (hash >> self.shift) as usize
    }

    fn prefetch(&self, key: UuidKey) {
        prefetch_index(&self.slots, self.home(key));
    }

    /// The slot holding `key` (`Ok`), or the empty slot that ends its probe (`Err`).
    fn find(&self, key: UuidKey) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let slot = self.slots[i];
            if slot.seq == 0 {
                return Err(i);
            }
            if slot.high == key.0 && slot.low == key.1 {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn get(&self, key: UuidKey) -> Option<u64> {
        self.find(key).ok().map(|i| self.slots[i].seq)
    }

    /// The sequence number stored for `key`, to change.
    fn entry(&mut self, key: UuidKey) -> Option<&mut u64> {
        match self.find(key) {
            Ok(i) => Some(&mut self.slots[i].seq),
            Err(_) => None,
        }
    }

    /// Stores a key that is not in the table; `seq` is not 0.
    fn insert_new(&mut self, key: UuidKey, seq: u64) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        if let Err(i) = self.find(key) {
            self.slots[i] = Slot { high: key.0, low: key.1, seq };
            self.len += 1;
        }
    }

    /// Twice the slots, every key stored again (a window larger than the table was sized for).
    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        let old = std::mem::replace(self, Self::with_slots(slots));
        for slot in old.slots.into_iter().filter(|s| s.seq != 0) {
            if let Err(i) = self.find(UuidKey(slot.high, slot.low)) {
                self.slots[i] = slot;
                self.len += 1;
            }
        }
    }

    /// Keeps the keys whose sequence number `keep` accepts, in one pass over the slots.
    ///
    /// A removed key's slot is filled by shifting back the keys after it that may sit there
    /// (backward-shift deletion), so every key stays reachable from its first slot without
    /// tombstones. The pass starts after an empty slot (there is one: the table is never full)
    /// and goes once around: no run of occupied slots then spans its start and end, so each run
    /// is handled whole, in order, and a slot shifted into is looked at again.
    fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let n = self.slots.len();
        let mask = n - 1;
        let Some(empty) = self.slots.iter().position(|s| s.seq == 0) else { return };
        let mut visited = 0;
        let mut i = (empty + 1) & mask;
        while visited < n {
            let slot = self.slots[i];
            if slot.seq != 0 && !keep(slot.seq) {
                self.remove_at(i);
                // Slot `i` now holds a key shifted back (or is empty): look at it again.
                continue;
            }
            i = (i + 1) & mask;
            visited += 1;
        }
    }

    /// Empties slot `i` and shifts back the keys after it whose probe passes through it.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let slot = self.slots[j];
            if slot.seq == 0 {
                break;
            }
            let home = self.home(UuidKey(slot.high, slot.low));
            // The key at `j` may move to the hole when its first slot is not in (hole, j]
            // (cyclically): its probe from `home` passes through the hole.
            let between = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !between {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = Slot::default();
        self.len -= 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    /// UUID and text request ids live in separate tables of the dedupe set, never confused.
    #[test]
    fn done_set_keeps_uuid_and_text_ids_apart() {
        let uuid = RequestKey::new("8fc6f963-411b-58b5-8483-a32130c0f45d");
        let text = RequestKey::new("r1");
        let mut done = DoneSet::new(2);
        assert!(done.insert(uuid.clone()) && done.insert(text.clone()));
        assert!(!done.insert(uuid.clone()) && !done.insert(text.clone()), "already there");
        assert!(done.contains(&uuid) && done.contains(&text));
        assert!(!done.contains(&RequestKey::new("8fc6f963-411b-58b5-8483-a32130c0f45e")));
        assert!(!done.contains(&RequestKey::new("8fc6f963-411b-58b5-8483-a32130c0f45")), "text, not a UUID");
        // A third id pushes the oldest (the UUID) out of a window of two.
        assert!(done.insert(RequestKey::new("r2")));
        assert!(!done.contains(&uuid) && done.contains(&text));
        assert!(done.insert(RequestKey::new("r3")));
        assert!(!done.contains(&text));
    }

    /// The dedupe set holds exactly what a FIFO of the last `window` new ids holds, across the
    /// purges that drop expired ids in bulk, for ids that come back after expiring too.
    #[test]
    fn done_set_is_a_window_of_the_last_new_ids() {
        for window in [1usize, 2, 3, 7, 64] {
            let mut done = DoneSet::new(window);
            let mut fifo: VecDeque<RequestKey> = VecDeque::new();
            let mut state = 0x2545_f491_4f6c_dd1du64;
            for step in 0..5_000u32 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Few distinct ids (so they recur in and out of the window), both kinds.
                let n = state % (3 * window as u64 + 2);
                let key = if n.is_multiple_of(3) {
                    RequestKey::Text(format!("r{n}").into())
                } else {
                    RequestKey::Uuid(UuidKey::new(u128::from(n) << 64 | u128::from(n)))
                };
                let member = fifo.contains(&key);
                assert_eq!(done.contains(&key), member, "window {window}, step {step}");
                if state & 1 == 0 {
                    assert_eq!(done.insert(key.clone()), !member, "window {window}, step {step}");
                    if !member {
                        fifo.push_back(key);
                        if fifo.len() > window {
                            fifo.pop_front();
                        }
                    }
                }
                assert!(done.stored() <= window + window / 2 + 1, "purged: {}", done.stored());
            }
        }
    }

    /// Every key of a table is found from its first slot: no empty slot between the two.
    fn assert_reachable(table: &UuidTable) {
        let mask = table.slots.len() - 1;
        let mut stored = 0;
        for (at, slot) in table.slots.iter().enumerate().filter(|(_, s)| s.seq != 0) {
            stored += 1;
            let mut i = table.home(UuidKey(slot.high, slot.low));
            while i != at {
                assert_ne!(table.slots[i].seq, 0, "empty slot {i} before the key at {at}");
                i = (i + 1) & mask;
            }
        }
        assert_eq!(stored, table.len);
    }

    proptest! {
        /// The table against a `HashMap`: inserts (growing past its size), updates and bulk
        /// removals of arbitrary subsets, with keys from a small set of first slots (long runs of
        /// occupied slots that wrap around the end of the table).
        #[test]
        fn uuid_table_is_a_map(
            ops in prop::collection::vec((0u64..48, 0u8..4, any::<u64>()), 1..600),
            slots_exp in 3u32..7,
        ) {
            let mut table = UuidTable::with_slots(1 << slots_exp);
            let mut model: HashMap<(u64, u64), u64> = HashMap::new();
            for (step, (k, op, salt)) in ops.into_iter().enumerate() {
                let key = UuidKey(k, k.wrapping_mul(0x0123_4567_89ab_cdef));
                let seq = step as u64 + 1;
                match op {
                    0 | 1 => {
                        match table.entry(key) {
                            Some(s) => *s = seq,
                            None => table.insert_new(key, seq),
                        }
                        model.insert((key.0, key.1), seq);
                    }
                    2 => {
                        // Drop about half, chosen by the salt and the sequence number.
                        let keep = |s: u64| (s ^ salt) & 1 == 0;
                        table.retain(keep);
                        model.retain(|_, s| keep(*s));
                    }
                    _ => {}
                }
                assert_reachable(&table);
                for k in 0..48u64 {
                    let key = UuidKey(k, k.wrapping_mul(0x0123_4567_89ab_cdef));
                    prop_assert_eq!(table.get(key), model.get(&(key.0, key.1)).copied(), "step {}", step);
                }
            }
        }
    }
}
