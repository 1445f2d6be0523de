//! `wabill invoice`: one invoice per (WABA, local month).

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use wabill_engine::bill;
use wabill_engine::customers::customer_invoices;

use super::{invoices_or_fatal, selected};
use crate::args::{InvoiceArgs, InvoiceBy, InvoiceFormat};
use crate::exit::{Fatal, exit_code};
use crate::ingest::{ingest_files, print_stats};
use crate::output::{emit, stdout_is_terminal};

pub fn run(config_path: Option<&Path>, args: InvoiceArgs) -> Result<ExitCode, Fatal> {
    let by_customer = args.by == InvoiceBy::Customer;
    if args.customer.is_some() && !by_customer {
        return Err(Fatal(anyhow!("--customer needs --by customer")));
    }
    // `--waba` is also the WABA of On-Premises bodies (it filters only what
    // is printed).
    let ingested = ingest_files(config_path, &args.input, args.select.waba.as_deref())?;
    let ingest_time = ingested.started.elapsed();
    let billing = bill(&ingested.ledger, &ingested.book);
    let duplicates = ingested.ledger.duplicates();
    let counts = wabill_report::InputCounts {
        rejected: ingested.rejected,
        duplicates,
        quarantined: ingested.quarantined,
    };
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        InvoiceFormat::Table
    } else {
        InvoiceFormat::Json
    });
    let text = if by_customer {
        customer_text(&ingested.ledger, &billing.months, &args, format, counts)?
    } else {
        let months = selected(&billing.months, &args.select);
        let invoices = invoices_or_fatal(&months)?;
        match format {
            InvoiceFormat::Json => {
                let off = wabill_report::OffPeriod::of(&ingested.ledger);
                wabill_report::invoices_json(&invoices, counts, &off)
            }
            InvoiceFormat::Csv => wabill_report::invoices_csv(&invoices),
            InvoiceFormat::Table => wabill_report::invoices_table(&invoices, counts),
        }
    };
    emit(&text)?;
    if args.input.stats {
        print_stats(
            &ingested,
            ingested.ledger.accepted() + duplicates,
            ingest_time,
        );
    }
    Ok(exit_code(ingested.refused()))
}

/// `--by customer`: the customer invoices `--customer`, `--month` and
/// `--waba` (a customer that had it) select; one that cannot be built is a
/// data error (exit 2), as for WABA invoices.
fn customer_text(
    ledger: &wabill_engine::Ledger,
    months: &[wabill_engine::billing::WabaMonth],
    args: &InvoiceArgs,
    format: InvoiceFormat,
    counts: wabill_report::InputCounts,
) -> Result<String, Fatal> {
    let customers = &ledger.config().customers;
    if customers.customers.is_empty() {
        return Err(Fatal(anyhow!(
            "--by customer: the configuration has no [[customer]]"
        )));
    }
    if let Some(id) = &args.customer
        && customers.customer(id).is_none()
    {
        return Err(Fatal(anyhow!(
            "--customer {id:?}: no [[customer]] has that id"
        )));
    }
    let months: Vec<_> = months.iter().collect();
    let all = customer_invoices(ledger.config(), &months);
    let mut invoices = Vec::new();
    let mut messages = Vec::new();
    for (customer, month, result) in &all {
        let chosen = args.customer.as_ref().is_none_or(|c| c == customer)
            && args.select.month.is_none_or(|m| m == *month)
            && args
                .select
                .waba
                .as_deref()
                .is_none_or(|w| customers.wabas_of(customer).contains(&w));
        match result {
            Ok(invoice) if chosen => invoices.push(invoice),
            Err(errors) if chosen => {
                messages.extend(errors.iter().map(|e| format!("{customer} {month}: {e}")));
            }
            _ => {}
        }
    }
    if !messages.is_empty() {
        return Err(Fatal(anyhow!(
            "cannot invoice:\n  {}",
            messages.join("\n  ")
        )));
    }
    Ok(match format {
        InvoiceFormat::Json => wabill_report::customer_invoices_json(&invoices, counts),
        InvoiceFormat::Csv => wabill_report::customer_invoices_csv(&invoices),
        InvoiceFormat::Table => wabill_report::customer_invoices_table(&invoices, counts),
    })
}
