//! One module per command (`rates`, `bench` and `load` have their own at
//! the top), and what the billing commands share.

use anyhow::anyhow;
use wabill_engine::billing::{Invoice, WabaMonth};

use crate::args::Select;
use crate::exit::Fatal;

pub mod conversations;
pub mod demo;
pub mod generate;
pub mod invoice;
pub mod parse_only;
pub mod reconcile;
pub mod serve;
pub mod whatif;

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
