//! `wabill demo`: a generated month of traffic and its invoices.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use wabill_engine::billing::WabaMonth;
use wabill_engine::{Ledger, bill};
use wabill_ingest::Route;

use super::invoices_or_fatal;
use crate::args::DemoArgs;
use crate::config;
use crate::exit::{Fatal, exit_code};
use crate::ingest::hash_key;
use crate::output::emit;

pub fn run(config_path: Option<&Path>, args: DemoArgs) -> Result<ExitCode, Fatal> {
    let configured = config::read_config(config_path)?;
    let cfg = wabill_gen::GenConfig::new(args.events, args.seed);
    let mut traffic = Vec::new();
    wabill_gen::generate(&cfg, &mut traffic)?;
    let text = String::from_utf8(traffic).map_err(|e| anyhow!("generated traffic: {e}"))?;
    let mut ledger = Ledger::new(configured.engine, hash_key());
    let mut rejected = 0;
    let mut parsed = wabill_ingest::Parsed::default();
    for line in text.lines() {
        parsed.clear();
        let ok = wabill_ingest::parse_line(line, Route::default(), &mut parsed).is_ok()
            && parsed.is_clean()
            && ledger.ingest(&parsed.events).is_ok();
        rejected += u64::from(!ok);
    }
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
