//! The traffic model: businesses, users, sessions and campaigns, scheduled in
//! event-time order through a min-heap of pending events.
//!
//! This module holds the event type, the schedule and its clock; the fixed
//! population is in [`world`], what businesses send in [`catalog`], and the
//! three kinds of traffic in [`session`] (users write, a bot answers),
//! [`campaign`] (templates to users who have not written) and [`outbound`]
//! (one business message and its statuses, shared by both).

mod campaign;
mod catalog;
mod outbound;
mod session;
mod world;

use crate::earliest::Earliest;
use std::collections::BinaryHeap;

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

pub(crate) use catalog::{
    ADS_PER_WABA, CATEGORIES, CATEGORIES_UP, ERR_REENGAGEMENT, ERRORS, TEMPLATES_MSG,
};
pub(crate) use outbound::conversation_len;
pub(crate) use world::World;

pub(crate) const IN: u8 = 0;
pub(crate) const OUT: u8 = 1;
pub(crate) const ST: u8 = 2;

pub(crate) const SENT: u8 = 0;
pub(crate) const DELIVERED: u8 = 1;
pub(crate) const READ: u8 = 2;
pub(crate) const FAILED: u8 = 3;

/// Conversation origins reported by Meta under CBP v1 (`origin.type`).
pub(crate) const O_NONE: u8 = 0;
pub(crate) const O_USER: u8 = 1;
pub(crate) const O_BUSINESS: u8 = 2;
pub(crate) const O_REFERRAL: u8 = 3;

pub(crate) const SEC: u64 = 1000;
pub(crate) const MIN: u64 = 60 * SEC;
pub(crate) const HOUR: u64 = 60 * MIN;
pub(crate) const DAY: u64 = 24 * HOUR;

/// 2022-02-01T00:00Z: CBP v1 starts (conversation objects appear in statuses).
pub(crate) const CBP1_FROM: u64 = 1_643_673_600_000;
/// 2023-03-01T00:00Z: free entry point conversations last 72 h.
pub(crate) const FEP72_FROM: u64 = 1_677_628_800_000;
/// 2023-06-01T00:00Z: CBP v2 (four categories); this generator stops
/// reporting conversation objects from then on.
pub(crate) const CBP2_FROM: u64 = 1_685_577_600_000;

/// One event as scheduled (all ids are derived at write time).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ev {
    /// Event time, Unix milliseconds.
    pub t: u64,
    /// Scheduling order (tie-break).
    pub seq: u64,
    /// Message counter (the id of the message, inbound or outbound).
    pub msg: u64,
    /// Start (ms) of the conversation Meta reports on this status, if any.
    pub conv: u64,
    pub user: u32,
    pub phone: u32,
    pub kind: u8,
    pub status: u8,
    /// Inbound: 1 + ad index when the message carries a referral, else 0.
    /// Outbound: 1 + template index, 0 for a non-template message.
    /// Failed status: error index.
    pub aux: u8,
    /// `O_*`: conversation origin reported on this status.
    pub origin: u8,
    /// The status carries `expiration_timestamp` (the `sent` status).
    pub expiry: bool,
}

/// An event waiting for its time, keyed (time, sequence).
type Pending = Earliest<(u64, u64), Ev>;

/// Per-user state of the user's home pair (used to keep the reported
/// conversation objects consistent with the rules, and to target campaigns).
#[derive(Clone, Copy, Default)]
struct UserState {
    /// Last inbound message (ms), 0 = never.
    last_in: u64,
    /// Last entry-point (referral) inbound, 0 = never.
    ref_t: u64,
    ref_used: bool,
    conv_origin: u8,
    conv_open: u64,
    conv_exp: u64,
    /// The pair has a session in progress until then.
    busy: u64,
}

pub(crate) struct Sim<'w> {
    w: &'w World,
    rng: Pcg64,
    heap: BinaryHeap<Pending>,
    st: Vec<UserState>,
    seq: u64,
    msg: u64,
    popped: u64,
    target: u64,
    start_ms: u64,
    end_ms: u64,
    days: u64,
    clock_at: u64,
    clock_val: u64,
}

