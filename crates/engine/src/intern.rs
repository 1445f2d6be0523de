//! String interning: every id is stored once, in one arena, and referred to
//! by a dense `u32`. Millions of message ids fit in little memory this way.

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

#[derive(Clone, Default)]
pub struct Interner {
    bytes: String,
    /// `ends[i]` is the end of string `i` in `bytes`.
    ends: Vec<usize>,
    table: HashTable<u32>,
    hasher: FxBuildHasher,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner").field("len", &self.len()).finish()
    }
}

impl Interner {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn find(&self, s: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(s);
        self.table.find(hash, |&i| self.get(i) == s).copied()
    }

    /// The index of `s`, and whether it was new.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let hash = self.hasher.hash_one(s);
        let Self {
            bytes,
            ends,
            table,
            hasher,
        } = self;
        let get = |i: u32| {
            let i = i as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] };
            &bytes[start..ends[i]]
        };
        if let Some(&i) = table.find(hash, |&i| get(i) == s) {
            return (i, false);
        }
        let index = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        bytes.push_str(s);
        ends.push(bytes.len());
        let (bytes, ends) = (&*bytes, &*ends);
        table.insert_unique(hash, index, |&i| {
            let i = i as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] };
            hasher.hash_one(&bytes[start..ends[i]])
        });
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
        assert_eq!(interner.find("x"), Some(3));
        assert_eq!(interner.find("y"), None);
        assert_eq!(interner.len(), 4);
    }
}
