//! Arrival order: events leave the schedule in time order and some are held
//! back a little, as real exports and webhooks arrive out of order.

use std::collections::BinaryHeap;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::earliest::Earliest;
use crate::sim::{DELIVERED, Ev, OUT, SENT, ST, Sim};

/// An event held back in the reorder buffer until position `due`, keyed
/// (due, sequence).
type Held = Earliest<(u64, u64), Ev>;

/// Arrival order: the schedule (time order) with some events displaced
/// later by up to `window` positions (outbound records reported late,
/// `delivered` overtaken by `read`, webhooks retried).
pub(crate) struct Pipe<'w> {
    sim: Sim<'w>,
    held: BinaryHeap<Held>,
    pos: u64,
    window: u64,
    rng: Pcg64,
    peeked: Option<Ev>,
}

impl<'w> Pipe<'w> {
    pub(crate) fn new(sim: Sim<'w>, window: u64, seed: u64) -> Self {
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
                && top.key.0 <= self.pos
                && let Some(h) = self.held.pop()
            {
                self.pos += 1;
                return h.item;
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
                self.held.push(Held {
                    key: (due, e.seq),
                    item: e,
                });
                continue;
            }
            self.pos += 1;
            return e;
        }
    }

    pub(crate) fn next(&mut self) -> Ev {
        match self.peeked.take() {
            Some(e) => e,
            None => self.produce(),
        }
    }

    pub(crate) fn peek(&mut self) -> Option<&Ev> {
        if self.peeked.is_none() {
            self.peeked = Some(self.produce());
        }
        self.peeked.as_ref()
    }
}