/// Relative traffic per UTC hour.
const HOURS: [u64; 24] = [
    4, 3, 3, 3, 4, 5, 6, 7, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 8, 7, 6, 6, 5, 5,
];

impl<'w> Sim<'w> {
    pub(crate) fn new(w: &'w World, seed: u64, start_ms: u64, days: u64, events: u64) -> Self {
        let days = days.max(1);
        Sim {
            w,
            rng: Pcg64::seed_from_u64(seed ^ 0x5349_4D55_4C41_5445),
            heap: BinaryHeap::new(),
            st: vec![UserState::default(); w.users.len()],
            seq: 0,
            msg: 0,
            popped: 0,
            // about 2% of written events are duplicates
            target: (events - events / 50).max(1),
            start_ms,
            end_ms: start_ms + days * DAY,
            days,
            clock_at: u64::MAX,
            clock_val: start_ms,
        }
    }

    /// Time at which the next session starts: the traffic (counted in events
    /// taken from the schedule) advances through the period with a daily curve.
    fn clock(&mut self) -> u64 {
        if self.clock_at == self.popped {
            return self.clock_val;
        }
        let total = u128::from(self.target);
        let g = u128::from(self.popped);
        let v = if g >= total {
            self.end_ms - 1
        } else {
            let sum: u128 = HOURS.iter().map(|&h| u128::from(h)).sum();
            let hour = u128::from(HOUR);
            let gd = g * u128::from(self.days);
            let day = gd / total;
            let pos = (gd % total) * sum * hour / total;
            let mut acc = 0u128;
            let mut h = 0usize;
            while h < 23 && acc + u128::from(HOURS[h]) * hour <= pos {
                acc += u128::from(HOURS[h]) * hour;
                h += 1;
            }
            let within = (pos - acc) / u128::from(HOURS[h]);
            let off = day * u128::from(DAY) + h as u128 * hour + within;
            (self.start_ms + off as u64).min(self.end_ms - 1)
        };
        self.clock_at = self.popped;
        self.clock_val = v;
        v
    }

    /// The next event in time order (never runs dry).
    pub(crate) fn next(&mut self) -> Ev {
        loop {
            let now = self.clock();
            if let Some(top) = self.heap.peek()
                && top.key.0 <= now
                && let Some(Earliest { item: e, .. }) = self.heap.pop()
            {
                self.popped += 1;
                return e;
            }
            self.spawn(now);
        }
    }

    #[inline]
    fn permille(&mut self, p: u32) -> bool {
        self.rng.random_range(0..1000u32) < p
    }

    #[inline]
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..hi)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, t: u64, kind: u8, status: u8, msg: u64, user: u32, phone: u32, aux: u8) {
        self.push_meta(t, kind, status, msg, user, phone, aux, O_NONE, 0, false);
    }

    #[allow(clippy::too_many_arguments)]
    fn push_meta(
        &mut self,
        t: u64,
        kind: u8,
        status: u8,
        msg: u64,
        user: u32,
        phone: u32,
        aux: u8,
        origin: u8,
        conv: u64,
        expiry: bool,
    ) {
        if t >= self.end_ms {
            return; // past the period: the file ends before it
        }
        self.seq += 1;
        self.heap.push(Pending {
            key: (t, self.seq),
            item: Ev {
                t,
                seq: self.seq,
                msg,
                conv,
                user,
                phone,
                kind,
                status,
                aux,
                origin,
                expiry,
            },
        });
    }

    fn spawn(&mut self, t: u64) {
        let r = self.rng.random_range(0..1000u32);
        match r {
            0..760 => self.user_session(t),
            760..830 => self.campaign(t, 0),
            830..950 => self.campaign(t, 1),
            _ => self.campaign(t, 2),
        }
    }

    fn next_msg(&mut self) -> u64 {
        self.msg += 1;
        self.msg
    }

    fn pick_template(&mut self, category: u8) -> u8 {
        let n = TEMPLATES_MSG.iter().filter(|t| t.1 == category).count();
        let k = self.rng.random_range(0..n.max(1));
        let mut seen = 0;
        for (i, t) in TEMPLATES_MSG.iter().enumerate() {
            if t.1 == category {
                if seen == k {
                    return i as u8;
                }
                seen += 1;
            }
        }
        0
    }
}
