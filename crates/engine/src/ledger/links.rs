//! Rules F9: one person, whichever id a body names. A user is named by
//! number or, when Meta withholds the number, by business-scoped user id
//! (BSUID); an event that names both links them within its business
//! portfolio (Meta scopes a BSUID to the portfolio; a WABA is its own
//! portfolio unless the configuration groups it, rules C4), so that no
//! other business's events can change how its pairs read. Events keep the names
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
    /// Portfolios by key ([`Ledger::scope_name`]) → their index here.
    scopes: FxHashMap<String, u32>,
    /// (portfolio, BSUID) (indices) → the number (user index) it reads as
    /// there.
    number: FxHashMap<(u32, u32), u32>,
    /// (portfolio, BSUID) → the pairs of that portfolio's WABAs it names.
    pairs: FxHashMap<(u32, u32), Vec<u32>>,
    /// Pair named by a linked BSUID → the pair of its number.
    canonical: FxHashMap<u32, u32>,
    /// (pair, its canonical pair before) for each pair whose canonical
    /// pair changed since [`Ledger::take_relinked`].
    relinked: Vec<(u32, u32)>,
}

impl Ledger {
    /// The key of WABA `waba`'s portfolio, as links are scoped.
    fn scope_name(&self, waba: &str) -> String {
        match self.config().portfolio_key(waba) {
            crate::config::PortfolioKey::Named(name) => format!("p{name}"),
            crate::config::PortfolioKey::Alone(waba) => format!("w{waba}"),
        }
    }

    /// The index of WABA `waba`'s portfolio among links, if it has any.
    fn scope_of(&self, waba: &str) -> Option<u32> {
        self.links.scopes.get(&self.scope_name(waba)).copied()
    }

    /// [`Ledger::scope_of`], made if new.
    fn intern_scope(&mut self, waba: &str) -> u32 {
        let name = self.scope_name(waba);
        let next = u32::try_from(self.links.scopes.len()).unwrap_or(u32::MAX);
        *self.links.scopes.entry(name).or_insert(next)
    }

    /// The pair billing reads pair `pair` as (rules F9).
    pub fn canonical_pair(&self, pair: u32) -> u32 {
        if self.links.canonical.is_empty() {
            return pair;
        }
        self.links.canonical.get(&pair).copied().unwrap_or(pair)
    }

    /// The pair billing reads `(waba, phone, user)` as (rules F9, P6): the
    /// canonical pair of the pair by those names, or, for a BSUID with no
    /// pair of its own here but linked to a number, the number's pair.
    pub fn billing_pair_of(&self, waba: &str, phone: &str, user: &str) -> Option<u32> {
        // Rules P6: a moved phone's pairs are its first WABA's.
        let waba = self.config().identity_waba(waba, phone).unwrap_or(waba);
        if let Some(pair) = self.pair_index(waba, phone, user) {
            return Some(self.canonical_pair(pair));
        }
        let b = self.pairs.users.lookup(user)?;
        let n = *self.links.number.get(&(self.scope_of(waba)?, b))?;
        self.pair_index(waba, phone, self.pairs.users.get(n))
    }

    /// The pairs whose canonical pair changed since the last call, each
    /// with its canonical pair before.
    pub(crate) fn take_relinked(&mut self) -> Vec<(u32, u32)> {
        std::mem::take(&mut self.links.relinked)
    }

    /// Whether folding an event of WABA `waba` naming `user` (a number)
    /// and `bsuid` would link them anew in its portfolio.
    pub(super) fn would_link(&self, waba: &str, user: &str, bsuid: &str) -> bool {
        if !is_bsuid(bsuid) || is_bsuid(user) {
            return false;
        }
        let (Some(b), Some(scope)) = (self.pairs.users.lookup(bsuid), self.scope_of(waba)) else {
            return true;
        };
        match self.links.number.get(&(scope, b)) {
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
        let waba = self.pairs.wabas.get(key.waba).to_owned();
        let wb = (self.intern_scope(&waba), key.user);
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

    /// Links BSUID `bsuid` to number `user` in WABA `waba`'s portfolio (an
    /// event of the WABA named both).
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
        let Some(n) = self.pairs.users.lookup(user) else {
            return Ok(());
        };
        let scope = self.intern_scope(waba);
        self.links.number.insert((scope, b), n);
        let named = self
            .links
            .pairs
            .get(&(scope, b))
            .cloned()
            .unwrap_or_default();
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
