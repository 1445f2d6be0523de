//! Live answers for one pair: is the customer service window open, which
//! conversations are open, and what would delivering one more message do.
//! The service keeps a [`PairLog`] per pair and re-derives only that pair,
//! with the same era rules the batch billing runs.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::conversation::{Conversation, Delivered, Delivery, InboundItem, PairState, PairView};
use crate::derive::run_pair;
use crate::era::{EraClock, EraKind};
use crate::event::TemplateCategory;
use crate::time::{HOURS_24, Instant};

/// One pair's share of the ledger's canonical events (rules F6, F8): the
/// shell mirrors [`crate::ledger::MessageView`] into it after
/// each fold, so that live answers see exactly what billing sees.
#[derive(Clone, Debug, Default)]
pub struct PairLog {
    /// Entry point flag.
    inbound: TimeOrdered<bool>,
    outbound: TimeOrdered<Option<TemplateCategory>>,
    /// The template category of the message's outbound record wherever
    /// that record's pair is (F3), and the message's index in the ledger.
    delivery: TimeOrdered<(Option<TemplateCategory>, u32)>,
    /// The era rules run over all the pair's events, kept until one
    /// changes: a question at or after the pair's last event (the usual
    /// "now") reads it instead of re-deriving the whole history.
    derived: OnceLock<Derived>,
}

#[derive(Clone, Debug)]
struct Derived {
    state: PairState,
    inbound: Vec<InboundItem>,
}

/// Events by (time, message id), the order rules F6 and billing read them
/// in, so that a window check reads a prefix instead of sorting the pair.
#[derive(Clone, Debug)]
struct TimeOrdered<V> {
    by_time: BTreeMap<(Instant, String), V>,
    at_of: BTreeMap<String, Instant>,
}

impl<V> Default for TimeOrdered<V> {
    fn default() -> Self {
        TimeOrdered {
            by_time: BTreeMap::new(),
            at_of: BTreeMap::new(),
        }
    }
}

impl<V> TimeOrdered<V> {
    fn last_at(&self) -> Option<Instant> {
        self.by_time.last_key_value().map(|((at, _), _)| *at)
    }

    fn set(&mut self, id: &str, value: Option<(Instant, V)>) {
        if let Some(old) = self.at_of.remove(id) {
            self.by_time.remove(&(old, id.to_owned()));
        }
        if let Some((at, v)) = value {
            self.at_of.insert(id.to_owned(), at);
            self.by_time.insert((at, id.to_owned()), v);
        }
    }

    /// Events from `from` to `to`, both included, in (time, id) order.
    fn between(&self, from: Instant, to: Instant) -> impl Iterator<Item = (Instant, &str, &V)> {
        self.by_time
            .range((from, String::new())..)
            .take_while(move |((at, _), _)| *at <= to)
            .map(|((at, id), v)| (*at, id.as_str(), v))
    }
}

impl PairLog {
    /// The ids of the messages it holds an event of.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = (self.inbound.at_of.keys())
            .chain(self.outbound.at_of.keys())
            .chain(self.delivery.at_of.keys())
            .cloned()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(crate) fn set_inbound(&mut self, id: &str, value: Option<(Instant, bool)>) {
        self.derived.take();
        self.inbound.set(id, value);
    }

    pub(crate) fn set_outbound(
        &mut self,
        id: &str,
        value: Option<(Instant, Option<TemplateCategory>)>,
    ) {
        self.derived.take();
        self.outbound.set(id, value);
    }

    pub(crate) fn set_delivery(
        &mut self,
        id: &str,
        value: Option<(Instant, Option<TemplateCategory>, u32)>,
    ) {
        self.derived.take();
        self.delivery
            .set(id, value.map(|(at, template, msg)| (at, (template, msg))));
    }

    /// Everything billing derives the pair from: all its inbound and
    /// delivered messages, each in time order (ties by id, rules F6).
    pub(crate) fn derivation_input(&self) -> (Vec<InboundItem>, Vec<Delivered>) {
        let end = Instant(i64::MAX);
        (self.inbound_until(end), self.delivered_until(end))
    }

