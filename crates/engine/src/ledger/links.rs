//! Rules F9: one person, whichever id a body names. A user is named by
//! number or, when Meta withholds the number, by business-scoped user id
//! (BSUID); an event that names both links them within its WABA (so that
//! no WABA's events can change how another's pairs read). Events keep the names
//! they came with (F6 compares copies by them); billing reads each pair
//! named by a linked BSUID as the pair of the number (its *canonical*
//! pair), whatever the order the events arrived in. A BSUID linked to
//! several numbers (data Meta should not send) reads as the smallest
//! number in byte order.

use rustc_hash::FxHashMap;

use super::Ledger;
use crate::event::{bsuid_region, is_bsuid};
use crate::grow::CapacityError;

#[derive(Clone, Debug, Default)]
pub(super) struct Links {
    /// (WABA, BSUID) (indices) → the number (user index) it reads as there.
    number: FxHashMap<(u32, u32), u32>,
    /// (WABA, BSUID) → the pairs of that WABA it names.
    pairs: FxHashMap<(u32, u32), Vec<u32>>,
    /// Pair named by a linked BSUID → the pair of its number.
    canonical: FxHashMap<u32, u32>,
    /// (pair, its canonical pair before) for each pair whose canonical
    /// pair changed since [`Ledger::take_relinked`].
    relinked: Vec<(u32, u32)>,
}

impl Ledger {
    /// The pair billing reads pair `pair` as (rules F9).
    pub fn canonical_pair(&self, pair: u32) -> u32 {
        if self.links.canonical.is_empty() {
            return pair;
        }
        self.links.canonical.get(&pair).copied().unwrap_or(pair)
    }

    /// The pair billing reads `(waba, phone, user)` as (rules F9): the
    /// canonical pair of the pair by those names, or, for a BSUID with no
    /// pair of its own here but linked to a number, the number's pair.
    pub fn billing_pair_of(&self, waba: &str, phone: &str, user: &str) -> Option<u32> {
        if let Some(pair) = self.pair_index(waba, phone, user) {
            return Some(self.canonical_pair(pair));
        }
        let b = self.pairs.users.lookup(user)?;
        let w = self.pairs.wabas.lookup(waba)?;
        let n = *self.links.number.get(&(w, b))?;
        self.pair_index(waba, phone, self.pairs.users.get(n))
    }

    /// The pairs whose canonical pair changed since the last call, each
    /// with its canonical pair before.
    pub(crate) fn take_relinked(&mut self) -> Vec<(u32, u32)> {
        std::mem::take(&mut self.links.relinked)
    }

    /// Whether folding an event of WABA `waba` naming `user` (a number)
    /// and `bsuid` would link them anew.
    pub(super) fn would_link(&self, waba: &str, user: &str, bsuid: &str) -> bool {
        if !is_bsuid(bsuid) || is_bsuid(user) {
            return false;
        }
        let (Some(b), Some(w)) = (
            self.pairs.users.lookup(bsuid),
            self.pairs.wabas.lookup(waba),
        ) else {
            return true;
        };
        match self.links.number.get(&(w, b)) {
            None => true,
            Some(&n) => user < self.pairs.users.get(n),
        }
    }

    /// After `pair` (named `user`) was folded: a pair named by a BSUID is
    /// remembered, and read as its number's when the BSUID is linked.
    pub(super) fn note_pair(&mut self, pair: u32, user: &str) -> Result<(), CapacityError> {
        if !is_bsuid(user) {
            return Ok(());
        }
        let key = self.pairs.keys[pair as usize];
        let wb = (key.waba, key.user);
        let pairs = self.links.pairs.entry(wb).or_default();
        if pairs.contains(&pair) {
            return Ok(());
        }
        pairs.push(pair);
        if let Some(&n) = self.links.number.get(&wb) {
            // A pair first seen now holds no events yet: nothing to move.
            self.point(pair, n, false)?;
        }
        Ok(())
    }

    /// Links BSUID `bsuid` to number `user` in WABA `waba` (an event of it
    /// named both).
    pub(super) fn link(
        &mut self,
        waba: &str,
        user: &str,
        bsuid: &str,
    ) -> Result<(), CapacityError> {
        if !self.would_link(waba, user, bsuid) {
            return Ok(());
        }
        let Some(region) = bsuid_region(bsuid) else {
            return Ok(());
        };
        let (b, new) = self.pairs.users.intern(bsuid)?;
        if new {
            // Every user index has a region (a BSUID's is its country).
            self.regions.push(region);
        }
        let (Some(n), Some(w)) = (self.pairs.users.lookup(user), self.pairs.wabas.lookup(waba))
        else {
            return Ok(());
        };
        self.links.number.insert((w, b), n);
        let named = self.links.pairs.get(&(w, b)).cloned().unwrap_or_default();
        for pair in named {
            self.point(pair, n, true)?;
        }
        Ok(())
    }

    /// Reads `pair` (named by a BSUID) as the pair of number `n`; `moved`:
    /// the pair may hold events already, which the service must move.
    fn point(&mut self, pair: u32, n: u32, moved: bool) -> Result<(), CapacityError> {
        let (waba, phone, _) = self.pairs.names(pair);
        let (waba, phone) = (waba.to_owned(), phone.to_owned());
        let number = self.pairs.users.get(n).to_owned();
        let (to, new) = self.pairs.intern_names(&waba, &phone, &number)?;
        debug_assert!(!new.user, "a linked number has a pair, so a region");
        let before = self.canonical_pair(pair);
        if before != to {
            self.links.canonical.insert(pair, to);
            if moved {
                self.links.relinked.push((pair, before));
            }
        }
        Ok(())
    }
}
