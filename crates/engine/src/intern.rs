//! String interning: every id is stored once, in one arena, and referred to
//! by a dense `u32`. Millions of message ids fit in little memory this way.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// The hash every interner uses: deterministic (no random state), so it can
/// be computed ahead of time on a parsing thread.
pub fn str_hash(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

#[derive(Clone, Default)]
pub struct Interner {
    bytes: String,
    /// `ends[i]` is the end of string `i` in `bytes`.
    ends: Vec<usize>,
    table: HashTable<u32>,
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

    /// The index of `s`, and whether it was new.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        self.intern_hashed(s, str_hash(s))
    }

    /// As [`Interner::intern`], with `hash == str_hash(s)` given.
    pub fn intern_hashed(&mut self, s: &str, hash: u64) -> (u32, bool) {
        let Self { bytes, ends, table } = self;
        if let Some(&i) = table.find(hash, |&i| slice(bytes, ends, i) == s) {
            return (i, false);
        }
        let index = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        bytes.push_str(s);
        ends.push(bytes.len());
        table.insert_unique(hash, index, |&i| str_hash(slice(bytes, ends, i)));
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
        assert_eq!(interner.len(), 4);
    }
}