    /// The pair's messages from 24 h before `start` (the window that may
    /// have opened it) to `end`, in time order: what explains a conversation.
    pub fn timeline(&self, start: Instant, end: Instant) -> Vec<TimelineEntry> {
        let from = start.plus(-HOURS_24);
        let mut out: Vec<TimelineEntry> = Vec::new();
        for (at, id, referral) in self.inbound.between(from, end) {
            out.push(TimelineEntry {
                at,
                kind: "inbound",
                id: id.to_owned(),
                detail_key: "referral",
                detail: referral.then(|| "entry_point".to_owned()),
            });
        }
        for (at, id, template) in self.outbound.between(from, end) {
            out.push(TimelineEntry {
                at,
                kind: "outbound",
                id: id.to_owned(),
                detail_key: "template",
                detail: template.map(|c| c.as_str().to_owned()),
            });
        }
        for (at, id, _) in self.delivery.between(from, end) {
            out.push(TimelineEntry {
                at,
                kind: "delivered",
                id: id.to_owned(),
                detail_key: "",
                detail: None,
            });
        }
        // Same instant: a message is sent before it is delivered.
        let rank = |kind: &str| match kind {
            "inbound" => 0,
            "outbound" => 1,
            _ => 2,
        };
        out.sort_by(|a, b| (a.at, rank(a.kind), &a.id).cmp(&(b.at, rank(b.kind), &b.id)));
        out
    }

    /// Inbound messages up to `at`, in time order (ties by id).
    fn inbound_until(&self, at: Instant) -> Vec<InboundItem> {
        self.inbound
            .between(Instant(i64::MIN), at)
            .map(|(at, _, referral)| InboundItem {
                at,
                referral: *referral,
            })
            .collect()
    }

    /// Delivered business messages up to `at`, in time order (ties by id).
    fn delivered_until(&self, at: Instant) -> Vec<Delivered> {
        self.delivery
            .between(Instant(i64::MIN), at)
            .map(|(at, _, (template, msg))| Delivered {
                at,
                msg: *msg,
                template: *template,
            })
            .collect()
    }

    /// Runs the era rules over the pair's deliveries up to `at`, and `f`
    /// on the state they leave and the inbound messages up to `at`. `clock`
    /// must be the pair's WABA's (the same on every call: the run over all
    /// events is kept).
    fn with_state_at<R>(
        &self,
        clock: &EraClock,
        at: Instant,
        f: impl FnOnce(&PairState, &[InboundItem]) -> R,
    ) -> R {
        let run = |until: Instant| {
            let inbound = self.inbound_until(until);
            // Events before the first era never reach the ledger.
            // The window and the quote look ahead, where no verdict is yet:
            // wabill's own rules (rules V1).
            let state = run_pair(
                &inbound,
                &self.delivered_until(until),
                clock,
                None,
                &mut Vec::new(),
            );
            (state, inbound)
        };
        let last = self.inbound.last_at().max(self.delivery.last_at());
        if last.is_some_and(|last| at < last) {
            let (state, inbound) = run(at);
            return f(&state, &inbound);
        }
        let derived = self.derived.get_or_init(|| {
            let (state, inbound) = run(Instant(i64::MAX));
            Derived { state, inbound }
        });
        f(&derived.state, &derived.inbound)
    }
}

fn view<'a>(inbound: &'a [InboundItem], clock: &EraClock) -> PairView<'a> {
    PairView {
        inbound,
        fep_72h_from: clock.fep_72h_from,
        free_service_from: clock.free_service_from,
    }
}

/// One message of a conversation's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at: Instant,
    /// `inbound`, `outbound` (as sent) or `delivered` (earliest delivered or
    /// read status).
    pub kind: &'static str,
    pub id: String,
    /// The name of `detail` in the service's JSON.
    pub detail_key: &'static str,
    /// `entry_point` for an inbound referral; the template category.
    pub detail: Option<String>,
}

/// The pair's window at an instant (service.md `GET /v1/window`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// F4: the customer service window's end, when it is open.
    pub csw_expires_at: Option<Instant>,
    pub open_conversations: Vec<Conversation>,
    /// The end of an open free entry point conversation or window.
    pub free_entry_point_until: Option<Instant>,
}

impl Window {
    /// Free-form (non-template) messages may be sent only inside the
    /// customer service window (F4).
    pub fn freeform_allowed(&self) -> bool {
        self.csw_expires_at.is_some()
    }
}

pub fn window(log: &PairLog, clock: &EraClock, at: Instant) -> Window {
    log.with_state_at(clock, at, |state, inbound| window_in(state, inbound, at))
}

/// The window at `at`, given the pair's state and inbound messages up to it.
fn window_in(state: &PairState, inbound: &[InboundItem], at: Instant) -> Window {
    let csw_expires_at = inbound
        .last()
        .map(|last| last.at.plus(HOURS_24))
        .filter(|end| at < *end);
    Window {
        csw_expires_at,
        open_conversations: state
            .open_at(at)
            .map(|i| state.conversations[i].clone())
            .collect(),
        free_entry_point_until: state.fep.filter(|_| state.in_fep(at)).map(|(_, end)| end),
    }
}

