//! `wabill gen`: synthetic traffic, and (`--webhooks-only`) that traffic
//! as a provider with only Meta's webhooks sees it.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use wabill_engine::attribution;
use wabill_engine::billing::bill_with;
use wabill_engine::billing::{Free, Record};
use wabill_engine::config::Basis;
use wabill_engine::tariff::Category;
use wabill_engine::time::{HOURS_24, NANOS_PER_SEC};
use wabill_gen::MetaVerdict;

use crate::args::{GenArgs, GenFormat};
use crate::config;
use crate::exit::Fatal;

fn gen_config(args: &GenArgs) -> wabill_gen::GenConfig {
    let mut cfg = wabill_gen::GenConfig::new(args.events, args.seed);
    cfg.format = match args.format {
        GenFormat::Ndjson => wabill_gen::Format::Ndjson,
        GenFormat::Cloud => wabill_gen::Format::Cloud,
    };
    cfg.start = args.start;
    cfg.days = args.days;
    cfg.wabas = args.wabas;
    if let Some(users) = args.users {
        cfg.users = users;
    }
    cfg
}

pub fn run(config_path: Option<&Path>, args: GenArgs) -> Result<ExitCode, Fatal> {
    let cfg = gen_config(&args);
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| anyhow!("cannot create {}: {e}", path.display()))?;
            Box::new(std::io::BufWriter::with_capacity(1 << 20, file))
        }
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout().lock(),
        )),
    };
    let written = if args.webhooks_only {
        webhooks_only(config_path, &cfg, out)
    } else {
        wabill_gen::generate(&cfg, out)
            .map(drop)
            .map_err(Fatal::from)
    };
    // A reader that stops early (`| head`) is no error.
    let broken_pipe = |e: &Fatal| {
        e.0.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    };
    match written {
        Err(e) if broken_pipe(&e) => {}
        other => other?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The traffic generated, derived by the configuration's rules, and written
/// again with Meta's verdict on every status in place of the outbound
/// records.
fn webhooks_only(
    config_path: Option<&Path>,
    cfg: &wabill_gen::GenConfig,
    out: Box<dyn Write>,
) -> Result<(), Fatal> {
    let configured = config::read_config(config_path)?;
    // Generated traffic is clean: every delivery gets its verdict.
    let (text, ledger, _) = super::generated_ledger(cfg, configured.engine.clone())?;
    let mut rules = configured.engine;
    rules.basis = Basis::Derived;
    let billing = bill_with(&ledger, &configured.book, &rules);
    let by_opener: HashMap<u32, &Record> = billing
        .months
        .iter()
        .flat_map(|m| &m.records)
        .map(|r| (r.opened_by, r))
        .collect();
    let verdicts: HashMap<&str, MetaVerdict> = attribution(&ledger, &rules)
        .into_iter()
        .filter_map(|(msg, opener)| {
            let record = by_opener.get(&opener)?;
            let verdict = meta_verdict(record, ledger.message_id(opener));
            Some((ledger.message_id(msg), verdict))
        })
        .collect();
    wabill_gen::webhooks_only(&text, |id| verdicts.get(id).cloned(), out)?;
    Ok(())
}

/// What Meta would say about a message of `record` (rules V2, V3 read
/// backwards).
fn meta_verdict(record: &Record, opener: &str) -> MetaVerdict {
    let billable = !record.free.by_rule();
    if record.era.rules().per_message() {
        let kind = match record.free {
            Free::FreeEntryPoint => "free_entry_point",
            Free::FreeCustomerService => "free_customer_service",
            Free::None | Free::FreeTier => "regular",
        };
        return MetaVerdict {
            pricing_model: "PMP",
            category: match record.category {
                Category::AuthenticationInternational => "authentication-international".into(),
                c => c.as_str().into(),
            },
            pricing_type: Some(kind),
            billable,
            conversation: None,
        };
    }
    let (category, expires) = match record.category {
        // Its natural end: an entry point conversation is never cut short.
        Category::FreeEntryPoint => ("referral_conversion", record.end),
        c => (c.as_str(), record.start.plus(HOURS_24)),
    };
    MetaVerdict {
        pricing_model: "CBP",
        category: category.into(),
        pricing_type: None,
        billable,
        conversation: Some((opener.to_owned(), expires.0.div_euclid(NANOS_PER_SEC))),
    }
}
