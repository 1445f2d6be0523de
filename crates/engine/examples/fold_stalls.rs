//! The longest single fold while a ledger grows (docs/performance.md): the
//! service's writer holds every request while it folds, so one slow fold is
//! a latency spike for all of them. Folds N inbound messages, one at a time,
//! over 10 000 users, into an [`Incremental`] as the service does, and
//! prints the slowest folds and where they happened.
//!
//!   cargo run --release -p wabill-engine --example fold_stalls -- 2000000
// Timing statistics, not money: floating point is fine here.
#![allow(clippy::float_arithmetic)]

use std::time::Instant as Clock;

use wabill_engine::event::{Event, EventBody};
use wabill_engine::incremental::Incremental;
use wabill_engine::ledger::Ledger;
use wabill_engine::{EngineConfig, HashKey, Instant};

// The allocator and its settings the `wabill` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), String> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("events {arg:?}: {e}"))?,
        None => 2_000_000,
    };
    let key = HashKey::drawn_from(&std::hash::RandomState::new());
    let ledger = Ledger::new(EngineConfig::new(), key);
    let mut validator = ledger.validator();
    let mut engine = Incremental::new(ledger);
    let june_2025 = 1_750_000_000i64;
    let mut folds: Vec<(f64, usize)> = Vec::with_capacity(n);
    let mut checked = Vec::new();
    let started = Clock::now();
    for i in 0..n {
        let mut events = vec![Event {
            ts: Instant((june_2025 + i as i64 / 20) * 1_000_000_000),
            waba: "W1".into(),
            phone: "P1".into(),
            user: format!("551199{:07}", i % 10_000).into(),
            id: format!("wamid.HBgLNTUxMTk5OTk5MDAwMRUCABIYFjNFQjBDMDk{i:012}").into(),
            body: EventBody::Inbound { referral: false },
            verdict: None,
            also: None,
        }];
        checked.clear();
        validator
            .check(&mut events, &mut checked)
            .map_err(|e| e.to_string())?;
        let fold = Clock::now();
        for c in &checked {
            engine.apply(c).map_err(|e| e.to_string())?;
        }
        folds.push((fold.elapsed().as_secs_f64() * 1e3, i));
    }
    let seconds = started.elapsed().as_secs_f64();
    let over = |ms: f64| folds.iter().filter(|f| f.0 > ms).count();
    println!(
        "{n} folds in {seconds:.2} s; over 1 ms: {}, over 5 ms: {}, over 50 ms: {}",
        over(1.0),
        over(5.0),
        over(50.0)
    );
    folds.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, i) in folds.iter().take(5) {
        println!("  {ms:8.2} ms at event {i}");
    }
    Ok(())
}
