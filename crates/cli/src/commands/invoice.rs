//! `wabill invoice`: one invoice per (WABA, local month).

use std::path::Path;
use std::process::ExitCode;

use wabill_engine::bill;

use super::{invoices_or_fatal, selected};
use crate::args::{InvoiceArgs, InvoiceFormat};
use crate::exit::{Fatal, exit_code};
use crate::ingest::{ingest_files, print_stats};
use crate::output::{emit, stdout_is_terminal};

pub fn run(config_path: Option<&Path>, args: InvoiceArgs) -> Result<ExitCode, Fatal> {
    let ingested = ingest_files(config_path, &args.input, args.select.waba.as_deref())?;
    let ingest_time = ingested.started.elapsed();
    let billing = bill(&ingested.ledger, &ingested.book);
    let months = selected(&billing.months, &args.select);
    let invoices = invoices_or_fatal(&months)?;
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
    let text = match format {
        InvoiceFormat::Json => wabill_report::invoices_json(&invoices, counts),
        InvoiceFormat::Csv => wabill_report::invoices_csv(&invoices),
        InvoiceFormat::Table => wabill_report::invoices_table(&invoices, counts),
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
