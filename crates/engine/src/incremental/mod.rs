//! Billing kept up to date as events arrive, in two parts. [`Incremental`]
//! is the events side: the ledger and each pair's share of its canonical
//! events, folded in one event at a time; each fold marks the pairs whose
//! events changed. [`Billed`] is the billing side: it re-derives only the
//! marked pairs and re-rates only what they changed (see [`billed`]). The
//! service keeps the two behind separate locks, so that billing for a
//! reader does not hold up the writer's folds.

mod billed;
mod names;

use std::collections::BTreeSet;

pub use billed::Billed;

use crate::event::Event;
use crate::grow::Chunked;
use crate::ledger::{CapacityError, Checked, IngestOutcome, Ledger, MessageView, Rejection};
use crate::live::PairLog;

/// A ledger with each pair's share of its events, and the pairs changed
/// since [`Incremental::take_changed`] last took them.
pub struct Incremental {
    ledger: Ledger,
    /// Per pair index, its share of the canonical events.
    logs: Chunked<PairLog>,
    /// Per message index, its canonical events as the pair logs hold them.
    views: Chunked<Option<MessageView>>,
    changed: BTreeSet<u32>,
}

impl Incremental {
    pub fn new(ledger: Ledger) -> Incremental {
        Incremental {
            ledger,
            logs: Chunked::default(),
            views: Chunked::default(),
            changed: BTreeSet::new(),
        }
    }

    /// [`Ledger::set_length_limits`].
    pub fn set_length_limits(&mut self, on: bool) {
        self.ledger.set_length_limits(on);
    }

