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

mod countries;
mod emit;
mod fmt;
mod sim;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::emit::Emitter;
use crate::sim::{DELIVERED, Ev, IN, OUT, SENT, ST, Sim, World};

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
    let mut stats = GenStats::default();
    if cfg.events == 0 {
        out.flush()?;
        return Ok(stats);
    }
    let start_ms = start_ms(cfg.start);
    let days = u64::from(cfg.days.max(1));
    let world = World::build(cfg.seed, cfg.wabas, cfg.users);
    let sim = Sim::new(&world, cfg.seed, start_ms, days, cfg.events);
    // "a few minutes' worth of traffic", in events
    let per_3min = cfg.events.saturating_mul(3) / (days * 1440);
    let window = per_3min.clamp(8, 20_000);
    let mut pipe = Pipe::new(sim, window, cfg.seed);
    let mut em = Emitter::new(&world, cfg.seed);
    let mut dup_rng = Pcg64::seed_from_u64(cfg.seed ^ 0x4455_5053);
    let mut dups: BinaryHeap<Dup> = BinaryHeap::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut dup_seq = 0u64;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut batch: Vec<Ev> = Vec::with_capacity(8);

    while stats.events < cfg.events {
        let left = cfg.events - stats.events;
        // a duplicate that is due
        if let Some(top) = dups.peek()
            && top.due <= stats.lines
            && let Some(d) = dups.pop()
        {
            if d.events <= left {
                buf.extend_from_slice(&d.bytes);
                stats.events += d.events;
                stats.lines += 1;
            }
            let mut v = d.bytes;
            v.clear();
            spare.push(v);
            continue;
        }
        let line_start = buf.len();
        let ev = pipe.next();
        let n = match (cfg.format, ev.kind) {
            (Format::Ndjson, _) | (Format::Cloud, OUT) => {
                em.ndjson(&mut buf, &ev);
                1
            }
            (Format::Cloud, IN) => {
                em.cloud_inbound(&mut buf, &ev);
                1
            }
            (Format::Cloud, _) => {
                let want = match dup_rng.random_range(0..1000u32) {
                    0..750 => 1,
                    750..900 => 2,
                    900..970 => 3,
                    _ => dup_rng.random_range(4..=6u64),
                };
                let want = want.min(left);
                batch.clear();
                batch.push(ev);
                while (batch.len() as u64) < want {
                    match pipe.peek() {
                        Some(nx) if nx.kind == ST && nx.phone == ev.phone => {
                            batch.push(pipe.next());
                        }
                        _ => break,
                    }
                }
                em.cloud_statuses(&mut buf, &batch);
                batch.len() as u64
            }
        };
        stats.events += n;
        stats.lines += 1;
        // ~2% of lines are delivered again later (webhook retries, re-sent exports)
        if dup_rng.random_range(0..1000u32) < 20 {
            let delay = if dup_rng.random_range(0..10u32) < 6 {
                dup_rng.random_range(1..=window.max(4))
            } else {
                dup_rng.random_range(1..=window * 20)
            };
            let mut v = spare.pop().unwrap_or_default();
            v.extend_from_slice(&buf[line_start..]);
            dup_seq += 1;
            dups.push(Dup {
                due: stats.lines + delay,
                seq: dup_seq,
                events: n,
                bytes: v,
            });
        }
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            stats.bytes += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    stats.bytes += buf.len() as u64;
    out.flush()?;
    Ok(stats)
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

/// A line to write again later.
struct Dup {
    due: u64,
    seq: u64,
    events: u64,
    bytes: Vec<u8>,
}

impl PartialEq for Dup {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Dup {}
impl PartialOrd for Dup {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Dup {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// An event held back in the reorder buffer until position `due`.
struct Held {
    due: u64,
    ev: Ev,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.ev.seq) == (o.due, o.ev.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.due, o.ev.seq).cmp(&(self.due, self.ev.seq))
    }
}

/// Arrival order: the schedule (time order) with some events displaced
/// later by up to `window` positions (outbound records reported late,
/// `delivered` overtaken by `read`, webhooks retried).
struct Pipe<'w> {
    sim: Sim<'w>,
    held: BinaryHeap<Held>,
    pos: u64,
    window: u64,
    rng: Pcg64,
    peeked: Option<Ev>,
}

impl<'w> Pipe<'w> {
    fn new(sim: Sim<'w>, window: u64, seed: u64) -> Self {
        Pipe {
            sim,
            held: BinaryHeap::new(),
            pos: 0,
            window,
            rng: Pcg64::seed_from_u64(seed ^ 0x0052_454F_5244_4552),
            peeked: None,
        }
    }

    fn produce(&mut self) -> Ev {
        loop {
            if let Some(top) = self.held.peek()
                && top.due <= self.pos
                && let Some(h) = self.held.pop()
            {
                self.pos += 1;
                return h.ev;
            }
            let e = self.sim.next();
            let p = match (e.kind, e.status) {
                (OUT, _) => 40,
                (ST, DELIVERED) => 50,
                (ST, SENT) => 15,
                _ => 8,
            };
            if self.rng.random_range(0..1000u32) < p {
                let due = self.pos + 1 + self.rng.random_range(0..self.window);
                self.held.push(Held { due, ev: e });
                continue;
            }
            self.pos += 1;
            return e;
        }
    }

    fn next(&mut self) -> Ev {
        match self.peeked.take() {
            Some(e) => e,
            None => self.produce(),
        }
    }

    fn peek(&mut self) -> Option<&Ev> {
        if self.peeked.is_none() {
            self.peeked = Some(self.produce());
        }
        self.peeked.as_ref()
    }
}
