//! The set of distinct events (rules F6), compactly stored.
//!
//! Ingest validates a group of events (a line or a webhook body) as a whole,
//! then folds each into per-message slots. Whatever the order of arrival and
//! however many copies come, a slot ends up holding the canonical copy (the
//! earliest, ties by pair in byte order), so the ledger depends only on the
//! set of events.

use std::cmp::Ordering;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::EngineConfig;
use crate::era::EraClock;
use crate::event::{Event, EventBody, Status, TemplateCategory};
use crate::intern::Interner;
use crate::market::{Region, region_of};

/// Why a group of events was rejected. Nothing of the group is stored.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error(
        "user {user:?} is not an international phone number whose country can be determined"
    )]
    UnknownRegion { user: String },
    #[error(
        "event time {at} is before {first} 00:00 {tz}, the start of the first pricing era: no era applies"
    )]
    BeforeFirstEra {
        at: String,
        first: jiff::civil::Date,
        tz: String,
    },
}

/// What ingesting a group did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: u64,
    pub duplicates: u64,
}

/// One event's contribution to a message: time, pair and a small payload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub at: i64,
    pub pair: u32,
    pub flag: u8,
}

const NONE: Slot = Slot {
    at: i64::MAX,
    pair: u32::MAX,
    flag: 0,
};

impl Slot {
    pub fn get(self) -> Option<Slot> {
        (self.pair != u32::MAX).then_some(self)
    }
}

const SEEN_INBOUND: u8 = 1;
const SEEN_OUTBOUND: u8 = 2;
const SEEN_SENT: u8 = 4;
const SEEN_DELIVERED: u8 = 8;
const SEEN_READ: u8 = 16;
const SEEN_FAILED: u8 = 32;

#[derive(Copy, Clone, Debug)]
pub(crate) struct Message {
    /// The inbound message with this id; `flag` 1 = entry point.
    pub inbound: Slot,
    /// The outbound record; `flag` = template category code (0 = none).
    pub outbound: Slot,
    /// The earliest `delivered`/`read` status (F2, F8).
    pub delivery: Slot,
    seen: u8,
}

