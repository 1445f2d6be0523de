//! `wabill demo`: a generated month of traffic and its invoices.

use std::path::Path;
use std::process::ExitCode;

use wabill_engine::bill;
use wabill_engine::billing::WabaMonth;

use super::{generated_ledger, invoices_or_fatal};
use crate::args::DemoArgs;
use crate::config;
use crate::exit::{Fatal, exit_code};
use crate::output::emit;

pub fn run(config_path: Option<&Path>, args: DemoArgs) -> Result<ExitCode, Fatal> {
    let configured = config::read_config(config_path)?;
    let cfg = wabill_gen::GenConfig::new(args.events, args.seed);
    let (_, ledger, rejected) = generated_ledger(&cfg, configured.engine)?;
    let billing = bill(&ledger, &configured.book);
    let months: Vec<&WabaMonth> = billing.months.iter().collect();
    let invoices = invoices_or_fatal(&months)?;
    emit(&format!(
        "wabill demo: {} generated events (seed {}), {} WABAs, month of {}\n\n",
        args.events, args.seed, cfg.wabas, cfg.start
    ))?;
    let counts = wabill_report::InputCounts {
        rejected,
        duplicates: ledger.duplicates(),
        quarantined: 0,
    };
    emit(&wabill_report::invoices_table(&invoices, counts))?;
    Ok(exit_code(rejected))
}
