//! Live answers for one pair: is the customer service window open, which
//! conversations are open, and what would delivering one more message do.
//! The service keeps a [`PairLog`] per pair and re-derives only that pair,
//! with the same era rules the batch billing runs.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::config::EngineConfig;
use crate::conversation::{Conversation, Delivered, InboundItem, PairState, PairView};
use crate::era::{EraClock, EraKind};
use crate::event::{Event, EventBody, Status, TemplateCategory};
use crate::market::Region;
use crate::rates::{Category, RateBook};
use crate::time::{HOURS_24, Instant};

/// The earliest copy of each of a pair's events that matter for windows
/// and conversations (rules F6: the earliest copy wins; ties by payload).
#[derive(Clone, Debug, Default)]
pub struct PairLog {
    inbound: BTreeMap<String, (Instant, bool)>,
    outbound: BTreeMap<String, (Instant, u8)>,
    delivery: BTreeMap<String, Instant>,
}

fn keep_earliest<V: Ord + Copy>(map: &mut BTreeMap<String, V>, id: &str, value: V) {
    match map.get_mut(id) {
        Some(current) if value < *current => *current = value,
        Some(_) => {}
        None => {
            map.insert(id.to_owned(), value);
        }
    }
}

impl PairLog {
    /// Adds one event of this pair (a duplicate changes nothing).
    pub fn add(&mut self, e: &Event<'_>) {
        match &e.body {
            EventBody::Inbound { referral } => {
                keep_earliest(&mut self.inbound, &e.id, (e.ts, *referral))
            }
            EventBody::Outbound { template } => keep_earliest(
                &mut self.outbound,
                &e.id,
                (e.ts, crate::ledger::template_code(*template)),
            ),
            EventBody::Status(Status::Delivered | Status::Read) => {
                keep_earliest(&mut self.delivery, &e.id, e.ts);
            }
            EventBody::Status(_) => {}
        }
    }

    /// The pair's messages from 24 h before `start` (the window that may
    /// have opened it) to `end`, in time order: what explains a conversation.
    pub fn timeline(&self, start: Instant, end: Instant) -> Vec<TimelineEntry> {
        let from = start.plus(-HOURS_24);
        let within = |t: Instant| from <= t && t <= end;
        let mut out: Vec<TimelineEntry> = Vec::new();
        for (id, (t, referral)) in &self.inbound {
            if within(*t) {
                out.push(TimelineEntry {
                    at: *t,
                    kind: "inbound",
                    id: id.clone(),
                    detail_key: "referral",
                    detail: referral.then(|| "entry_point".to_owned()),
                });
            }
        }
        for (id, (t, code)) in &self.outbound {
            if within(*t) {
                out.push(TimelineEntry {
                    at: *t,
                    kind: "outbound",
                    id: id.clone(),
                    detail_key: "template",
                    detail: crate::ledger::template_of(*code).map(|c| c.as_str().to_owned()),
                });
            }
        }
        for (id, t) in &self.delivery {
            if within(*t) {
                out.push(TimelineEntry {
                    at: *t,
                    kind: "delivered",
                    id: id.clone(),
                    detail_key: "",
                    detail: None,
                });
            }
        }
        out.sort_by(|a, b| (a.at, &a.id, a.kind).cmp(&(b.at, &b.id, b.kind)));
        out
    }

    /// Inbound messages up to `at`, in time order (ties by id).
    fn inbound_until(&self, at: Instant) -> Vec<InboundItem> {
        let mut items: Vec<(Instant, &str, bool)> = self
            .inbound
            .iter()
            .filter(|(_, (t, _))| *t <= at)
            .map(|(id, (t, referral))| (*t, id.as_str(), *referral))
            .collect();
        items.sort_unstable();
        items
            .into_iter()
            .map(|(at, _, referral)| InboundItem { at, referral })
            .collect()
    }

    /// Delivered business messages up to `at`, in time order (ties by id).
    fn delivered_until(&self, at: Instant) -> Vec<Delivered> {
        let mut items: Vec<(Instant, &str)> = self
            .delivery
            .iter()
            .filter(|(_, t)| **t <= at)
            .map(|(id, t)| (*t, id.as_str()))
            .collect();
        items.sort_unstable();
        items
            .into_iter()
            .map(|(t, id)| Delivered {
                at: t,
                msg: u32::MAX,
                template: self
                    .outbound
                    .get(id)
                    .and_then(|(_, code)| crate::ledger::template_of(*code)),
            })
            .collect()
    }

    /// Runs the era rules over the pair's deliveries up to `at`.
    fn state_at(&self, clock: &EraClock, at: Instant) -> (PairState, Vec<InboundItem>) {
        let inbound = self.inbound_until(at);
        let mut state = PairState::default();
        let mut seen = 0;
        for msg in self.delivered_until(at) {
            while seen < inbound.len() && inbound[seen].at <= msg.at {
                seen += 1;
            }
            let Some(era) = clock.era_at(msg.at) else {
                continue;
            };
            era.rules()
                .deliver(&mut state, &msg, &view(&inbound[..seen], clock));
        }
        (state, inbound)
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
    let (state, inbound) = log.state_at(clock, at);
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
    let era = clock.era_at(at)?;
    let (mut state, inbound) = log.state_at(clock, at);
    let before = state.conversations.clone();
    let msg = Delivered {
        at,
        msg: u32::MAX,
        template,
    };
    era.rules()
        .deliver(&mut state, &msg, &view(&inbound, clock));
    let opened = state.conversations.len() > before.len();
    // The message joined the conversation whose message count grew.
    let conversation = if opened {
        state.conversations.last().cloned()
    } else {
        state
            .conversations
            .iter()
            .zip(&before)
            .find(|(now, then)| now.messages != then.messages)
            .map(|(now, _)| now.clone())
    }?;
    Some(Outcome {
        era,
        opens_conversation: opened,
        conversation,
    })
}

/// The market and Meta's rate for a conversation (or message) of `category`
/// under `era` starting at `at` for a user, from the card in force at the
/// WABA's local date (rules D2). The first volume-tier band's rate where the
/// card has tiers. None when no card, map or rate applies.
pub fn price(
    book: &RateBook,
    config: &EngineConfig,
    (waba, user, region): (&str, &str, Region),
    era: EraKind,
    category: Category,
    at: Instant,
) -> Option<(String, Decimal)> {
    let tz = &config.waba(waba).timezone;
    let card = book.card_at(
        era.rules().family(),
        &config.platform.currency,
        at.local_date(tz),
    )?;
    let map = book.map_at(card.effective_from)?;
    let market = map.market_of(user, region, book.other_market());
    let rate = match card.rate(market, category) {
        Some(rate) => rate,
        None => card.bands(market, category)?.first()?.price,
    };
    Some((book.market_name(market).to_owned(), rate))
}
