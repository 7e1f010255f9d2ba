//! The flow table's index: symmetric flow hash → slab slot.
//!
//! Open addressing with linear probing over one `Vec<u64>`; each entry holds
//! a slot (low 32 bits) and the high 32 bits of its flow's hash as a tag, so
//! a lookup compares tags and reads a flow from the slab only on a tag match
//! (the tag's bits above the bucket position tell flows of one bucket apart). Deletion shifts the following entries
//! back (no tombstones), so probe sequences stay short however many flows
//! come and go.
//!
//! Why not `hashbrown`: a flow's logical shard is its hash modulo
//! [`crate::flow::LOGICAL_SHARDS`], so inside one table the low bits of
//! every hash are equal, and hashbrown takes its home bucket from the low
//! bits; here it comes from the high half, which the entry keeps, so an
//! entry's home is known without re-hashing its flow (when shifting entries
//! back, when growing). And a worker that knows the packets ahead needs the
//! address of a hash's bucket, to prefetch it ([`FlowIndex::prefetch`])
//! before looking the flow up.
//!
//! Load factor: at most 1/2 (grows by doubling), so a successful lookup
//! probes ~1.5 entries and an unsuccessful one ~2.5, mostly in one cache
//! line. Memory: 8 bytes per bucket, 16–32 bytes per indexed flow.

/// An empty bucket (no slot is `u32::MAX`: that is the table's NIL).
const EMPTY: u64 = u64::MAX;

/// Buckets of the first allocation.
const MIN_BUCKETS: usize = 16;

#[derive(Debug, Default)]
pub(crate) struct FlowIndex {
    buckets: Vec<u64>,
    /// `buckets.len() - 1` (0 while unallocated).
    mask: usize,
    len: usize,
}

#[inline]
fn entry(hash: u64, slot: u32) -> u64 {
    (hash & !0xffff_ffff) | u64::from(slot)
}

#[inline]
fn entry_slot(e: u64) -> u32 {
    e as u32
}

#[inline]
fn same_tag(e: u64, hash: u64) -> bool {
    (e ^ hash) >> 32 == 0
}

impl FlowIndex {
    /// The home bucket of a hash, or of an entry (same high half).
    #[inline]
    fn home(&self, hash_or_entry: u64) -> usize {
        (hash_or_entry >> 32) as usize & self.mask
    }

    /// Entries indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<u64>()
    }

    /// The first slot indexed under `hash` for which `is_match` holds.
    /// `is_match` is only asked about slots whose entry carries `hash`'s tag.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mut i = self.home(hash);
        loop {
            let e = self.buckets[i];
            if e == EMPTY {
                return None;
            }
            if same_tag(e, hash) && is_match(entry_slot(e)) {
                return Some(entry_slot(e));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The first slot whose entry carries `hash`'s tag: almost always the
    /// flow of `hash`, if it is indexed (for prefetching its flow; nothing
    /// is read but the index).
    #[inline]
    pub(crate) fn candidate(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// Starts loading the cache line of `hash`'s home bucket.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(hash)) {
            crate::prefetch::line(b);
        }
    }

    /// Indexes `slot` under `hash` (the caller knows it is not indexed yet).
    pub(crate) fn insert(&mut self, hash: u64, slot: u32) {
        debug_assert!(slot != u32::MAX);
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        self.place(entry(hash, slot));
        self.len += 1;
    }

    /// Removes `slot`, indexed under `hash`; false if it was not there.
    /// (Its probe loop repeats `find`'s on purpose: sharing one generic
    /// probe helper measured ~5 % more CPU on the mixed capture, through
    /// `find`'s inlining into the per-packet path.)
    pub(crate) fn remove(&mut self, hash: u64, slot: u32) -> bool {
        if self.len == 0 {
            return false;
        }
        let mut hole = self.home(hash);
        loop {
            let e = self.buckets[hole];
            if e == EMPTY {
                return false;
            }
            if entry_slot(e) == slot {
                break;
            }
            hole = (hole + 1) & self.mask;
        }
        // Backward shift: move each following entry of the cluster into the
        // hole when its home is not between the hole and where it sits.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let e = self.buckets[j];
            if e == EMPTY {
                break;
            }
            let home = self.home(e);
            // Distance from home to j versus from hole to j (cyclic).
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.buckets[hole] = e;
                hole = j;
            }
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        true
    }

    /// Puts `e` in the first empty bucket from its home.
    fn place(&mut self, e: u64) {
        let mut i = self.home(e);
        while self.buckets[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = e;
    }

    #[cold]
    fn grow(&mut self) {
        let n = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; n]);
        self.mask = n - 1;
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hashes with only 7 home positions (long clusters that wrap around
    /// the end, so removal must shift entries back) and distinct tags.
    fn hash_of(slot: u32) -> u64 {
        let home = (u64::from(slot) % 7) * 0x1111 + 0xffff_fff0;
        (home ^ (u64::from(slot) << 20)) << 32 | 0x2a
    }

    #[test]
    fn insert_find_remove() {
        let mut ix = FlowIndex::default();
        assert_eq!(ix.find(hash_of(1), |_| true), None);
        for s in 0..1000 {
            ix.insert(hash_of(s), s);
        }
        assert_eq!(ix.len(), 1000);
        for s in 0..1000 {
            assert_eq!(ix.find(hash_of(s), |x| x == s), Some(s));
            assert_eq!(ix.candidate(hash_of(s)).map(hash_of), Some(hash_of(s)));
        }
        for s in (0..1000).step_by(3) {
            assert!(ix.remove(hash_of(s), s));
            assert!(!ix.remove(hash_of(s), s));
        }
        for s in 0..1000 {
            let want = (s % 3 != 0).then_some(s);
            assert_eq!(ix.find(hash_of(s), |x| x == s), want, "slot {s}");
        }
        assert!(ix.bytes() >= 2 * ix.len() * 8);
    }

    proptest! {
        /// Any sequence of inserts and removes leaves exactly the slots a
        /// model set holds findable, and nothing else.
        #[test]
        fn matches_a_set(ops in proptest::collection::vec((any::<bool>(), 0u32..300), 0..2000)) {
            let mut ix = FlowIndex::default();
            let mut model = std::collections::BTreeSet::new();
            for (insert, s) in ops {
                if insert {
                    if model.insert(s) {
                        ix.insert(hash_of(s), s);
                    }
                } else {
                    prop_assert_eq!(ix.remove(hash_of(s), s), model.remove(&s));
                }
            }
            prop_assert_eq!(ix.len(), model.len());
            for s in 0..300 {
                let found = ix.find(hash_of(s), |x| x == s);
                prop_assert_eq!(found.is_some(), model.contains(&s));
            }
        }
    }
}
