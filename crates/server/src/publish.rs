//! The published tables (docs/spec/store.md): every so often, and once
//! more on shutdown, the WABA-months billed again since the last time are
//! written to the store's `invoices` and `conversation_records` tables,
//! through the writer (which owns the store), in transactions of about
//! [`RECORDS_PER_BATCH`] records (a month is never split). A month whose
//! invoice and records are what the store holds keeps its revision (the
//! store compares digests).
//!
//! A month billed again is a new allocation, so a pointer that differs
//! means a month to publish. What an invoice or record shows without
//! billing the month again (a count of off-period events, Meta's verdict on
//! a record's opening message) is caught by the off-period counts compared
//! each time and by a full pass (every month built and compared) at start
//! and every [`FULL_EVERY`] rounds; a full pass also withdraws the rows of
//! months that can no longer be billed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use wabill_engine::billing::WabaMonth;
use wabill_engine::time::Month;
use wabill_engine::{Billing, RateBook};
use wabill_store::{PublishedMonth, PublishedRecord};

use crate::state::{Settled, State, Write};

type Key = (String, Month);

/// What was published of a month: the month as billed (a `Weak` keeps
/// the allocation, so no later month reuses its address) and its count
/// of off-period events.
struct Seen {
    month: Weak<WabaMonth>,
    off_period: Option<u64>,
}

#[derive(Default)]
pub struct Published {
    seen: Mutex<HashMap<Key, Seen>>,
    rounds: AtomicU64,
}

/// Every this many rounds, a full pass.
pub const FULL_EVERY: u64 = 10;

/// Records built and written per transaction.
const RECORDS_PER_BATCH: usize = 5_000;

/// Records encoded per hold of the engine's read lock.
const RECORDS_PER_LOCK: usize = 512;

/// What a round publishes: the months to build, and with a full pass, the
/// months that may keep their rows.
struct Plan {
    changed: Vec<(Key, usize)>,
    billable: Option<Vec<(String, String)>>,
}

impl Published {
    /// One round: publishes what changed since the last (everything, when
    /// `full` or on the first round); how many months got a new revision.
    pub async fn publish(&self, state: &Arc<State>, full: bool) -> Result<u64, String> {
        let round = self.rounds.fetch_add(1, Ordering::Relaxed);
        let full = full || round.is_multiple_of(FULL_EVERY);
        let seen = self.snapshot(full);
        let plan = state
            .settled(move |settled| plan(settled, &seen, full))
            .await
            .ok_or("publishing panicked")?;
        // A batch the store refuses (the writer logs why) does not hold
        // back the others, nor the withdrawal: each is tried, and the first
        // error returned.
        let mut batches: Vec<Vec<Key>> = vec![Vec::new()];
        let mut records = 0;
        for (key, n) in plan.changed {
            if records >= RECORDS_PER_BATCH {
                batches.push(Vec::new());
                records = 0;
            }
            if let Some(batch) = batches.last_mut() {
                batch.push(key);
            }
            records += n;
        }
        let (mut revised, mut first_error) = (0, None);
        for batch in batches {
            match self.publish_batch(state, batch).await {
                Ok(n) => revised += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(keep) = plan.billable {
            let write = Write {
                keep_published: Some(keep),
                ..Write::default()
            };
            if let Err(e) = state.apply(write).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => Ok(revised),
            Some(e) => Err(e),
        }
    }

    async fn publish_batch(&self, state: &Arc<State>, keys: Vec<Key>) -> Result<u64, String> {
        if keys.is_empty() {
            return Ok(0);
        }
        let book = Arc::clone(&state.book);
        let built = state
            .settled(move |settled| build(settled, &book, &keys))
            .await
            .ok_or("publishing panicked")?;
        let (seen, months): (Vec<_>, Vec<_>) = built.into_iter().unzip();
        let applied = state
            .apply(Write {
                publish: months,
                ..Write::default()
            })
            .await?;
        let mut kept = self.lock();
        for (key, s) in seen {
            kept.insert(key, s);
        }
        Ok(applied.accepted)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Seen>> {
        // Entries replaced whole: a panic elsewhere leaves the map usable.
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What was published, as addresses and counts (nothing for a full pass).
    fn snapshot(&self, full: bool) -> HashMap<Key, (usize, Option<u64>)> {
        if full {
            return HashMap::new();
        }
        self.lock()
            .iter()
            .map(|(k, s)| (k.clone(), (s.month.as_ptr() as usize, s.off_period)))
            .collect()
    }
}

/// Rules P6's counts, where some phone has periods (else no engine lock).
fn off_period(settled: &Settled<'_>) -> wabill_report::OffPeriod {
    if settled.config().phones.is_empty() {
        wabill_report::OffPeriod::default()
    } else {
        wabill_report::OffPeriod::of(settled.engine().ledger())
    }
}

/// The months to build (with their record counts), and for a full pass
/// every month that has an invoice.
fn plan(settled: &Settled<'_>, seen: &HashMap<Key, (usize, Option<u64>)>, full: bool) -> Plan {
    let off = off_period(settled);
    let mut changed = Vec::new();
    let mut billable = Vec::new();
    for m in settled.billed.months() {
        if m.invoice.is_err() {
            continue;
        }
        let key = (m.waba.clone(), m.month);
        if full {
            billable.push((m.waba.clone(), m.month.to_string()));
        }
        let now = (Arc::as_ptr(m) as usize, off.count(&m.waba, m.month));
        if seen.get(&key) != Some(&now) {
            changed.push((key, m.records.len()));
        }
    }
    Plan {
        changed,
        billable: full.then_some(billable),
    }
}

/// The months of `keys` as billed now, each with what the store is given.
fn build(
    settled: &Settled<'_>,
    book: &RateBook,
    keys: &[Key],
) -> Vec<((Key, Seen), PublishedMonth)> {
    let off = off_period(settled);
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let Some(m) = settled.billed.month(&key.0, key.1) else {
            continue;
        };
        let Ok(invoice) = &m.invoice else {
            continue;
        };
        let json = wabill_report::InvoiceJson::from(invoice).flagged(&off, invoice);
        let mut records = Vec::with_capacity(m.records.len());
        for chunk in m.records.chunks(RECORDS_PER_LOCK) {
            let engine = settled.engine();
            let billing = Billing {
                ledger: engine.ledger(),
                book,
                months: Vec::new(),
            };
            records.extend(chunk.iter().map(|r| record(&billing, r)));
        }
        let seen = Seen {
            month: Arc::downgrade(m),
            off_period: off.count(&m.waba, m.month),
        };
        out.push((
            (key.clone(), seen),
            PublishedMonth {
                waba: m.waba.clone(),
                month: m.month.to_string(),
                currency: invoice.currency.clone(),
                meta_total: invoice.meta_total.to_string(),
                amount_due: invoice.amount_due.to_string(),
                invoice: serde_json::to_string(&json).unwrap_or_default(),
                records,
            },
        ));
    }
    out
}

fn record(billing: &Billing<'_>, r: &wabill_engine::billing::Record) -> PublishedRecord {
    let c = wabill_report::conversation_json(billing, r);
    PublishedRecord {
        json: serde_json::to_string(&c).unwrap_or_default(),
        phone: c.phone.to_owned(),
        user: c.user.to_owned(),
        start: c.start,
        end: c.end,
        era: c.era.to_owned(),
        category: c.category.to_owned(),
        market: c.market.to_owned(),
        free: c.free.to_owned(),
        unit_price: c.unit_price,
        opened_by: c.opened_by.to_owned(),
        messages: c.messages,
    }
}
