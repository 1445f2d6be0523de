//! The traffic model: businesses, users, sessions and campaigns, scheduled in
//! event-time order through a min-heap of pending events.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::countries::{self, TEMPLATES};

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

/// Message templates: (name, category). Category index 0 marketing, 1 utility,
/// 2 authentication.
pub(crate) static TEMPLATES_MSG: &[(&str, u8)] = &[
    ("summer_sale", 0),
    ("new_collection_launch", 0),
    ("abandoned_cart_reminder", 0),
    ("weekend_promo_20off", 0),
    ("loyalty_points_offer", 0),
    ("order_update", 1),
    ("shipping_confirmation", 1),
    ("appointment_reminder", 1),
    ("payment_receipt", 1),
    ("delivery_eta", 1),
    ("otp_login", 2),
    ("verification_code", 2),
];
pub(crate) static CATEGORIES: &[&str] = &["marketing", "utility", "authentication"];
pub(crate) static CATEGORIES_UP: &[&str] = &["MARKETING", "UTILITY", "AUTHENTICATION"];

/// Failure reasons: (code, title).
pub(crate) static ERRORS: &[(u32, &str)] = &[
    (131_026, "Message undeliverable."),
    (131_047, "Re-engagement message"),
    (131_000, "Something went wrong"),
    (130_429, "Rate limit hit"),
    (131_051, "Unsupported message type"),
];
pub(crate) const ERR_REENGAGEMENT: u8 = 1;

/// Ads a WABA runs (Click to WhatsApp): per WABA this many creatives.
pub(crate) const ADS_PER_WABA: u32 = 4;

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

struct Pending(Ev);

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.0.t == o.0.t && self.0.seq == o.0.seq
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> Ordering {
        // reversed: BinaryHeap is a max-heap, we want the earliest first
        (o.0.t, o.0.seq).cmp(&(self.0.t, self.0.seq))
    }
}

pub(crate) struct Phone {
    pub waba: u32,
    pub id: u64,
    pub display: u64,
    /// Users whose home (usual) business phone this is: `lo..hi`.
    pub lo: u32,
    pub hi: u32,
}

/// Everything that is fixed once built: businesses and the user population.
pub(crate) struct World {
    pub wabas: Vec<u64>,
    pub phones: Vec<Phone>,
    phone_cum: Vec<u64>,
    pub users: Vec<u64>,
    pub home: Vec<u32>,
    /// Key mixed into message ids (per seed).
    pub key: u64,
}