const EMPTY_MESSAGE: Message = Message {
    inbound: NONE,
    outbound: NONE,
    delivery: NONE,
    seen: 0,
};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PairKey {
    pub waba: u32,
    pub phone: u32,
    pub user: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Waba {
    pub clock: EraClock,
}

pub(crate) fn template_code(t: Option<TemplateCategory>) -> u8 {
    match t {
        None => 0,
        Some(TemplateCategory::Marketing) => 1,
        Some(TemplateCategory::Utility) => 2,
        Some(TemplateCategory::Authentication) => 3,
    }
}

pub(crate) fn template_of(code: u8) -> Option<TemplateCategory> {
    match code {
        1 => Some(TemplateCategory::Marketing),
        2 => Some(TemplateCategory::Utility),
        3 => Some(TemplateCategory::Authentication),
        _ => None,
    }
}

#[derive(Clone, Debug)]
pub struct Ledger {
    config: EngineConfig,
    pub(crate) ids: Interner,
    pub(crate) messages: Vec<Message>,
    pub(crate) waba_names: Interner,
    pub(crate) wabas: Vec<Waba>,
    pub(crate) phones: Interner,
    pub(crate) users: Interner,
    pub(crate) regions: Vec<Region>,
    bad_users: FxHashSet<String>,
    pub(crate) pairs: Vec<PairKey>,
    pair_index: FxHashMap<PairKey, u32>,
    other_status_names: Interner,
    other_statuses: FxHashSet<(u32, u32)>,
    resolved: Vec<(u32, u32)>,
    accepted: u64,
    duplicates: u64,
}

impl Ledger {
    pub fn new(config: EngineConfig) -> Ledger {
        Ledger {
            config,
            ids: Interner::default(),
            messages: Vec::new(),
            waba_names: Interner::default(),
            wabas: Vec::new(),
            phones: Interner::default(),
            users: Interner::default(),
            regions: Vec::new(),
            bad_users: FxHashSet::default(),
            pairs: Vec::new(),
            pair_index: FxHashMap::default(),
            other_status_names: Interner::default(),
            other_statuses: FxHashSet::default(),
            resolved: Vec::new(),
            accepted: 0,
            duplicates: 0,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Distinct events accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Duplicate events seen so far (counted and skipped).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn n_messages(&self) -> usize {
        self.messages.len()
    }

    pub fn n_pairs(&self) -> usize {
        self.pairs.len()
    }

    pub fn message_id(&self, msg: u32) -> &str {
        self.ids.get(msg)
    }

    pub fn waba_name(&self, waba: u32) -> &str {
        self.waba_names.get(waba)
    }

    pub fn pair(&self, pair: u32) -> PairKey {
        self.pairs[pair as usize]
    }

    /// (waba, phone, user) of a pair.
    pub fn pair_names(&self, pair: u32) -> (&str, &str, &str) {
        let key = self.pairs[pair as usize];
        (
            self.waba_names.get(key.waba),
            self.phones.get(key.phone),
            self.users.get(key.user),
        )
    }

    pub(crate) fn region(&self, user: u32) -> Region {
        self.regions[user as usize]
    }

    pub(crate) fn clock(&self, waba: u32) -> &EraClock {
        &self.wabas[waba as usize].clock
    }

    /// Validates `events` as one group (rules/events.md: a body is accepted
    /// or rejected whole), then stores them.
    pub fn ingest(&mut self, events: &[Event<'_>]) -> Result<IngestOutcome, Rejection> {
        self.resolved.clear();
        for event in events {
            let waba = self.waba(&event.waba);
            let clock = &self.wabas[waba as usize].clock;
            if event.ts < clock.first_start() {
                let settings = self.config.waba(&event.waba);
                return Err(Rejection::BeforeFirstEra {
                    at: event.ts.rfc3339(),
                    first: self.config.timeline.first_date(),
                    tz: settings.timezone_name.clone(),
                });
            }
            let user = self.user(&event.user)?;
            self.resolved.push((waba, user));
        }
        let mut outcome = IngestOutcome::default();
        for i in 0..events.len() {
            let (waba, user) = self.resolved[i];
            if self.apply(&events[i], waba, user) {
                outcome.accepted += 1;
            } else {
                outcome.duplicates += 1;
            }
        }
        self.accepted += outcome.accepted;
        self.duplicates += outcome.duplicates;
        Ok(outcome)
    }

    fn waba(&mut self, name: &str) -> u32 {
        let (index, new) = self.waba_names.intern(name);
        if new {
            let tz = &self.config.waba(name).timezone;
            self.wabas.push(Waba {
                clock: EraClock::new(&self.config.timeline, tz),
            });
        }
        index
    }

    fn user(&mut self, digits: &str) -> Result<u32, Rejection> {
        if let Some(index) = self.users.find(digits) {
            return Ok(index);
        }
        let reject = || Rejection::UnknownRegion {
            user: digits.to_owned(),
        };
        if self.bad_users.contains(digits) {
            return Err(reject());
        }
        match region_of(digits) {
            Some(region) => {
                let (index, _) = self.users.intern(digits);
                self.regions.push(region);
                Ok(index)
            }
            None => {
                self.bad_users.insert(digits.to_owned());
                Err(reject())
            }
        }
    }

    /// Folds one validated event in; false when it was a duplicate.
    fn apply(&mut self, event: &Event<'_>, waba: u32, user: u32) -> bool {
        let (phone, _) = self.phones.intern(&event.phone);
        let key = PairKey { waba, phone, user };
        let next_pair = u32::try_from(self.pairs.len()).unwrap_or(u32::MAX);
        let pair = *self.pair_index.entry(key).or_insert(next_pair);
        if pair == next_pair {
            self.pairs.push(key);
        }
        let (msg, new) = self.ids.intern(&event.id);
        if new {
            self.messages.push(EMPTY_MESSAGE);
        }
        let at = event.ts.0;
        let (bit, slot, flag) = match &event.body {
            EventBody::Inbound { referral } => (SEEN_INBOUND, SlotKind::Inbound, u8::from(*referral)),
            EventBody::Outbound { template } => {
                (SEEN_OUTBOUND, SlotKind::Outbound, template_code(*template))
            }
            EventBody::Status(Status::Sent) => (SEEN_SENT, SlotKind::None, 0),
            EventBody::Status(Status::Delivered) => (SEEN_DELIVERED, SlotKind::Delivery, 0),
            EventBody::Status(Status::Read) => (SEEN_READ, SlotKind::Delivery, 0),
            EventBody::Status(Status::Failed) => (SEEN_FAILED, SlotKind::None, 0),
            EventBody::Status(Status::Other(name)) => {
                let (name, _) = self.other_status_names.intern(name);
                return self.other_statuses.insert((msg, name));
            }
        };
        let new_event = self.messages[msg as usize].seen & bit == 0;
        self.messages[msg as usize].seen |= bit;
        let candidate = Slot { at, pair, flag };
        let message = self.messages[msg as usize];
        let current = match slot {
            SlotKind::Inbound => message.inbound,
            SlotKind::Outbound => message.outbound,
            SlotKind::Delivery => message.delivery,
            SlotKind::None => return new_event,
        };
        if self.slot_order(candidate, current) == Ordering::Less {
            let message = &mut self.messages[msg as usize];
            match slot {
                SlotKind::Inbound => message.inbound = candidate,
                SlotKind::Outbound => message.outbound = candidate,
                SlotKind::Delivery => message.delivery = candidate,
                SlotKind::None => {}
            }
        }
        new_event
    }

    /// F6: the earliest copy wins; ties by pair in byte order, then payload.
    fn slot_order(&self, a: Slot, b: Slot) -> Ordering {
        if b.get().is_none() {
            return Ordering::Less;
        }
        a.at.cmp(&b.at)
            .then_with(|| self.pair_order(a.pair, b.pair))
            .then(a.flag.cmp(&b.flag))
    }

    pub(crate) fn pair_order(&self, a: u32, b: u32) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let (wa, pa, ua) = self.pair_names(a);
        let (wb, pb, ub) = self.pair_names(b);
        (wa, pa, ua).cmp(&(wb, pb, ub))
    }
}

#[derive(Copy, Clone)]
enum SlotKind {
    Inbound,
    Outbound,
    Delivery,
    None,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;
    use std::borrow::Cow;

    fn ev(kind: EventBody<'static>, id: &'static str, secs: i64) -> Event<'static> {
        Event {
            ts: Instant(secs * crate::time::NANOS_PER_SEC),
            waba: Cow::Borrowed("W1"),
            phone: Cow::Borrowed("P1"),
            user: Cow::Borrowed("5511999990001"),
            id: Cow::Borrowed(id),
            body: kind,
        }
    }

    const MARCH_2022: i64 = 1_646_092_800;

    #[test]
    fn f6_same_type_and_id_is_one_event_and_earliest_copy_counts() {
        let mut ledger = Ledger::new(EngineConfig::new());
        let late = ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022 + 60);
        let early = ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022 + 30);
        assert_eq!(ledger.ingest(&[late]).map(|o| o.accepted), Ok(1));
        assert_eq!(ledger.ingest(&[early]).map(|o| o.duplicates), Ok(1));
        let delivery = ledger.messages[0].delivery.get();
        assert_eq!(delivery.map(|s| s.at), Some((MARCH_2022 + 30) * 1_000_000_000));
        // A read of the same message is a different event.
        let read = ev(EventBody::Status(Status::Read), "m1", MARCH_2022 + 90);
        assert_eq!(ledger.ingest(&[read]).map(|o| o.accepted), Ok(1));
        assert_eq!(ledger.duplicates(), 1);
    }

    #[test]
    fn events_before_the_first_era_are_rejected() {
        let mut ledger = Ledger::new(EngineConfig::new());
        let old = ev(EventBody::Inbound { referral: false }, "m1", MARCH_2022 - 40 * 86_400);
        assert!(matches!(
            ledger.ingest(&[old]),
            Err(Rejection::BeforeFirstEra { .. })
        ));
        assert_eq!(ledger.accepted(), 0);
    }

    #[test]
    fn a_group_with_one_bad_user_is_rejected_whole() {
        let mut ledger = Ledger::new(EngineConfig::new());
        let good = ev(EventBody::Inbound { referral: false }, "m1", MARCH_2022);
        let mut bad = ev(EventBody::Inbound { referral: false }, "m2", MARCH_2022);
        bad.user = Cow::Borrowed("999123");
        assert!(matches!(
            ledger.ingest(&[good, bad]),
            Err(Rejection::UnknownRegion { .. })
        ));
        assert_eq!(ledger.n_messages(), 0);
    }
}