/// What delivering one more message at an instant would do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub era: EraKind,
    /// Whether it opens a conversation (always, under a per-message era:
    /// each message is priced on its own).
    pub opens_conversation: bool,
    /// The conversation (or priced message) it falls in.
    pub conversation: Conversation,
}

/// The era rules applied to a hypothetical message delivered at `at`, after
/// everything the pair has up to then. None before the first era.
pub fn simulate(
    log: &PairLog,
    clock: &EraClock,
    at: Instant,
    template: Option<TemplateCategory>,
) -> Option<Outcome> {
    log.with_state_at(clock, at, |state, inbound| {
        simulate_in(state, inbound, clock, at, template)
    })
}

/// [`simulate`], given the pair's state and inbound messages up to `at`.
fn simulate_in(
    before: &PairState,
    inbound: &[InboundItem],
    clock: &EraClock,
    at: Instant,
    template: Option<TemplateCategory>,
) -> Option<Outcome> {
    let era = clock.era_at(at)?;
    let msg = Delivery {
        at,
        msg: None,
        template,
    };
    let mut state = before.clone();
    era.rules().deliver(&mut state, &msg, &view(inbound, clock));
    let opened = state.conversations.len() > before.conversations.len();
    // The message joined the conversation whose message count grew.
    let conversation = if opened {
        state.conversations.last().cloned()
    } else {
        state
            .conversations
            .iter()
            .zip(&before.conversations)
            .find(|(now, then)| now.messages != then.messages)
            .map(|(now, _)| now.clone())
    }?;
    Some(Outcome {
        era,
        opens_conversation: opened,
        conversation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::time::NANOS_PER_SEC;
    use proptest::prelude::*;

    /// A pair's log changed and asked in any order answers as the era rules
    /// run over its events up to the question: the kept run over all events
    /// never outlives a change, and questions before the last event do not
    /// read it.
    #[derive(Clone, Debug)]
    enum Step {
        Inbound(u8, i64, bool),
        Delivery(u8, i64, Option<TemplateCategory>),
        Remove(u8),
        Ask(i64, Option<TemplateCategory>),
    }

    fn step() -> impl Strategy<Value = Step> {
        let template = prop_oneof![
            Just(None),
            Just(Some(TemplateCategory::Marketing)),
            Just(Some(TemplateCategory::Utility)),
        ];
        // Hours over three days around the 2023-06-01 switch to cbp-2023.
        let hour = 0i64..72;
        prop_oneof![
            (0u8..6, hour.clone(), any::<bool>()).prop_map(|(m, h, r)| Step::Inbound(m, h, r)),
            (0u8..6, hour.clone(), template.clone()).prop_map(|(m, h, t)| Step::Delivery(m, h, t)),
            (0u8..6).prop_map(Step::Remove),
            (hour, template).prop_map(|(h, t)| Step::Ask(h, t)),
        ]
    }

    proptest! {
        #[test]
        fn answers_from_the_kept_run_equal_answers_derived_afresh(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let config = EngineConfig::new();
            let clock = EraClock::new(&config.timeline, &jiff::tz::TimeZone::UTC);
            let start = 1_685_512_800; // 2023-05-31T06:00:00Z
            let at = |hour: i64| Instant((start + hour * 3600) * NANOS_PER_SEC);
            let mut log = PairLog::default();
            for step in steps {
                match step {
                    Step::Inbound(m, h, referral) => {
                        log.set_inbound(&format!("i{m}"), Some((at(h), referral)));
                    }
                    Step::Delivery(m, h, template) => {
                        log.set_delivery(&format!("d{m}"), Some((at(h), template, u32::from(m))));
                    }
                    Step::Remove(m) => {
                        log.set_inbound(&format!("i{m}"), None);
                        log.set_delivery(&format!("d{m}"), None);
                    }
                    Step::Ask(h, template) => {
                        // Asked at the hour and an hour after the last event.
                        let last = log.inbound.last_at().max(log.delivery.last_at());
                        for when in [at(h), last.map_or(at(h), |l| l.plus(3600 * NANOS_PER_SEC))] {
                            let inbound = log.inbound_until(when);
                            let state = run_pair(&inbound, &log.delivered_until(when), &clock, None, &mut Vec::new());
                            prop_assert_eq!(window(&log, &clock, when), window_in(&state, &inbound, when));
                            prop_assert_eq!(
                                simulate(&log, &clock, when, template),
                                simulate_in(&state, &inbound, &clock, when, template)
                            );
                        }
                    }
                }
            }
        }
    }
}