impl World {
    pub(crate) fn build(seed: u64, wabas: u32, users: u32) -> World {
        let mut rng = Pcg64::seed_from_u64(seed ^ 0x0057_4F52_4C44);
        let wabas = wabas.max(1);
        let users = users.max(1);
        let mut ids: HashSet<u64> = HashSet::new();
        let mut fresh_id = |rng: &mut Pcg64| loop {
            let v = rng.random_range(100_000_000_000_000u64..120_000_000_000_000);
            if ids.insert(v) {
                return v;
            }
        };
        let mut waba_ids = Vec::with_capacity(wabas as usize);
        let mut phones = Vec::new();
        let mut weights = Vec::new();
        let business: Vec<&countries::Tpl> = TEMPLATES
            .iter()
            .filter(|t| countries::BUSINESS_ISOS.contains(&t.iso))
            .collect();
        for w in 0..wabas {
            waba_ids.push(fresh_id(&mut rng));
            let n = rng.random_range(1..=3u32);
            let waba_weight = 1200 / u64::from(w + 1) + 60;
            let split: &[u64] = match n {
                1 => &[100],
                2 => &[60, 40],
                _ => &[50, 30, 20],
            };
            for s in split {
                let tpl = business[rng.random_range(0..business.len())];
                let prefix = rng.random_range(0..tpl.prefixes.len());
                let display = countries::number(tpl, prefix, rng.random::<u64>());
                phones.push(Phone {
                    waba: w,
                    id: fresh_id(&mut rng),
                    display,
                    lo: 0,
                    hi: 0,
                });
                weights.push(waba_weight * s);
            }
        }
        let total: u64 = weights.iter().sum();
        let mut phone_cum = Vec::with_capacity(weights.len());
        let mut acc = 0u64;
        let mut home = vec![0u32; users as usize];
        for (i, (p, w)) in phones.iter_mut().zip(&weights).enumerate() {
            let lo = (u128::from(users) * u128::from(acc) / u128::from(total)) as u32;
            acc += w;
            let hi = (u128::from(users) * u128::from(acc) / u128::from(total)) as u32;
            p.lo = lo;
            p.hi = hi;
            for h in &mut home[lo as usize..hi as usize] {
                *h = i as u32;
            }
            phone_cum.push(acc);
        }

        // the user population: weighted countries, unique numbers
        let mut cum = Vec::with_capacity(TEMPLATES.len());
        let mut acc = 0u64;
        for t in TEMPLATES {
            acc += u64::from(t.weight);
            cum.push(acc);
        }
        let mut seen: HashSet<u64> = HashSet::with_capacity(users as usize);
        let mut nums = Vec::with_capacity(users as usize);
        for _ in 0..users {
            let mut tries = 0;
            loop {
                let r = rng.random_range(0..acc);
                let ti = cum.partition_point(|&c| c <= r);
                let tpl = &TEMPLATES[ti.min(TEMPLATES.len() - 1)];
                let prefix = rng.random_range(0..tpl.prefixes.len());
                let n = countries::number(tpl, prefix, rng.random::<u64>());
                tries += 1;
                if seen.insert(n) || tries > 50 {
                    nums.push(n);
                    break;
                }
            }
        }
        World {
            wabas: waba_ids,
            phones,
            phone_cum,
            users: nums,
            home,
            key: rng.random::<u64>(),
        }
    }

    fn pick_phone(&self, rng: &mut Pcg64) -> u32 {
        let total = self.phone_cum.last().copied().unwrap_or(1);
        let r = rng.random_range(0..total);
        let i = self.phone_cum.partition_point(|&c| c <= r);
        i.min(self.phones.len() - 1) as u32
    }
}

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

/// Result of sending one business message.
struct Sent {
    /// Last event time of the message.
    last: u64,
    /// Delivery time, if delivered.
    delivered: Option<u64>,
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
                && top.0.t <= now
                && let Some(Pending(e)) = self.heap.pop()
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
        self.heap.push(Pending(Ev {
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
        }));
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

    fn pick_user(&mut self) -> u32 {
        let n = self.w.users.len() as u32;
        if self.permille(400) {
            // a small set of very active users (every 20th)
            let hot = (n / 20).max(1);
            (self.rng.random_range(0..hot) * 20).min(n - 1)
        } else {
            self.rng.random_range(0..n)
        }
    }

    fn user_session(&mut self, t: u64) {
        let mut u = 0;
        let mut free = false;
        for _ in 0..4 {
            u = self.pick_user();
            if self.st[u as usize].busy <= t {
                free = true;
                break;
            }
        }
        let home = self.w.home[u as usize];
        let nphones = self.w.phones.len() as u32;
        // 8% of sessions (and any with a user already in a session) go to
        // another business: a different pair, not tracked
        let other = nphones > 1 && (!free || self.permille(80));
        let (phone, track) = if other {
            let mut p = self.w.pick_phone(&mut self.rng);
            if p == home {
                p = (p + 1) % nphones;
            }
            (p, false)
        } else {
            (home, free)
        };
        let referral = self.permille(50);
        let exchanges = match self.rng.random_range(0..100u32) {
            0..40 => 1,
            40..70 => 2,
            70..85 => 3,
            85..95 => 4,
            _ => self.rng.random_range(5..=8),
        };
        let last = self.conversation(t, u, phone, track, referral, exchanges);
        if track {
            let s = &mut self.st[u as usize];
            s.busy = s.busy.max(last);
        }
    }

