//! String interning: every id is stored once, in one arena, and referred to
//! by a dense `u32`. Millions of message ids fit in little memory this way.
//! The tables behind it are [`SlotTable`]s.

use std::num::NonZeroU64;

use crate::grow::{CapacityError, Chunked, Limit, Text, TextAt, length, next_index};
use crate::hash::HashKey;

/// A hash table from a 64-bit hash to a dense `u32` index, the keys living
/// with its owner, who compares them. Slots hold `tag << 32 | index`, the
/// tag being the hash's high half; everything the table does with a hash
/// it does with the tag alone, so it never asks its owner for a key again.
///
/// It grows without stopping (extendible hashing): a directory indexed by
/// the tag's top bits names segments of [`SEGMENT_SLOTS`] slots (more only
/// where no bit of the tag tells entries apart), each an open-addressing
/// table with linear probing, kept at most half full. A full segment splits
/// in two by one more bit of the tag, so an insert moves at most one
/// segment's entries, whatever the table holds.
///
/// It is ours rather than a library's so that a caller can read the slot a
/// lookup will read ([`SlotTable::home`]) some events ahead: a probe into a
/// large table is a cache miss, and misses of different events can overlap
/// where those of one lookup cannot.
#[derive(Clone, Default)]
pub(crate) struct SlotTable {
    /// `2^depth` entries: the segment of each tag prefix.
    directory: Vec<u32>,
    depth: u32,
    segments: Vec<Segment>,
    /// Entries in all.
    len: usize,
}

#[derive(Clone)]
struct Segment {
    /// Power-of-two length; `None` where free.
    slots: Vec<Option<Entry>>,
    /// How many top bits of the tag all its entries share.
    depth: u32,
    len: usize,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable")
            .field("segments", &self.segments.len())
            .finish()
    }
}

/// One entry, `tag << 32 | index`, stored inverted so that a free slot,
/// `None`, takes no room of its own (8 bytes a slot, not 16): indices stay
/// below `u32::MAX` ([`next_index`]), so no entry is all ones.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Entry(NonZeroU64);

impl Entry {
    fn new(hash: u64, index: u32) -> Entry {
        let packed = (hash & TAG) | u64::from(index);
        Entry(NonZeroU64::new(!packed).expect("indices stay below u32::MAX (next_index)"))
    }

    fn tag(self) -> u32 {
        tag_of(!self.0.get())
    }

    fn index(self) -> u32 {
        !self.0.get() as u32
    }
}

const _: () = assert!(size_of::<Option<Entry>>() == 8, "a slot is 8 bytes");

const TAG: u64 = 0xFFFF_FFFF_0000_0000;
/// Largest segment: 128 KiB, split in well under a millisecond.
const SEGMENT_SLOTS: usize = 1 << 14;
const FIRST_SLOTS: usize = 16;

fn tag_of(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// A free slot a lookup ended on: segment and slot.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Vacant {
    segment: u32,
    slot: u32,
}

/// Where a lookup ended.
pub(crate) enum Probe {
    Found(u32),
    /// Not there; [`SlotTable::insert`] takes this slot.
    Vacant(Vacant),
}

impl Segment {
    fn new(slots: usize, depth: u32) -> Segment {
        Segment {
            slots: vec![None; slots],
            depth,
            len: 0,
        }
    }

    /// Where a probe for `tag` starts: the tag's low bits, which the
    /// directory's top bits leave free.
    fn home(&self, tag: u32) -> usize {
        tag as usize & (self.slots.len() - 1)
    }

    fn put(&mut self, entry: Entry) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(entry.tag());
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some(entry);
        self.len += 1;
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.iter().copied().flatten()
    }
}

impl SlotTable {
    /// The segment `tag` belongs to, if the table has any.
    fn segment_of(&self, tag: u32) -> Option<usize> {
        let at = tag.checked_shr(32 - self.depth).unwrap_or(0) as usize;
        self.directory.get(at).map(|&s| s as usize)
    }

