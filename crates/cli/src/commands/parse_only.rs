//! `wabill parse` (hidden): events parsed and counted, not rated (the
//! benchmark's floor).

use std::process::ExitCode;

use wabill_ingest::Route;

use crate::args::ParseArgs;
use crate::exit::{Fatal, exit_code};
use crate::output::emit;
use crate::{bench, ingest, read};

pub fn run(args: ParseArgs) -> Result<ExitCode, Fatal> {
    let started = std::time::Instant::now();
    let route = Route {
        waba: args.waba.as_deref(),
        phone: args.input.phone.as_deref(),
        provider: args.input.provider,
    };
    let inputs = ingest::inputs(&args.input.files);
    let mut events = 0u64;
    let mut rejected = 0u64;
    let bytes = read::read_batches(&inputs, route, None, |_, batch| {
        events += batch.n_events() as u64;
        rejected += (batch.errors.len() + batch.quarantined.len()) as u64;
    })?;
    emit(&format!("{events} events, {rejected} rejected lines\n"))?;
    if args.input.stats {
        eprintln!(
            "wabill-stats: {{\"events\":{events},\"bytes\":{bytes},\"seconds\":{:.3},\"peak_rss_bytes\":{}}}",
            started.elapsed().as_secs_f64(),
            bench::peak_rss_bytes().unwrap_or(0)
        );
    }
    Ok(exit_code(rejected))
}
