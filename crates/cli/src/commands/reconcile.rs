//! `wabill reconcile`: wabill's derivation beside Meta's verdict, and
//! against Meta's analytics exports.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use wabill_engine::reconcile::{Bases, MetaCount, compare_analytics, reconcile_bases};

use crate::args::{ReconcileArgs, ReconcileFormat};
use crate::exit::Fatal;
use crate::ingest::ingest_files;
use crate::output::{emit, stdout_is_terminal};

pub fn run(config_path: Option<&Path>, args: ReconcileArgs) -> Result<ExitCode, Fatal> {
    let waba = args.select.waba.as_deref();
    // The exports first: a bad one is a usage error before any work.
    let mut counts: Vec<MetaCount> = Vec::new();
    for path in &args.analytics {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read analytics {}: {e}", path.display()))?;
        let read = wabill_ingest::parse_analytics(&text, waba)
            .map_err(|e| anyhow!("analytics {}: {e}", path.display()))?;
        counts.extend(read);
    }
    let ingested = ingest_files(config_path, &args.input, waba)?;
    let (ledger, book) = (&ingested.ledger, &ingested.book);
    let config = ledger.config();
    // Billed once on each basis; the analytics read wabill's side too.
    let bases = Bases::bill(ledger, book, config);
    let all = reconcile_bases(ledger, book, config, &bases);
    let keep = |w: &str, m: wabill_engine::time::Month| {
        args.select.waba.as_deref().is_none_or(|x| x == w)
            && args.select.month.is_none_or(|x| x == m)
    };
    let selected: Vec<_> = all.iter().filter(|r| keep(&r.waba, r.month)).collect();
    let analytics = (!args.analytics.is_empty()).then(|| {
        let rows = compare_analytics(ledger, book, config, &bases.derived, &counts);
        rows.into_iter()
            .filter(|a| {
                let zone = &config.waba(&a.waba).timezone;
                keep(
                    &a.waba,
                    wabill_engine::time::Month::of(a.start.local_date(zone)),
                )
            })
            .collect::<Vec<_>>()
    });
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        ReconcileFormat::Table
    } else {
        ReconcileFormat::Json
    });
    let text = match format {
        ReconcileFormat::Json => {
            wabill_report::reconciliations_json(&selected, analytics.as_deref())
        }
        ReconcileFormat::Table => {
            wabill_report::reconciliations_table(&selected, analytics.as_deref())
        }
    };
    emit(&text)?;
    // 1 when they differ; input rejected or quarantined is reported on
    // standard error and makes the comparison partial, so it counts too.
    let agree = wabill_report::all_agree(&selected, analytics.as_deref());
    Ok(if agree && ingested.refused() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