    /// Enough segments for `n` entries at most half full, if the table is
    /// still empty (a hint for batch loads, which know their size; the
    /// fuller segments still split as it fills).
    pub fn reserve(&mut self, n: usize) {
        if !self.segments.is_empty() {
            return;
        }
        let segments = n
            .saturating_mul(2)
            .div_ceil(SEGMENT_SLOTS)
            .next_power_of_two();
        let depth = segments.trailing_zeros();
        let slots = n.saturating_mul(2).clamp(FIRST_SLOTS, SEGMENT_SLOTS);
        let slots = slots.next_power_of_two();
        self.depth = depth;
        self.directory = (0..segments as u32).collect();
        self.segments = (0..segments).map(|_| Segment::new(slots, depth)).collect();
    }

    /// The entry a lookup of `hash` reads first, if its tag matches.
    pub fn home(&self, hash: u64) -> Option<u32> {
        let tag = tag_of(hash);
        let segment = self.segments.get(self.segment_of(tag)?)?;
        let entry = (*segment.slots.get(segment.home(tag))?)?;
        (entry.tag() == tag).then_some(entry.index())
    }

    /// Looks `hash` up; `eq` says whether an index holds the key sought.
    pub fn find(&self, hash: u64, eq: impl Fn(u32) -> bool) -> Probe {
        let tag = tag_of(hash);
        let Some(at) = self.segment_of(tag) else {
            // Empty: `insert` makes the first segment.
            return Probe::Vacant(Vacant {
                segment: 0,
                slot: 0,
            });
        };
        let segment = &self.segments[at];
        let mask = segment.slots.len() - 1;
        let mut i = segment.home(tag);
        loop {
            let Some(entry) = segment.slots[i] else {
                return Probe::Vacant(Vacant {
                    segment: at as u32,
                    slot: i as u32,
                });
            };
            if entry.tag() == tag && eq(entry.index()) {
                return Probe::Found(entry.index());
            }
            i = (i + 1) & mask;
        }
    }

    /// Stores `index` where [`SlotTable::find`] of `hash` ended, then
    /// grows the segment if it is over half full. `index` is below
    /// `u32::MAX`.
    pub fn insert(&mut self, vacant: Vacant, hash: u64, index: u32) {
        let entry = Entry::new(hash, index);
        self.len += 1;
        if self.segments.is_empty() {
            self.reserve(1);
            self.segments[0].put(entry);
            return;
        }
        let at = vacant.segment as usize;
        let segment = &mut self.segments[at];
        segment.slots[vacant.slot as usize] = Some(entry);
        segment.len += 1;
        if segment.len * 2 > segment.slots.len() {
            self.grow(at);
        }
    }

    fn grow(&mut self, at: usize) {
        let segment = &self.segments[at];
        let depth = segment.depth + 1;
        let bit = 32u32.saturating_sub(depth);
        let high_half = |entry: Entry| (entry.tag() >> bit) & 1 == 1;
        let highs = segment.entries().filter(|&s| high_half(s)).count();
        // A segment doubles while small, and when a split would not divide
        // it (equal tags, or the next bit the same in all) or would double
        // the directory past its share: bounded by the entries, never by
        // how alike their tags are.
        let deepens = segment.depth == self.depth;
        let split = segment.slots.len() >= SEGMENT_SLOTS
            && depth <= 32
            && highs > 0
            && highs < segment.len
            && (!deepens || self.directory.len() * 2 <= (self.len / 256).max(16));
        if !split {
            let mut bigger = Segment::new(segment.slots.len() * 2, segment.depth);
            for entry in segment.entries() {
                bigger.put(entry);
            }
            self.segments[at] = bigger;
            return;
        }
        let room = |n: usize| (n * 2).next_power_of_two().max(SEGMENT_SLOTS);
        let mut low = Segment::new(room(segment.len - highs), depth);
        let mut high = Segment::new(room(highs), depth);
        for entry in segment.entries() {
            if high_half(entry) {
                high.put(entry);
            } else {
                low.put(entry);
            }
        }
        if deepens {
            self.directory = self.directory.iter().flat_map(|&s| [s, s]).collect();
            self.depth += 1;
        }
        let high_at = u32::try_from(self.segments.len())
            .expect("a segment splits only past 8192 entries, so segments stay few");
        self.segments[at] = low;
        self.segments.push(high);
        let shift = self.depth - depth;
        for (prefix, entry) in self.directory.iter_mut().enumerate() {
            if *entry as usize == at && (prefix >> shift) & 1 == 1 {
                *entry = high_at;
            }
        }
    }

