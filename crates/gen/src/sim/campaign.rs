//! Template campaigns: a business writes first to users of one phone who have
//! not written recently; some of them answer.

use rand::RngExt;

use super::{DAY, HOUR, SEC, Sim};

impl Sim<'_> {
    /// A business sends a template to users of one phone who have not written
    /// recently (marketing: a batch; utility/authentication: one to three).
    pub(super) fn campaign(&mut self, t: u64, category: u8) {
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
