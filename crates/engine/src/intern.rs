//! String interning: every id is stored once, in one arena, and referred to
//! by a dense `u32`. Millions of message ids fit in little memory this way.
//! The tables behind it are [`SlotTable`]s.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

/// The hash every interner uses: deterministic (no random state), so it can
/// be computed ahead of time on a parsing thread.
pub fn str_hash(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

/// A hash table from a 64-bit hash to a dense `u32` index, the keys living
/// with its owner: open addressing with linear probing over
/// `tag << 32 | index` slots (the tag is the hash's high half), at most half
/// full. Its owner compares keys and, on growth, says each index's hash.
///
/// It is ours rather than a library's so that a caller can read the slot a
/// lookup will read ([`SlotTable::home`]) some events ahead: a probe into a
/// large table is a cache miss, and misses of different events can overlap
/// where those of one lookup cannot.
#[derive(Clone, Default)]
pub(crate) struct SlotTable {
    /// Power-of-two length (or empty); `EMPTY_SLOT` where free.
    slots: Vec<u64>,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable")
            .field("slots", &self.slots.len())
            .finish()
    }
}

const EMPTY_SLOT: u64 = u64::MAX;
const TAG: u64 = 0xFFFF_FFFF_0000_0000;

/// Where a lookup ended.
pub(crate) enum Probe {
    Found(u32),
    /// Not there; [`SlotTable::insert`] takes this slot.
    Vacant(usize),
}

impl SlotTable {
    /// Room for `n` entries; `len` are in, and `hash_of` gives their hashes.
    pub fn reserve(&mut self, n: usize, len: usize, hash_of: impl Fn(u32) -> u64) {
        let wanted = n.saturating_mul(2).max(16).next_power_of_two();
        if wanted <= self.slots.len() {
            return;
        }
        let mut slots = vec![EMPTY_SLOT; wanted];
        let mask = wanted - 1;
        for index in 0..len {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let hash = hash_of(index);
            let mut i = hash as usize & mask;
            while slots[i] != EMPTY_SLOT {
                i = (i + 1) & mask;
            }
            slots[i] = (hash & TAG) | u64::from(index);
        }
        self.slots = slots;
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entry a lookup of `hash` reads first, if its tag matches.
    pub fn home(&self, hash: u64) -> Option<u32> {
        let slot = *self
            .slots
            .get(hash as usize & self.slots.len().wrapping_sub(1))?;
        (slot != EMPTY_SLOT && slot & TAG == hash & TAG).then_some(slot as u32)
    }

    /// Looks `hash` up; `eq` says whether an index holds the key sought.
    /// The table must have room for one more ([`SlotTable::reserve`]).
    pub fn find(&self, hash: u64, eq: impl Fn(u32) -> bool) -> Probe {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = hash as usize & mask;
        loop {
            let Some(&slot) = self.slots.get(i) else {
                return Probe::Vacant(i);
            };
            if slot == EMPTY_SLOT {
                return Probe::Vacant(i);
            }
            if slot & TAG == hash & TAG && eq(slot as u32) {
                return Probe::Found(slot as u32);
            }
            i = (i + 1) & mask;
        }
    }

    pub fn insert(&mut self, vacant: usize, hash: u64, index: u32) {
        if let Some(slot) = self.slots.get_mut(vacant) {
            *slot = (hash & TAG) | u64::from(index);
        }
    }
}

#[derive(Clone, Default)]
pub struct Interner {
    bytes: String,
    /// `ends[i]` is the end of string `i` in `bytes`.
    ends: Vec<usize>,
    table: SlotTable,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len())
            .finish()
    }
}

fn slice<'s>(bytes: &'s str, ends: &[usize], index: u32) -> &'s str {
    let i = index as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &bytes[start..ends[i]]
}

impl Interner {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, index: u32) -> &str {
        slice(&self.bytes, &self.ends, index)
    }

    /// The index of `s`, if interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        let Self { bytes, ends, table } = self;
        if table.is_empty() {
            return None;
        }
        match table.find(str_hash(s), |i| slice(bytes, ends, i) == s) {
            Probe::Found(i) => Some(i),
            Probe::Vacant(_) => None,
        }
    }

    /// The index of `s`, and whether it was new.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        self.intern_hashed(s, str_hash(s))
    }

    /// As [`Interner::intern`], with `hash == str_hash(s)` given.
    pub fn intern_hashed(&mut self, s: &str, hash: u64) -> (u32, bool) {
        let Self { bytes, ends, table } = self;
        table.reserve(ends.len() + 1, ends.len(), |i| {
            str_hash(slice(bytes, ends, i))
        });
        let vacant = match table.find(hash, |i| slice(bytes, ends, i) == s) {
            Probe::Found(i) => return (i, false),
            Probe::Vacant(vacant) => vacant,
        };
        let index = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        bytes.push_str(s);
        ends.push(bytes.len());
        table.insert(vacant, hash, index);
        (index, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_one_index_per_distinct_string() {
        let mut interner = Interner::default();
        let words = ["wamid.a", "wamid.b", "", "wamid.a", "x"];
        let idx: Vec<u32> = words.iter().map(|w| interner.intern(w).0).collect();
        assert_eq!(idx, vec![0, 1, 2, 0, 3]);
        assert_eq!(interner.get(1), "wamid.b");
        assert_eq!(interner.get(2), "");
        assert_eq!(interner.intern("x"), (3, false));
        assert_eq!(interner.lookup("wamid.b"), Some(1));
        assert_eq!(interner.lookup("wamid.c"), None);
        assert_eq!(Interner::default().lookup(""), None);
        assert_eq!(interner.len(), 4);
    }
}
