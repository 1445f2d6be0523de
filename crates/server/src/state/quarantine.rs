//! The quarantine in memory: the items the log's `quarantine` table holds,
//! mirrored so that reads need not reach the log (the writer's connection
//! owns it). Only the writer changes it, after its commit and before it
//! answers, so a read after an answer sees what the answer reported.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::state::Scope;
use crate::store::Held;

#[derive(Default)]
pub struct Quarantine {
    held: Mutex<BTreeMap<i64, Held>>,
}

impl Quarantine {
    pub fn new(held: Vec<Held>) -> Quarantine {
        let q = Quarantine {
            held: Mutex::new(held.into_iter().map(|h| (h.id, h)).collect()),
        };
        q.gauge();
        q
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, Held>> {
        // A map changed one entry at a time: a panic elsewhere leaves it whole.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many items are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn gauge(&self) {
        metrics::gauge!("wabill_quarantine_held").set(self.lock().len() as f64);
    }

    /// Records what a commit stored and released.
    pub(super) fn committed(&self, stored: Vec<Held>, released: &[i64]) {
        {
            let mut held = self.lock();
            for id in released {
                held.remove(id);
            }
            for h in stored {
                held.insert(h.id, h);
            }
        }
        self.gauge();
    }

    /// Up to `limit` held items after key `after` that `scope` may see (an
    /// item whose envelope named no WABA only with a key for every WABA),
    /// optionally of one WABA, in key order; and whether more follow.
    pub fn page(
        &self,
        scope: &Scope,
        waba: Option<&str>,
        after: i64,
        limit: usize,
    ) -> (Vec<Held>, bool) {
        let held = self.lock();
        let mut visible = held
            .range(after.saturating_add(1)..)
            .map(|(_, h)| h)
            .filter(|h| match (&h.item.waba, scope) {
                (_, Scope::All) => true,
                (Some(w), scope) => scope.allows(w),
                (None, Scope::Wabas(_)) => false,
            })
            .filter(|h| waba.is_none_or(|w| h.item.waba.as_deref() == Some(w)));
        let page: Vec<Held> = visible.by_ref().take(limit).cloned().collect();
        let more = visible.next().is_some();
        (page, more)
    }
}
