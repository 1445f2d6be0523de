//! `wabill-gen`: deterministic synthetic WhatsApp Business traffic for wabill.
//!
//! [`generate`] writes exactly [`GenConfig::events`] events, either as
//! normalized NDJSON lines ([`Format::Ndjson`], `events.md` section 1) or as
//! Cloud API webhook bodies for inbound messages and statuses mixed with
//! normalized `outbound` lines ([`Format::Cloud`], section 2).
//!
//! The traffic models a chatbot platform reselling WhatsApp: several WABAs
//! with one to three business phones each; users in more than a hundred
//! countries (every market of the 2022 market map plus unlisted countries);
//! user sessions (some started from a Click to WhatsApp ad) answered by a bot;
//! template campaigns (marketing, utility, authentication) to users who have
//! not written recently; failed deliveries, messages only sent, reads without
//! delivered statuses; duplicates and out-of-order arrival through a bounded
//! reorder buffer. Output is a pure function of the configuration (one PCG
//! stream per concern, no clock, no hash-map iteration) and memory does not
//! grow with the number of events beyond the user population.

mod arrival;
mod countries;
mod earliest;
mod emit;
mod fmt;
mod lines;
mod sim;
mod webhooks_only;

use std::io::{self, Write};

use crate::arrival::Pipe;
use crate::emit::Emitter;
use crate::lines::Lines;
use crate::sim::{Sim, World};
pub use crate::webhooks_only::{MetaVerdict, WebhooksOnlyStats, webhooks_only};

/// Output shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One normalized event per line (`events.md` section 1).
    Ndjson,
    /// Cloud API webhook bodies for inbound messages and statuses (several
    /// statuses of one phone sometimes batched in one body), normalized
    /// `outbound` lines for business messages.
    Cloud,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Exact number of events to write (an inbound message, an outbound
    /// record or a status; a Cloud body with three statuses counts three).
    pub events: u64,
    /// Seed: the same configuration always gives the same bytes.
    pub seed: u64,
    pub format: Format,
    /// First day of traffic (UTC).
    pub start: jiff::civil::Date,
    /// Traffic is spread over `[start, start + days)`.
    pub days: u32,
    /// Number of WABAs (each with one to three business phones).
    pub wabas: u32,
    /// Size of the user population.
    pub users: u32,
}

impl GenConfig {
    /// Defaults: NDJSON, from 2022-03-01 over 30 days, 3 WABAs,
    /// `max(1000, events / 40)` users.
    pub fn new(events: u64, seed: u64) -> Self {
        GenConfig {
            events,
            seed,
            format: Format::Ndjson,
            start: jiff::civil::date(2022, 3, 1),
            days: 30,
            wabas: 3,
            users: u32::try_from((events / 40).max(1000)).unwrap_or(u32::MAX),
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Events written (duplicates included).
    pub events: u64,
    /// Lines written.
    pub lines: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes `cfg.events` events to `out` (buffered internally; `out` is flushed
/// at the end).
pub fn generate<W: Write>(cfg: &GenConfig, mut out: W) -> io::Result<GenStats> {
    if cfg.events == 0 {
        out.flush()?;
        return Ok(GenStats::default());
    }
    let days = u64::from(cfg.days.max(1));
    let world = World::build(cfg.seed, cfg.wabas, cfg.users);
    let sim = Sim::new(&world, cfg.seed, start_ms(cfg.start), days, cfg.events);
    let window = reorder_window(cfg.events, days);
    let pipe = Pipe::new(sim, window, cfg.seed);
    let em = Emitter::new(&world, cfg.seed);
    let mut lines = Lines::new(cfg.format, pipe, em, window, cfg.seed);
    while lines.stats.events < cfg.events {
        let left = cfg.events - lines.stats.events;
        if lines.write_due_duplicate(left) {
            continue;
        }
        lines.write_next_event(left);
        if lines.buffered() >= 1 << 16 {
            lines.drain(&mut out)?;
        }
    }
    lines.drain(&mut out)?;
    out.flush()?;
    Ok(lines.stats)
}

/// How far (in events) the reorder buffer displaces an event: "a few
/// minutes' worth of traffic".
fn reorder_window(events: u64, days: u64) -> u64 {
    let per_3min = events.saturating_mul(3) / (days * 1440);
    per_3min.clamp(8, 20_000)
}

/// Unix milliseconds of `date` 00:00 UTC (clamped to 1970..9000).
fn start_ms(date: jiff::civil::Date) -> u64 {
    let days = fmt::days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    );
    let max = fmt::days_from_civil(9000, 1, 1);
    (days.clamp(0, max) as u64) * sim::DAY
}
