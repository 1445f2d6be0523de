//! F6: folding an event into its message's record, so that each slot keeps
//! the canonical copy (the earliest; ties by pair in byte order, then by
//! payload) whatever the order of arrival.

use std::cmp::Ordering;

use super::messages::{
    Kept, Message, SEEN_DELIVERED, SEEN_FAILED, SEEN_INBOUND, SEEN_OUTBOUND, SEEN_READ, SEEN_SENT,
    Slot,
};
use super::validate::Checked;
use super::{Ledger, verdicts};
use crate::event::{Event, EventBody, Status, TemplateCategory, is_bsuid};
use crate::grow::CapacityError;
use crate::verdict::Verdict;

/// A template category as the ledger stores it (0 = not a template); its
/// order is F6's last tie-break between copies.
pub fn template_code(t: Option<TemplateCategory>) -> u8 {
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

impl Ledger {
    /// Folds one checked event in; false when it was a duplicate (F6).
    /// `c` must come from this ledger's validator ([`Ledger::validator`]):
    /// its hashes are under this ledger's key. An error leaves the event
    /// stored in part at most; the tables are full.
    pub fn apply(&mut self, c: &Checked<'_>) -> Result<bool, CapacityError> {
        let new_event = self.fold(c)?;
        if new_event {
            self.accepted += 1;
        } else {
            self.duplicates += 1;
        }
        Ok(new_event)
    }

    /// Whether folding `event` would change the ledger: an event it has not
    /// seen, or a copy that F6 prefers to the one a slot keeps. It changes
    /// nothing; the service logs only such events, so that its log holds
    /// each event once (plus the copies that came to replace one).
    pub fn would_change(&self, event: &Event<'_>) -> bool {
        if event
            .bsuid()
            .is_some_and(|b| self.would_link(&event.waba, &event.user, b))
        {
            return true;
        }
        let msg = self.message_index(&event.waba, &event.id);
        if self.would_regroup(msg, event) {
            return true;
        }
        let Some(msg) = msg else {
            return true;
        };
        if let Some(v) = &event.verdict
            && self.verdict_preferred(msg, event, v)
        {
            return true;
        }
        let (bit, slot) = match part_of(&event.body) {
            Part::Other(name) => {
                return self
                    .other_status_names
                    .lookup(name)
                    .is_none_or(|name| !self.other_statuses.contains(&(msg, name)));
            }
            Part::Slot(bit, slot, _) => (bit, slot),
        };
        let message = &self.messages.records[msg as usize];
        if message.seen & bit == 0 {
            return true;
        }
        let Some(current) = message.slot(slot) else {
            return false;
        };
        // As `slot_order`, with the event's pair by name (it may be new).
        copy_order(event) < (current.at, self.pair_names(current.pair), current.flag)
    }

    fn fold(&mut self, c: &Checked<'_>) -> Result<bool, CapacityError> {
        let event = &c.event;
        debug_assert_eq!(
            c.id_hash,
            self.messages.hash(&event.waba, &event.id),
            "checked by a validator of another key"
        );
        // Rules F9: a pair named by a business-scoped id, or a new link
        // (most copies that name both ids link nothing new).
        if is_bsuid(&event.user) {
            let pair = self.pair_of(c)?;
            self.note_pair(pair, &event.user)?;
        }
        if let Some(bsuid) = event.bsuid()
            && self.would_link(&event.waba, &event.user, bsuid)
        {
            // The number's pair first: every linked number has a region.
            self.pair_of(c)?;
            self.link(&event.waba, &event.user, bsuid)?;
        }
        let waba = self.intern_waba(&event.waba)?;
        let (msg, _) = self.messages.intern(waba, &event.id, c.id_hash)?;
        if let Some(provider) = c.off_period {
            self.flag(msg, event, provider);
        }
        if event.group().is_some() {
            self.note_group(msg, event, c.region)?;
        }
        if let Some(v) = &event.verdict
            && self.verdict_preferred(msg, event, v)
        {
            let at = (verdicts::rank(&event.body), event.ts.0);
            let existing = self.messages.records[msg as usize].verdict.map(|i| i.get());
            let i = self.verdicts.store(existing, at, v)?;
            self.messages.records[msg as usize].verdict = super::messages::NonMaxU32::new(i);
        }
        let (bit, slot, flag) = match part_of(&event.body) {
            Part::Slot(bit, slot, flag) => (bit, slot, flag),
            Part::Other(name) => {
                let (name, _) = self.other_status_names.intern(name)?;
                return Ok(self.other_statuses.insert((msg, name)));
            }
        };
        let message = self.messages.records[msg as usize];
        let new_event = message.seen & bit == 0;
        self.messages.records[msg as usize].seen |= bit;
        let current = message.slot(slot);
        // `sent` and `failed` only count for duplicates: no pair needed.
        if matches!(slot, SlotKind::None) {
            return Ok(new_event);
        }
        // Most copies are later than the slot's: they need no pair lookup.
        if current.is_some_and(|current| event.ts.0 > current.at) {
            return Ok(new_event);
        }
        let candidate = Slot {
            at: event.ts.0,
            pair: self.pair_of(c)?,
            flag,
        };
        if self.slot_order(candidate, current) == Ordering::Less {
            let message = &mut self.messages.records[msg as usize];
            let kept = Kept::new(candidate);
            match slot {
                SlotKind::Inbound => message.inbound = kept,
                SlotKind::Outbound => message.outbound = kept,
                SlotKind::Delivery => message.delivery = kept,
                SlotKind::None => {}
            }
        }
        Ok(new_event)
    }

    /// Whether `event`'s verdict comes before the one message `msg` keeps
    /// (or it keeps none): the earliest; then a `sent` before a `delivered`,
    /// `read`, `failed`, other statuses; then by what the verdicts say (two
    /// copies that say the same are the same verdict, whatever their pair).
    fn verdict_preferred(&self, msg: u32, event: &Event<'_>, v: &Verdict<'_>) -> bool {
        if !matches!(event.body, EventBody::Status(_)) {
            return false;
        }
        let record = self.messages.records[msg as usize].verdict;
        let Some(kept) = record.and_then(|i| self.verdicts.kept(i.get())) else {
            return true;
        };
        (event.ts.0, verdicts::rank(&event.body))
            .cmp(&(kept.at, kept.rank))
            .then_with(|| verdicts::content_order(v, &self.verdicts.render(kept)))
            == Ordering::Less
    }

    /// F6: the earliest copy wins; ties by pair in byte order, then payload.
    /// Any copy precedes none.
    fn slot_order(&self, a: Slot, b: Option<Slot>) -> Ordering {
        let Some(b) = b else {
            return Ordering::Less;
        };
        a.at.cmp(&b.at)
            .then_with(|| self.pair_order(a.pair, b.pair))
            .then(a.flag.cmp(&b.flag))
    }

    pub(crate) fn pair_order(&self, a: u32, b: u32) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        self.pair_names(a).cmp(&self.pair_names(b))
    }
}

