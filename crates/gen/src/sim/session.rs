//! User sessions: a user writes (sometimes from a Click to WhatsApp ad) and a
//! bot answers, for a few exchanges.

use rand::RngExt;

use super::{ADS_PER_WABA, DAY, ERR_REENGAGEMENT, HOUR, IN, MIN, SEC, Sim};

impl Sim<'_> {
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

    pub(super) fn user_session(&mut self, t: u64) {
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
    pub(super) fn conversation(
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
}
