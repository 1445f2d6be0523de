//! Rules A5, B7 and section 5: the free tiers of a local month, taken in
//! record order. Batch and incremental billing take slots through
//! [`FreeTiers::take`]; a quote asks [`FreeTiers::left`] of the month's
//! final state, so all three decide with the same code.

use std::collections::BTreeMap;

use crate::config::EngineConfig;
use crate::rules::FreeTierPool;

/// The free-tier slots a WABA-month has used, per WABA and per business
/// phone number (`P` names a phone: an index while rating, its id after;
/// a BTreeMap, since the ids are the clients' own strings).
#[derive(Clone, Debug)]
pub struct FreeTiers<P> {
    /// Rules A5/B7: slots per WABA and month.
    per_waba: u64,
    /// Rules section 5: slots per phone and month.
    per_phone: u64,
    waba_used: u64,
    phone_used: BTreeMap<P, u64>,
}

impl<P: Ord> FreeTiers<P> {
    pub fn new(config: &EngineConfig) -> FreeTiers<P> {
        FreeTiers {
            per_waba: config.free_tier_per_month,
            per_phone: config.pmp_2026_free_service_per_phone,
            waba_used: 0,
            phone_used: BTreeMap::new(),
        }
    }

    /// Slots of `pool` still free this month (for `phone` when the pool is
    /// per phone).
    pub fn left<Q>(&self, pool: FreeTierPool, phone: &Q) -> u64
    where
        P: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match pool {
            FreeTierPool::Waba => self.per_waba.saturating_sub(self.waba_used),
            FreeTierPool::Phone => {
                let used = self.phone_used.get(phone).copied().unwrap_or(0);
                self.per_phone.saturating_sub(used)
            }
        }
    }

    /// The next record, which its era lets use `pool` (None: no free tier
    /// covers it), takes a slot if one is left; true when it did.
    pub fn take(&mut self, pool: Option<FreeTierPool>, phone: P) -> bool {
        let Some(pool) = pool else { return false };
        if self.left(pool, &phone) == 0 {
            return false;
        }
        match pool {
            FreeTierPool::Waba => self.waba_used += 1,
            FreeTierPool::Phone => *self.phone_used.entry(phone).or_default() += 1,
        }
        true
    }

    /// The same counts with each phone named by `name`.
    pub(crate) fn renamed<N: Ord>(&self, name: impl Fn(&P) -> N) -> FreeTiers<N> {
        FreeTiers {
            per_waba: self.per_waba,
            per_phone: self.per_phone,
            waba_used: self.waba_used,
            phone_used: self.phone_used.iter().map(|(p, n)| (name(p), *n)).collect(),
        }
    }
}
