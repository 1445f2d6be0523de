//! `wabill whatif`: the same traffic rated under each named era.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use wabill_engine::billing::bill_with;
use wabill_engine::era::Timeline;

use super::{invoices_or_fatal, selected};
use crate::args::{InvoiceFormat, WhatifArgs};
use crate::exit::{Fatal, exit_code};
use crate::ingest::ingest_files;
use crate::output::{emit, stdout_is_terminal};

pub fn run(config_path: Option<&Path>, args: WhatifArgs) -> Result<ExitCode, Fatal> {
    let ingested = ingest_files(config_path, &args.input, args.select.waba.as_deref())?;
    let base = ingested.ledger.config();
    let mut billings = Vec::new();
    for era in &args.eras {
        let mut tried = base.clone();
        tried.timeline = base.timeline.only(*era);
        // The era's own cards: none older than its start (a pmp-2026 run on
        // September 2026 traffic prices service with the October card).
        tried.rate_floor = base
            .timeline
            .start_of(*era)
            .or_else(|| Timeline::meta_default().start_of(*era));
        billings.push((*era, bill_with(&ingested.ledger, &ingested.book, &tried)));
    }
    let mut runs = Vec::new();
    for (era, billing) in &billings {
        let months = selected(&billing.months, &args.select);
        let invoices = invoices_or_fatal(&months)
            .map_err(|Fatal(e)| Fatal(e.context(format!("under era {}", era.as_str()))))?;
        runs.push(wabill_report::EraRun {
            era: *era,
            invoices,
        });
    }
    // Totals add invoices: all of one currency (rules D7).
    let mut currencies: Vec<&str> = runs
        .iter()
        .flat_map(|r| r.invoices.iter().map(|i| i.currency.as_str()))
        .collect();
    currencies.sort_unstable();
    currencies.dedup();
    if currencies.len() > 1 {
        return Err(Fatal(anyhow!(
            "whatif adds invoices up, and the selection holds invoices in {}: select a --waba or --month billed in one currency",
            currencies.join(" and ")
        )));
    }
    let currency = currencies
        .first()
        .copied()
        .unwrap_or(&base.platform.currency);
    let comparison = wabill_report::Whatif::new(currency, &runs)
        .ok_or_else(|| Fatal(anyhow!("the totals are too large to compute exactly")))?;
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        InvoiceFormat::Table
    } else {
        InvoiceFormat::Json
    });
    let text = match format {
        InvoiceFormat::Json => comparison.json(),
        InvoiceFormat::Csv => comparison.csv(),
        InvoiceFormat::Table => comparison.table(),
    };
    emit(&text)?;
    Ok(exit_code(ingested.refused()))
}