#[derive(Copy, Clone)]
pub(super) enum SlotKind {
    Inbound,
    Outbound,
    Delivery,
    None,
}

/// Where an event goes in its message's record: its `seen` bit, its slot
/// and the slot's payload; or a status of another name.
pub(super) enum Part<'e> {
    Slot(u8, SlotKind, u8),
    Other(&'e str),
}

pub(super) fn part_of<'e>(body: &'e EventBody<'_>) -> Part<'e> {
    match body {
        EventBody::Inbound { referral } => {
            Part::Slot(SEEN_INBOUND, SlotKind::Inbound, u8::from(*referral))
        }
        EventBody::Outbound { template } => {
            Part::Slot(SEEN_OUTBOUND, SlotKind::Outbound, template_code(*template))
        }
        EventBody::Status(Status::Sent) => Part::Slot(SEEN_SENT, SlotKind::None, 0),
        EventBody::Status(Status::Delivered) => Part::Slot(SEEN_DELIVERED, SlotKind::Delivery, 0),
        EventBody::Status(Status::Read) => Part::Slot(SEEN_READ, SlotKind::Delivery, 0),
        EventBody::Status(Status::Failed) => Part::Slot(SEEN_FAILED, SlotKind::None, 0),
        EventBody::Status(Status::Other(name)) => Part::Other(name),
    }
}

/// Where a copy of an event stands in F6's order: earliest first, then
/// its pair in byte order, then its payload (as `Ledger::slot_order` ranks
/// the copies a slot holds).
pub fn copy_order<'e>(e: &'e Event<'_>) -> (i64, (&'e str, &'e str, &'e str), u8) {
    let payload = match part_of(&e.body) {
        Part::Slot(_, _, flag) => flag,
        Part::Other(_) => 0,
    };
    (e.ts.0, (&e.waba, &e.phone, &e.user), payload)
}

