//! Event files read into a ledger (`invoice`, `conversations`, `whatif`):
//! the reader thread and parse workers of [`read`], folded in order.

use std::path::Path;
use std::time::{Duration, Instant};

use wabill_engine::{CapacityError, Ledger};
use wabill_ingest::Route;

use crate::args::InputArgs;
use crate::exit::Fatal;
use crate::{bench, config, read};

/// How many events ahead the fold touches the message table.
const LOOKAHEAD: usize = 8;

/// Messages about rejected input beyond this many are counted, not printed.
const MAX_PRINTED_REJECTIONS: u64 = 1000;

/// The inputs folded into a ledger, with the cards and maps to bill it.
pub struct Ingested {
    pub ledger: Ledger,
    pub book: wabill_engine::RateBook,
    /// Lines or bodies rejected.
    pub rejected: u64,
    /// Items of bodies quarantined (events.md section 5).
    pub quarantined: u64,
    /// When the command started reading (the configuration included).
    pub started: Instant,
    /// Bytes read.
    pub bytes: u64,
}

/// A secret key for the ledger's tables, drawn from the OS for this run:
/// message ids in the input cannot be crafted to collide under it.
pub fn hash_key() -> wabill_engine::HashKey {
    wabill_engine::HashKey::drawn_from(&std::hash::RandomState::new())
}

/// The command line's file names as inputs (`-` is standard input).
pub fn inputs(files: &[String]) -> Vec<read::Input> {
    files
        .iter()
        .map(|name| read::Input { name: name.clone() })
        .collect()
}

/// Reads every input into a ledger, reporting bad lines on standard error.
pub fn ingest_files(
    config_path: Option<&Path>,
    input: &InputArgs,
    waba: Option<&str>,
) -> Result<Ingested, Fatal> {
    let started = Instant::now();
    let configured = config::read_config(config_path)?;
    let mut ledger = Ledger::new(configured.engine, hash_key());
    let route = Route {
        waba,
        phone: input.phone.as_deref(),
        provider: input.provider,
    };
    let inputs = inputs(&input.files);
    let mut rejections = Rejections::default();
    reserve_for_inputs(&mut ledger, &inputs);
    let validator = ledger.validator();
    let mut full = None;
    let bytes = read::read_batches(&inputs, route, Some(&validator), |input, batch| {
        rejections.batch(input, batch);
        fold_batch(&mut ledger, batch, &mut full);
    })?;
    if let Some(e) = full {
        return Err(e.into());
    }
    rejections.summarize();
    warn_off_period(&ledger);
    Ok(Ingested {
        ledger,
        book: configured.book,
        rejected: rejections.count,
        quarantined: rejections.quarantined,
        started,
        bytes,
    })
}

/// Rules P6: events from a provider outside their phone's period are
/// billed, counted per invoice (`off_period_events`) and told here.
fn warn_off_period(ledger: &Ledger) {
    for ((phone, provider), n) in ledger.flagged().by_phone {
        eprintln!(
            "wabill: phone {phone}: {n} events came through {} outside the periods [[phone]] gives it; they are billed and counted on their invoices (off_period_events)",
            provider.as_str()
        );
    }
}

/// Room in the ledger for the events the files likely hold: NDJSON events
/// take about 280 bytes each; a hint, not a limit.
fn reserve_for_inputs(ledger: &mut Ledger, inputs: &[read::Input]) {
    let input_bytes: u64 = inputs
        .iter()
        .filter_map(|i| std::fs::metadata(&i.name).ok())
        .map(|m| m.len())
        .sum();
    ledger.reserve(usize::try_from(input_bytes / 280).unwrap_or(0));
}

/// Folds a batch's checked events into the ledger, in order; `full` keeps
/// the first event the ledger had no room for.
fn fold_batch(ledger: &mut Ledger, batch: &read::Batch, full: &mut Option<CapacityError>) {
    // Touching the table a few events ahead lets the cache misses of
    // different events overlap (the fold's largest cost).
    let mut ahead = LOOKAHEAD;
    let mut sink = 0u64;
    let mut spare = None;
    for group in &batch.groups {
        batch.each_checked(*group, &mut spare, |c| {
            if let Some(id_hash) = batch.id_hash(ahead) {
                sink ^= ledger.touch(id_hash);
            }
            ahead += 1;
            if let Err(e) = ledger.apply(c) {
                full.get_or_insert(e);
            }
        });
    }
    std::hint::black_box(sink);
}

impl Ingested {
    /// Input that was not billed: lines rejected and items quarantined
    /// (exit status 1 when any).
    pub fn refused(&self) -> u64 {
        self.rejected + self.quarantined
    }
}

/// Rejected lines and quarantined items, told on standard error up to a
/// limit, then counted; ignored items counted per kind.
#[derive(Default)]
struct Rejections {
    count: u64,
    quarantined: u64,
    ignored: std::collections::BTreeMap<String, u64>,
}

impl Rejections {
    fn batch(&mut self, input: &read::Input, batch: &read::Batch) {
        let name = input.display();
        for (line, reason) in &batch.errors {
            self.count += 1;
            if self.told() {
                eprintln!("{name}:{line}: {reason}");
            }
        }
        for (line, item) in &batch.quarantined {
            self.quarantined += 1;
            if self.told() {
                eprintln!("{name}:{line}: {}: quarantined: {}", item.path, item.reason);
            }
        }
        for (kind, n) in &batch.ignored {
            *self.ignored.entry(kind.clone()).or_insert(0) += n;
        }
    }

    /// Whether the latest problem is still within those printed.
    fn told(&self) -> bool {
        self.count + self.quarantined <= MAX_PRINTED_REJECTIONS
    }

    fn summarize(&self) {
        let (rejected, quarantined) = (self.count, self.quarantined);
        if rejected + quarantined > MAX_PRINTED_REJECTIONS {
            eprintln!(
                "wabill: … {} more rejected lines or quarantined items not shown",
                rejected + quarantined - MAX_PRINTED_REJECTIONS
            );
        }
        if !self.ignored.is_empty() {
            let kinds: Vec<String> = self
                .ignored
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            eprintln!(
                "wabill: items that are not billing events, ignored: {}",
                kinds.join(", ")
            );
        }
        if quarantined > 0 {
            let s = if quarantined == 1 { "" } else { "s" };
            eprintln!(
                "wabill: {quarantined} item{s} of bodies quarantined (not billed); their bodies' other items were rated"
            );
        }
        if rejected > 0 {
            eprintln!("wabill: {rejected} lines or bodies rejected; the rest was rated");
        }
    }
}

/// `--stats`: the run's figures on standard error, for `wabill bench`;
/// `ingest_time` is the time until the ledger held every event.
pub fn print_stats(ingested: &Ingested, events: u64, ingest_time: Duration) {
    let secs = ingested.started.elapsed().as_secs_f64();
    // The key keeps its name: docs/performance.md reads it.
    eprintln!(
        "wabill-stats: {{\"events\":{events},\"bytes\":{},\"seconds\":{secs:.3},\"load_seconds\":{:.3},\"peak_rss_bytes\":{}}}",
        ingested.bytes,
        ingest_time.as_secs_f64(),
        bench::peak_rss_bytes().unwrap_or(0)
    );
}
