//! The published tables (docs/spec/store.md): every so often, and once
//! more on shutdown, the WABA-months billed again since the last time are
//! written to the store's `invoices` and `conversation_records` tables,
//! through the writer (which owns the store). A month whose invoice and
//! records are what the store holds keeps its revision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use wabill_engine::billing::WabaMonth;
use wabill_engine::time::Month;
use wabill_engine::{Billing, RateBook};
use wabill_store::{PublishedMonth, PublishedRecord};

use crate::state::{Job, JobError, Settled, State, Write};

/// What was published last: each month as billed then. A month is billed
/// again into a new allocation, so a pointer that differs means a month
/// to publish (a `Weak` keeps the allocation, so no new month reuses it).
#[derive(Default)]
pub struct Published {
    months: Mutex<HashMap<(String, Month), Weak<WabaMonth>>>,
}

/// Records encoded per hold of the engine's read lock.
const RECORDS_PER_LOCK: usize = 512;

impl Published {
    /// Publishes the months billed since the last call; how many months
    /// the store took as changed.
    pub async fn publish(&self, state: &Arc<State>) -> Result<usize, String> {
        let seen = self.snapshot();
        let book = Arc::clone(&state.book);
        let built = state
            .settled(move |settled| changed_months(settled, &book, &seen))
            .await
            .ok_or("publishing panicked")?;
        if built.is_empty() {
            return Ok(0);
        }
        let (months, published): (Vec<_>, Vec<_>) = built.into_iter().unzip();
        let (reply, done) = tokio::sync::oneshot::channel();
        let job = Job {
            write: Write {
                publish: published,
                ..Write::default()
            },
            source: "api",
            reply,
        };
        if !state.submit(job).await {
            return Err("the writer stopped".into());
        }
        let applied = done
            .await
            .map_err(|_| "the writer stopped".to_owned())?
            .map_err(|JobError::Store(e)| e)?;
        let mut kept = self.lock();
        for m in &months {
            kept.insert((m.waba.clone(), m.month), Arc::downgrade(m));
        }
        Ok(applied.accepted as usize)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Month), Weak<WabaMonth>>> {
        // Entries replaced whole: a panic elsewhere leaves the map usable.
        self.months
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn snapshot(&self) -> HashMap<(String, Month), usize> {
        self.lock()
            .iter()
            .map(|(k, w)| (k.clone(), w.as_ptr() as usize))
            .collect()
    }
}

/// The months billed since `seen`, each with what the store is given.
/// Months that cannot be rated are left unpublished (their errors are
/// what `GET /v1/invoices` answers).
fn changed_months(
    settled: &Settled<'_>,
    book: &RateBook,
    seen: &HashMap<(String, Month), usize>,
) -> Vec<(Arc<WabaMonth>, PublishedMonth)> {
    let off = if settled.config().phones.is_empty() {
        wabill_report::OffPeriod::default()
    } else {
        wabill_report::OffPeriod::of(settled.engine().ledger())
    };
    let mut out = Vec::new();
    for m in settled.billed.months() {
        let key = (m.waba.clone(), m.month);
        if seen.get(&key) == Some(&(Arc::as_ptr(m) as usize)) {
            continue;
        }
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
            records.extend(chunk.iter().map(|r| {
                let c = wabill_report::conversation_json(&billing, r);
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
            }));
        }
        out.push((
            Arc::clone(m),
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
