//! One business message and its statuses: failed, only sent, read without a
//! `delivered`, or delivered and maybe read; under CBP v1 the statuses carry
//! the conversation Meta would report for the user's home pair.

use rand::RngExt;

use super::{
    CBP1_FROM, CBP2_FROM, DAY, DELIVERED, FAILED, FEP72_FROM, HOUR, MIN, O_BUSINESS, O_NONE,
    O_REFERRAL, O_USER, OUT, READ, SEC, SENT, ST, Sim, TEMPLATES_MSG,
};

/// Result of sending one business message.
pub(super) struct Sent {
    /// Last event time of the message.
    pub(super) last: u64,
    /// Delivery time, if delivered.
    pub(super) delivered: Option<u64>,
}

/// The message whose statuses are being scheduled.
#[derive(Clone, Copy)]
struct Msg {
    id: u64,
    user: u32,
    phone: u32,
}

/// Per mille of messages that fail, by template (1 + index, 0 = free-form).
fn fail_permille(tmpl: u8) -> u32 {
    match tmpl.checked_sub(1).map(|i| TEMPLATES_MSG[i as usize].1) {
        Some(0) => 55,
        Some(1) => 25,
        Some(_) => 20,
        None => 12,
    }
}

impl Sim<'_> {
    /// Sends one business message at `t` and schedules its statuses.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn outbound(
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
        let m = Msg { id, user: u, phone };
        let fail_p = fail_permille(tmpl);
        let ts = t + self.between(150, 2500);
        let r = self.rng.random_range(0..1000u32);
        if forced_fail.is_some() || r < fail_p {
            return self.fail(m, t, ts, forced_fail);
        }
        match r - fail_p {
            // only `sent`: the phone never came back
            0..20 => self.sent_only(m, ts),
            r => self.deliver(m, ts, r < 50, track, last_d),
        }
    }

    /// A failed message (with `forced` error index, or a random one), the
    /// failure sometimes preceded by `sent` at `ts`.
    fn fail(&mut self, m: Msg, t: u64, ts: u64, forced: Option<u8>) -> Sent {
        let err = match forced {
            Some(e) => e,
            None => self.random_error(),
        };
        let mut tf = t + self.between(300, 6000);
        if forced.is_none() && self.permille(400) {
            self.push(ts, ST, SENT, m.id, m.user, m.phone, 0);
            tf = tf.max(ts + 100);
        }
        self.push(tf, ST, FAILED, m.id, m.user, m.phone, err);
        Sent {
            last: tf,
            delivered: None,
        }
    }

    /// An index into `ERRORS` other than re-engagement (which only a
    /// follow-up outside the window gets).
    fn random_error(&mut self) -> u8 {
        match self.rng.random_range(0..10u32) {
            0..6 => 0,
            6..8 => 2,
            8 => 3,
            _ => 4,
        }
    }

    fn sent_only(&mut self, m: Msg, ts: u64) -> Sent {
        self.push(ts, ST, SENT, m.id, m.user, m.phone, 0);
        Sent {
            last: ts,
            delivered: None,
        }
    }

    /// `sent` at `ts`, then either `read` alone (`read_only`: the
    /// `delivered` status is lost) or `delivered` and maybe `read`.
    fn deliver(&mut self, m: Msg, ts: u64, read_only: bool, track: bool, last_d: &mut u64) -> Sent {
        let d = self.delivery_time(ts, last_d);
        let (origin, conv) = if track {
            self.conversation_at(m.user, d)
        } else {
            (O_NONE, 0)
        };
        self.push_meta(ts, ST, SENT, m.id, m.user, m.phone, 0, origin, conv, true);
        if read_only {
            self.push_meta(d, ST, READ, m.id, m.user, m.phone, 0, origin, conv, false);
            return Sent {
                last: d,
                delivered: Some(d),
            };
        }
        self.push_meta(
            d, ST, DELIVERED, m.id, m.user, m.phone, 0, origin, conv, false,
        );
        let mut last = d;
        if self.permille(720) {
            let rt = d + self.read_delay();
            self.push(rt, ST, READ, m.id, m.user, m.phone, 0);
            last = rt;
        }
        Sent {
            last,
            delivered: Some(d),
        }
    }

    /// When a message sent at `ts` reaches the phone; messages reach a phone
    /// in order, so never before the previous one (`last_d`, updated).
    fn delivery_time(&mut self, ts: u64, last_d: &mut u64) -> u64 {
        let mut d = ts + self.between(80, 4000);
        if self.permille(80) {
            d += self.between(MIN, 8 * HOUR); // phone offline for a while
        }
        d = d.max(*last_d);
        *last_d = d;
        d
    }

    /// Time from delivery to read.
    fn read_delay(&mut self) -> u64 {
        match self.rng.random_range(0..10u32) {
            0..3 => self.between(0, 1500), // chat open
            3..8 => self.between(2 * SEC, 10 * MIN),
            _ => self.between(10 * MIN, 20 * HOUR),
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
}

/// Length of a CBP v1 conversation opened at `open` with `origin`.
pub(crate) fn conversation_len(origin: u8, open: u64) -> u64 {
    if origin == O_REFERRAL && open >= FEP72_FROM {
        3 * DAY
    } else {
        DAY
    }
}
