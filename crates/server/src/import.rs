//! `wabill import` (cli.md): files of events loaded into a store as the
//! service would take them: through the same validation and the same
//! writer, which logs only what changes the ledger (a file imported twice
//! adds nothing) and holds a body's unreadable items in the quarantine.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::Context;
use wabill_engine::carriers::Provider;
use wabill_engine::{EngineConfig, RateBook};
use wabill_ingest::{Parsed, Route, parse_line};

use crate::state::{Applied, Job, JobError, State, Write};
use crate::store::{Held, Location, LogRow};

/// What an import did.
#[derive(Debug, Default)]
pub struct Imported {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub ignored: u64,
    /// Lines refused whole: where (`file:line`) and why. Nothing of them
    /// was stored.
    pub rejected: Vec<(String, String)>,
}

/// Lines handed to the writer at once.
const BATCH_LINES: usize = 2_000;

/// One file to import: its name (for messages) and its lines.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn BufRead>,
}

/// Imports `inputs` into the store at `location` (which no service may
/// hold meanwhile: the store's owner lock says so). `route` gives the
/// WABA and phone of On-Premises bodies and the provider of lines that
/// name none (rules P6); events with no provider are logged as `api`.
pub fn import(
    location: &Location,
    engine: EngineConfig,
    book: RateBook,
    inputs: Vec<Input>,
    route: Route<'_>,
) -> anyhow::Result<Imported> {
    let (state, writer) = State::open(location, engine, book)
        .with_context(|| format!("cannot open the store {location}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("cannot start the async runtime")?;
    let mut imported = Imported::default();
    let held_before = state.quarantine.len();
    let mut validator = state.read().ledger().validator();
    let received_at = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string());
    let result = (|| {
        for input in inputs {
            let mut write = Write::default();
            let mut lines = 0;
            for (n, line) in input.reader.lines().enumerate() {
                let place = format!("{}:{}", input.name, n + 1);
                let line = line.with_context(|| format!("cannot read {place}"))?;
                let mut parsed = Parsed::default();
                match parse_line(&line, route, &mut parsed) {
                    Err(e) => imported.rejected.push((place, e.to_string())),
                    Ok(shape) => {
                        let provider = parsed.provider.or_else(|| route.provider_of(shape));
                        validator.set_provider(provider);
                        let mut facts = Vec::new();
                        if let Err(e) = parsed.check_items(|e| validator.check_event(e), &mut facts)
                        {
                            imported.rejected.push((place, e.to_string()));
                            continue;
                        }
                        let source = provider.map(Provider::as_str);
                        write.rows.extend(parsed.events.iter().zip(facts).map(|ef| {
                            let mut row = LogRow::of(ef);
                            row.source = source;
                            row
                        }));
                        imported.ignored += parsed.ignored.values().sum::<u64>();
                        write
                            .held
                            .extend(parsed.quarantined.drain(..).map(|item| Held {
                                id: 0,
                                received_at: received_at.clone(),
                                source: source.unwrap_or("api"),
                                route: String::new(),
                                item,
                            }));
                    }
                }
                lines += 1;
                if lines == BATCH_LINES {
                    runtime.block_on(submit(&state, std::mem::take(&mut write), &mut imported))?;
                    lines = 0;
                }
            }
            runtime.block_on(submit(&state, write, &mut imported))?;
        }
        anyhow::Ok(())
    })();
    imported.quarantined = state.quarantine.len().saturating_sub(held_before) as u64;
    state.close();
    let _ = writer.join();
    result.map(|()| imported)
}

/// Hands one batch to the writer and waits until it is durable.
async fn submit(state: &Arc<State>, write: Write, imported: &mut Imported) -> anyhow::Result<()> {
    if write.is_empty() {
        return Ok(());
    }
    let (reply, done) = tokio::sync::oneshot::channel();
    let job = Job {
        write,
        source: "api",
        reply,
    };
    anyhow::ensure!(state.submit(job).await, "the writer stopped");
    let applied: Applied = done
        .await
        .context("the writer stopped")?
        .map_err(|JobError::Store(e)| anyhow::anyhow!("the store refused the write: {e}"))?;
    imported.accepted += applied.accepted;
    imported.duplicates += applied.duplicates;
    Ok(())
}