    /// A user writes, the bot answers; `exchanges` rounds. Returns the time of
    /// the last event.
    fn conversation(
        &mut self,
        t0: u64,
        u: u32,
        phone: u32,
        track: bool,
        referral: bool,
        exchanges: u32,
    ) -> u64 {
        let mut t = t0;
        let mut last_d = 0u64;
        let mut last = t0;
        let mut last_in = t0;
        for ex in 0..exchanges {
            let ad = if referral && ex == 0 {
                1 + self.rng.random_range(0..ADS_PER_WABA) as u8
            } else {
                0
            };
            let id = self.next_msg();
            self.push(t, IN, 0, id, u, phone, ad);
            last_in = t;
            last = last.max(t);
            if track {
                let s = &mut self.st[u as usize];
                s.last_in = t;
                if ad > 0 {
                    s.ref_t = t;
                    s.ref_used = false;
                }
            }
            let replies = match self.rng.random_range(0..1000u32) {
                0..30 => 0,
                30..630 => 1,
                630..900 => 2,
                _ => 3,
            };
            let mut tb = t + self.between(700, 4000);
            for _ in 0..replies {
                // bots sometimes answer with a utility template (order status)
                let tmpl = if self.permille(40) {
                    1 + self.pick_template(1)
                } else {
                    0
                };
                let s = self.outbound(tb, u, phone, tmpl, track, &mut last_d, None);
                last = last.max(s.last);
                tb += self.between(800, 6000);
            }
            let gap = match self.rng.random_range(0..1000u32) {
                0..650 => self.between(15 * SEC, 3 * MIN),
                650..850 => self.between(3 * MIN, 40 * MIN),
                850..950 => self.between(HOUR, 12 * HOUR),
                _ => self.between(20 * HOUR, 30 * HOUR),
            };
            t = tb.max(last_d) + gap;
        }
        // an agent follows up much later with a free-form message: outside
        // the 24 h window Meta refuses it (131047 re-engagement)
        if self.permille(40) {
            let tf = last_in + self.between(18 * HOUR, 30 * HOUR);
            let forced = (tf >= last_in + DAY).then_some(ERR_REENGAGEMENT);
            let s = self.outbound(tf, u, phone, 0, track, &mut last_d, forced);
            last = last.max(s.last);
        }
        last
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

    /// Sends one business message at `t` and schedules its statuses.
    #[allow(clippy::too_many_arguments)]
    fn outbound(
        &mut self,
        t: u64,
        u: u32,
        phone: u32,
        tmpl: u8,
        track: bool,
        last_d: &mut u64,
        forced_fail: Option<u8>,
    ) -> Sent {
        let id = self.next_msg();
        self.push(t, OUT, 0, id, u, phone, tmpl);
        let fail_p = match tmpl.checked_sub(1).map(|i| TEMPLATES_MSG[i as usize].1) {
            Some(0) => 55,
            Some(1) => 25,
            Some(_) => 20,
            None => 12,
        };
        let ts = t + self.between(150, 2500);
        let mut r = self.rng.random_range(0..1000u32);
        if forced_fail.is_some() || r < fail_p {
            let err = match forced_fail {
                Some(e) => e,
                None => match self.rng.random_range(0..10u32) {
                    0..6 => 0,
                    6..8 => 2,
                    8 => 3,
                    _ => 4,
                },
            };
            let tf = t + self.between(300, 6000);
            if forced_fail.is_none() && self.permille(400) {
                self.push(ts, ST, SENT, id, u, phone, 0);
                let tf = tf.max(ts + 100);
                self.push(tf, ST, FAILED, id, u, phone, err);
                return Sent {
                    last: tf,
                    delivered: None,
                };
            }
            self.push(tf, ST, FAILED, id, u, phone, err);
            return Sent {
                last: tf,
                delivered: None,
            };
        }
        r -= fail_p;
        if r < 20 {
            // only `sent`: the phone never came back
            self.push(ts, ST, SENT, id, u, phone, 0);
            return Sent {
                last: ts,
                delivered: None,
            };
        }
        let read_only = r < 50;
        let mut d = ts + self.between(80, 4000);
        if self.permille(80) {
            d += self.between(MIN, 8 * HOUR); // phone offline for a while
        }
        // messages reach a phone in order
        d = d.max(*last_d);
        *last_d = d;
        let (origin, conv) = if track {
            self.conversation_at(u, d)
        } else {
            (O_NONE, 0)
        };
        self.push_meta(ts, ST, SENT, id, u, phone, 0, origin, conv, true);
        if read_only {
            self.push_meta(d, ST, READ, id, u, phone, 0, origin, conv, false);
            return Sent {
                last: d,
                delivered: Some(d),
            };
        }
        self.push_meta(d, ST, DELIVERED, id, u, phone, 0, origin, conv, false);
        let mut last = d;
        if self.permille(720) {
            let rt = d + match self.rng.random_range(0..10u32) {
                0..3 => self.between(0, 1500), // chat open
                3..8 => self.between(2 * SEC, 10 * MIN),
                _ => self.between(10 * MIN, 20 * HOUR),
            };
            self.push(rt, ST, READ, id, u, phone, 0);
            last = rt;
        }
        Sent {
            last,
            delivered: Some(d),
        }
    }

    /// The conversation Meta reports for a business message of the user's
    /// home pair delivered at `d` (CBP v1 rules; none outside CBP v1).
    fn conversation_at(&mut self, u: u32, d: u64) -> (u8, u64) {
        if !(CBP1_FROM..CBP2_FROM).contains(&d) {
            return (O_NONE, 0);
        }
        let s = &mut self.st[u as usize];
        if s.conv_exp > d && s.conv_open <= d {
            return (s.conv_origin, s.conv_open);
        }
        let origin = if s.ref_t != 0 && !s.ref_used && s.ref_t <= d && d < s.ref_t + DAY {
            s.ref_used = true;
            O_REFERRAL
        } else if s.last_in != 0 && s.last_in <= d && d < s.last_in + DAY {
            O_USER
        } else {
            O_BUSINESS
        };
        s.conv_open = d;
        s.conv_exp = d + conversation_len(origin, d);
        s.conv_origin = origin;
        (origin, d)
    }

    /// A business sends a template to users of one phone who have not written
    /// recently (marketing: a batch; utility/authentication: one to three).
    fn campaign(&mut self, t: u64, category: u8) {
        let phone = self.w.pick_phone(&mut self.rng);
        let tmpl = 1 + self.pick_template(category);
        let n = match category {
            0 => self.rng.random_range(2..=25u32),
            1 => self.rng.random_range(1..=3u32),
            _ => 1,
        };
        let reply_p = match category {
            0 => 100,
            1 => 60,
            _ => 20,
        };
        let mut ti = t;
        for _ in 0..n {
            if let Some(u) = self.campaign_user(phone, ti) {
                let mut last_d = 0;
                let s = self.outbound(ti, u, phone, tmpl, true, &mut last_d, None);
                let mut busy = s.last;
                if let Some(d) = s.delivered
                    && self.permille(reply_p)
                {
                    let tr = d + self.between(20 * SEC, 3 * HOUR);
                    let ex = self.rng.random_range(1..=3u32);
                    busy = busy.max(self.conversation(tr, u, phone, true, false, ex));
                }
                let st = &mut self.st[u as usize];
                st.busy = st.busy.max(busy);
            }
            ti += self.between(80, 700);
        }
    }

    fn campaign_user(&mut self, phone: u32, t: u64) -> Option<u32> {
        let p = &self.w.phones[phone as usize];
        let (lo, hi) = (p.lo, p.hi);
        if hi <= lo {
            return None;
        }
        for _ in 0..6 {
            let u = self.rng.random_range(lo..hi);
            let s = &self.st[u as usize];
            if s.busy <= t && (s.last_in == 0 || s.last_in + DAY <= t) {
                return Some(u);
            }
        }
        None
    }
}

/// Length of a CBP v1 conversation opened at `open` with `origin`.
pub(crate) fn conversation_len(origin: u8, open: u64) -> u64 {
    if origin == O_REFERRAL && open >= FEP72_FROM {
        3 * DAY
    } else {
        DAY
    }
}