impl Message {
    /// The copy a slot of this kind keeps (none for `sent`/`failed`).
    fn slot(&self, kind: SlotKind) -> Option<Slot> {
        match kind {
            SlotKind::Inbound => self.inbound.get(),
            SlotKind::Outbound => self.outbound.get(),
            SlotKind::Delivery => self.delivery.get(),
            SlotKind::None => None,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::hash::HashKey;
    use crate::ledger::RegionCache;
    use crate::time::Instant;
    use std::borrow::Cow;
    use std::sync::Arc;

    pub(crate) fn ev(kind: EventBody<'static>, id: &'static str, secs: i64) -> Event<'static> {
        Event {
            ts: Instant(secs * crate::time::NANOS_PER_SEC),
            waba: Cow::Borrowed("W1"),
            phone: Cow::Borrowed("P1"),
            user: Cow::Borrowed("5511999990001"),
            id: Cow::Borrowed(id),
            body: kind,
            verdict: None,
            also: None,
        }
    }

    pub(crate) const MARCH_2022: i64 = 1_646_092_800;

    #[test]
    fn f6_same_type_and_id_is_one_event_and_earliest_copy_counts() {
        let mut ledger = Ledger::new(EngineConfig::new(), HashKey::fixed());
        let late = ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022 + 60);
        let early = ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022 + 30);
        assert_eq!(ledger.ingest(&[late]).map(|o| o.accepted), Ok(1));
        assert_eq!(ledger.ingest(&[early]).map(|o| o.duplicates), Ok(1));
        let delivery = ledger.messages.records[0].delivery.get();
        assert_eq!(
            delivery.map(|s| s.at),
            Some((MARCH_2022 + 30) * 1_000_000_000)
        );
        // A read of the same message is a different event.
        let read = ev(EventBody::Status(Status::Read), "m1", MARCH_2022 + 90);
        assert_eq!(ledger.ingest(&[read]).map(|o| o.accepted), Ok(1));
        assert_eq!(ledger.duplicates(), 1);
    }

    fn arbitrary_event() -> impl proptest::strategy::Strategy<Value = Event<'static>> {
        use proptest::prelude::*;
        let body = prop_oneof![
            any::<bool>().prop_map(|referral| EventBody::Inbound { referral }),
            (0u8..4).prop_map(|c| EventBody::Outbound {
                template: template_of(c)
            }),
            prop_oneof![
                Just(Status::Sent),
                Just(Status::Delivered),
                Just(Status::Read),
                Just(Status::Failed),
                Just(Status::Other(Cow::Borrowed("deleted"))),
            ]
            .prop_map(EventBody::Status),
        ];
        let ids = ["m0", "m1", "m2"];
        let users = ["5511999990001", "5511999990002"];
        (body, 0usize..3, 0i64..4, 0usize..2, any::<bool>()).prop_map(
            move |(body, id, secs, user, w2)| {
                let mut e = ev(body, ids[id], MARCH_2022 + secs);
                e.user = Cow::Borrowed(users[user]);
                if w2 {
                    e.waba = Cow::Borrowed("W2");
                }
                e
            },
        )
    }

    type Copy = (i64, String, u8);

    /// What a ledger holds, as far as billing and the counts can tell: per
    /// message id, each canonical copy with its pair by name (pair indices
    /// depend on arrival).
    #[allow(clippy::type_complexity)]
    fn held(ledger: &Ledger) -> (u64, Vec<(String, [Option<Copy>; 3])>, usize) {
        let names = |pair| format!("{:?}", ledger.pair_names(pair));
        let mut views: Vec<_> = (0..ledger.n_messages() as u32)
            .map(|m| {
                let v = ledger.view_of(m);
                let copies = [
                    v.inbound.map(|(at, p, f)| (at.0, names(p), u8::from(f))),
                    v.outbound
                        .map(|(at, p, t)| (at.0, names(p), template_code(t))),
                    v.delivery.map(|(at, p)| (at.0, names(p), 0)),
                ];
                (ledger.message_id(m).to_owned(), copies)
            })
            .collect();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        (ledger.accepted(), views, ledger.other_statuses.len())
    }

    proptest::proptest! {
        /// The service logs only events that `would_change` the ledger: the
        /// prediction matches what folding does, and folding just those
        /// events gives the ledger that folding all of them gives.
        #[test]
        fn would_change_predicts_the_fold_and_the_changing_events_rebuild_the_ledger(
            events in proptest::collection::vec(arbitrary_event(), 0..40)
        ) {
            // libphonenumber's metadata loads once for all cases.
            static REGIONS: std::sync::LazyLock<Arc<RegionCache>> =
                std::sync::LazyLock::new(|| Arc::new(RegionCache::new(HashKey::fixed())));
            let ledger = || {
                Ledger::with_regions(EngineConfig::new(), Arc::clone(&REGIONS), HashKey::fixed())
            };
            let (mut all, mut changing) = (ledger(), ledger());
            for e in &events {
                let predicted = all.would_change(e);
                let before = held(&all);
                all.ingest(std::slice::from_ref(e)).map_err(|r| {
                    proptest::test_runner::TestCaseError::fail(r.to_string())
                })?;
                proptest::prop_assert_eq!(predicted, held(&all) != before, "{:?}", e);
                if predicted {
                    changing.ingest(std::slice::from_ref(e)).map_err(|r| {
                        proptest::test_runner::TestCaseError::fail(r.to_string())
                    })?;
                }
            }
            let (_, views, others) = held(&all);
            let (_, changing_views, changing_others) = held(&changing);
            proptest::prop_assert_eq!(views, changing_views);
            proptest::prop_assert_eq!(others, changing_others);
        }
    }
}