    pub fn set_provider(&mut self, provider: Option<crate::carriers::Provider>) {
        self.ledger.set_provider(provider);
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The pair's share of the canonical events, if it has any.
    pub fn pair_log(&self, pair: u32) -> Option<&PairLog> {
        self.logs.get(pair as usize)
    }

    /// [`Incremental::pair_log`] by the pair's names (`user` as digits).
    pub fn pair_log_of(&self, waba: &str, phone: &str, user: &str) -> Option<&PairLog> {
        self.pair_log(self.ledger.billing_pair_of(waba, phone, user)?)
    }

    /// Validates and folds one group of events (as [`Ledger::ingest`]) and
    /// marks what they changed.
    pub fn ingest(&mut self, events: &[Event<'_>]) -> Result<IngestOutcome, Rejection> {
        let outcome = self.ledger.ingest(events)?;
        // A duplicate may still carry the copy that is canonical now (F6).
        for e in events {
            // Rules P6: a moved phone's events are kept under its first WABA.
            let config = self.ledger.config();
            let waba = config.identity_waba(&e.waba, &e.phone).unwrap_or(&e.waba);
            if let Some(msg) = self.ledger.message_index(waba, &e.id) {
                self.mirror(msg);
            }
        }
        self.relink();
        Ok(outcome)
    }

    /// Folds one event validated elsewhere (as [`Ledger::apply`]) and marks
    /// what it changed; false when it was a duplicate.
    pub fn apply(&mut self, c: &Checked<'_>) -> Result<bool, CapacityError> {
        let new_event = self.ledger.apply(c)?;
        // A duplicate may still carry the copy that is canonical now (F6).
        if let Some(msg) = self.ledger.message_index(&c.event.waba, &c.event.id) {
            self.mirror(msg);
        }
        self.relink();
        Ok(new_event)
    }

    /// Rules F9: when a business-scoped id is linked to a number (or to
    /// a smaller one), the messages of the pairs it names move to the
    /// number's pair.
    fn relink(&mut self) {
        let relinked = self.ledger.take_relinked();
        if relinked.is_empty() {
            return;
        }
        for (_, before) in relinked {
            let ids = self.logs.get(before as usize).map(PairLog::ids);
            let waba = self.ledger.pair_names(before).0.to_owned();
            for id in ids.unwrap_or_default() {
                if let Some(msg) = self.ledger.message_index(&waba, &id) {
                    self.mirror(msg);
                }
            }
        }
        // A group message's record is its participant's (G1), whose pair
        // may be one that moved.
        for msg in self.ledger.group_messages() {
            self.mirror(msg);
        }
    }

    /// Whether folds changed a pair since the last
    /// [`Incremental::take_changed`].
    #[cfg(test)]
    pub(crate) fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// The pairs changed since the last call, for [`Billed::derive`].
    pub fn take_changed(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// Copies message `msg`'s canonical events into the pair logs, moving
    /// them when a copy with another pair became canonical (F6), and marks
    /// every pair it left or joined.
    fn mirror(&mut self, msg: u32) {
        let view = self.ledger.view_of(msg);
        let i = msg as usize;
        let before = self.views.at(i).replace(view);
        if before == Some(view) {
            return;
        }
        let id = self.ledger.message_id(msg);
        let old = before.as_ref().map(MessageView::pairs).unwrap_or_default();
        let now = view.pairs();
        for (slot, pair) in old.iter().enumerate() {
            let Some(pair) = pair.filter(|p| Some(*p) != now[slot]) else {
                continue;
            };
            let log = self.logs.at(pair as usize);
            match slot {
                0 => log.set_inbound(id, None),
                1 => log.set_outbound(id, None),
                _ => log.set_delivery(id, None),
            }
        }
        if let Some((at, pair, referral)) = view.inbound {
            let log = self.logs.at(pair as usize);
            log.set_inbound(id, Some((at, referral)));
        }
        if let Some((at, pair, template)) = view.outbound {
            let log = self.logs.at(pair as usize);
            log.set_outbound(id, Some((at, template)));
        }
        if let Some((at, pair)) = view.delivery {
            let template = view.template();
            let log = self.logs.at(pair as usize);
            log.set_delivery(id, Some((at, template, msg)));
        }
        self.changed.extend(old.into_iter().chain(now).flatten());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::EngineConfig;
    use crate::event::{EventBody, Status};
    use crate::tariff::RateBook;
    use crate::time::{Instant, Month, NANOS_PER_SEC};

    /// Seconds after 2022-03-01T00:00:00Z (cbp-2022, a UTC WABA).
    fn at(secs: i64) -> Instant {
        Instant((1_646_092_800 + secs) * NANOS_PER_SEC)
    }

    const DAY: i64 = 86_400;

    fn event(user: &str, id: &str, secs: i64, body: EventBody<'static>) -> Event<'static> {
        Event {
            ts: at(secs),
            waba: "W1".into(),
            phone: "P1".into(),
            user: user.to_owned().into(),
            id: id.to_owned().into(),
            body,
            verdict: None,
            also: None,
        }
    }

    fn ingest(live: &mut Incremental, events: &[Event<'_>]) {
        live.ingest(events).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_late_event_re_derives_only_its_pair_and_waba_month() {
        let mut live = Incremental::new(Ledger::new(EngineConfig::new(), crate::HashKey::fixed()));
        let mut billed = Billed::new(EngineConfig::new(), Arc::new(RateBook::new()));
        // Two users, each with a conversation in March and one in April.
        for user in ["5511999990001", "5511999990002"] {
            for (month, day) in [("mar", 9), ("apr", 31 + 4)] {
                let secs = day * DAY;
                ingest(
                    &mut live,
                    &[
                        event(
                            user,
                            &format!("{user}-{month}-in"),
                            secs,
                            EventBody::Inbound { referral: false },
                        ),
                        event(
                            user,
                            &format!("{user}-{month}-out"),
                            secs + 60,
                            EventBody::Status(Status::Delivered),
                        ),
                    ],
                );
            }
        }
        billed.settle(&mut live);
        assert!(!live.has_changes() && billed.is_rated());
        let ledger = live.ledger();
        let first = ledger.pair_index("W1", "P1", "5511999990001");
        let Some(first) = first else {
            panic!("no pair for the first user")
        };
        let waba = ledger.pair(first).waba;
        let march = Month::parse("2022-03").unwrap_or_else(|| panic!("month"));

        // A business-initiated message to the first user, delivered on
        // 20 March, arrives after April's traffic.
        let late = [event(
            "5511999990001",
            "late",
            19 * DAY,
            EventBody::Status(Status::Delivered),
        )];
        ingest(&mut live, &late);
        let changed = live.take_changed();
        assert_eq!(changed, [first]);
        billed.derive(&live, &changed);
        assert_eq!(billed.dirty_months(), BTreeSet::from([(waba, march)]));
        billed.rate();
        assert!(!live.has_changes() && billed.is_rated());

        // Its duplicate changes nothing, so nothing is re-derived.
        ingest(&mut live, &late);
        assert!(!live.has_changes());
    }

    /// Two messages to one user delivered in the same second are two
    /// records that start at the same instant: A5 orders them by message
    /// id, which rating reads from the names copied while deriving.
    #[test]
    fn records_of_one_pair_that_start_together_are_ordered_by_opener_id_as_in_batch() {
        // 2025-07-08, per-message pricing: each delivery is a record.
        let july = 1_752_000_000 - 1_646_092_800;
        let mut live = Incremental::new(Ledger::new(EngineConfig::new(), crate::HashKey::fixed()));
        let mut billed = Billed::new(EngineConfig::new(), Arc::new(RateBook::new()));
        for id in ["m-b", "m-c", "m-a"] {
            let delivered = event(
                "5511999990001",
                id,
                july,
                EventBody::Status(Status::Delivered),
            );
            ingest(&mut live, &[delivered]);
            billed.settle(&mut live);
        }
        let ledger = live.ledger();
        let book = RateBook::new();
        let batch = crate::billing::bill(ledger, &book);
        let openers = |records: &[crate::billing::Record]| -> Vec<String> {
            records
                .iter()
                .map(|r| ledger.message_id(r.opened_by).to_owned())
                .collect()
        };
        let incremental: Vec<Vec<String>> = billed.months().map(|m| openers(&m.records)).collect();
        let expected: Vec<Vec<String>> = batch.months.iter().map(|m| openers(&m.records)).collect();
        assert_eq!(incremental, [["m-a", "m-b", "m-c"]]);
        assert_eq!(incremental, expected);
    }
}