    /// How many slots past its home each entry sits, in all: the probes a
    /// lookup of every entry makes beyond the first, which is also what
    /// inserting them cost (tests count work with it, not time).
    #[cfg(test)]
    pub fn displacement(&self) -> u64 {
        let mut total = 0;
        for segment in &self.segments {
            let mask = segment.slots.len() - 1;
            for (i, slot) in segment.slots.iter().enumerate() {
                if let Some(entry) = slot {
                    let home = segment.home(entry.tag());
                    total += (i.wrapping_sub(home) & mask) as u64;
                }
            }
        }
        total
    }
}

#[derive(Clone)]
pub struct Interner {
    text: Text,
    /// Where string `i` is in `text`, and its length.
    spans: Chunked<(TextAt, u32)>,
    table: SlotTable,
    key: HashKey,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len())
            .finish()
    }
}

fn slice<'s>(text: &'s Text, spans: &Chunked<(TextAt, u32)>, index: u32) -> &'s str {
    spans
        .get(index as usize)
        .map_or("", |&(at, len)| text.get(at, len as usize))
}

impl Interner {
    pub fn new(key: HashKey) -> Interner {
        Interner {
            text: Text::default(),
            spans: Chunked::default(),
            table: SlotTable::default(),
            key,
        }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn get(&self, index: u32) -> &str {
        slice(&self.text, &self.spans, index)
    }

    /// The index of `s`, if interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        let Self {
            text,
            spans,
            table,
            key,
        } = self;
        match table.find(key.str_hash(s), |i| slice(text, spans, i) == s) {
            Probe::Found(i) => Some(i),
            Probe::Vacant(_) => None,
        }
    }

    /// The index of `s`, and whether it was new.
    pub fn intern(&mut self, s: &str) -> Result<(u32, bool), CapacityError> {
        let hash = self.key.str_hash(s);
        let Self {
            text, spans, table, ..
        } = self;
        let vacant = match table.find(hash, |i| slice(text, spans, i) == s) {
            Probe::Found(i) => return Ok((i, false)),
            Probe::Vacant(vacant) => vacant,
        };
        let index = next_index(spans.len(), Limit::Strings)?;
        let len = length(s)?;
        spans.push((text.push(s)?, len));
        table.insert(vacant, hash, index);
        Ok((index, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts `hashes` (key `i` is index `i`), checking none was there.
    fn fill(table: &mut SlotTable, hashes: &[u64]) {
        for (i, &hash) in hashes.iter().enumerate() {
            let i = i as u32;
            match table.find(hash, |j| j == i) {
                Probe::Found(j) => panic!("{i} found as {j} before it was inserted"),
                Probe::Vacant(vacant) => table.insert(vacant, hash, i),
            }
        }
    }

    fn assert_all_found(table: &SlotTable, hashes: &[u64]) {
        for (i, &hash) in hashes.iter().enumerate() {
            let i = i as u32;
            assert!(matches!(table.find(hash, |j| j == i), Probe::Found(j) if j == i));
        }
        for segment in &table.segments {
            assert!(segment.len * 2 <= segment.slots.len());
        }
    }

    #[test]
    fn a_growing_table_splits_segments_and_keeps_every_entry() {
        let hashes: Vec<u64> = (0..300_000)
            .map(|i| HashKey::fixed().str_hash(&format!("wamid.{i}")))
            .collect();
        let mut table = SlotTable::default();
        assert_eq!(table.home(hashes[0]), None);
        fill(&mut table, &hashes);
        assert_all_found(&table, &hashes);
        // Grown by splits: no segment is larger than the bound.
        assert!(table.segments.len() >= 300_000 * 2 / SEGMENT_SLOTS);
        assert!(
            table
                .segments
                .iter()
                .all(|s| s.slots.len() == SEGMENT_SLOTS)
        );
        assert_eq!(table.directory.len(), 1 << table.depth);
        // Most entries sit in the slot a lookup reads first.
        let at_home = (0..hashes.len())
            .filter(|&i| table.home(hashes[i]) == Some(i as u32))
            .count();
        assert!(at_home > hashes.len() / 2, "{at_home}");
    }

    #[test]
    fn a_reserved_table_takes_its_entries_without_growing() {
        // 40 880 entries need five segments' room, rounded up to eight.
        let key = HashKey::fixed();
        let hashes: Vec<u64> = (0..40_880)
            .map(|i| key.str_hash(&format!("id{i}")))
            .collect();
        let mut table = SlotTable::default();
        table.reserve(40_880);
        let segments = table.segments.len();
        fill(&mut table, &hashes);
        assert_all_found(&table, &hashes);
        assert_eq!(table.segments.len(), segments);
    }

    #[test]
    fn equal_tags_grow_one_segment_instead_of_the_directory() {
        // Keys whose hashes share their high half (as crafted ids could):
        // no bit of the tag tells them apart, so no split can help.
        let tag: u64 = 0xABCD_0123;
        let same: Vec<u64> = (0..10_000u64).map(|i| tag << 32 | i).collect();
        let mut table = SlotTable::default();
        fill(&mut table, &same);
        assert_all_found(&table, &same);
        assert_eq!(table.segments.len(), 1);
        // One key differing at each bit of the tag: each split could go one
        // bit deeper and double the directory, 32 times over, but the
        // directory stays within its share of the entries.
        let divergent = (0..32u64).map(|k| (tag ^ 1 << (31 - k)) << 32 | k);
        let hashes: Vec<u64> = divergent.chain(same).collect();
        let mut table = SlotTable::default();
        fill(&mut table, &hashes);
        assert_all_found(&table, &hashes);
        assert!(table.directory.len() <= 64, "{}", table.directory.len());
    }

    #[test]
    fn the_largest_index_under_the_largest_tag_is_an_entry_not_a_free_slot() {
        let hashes = [u64::MAX, 0];
        let mut table = SlotTable::default();
        for (hash, index) in hashes.into_iter().zip([u32::MAX - 1, 0]) {
            match table.find(hash, |_| false) {
                Probe::Found(j) => panic!("{j} found before it was inserted"),
                Probe::Vacant(vacant) => table.insert(vacant, hash, index),
            }
        }
        let found = |hash| matches!(table.find(hash, |_| true), Probe::Found(_));
        assert!(found(u64::MAX) && found(0));
        assert_eq!(table.home(u64::MAX), Some(u32::MAX - 1));
    }

    #[test]
    fn interning_gives_one_index_per_distinct_string() {
        let mut interner = Interner::new(HashKey::fixed());
        let words = ["wamid.a", "wamid.b", "", "wamid.a", "x"];
        let idx: Vec<u32> = words
            .iter()
            .map(|w| interner.intern(w).unwrap().0)
            .collect();
        assert_eq!(idx, vec![0, 1, 2, 0, 3]);
        assert_eq!(interner.get(1), "wamid.b");
        assert_eq!(interner.get(2), "");
        assert_eq!(interner.intern("x"), Ok((3, false)));
        assert_eq!(interner.lookup("wamid.b"), Some(1));
        assert_eq!(interner.lookup("wamid.c"), None);
        assert_eq!(Interner::new(HashKey::fixed()).lookup(""), None);
        assert_eq!(interner.len(), 4);
    }
}
