//! The key of the tables that hash strings from outside: message ids, the
//! names of a pair, users, status names.
//!
//! Those strings are chosen by whoever sends events. Under a hash anyone can
//! compute, ids can be crafted to share one slot of a table, and every insert
//! then probes past all of them: ingest goes quadratic. Under a secret key
//! drawn per process they cannot. The engine reads no randomness itself: the
//! shell draws the key and passes it in, and since no output depends on where
//! a table keeps its entries, results stay a function of the events alone.

use std::hash::BuildHasher;

use foldhash::SharedSeed;
use foldhash::fast::FoldHasher;

/// A secret for foldhash, a fast keyed hash of short strings (the 128 bits
/// of key go into every folded multiply, so colliding inputs cannot be
/// built without it). Copy, so every table and validator of a ledger holds
/// it inline.
#[derive(Copy, Clone)]
pub struct HashKey {
    per_hasher: u64,
    /// foldhash takes its larger seed by `'static` reference.
    shared: &'static SharedSeed,
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A key in a log would let the log's readers craft collisions.
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A key everyone knows: for tests and tools whose input is trusted.
    pub fn fixed() -> HashKey {
        HashKey {
            per_hasher: 0,
            shared: SharedSeed::global_fixed(),
        }
    }

    /// The key made of `seed`, which should be secret and random. Each call
    /// keeps 48 bytes for the rest of the process (foldhash's seeds live
    /// that long): draw one key per process and copy it.
    pub fn new(seed: [u64; 2]) -> HashKey {
        HashKey {
            per_hasher: seed[1],
            shared: Box::leak(Box::new(SharedSeed::from_u64(seed[0]))),
        }
    }

    /// A key drawn from `random`, a hasher the shell seeded from the OS
    /// (`std::hash::RandomState::new()`).
    pub fn drawn_from(random: &impl BuildHasher) -> HashKey {
        HashKey::new([random.hash_one(0u8), random.hash_one(1u8)])
    }

    /// The hash of a message id or a name.
    pub fn str_hash(&self, s: &str) -> u64 {
        self.hash_one(s)
    }

    /// The hash of a message by its key: its WABA and its id (rules F6).
    pub fn message_hash(&self, waba: &str, id: &str) -> u64 {
        self.hash_one((waba, id))
    }

    /// The hash of a pair by its names.
    pub fn pair_hash(&self, waba: &str, phone: &str, user: &str) -> u64 {
        self.hash_one((waba, phone, user))
    }
}

impl BuildHasher for HashKey {
    type Hasher = FoldHasher<'static>;

    fn build_hasher(&self) -> FoldHasher<'static> {
        FoldHasher::with_seed(self.per_hasher, self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_alike_when_equal_and_apart_when_not() {
        let (a, b) = (HashKey::new([1, 2]), HashKey::new([1, 2]));
        assert_eq!(a.str_hash("wamid.1"), b.str_hash("wamid.1"));
        assert_ne!(a.str_hash("wamid.1"), a.str_hash("wamid.2"));
        assert_ne!(
            a.str_hash("wamid.1"),
            HashKey::new([1, 3]).str_hash("wamid.1")
        );
        assert_ne!(a.str_hash("wamid.1"), HashKey::fixed().str_hash("wamid.1"));
        // The names of a pair do not run together.
        assert_ne!(a.pair_hash("W1", "P1", "55"), a.pair_hash("W1", "P15", "5"));
        assert_eq!(format!("{a:?}"), "HashKey(..)");
    }
}
