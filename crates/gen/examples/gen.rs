//! Writes synthetic traffic to stdout and reports the speed on stderr.
//!
//! `cargo run --release -p wabill-gen --example gen -- EVENTS [SEED] [ndjson|cloud] > /dev/null`

use std::io::{BufWriter, Write};
use std::time::Instant;

use wabill_gen::{Format, GenConfig, generate};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let events = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut cfg = GenConfig::new(events, seed);
    if args.next().as_deref() == Some("cloud") {
        cfg.format = Format::Cloud;
    }
    let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let t0 = Instant::now();
    let stats = generate(&cfg, out)?;
    let el = t0.elapsed();
    let ms = el.as_millis().max(1);
    let rate = u128::from(stats.events) * 1000 / ms;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "{} events, {} lines, {} bytes in {} ms: {} events/s, {} MB/s",
        stats.events,
        stats.lines,
        stats.bytes,
        ms,
        rate,
        u128::from(stats.bytes) * 1000 / ms / 1_000_000
    )
}
