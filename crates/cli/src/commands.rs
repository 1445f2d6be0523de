//! One module per command (`rates`, `bench` and `load` have their own at
//! the top), and what the billing commands share.

use anyhow::anyhow;
use wabill_engine::Ledger;
use wabill_engine::billing::{Invoice, WabaMonth};
use wabill_ingest::Route;

use crate::args::Select;
use crate::exit::Fatal;
use crate::ingest::hash_key;

pub mod conversations;
pub mod demo;
pub mod export;
pub mod generate;
pub mod invoice;
pub mod parse_only;
pub mod reconcile;
pub mod serve;
pub mod store;
pub mod whatif;

/// Traffic generated in memory and folded into a ledger of `engine`'s
/// configuration (`demo`, `gen --webhooks-only`): the traffic's text, the
/// ledger, and how many lines it refused.
fn generated_ledger(
    cfg: &wabill_gen::GenConfig,
    engine: wabill_engine::EngineConfig,
) -> Result<(String, Ledger, u64), Fatal> {
    let mut traffic = Vec::new();
    wabill_gen::generate(cfg, &mut traffic)?;
    let text = String::from_utf8(traffic).map_err(|e| anyhow!("generated traffic: {e}"))?;
    let mut ledger = Ledger::new(engine, hash_key());
    let mut rejected = 0;
    let mut parsed = wabill_ingest::Parsed::default();
    for line in text.lines() {
        parsed.clear();
        let ok = wabill_ingest::parse_line(line, Route::default(), &mut parsed).is_ok()
            && parsed.is_clean()
            && ledger.ingest(&parsed.events).is_ok();
        rejected += u64::from(!ok);
    }
    Ok((text, ledger, rejected))
}

/// The months `--month` and `--waba` select.
fn selected<'a>(months: &'a [WabaMonth], select: &Select) -> Vec<&'a WabaMonth> {
    months
        .iter()
        .filter(|m| select.month.is_none_or(|month| m.month == month))
        .filter(|m| select.waba.as_deref().is_none_or(|w| m.waba == w))
        .collect()
}

/// cli.md: a printed invoice that cannot be rated is a data error (exit 2).
fn invoices_or_fatal<'a>(months: &[&'a WabaMonth]) -> Result<Vec<&'a Invoice>, Fatal> {
    let mut messages = Vec::new();
    let mut invoices = Vec::new();
    for m in months {
        match &m.invoice {
            Ok(invoice) => invoices.push(invoice),
            Err(errors) => {
                for e in errors {
                    messages.push(format!("{} {}: {e}", m.waba, m.month));
                }
            }
        }
    }
    if messages.is_empty() {
        Ok(invoices)
    } else {
        Err(Fatal(anyhow!("cannot rate:\n  {}", messages.join("\n  "))))
    }
}
