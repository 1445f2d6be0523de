//! Why the two sides of a reconciliation differ: the class of each
//! disagreement, the rule that decided wabill's answer and what Meta's
//! verdict said.

use rustc_hash::FxHashMap;

use super::{Answer, Disagreement, Reconciliation};
use crate::billing::Record;
use crate::config::EngineConfig;
use crate::conversation::Free;
use crate::era::{EraClock, EraKind};
use crate::ledger::Ledger;
use crate::tariff::Category;
use crate::time::Month;
use crate::verdict::{MetaCharge, Verdict};

/// What a disagreement comes from, where it can be told.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// The outbound record names one template category, Meta another.
    Recategorized,
    /// No outbound record: wabill's category came from elsewhere.
    OutboundMissing,
    /// Meta's verdict says billable, wabill saw no delivery.
    StatusMissing,
    /// Meta's conversation started when the message was sent, wabill's
    /// when it was delivered.
    StartAtSend,
    /// Authentication against authentication-international (rules D6):
    /// the business country is not configured as Meta sees it.
    AuthenticationInternational,
    /// Meta's verdict holds a value wabill cannot read.
    UnknownValue,
    /// Analytics: a market that +1 or +7 numbers are counted in differently
    /// (rules D1: +1 787 is Puerto Rico, +7 727 Kazakhstan).
    PlusOneOrSeven,
    Unexplained,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Recategorized => "recategorized",
            Class::OutboundMissing => "outbound_missing",
            Class::StatusMissing => "status_missing",
            Class::StartAtSend => "start_at_send",
            Class::AuthenticationInternational => "authentication_international",
            Class::UnknownValue => "unknown_value",
            Class::PlusOneOrSeven => "plus1_plus7_market",
            Class::Unexplained => "unexplained",
        }
    }
}

/// A free tier is wabill's count on both sides: not a disagreement.
fn by_rule(free: Free) -> Free {
    if free == Free::FreeTier {
        Free::None
    } else {
        free
    }
}

/// Whether derived record `d` and Meta's-basis record `m` of delivered
/// message `msg` (with Meta's verdict `charge`, if one arrived) disagree,
/// and why. A message without a verdict may still differ: it follows the
/// conversations Meta's verdicts opened for its pair.
pub(super) fn differs(
    ledger: &Ledger,
    msg: u32,
    d: &Record,
    m: Option<&Record>,
    charge: Option<&MetaCharge>,
) -> Option<Class> {
    if let Some(charge) = charge {
        // A category or type wabill does not know (a conversation verdict
        // without an id says nothing wabill cannot read: both sides derive).
        if charge.message.is_none() && charge.conversation.is_none() {
            return Some(Class::UnknownValue);
        }
        if d.era.rules().per_message() && charge.message.is_none() {
            return Some(Class::UnknownValue);
        }
    }
    let Some(m) = m else {
        return Some(Class::Unexplained);
    };
    let same_group = d.era.rules().per_message() || d.opened_by == m.opened_by;
    if d.category == m.category && by_rule(d.free) == by_rule(m.free) && same_group {
        return None;
    }
    let auth = |c: Category| {
        matches!(
            c,
            Category::Authentication | Category::AuthenticationInternational
        )
    };
    let view = ledger.view_of(msg);
    Some(
        if d.category != m.category && auth(d.category) && auth(m.category) {
            Class::AuthenticationInternational
        } else if charge.is_some() && d.category != m.category {
            match view.outbound {
                // Meta names another template category than the record.
                Some((_, _, template)) if template != view.verdict => Class::Recategorized,
                Some(_) => Class::Unexplained,
                None => Class::OutboundMissing,
            }
        } else if !same_group && started_at_send(ledger, msg, d) {
            Class::StartAtSend
        } else {
            Class::Unexplained
        },
    )
}

/// Whether `msg` falls where the conversation wabill put it in has run out
/// by Meta's clock: Meta's conversation of the same opener expires
/// earlier, counted from the send, and the message came after that.
fn started_at_send(ledger: &Ledger, msg: u32, d: &Record) -> bool {
    let expires = ledger.meta_charge(d.opened_by).and_then(|c| c.expires);
    let delivered = ledger.view_of(msg).delivery.map(|x| x.0);
    match (expires, delivered) {
        (Some(e), Some(at)) => e < d.end && e <= at,
        _ => false,
    }
}

/// wabill's answer for `msg`, in record `r`, with the rule that decided it.
pub(super) fn wabill_answer(ledger: &Ledger, msg: u32, r: &Record) -> Answer {
    let view = ledger.view_of(msg);
    let source = match view.outbound {
        Some((_, _, Some(_))) => "the outbound record's template category",
        Some((_, _, None)) => "the outbound record: not a template",
        None if view.verdict.is_some() => "no outbound record: Meta's verdict's category (F3)",
        None => "no outbound record or verdict category: not a template (F3)",
    };
    Answer {
        era: r.era,
        category: r.category,
        free: r.free,
        conversation: ledger.message_id(r.opened_by).to_owned(),
        start: r.start,
        end: r.end,
        rule: format!("{}; {source}", rule(r, r.opened_by == msg)),
    }
}

/// The rule of rules.md that put a message in record `r` (`opened`: its
/// own delivery opened it).
fn rule(r: &Record, opened: bool) -> &'static str {
    use Category::*;
    match (r.era, r.free, r.category, opened) {
        (EraKind::Pmp2025 | EraKind::Pmp2026, Free::FreeEntryPoint, ..) => {
            "C3: inside a free entry point window"
        }
        (EraKind::Pmp2025, Free::FreeCustomerService, Utility, _) => {
            "C2: utility inside the customer service window"
        }
        (EraKind::Pmp2025, Free::FreeCustomerService, ..) => "C1: service messages are free",
        (EraKind::Pmp2026, Free::FreeTier, ..) => {
            "section 5: the phone's monthly service allowance"
        }
        (EraKind::Pmp2025 | EraKind::Pmp2026, ..) => "C1: a message of its category",
        (EraKind::Cbp2022, _, FreeEntryPoint, true) => "A3.1: a reply to an unused entry point",
        (EraKind::Cbp2022, _, UserInitiated, true) => "A3.2: the customer service window is open",
        (EraKind::Cbp2022, _, _, true) => "A3.3: outside the customer service window",
        (EraKind::Cbp2022, ..) => "A1: joined the open conversation",
        (EraKind::Cbp2023, _, FreeEntryPoint, true) => "B5: a reply to an unused entry point",
        (EraKind::Cbp2023, Free::FreeCustomerService, _, true) => {
            "B3, B7: a service conversation, free from 2024-11-01"
        }
        (EraKind::Cbp2023, _, Service, true) => {
            "B3: a non-template message with no conversation open"
        }
        (EraKind::Cbp2023, _, _, true) => {
            "B2: a template with no conversation of its category open"
        }
        (EraKind::Cbp2023, ..) => "B2, B3: joined an open conversation",
    }
}

/// Meta's answer for `msg`, billed on Meta's basis in record `r`.
pub(super) fn meta_answer(ledger: &Ledger, msg: u32, r: &Record) -> Answer {
    let verdict = ledger.verdict(msg);
    let conversation = verdict
        .as_ref()
        .and_then(|v| v.conversation_id.as_deref().map(str::to_owned))
        .unwrap_or_else(|| ledger.message_id(msg).to_owned());
    Answer {
        era: r.era,
        category: r.category,
        free: r.free,
        conversation,
        start: r.start,
        end: r.end,
        rule: verdict.map_or_else(
            || {
                "no verdict: wabill's rules, beside the conversations Meta's verdicts opened"
                    .to_owned()
            },
            |v| verdict_text(&v),
        ),
    }
}

/// A verdict in one line: `pricing PMP marketing regular billable;
/// conversation <id> origin marketing`.
pub(crate) fn verdict_text(v: &Verdict<'_>) -> String {
    let mut parts = vec!["pricing".to_owned()];
    parts.extend(
        [&v.pricing_model, &v.category, &v.pricing_type]
            .into_iter()
            .filter_map(|t| t.as_deref().map(str::to_owned)),
    );
    match v.billable {
        Some(true) => parts.push("billable".to_owned()),
        Some(false) => parts.push("not billable".to_owned()),
        None => {}
    }
    let mut text = parts.join(" ");
    if let Some(id) = &v.conversation_id {
        text.push_str(&format!("; conversation {id}"));
    }
    if let Some(origin) = &v.origin {
        text.push_str(&format!(" origin {origin}"));
    }
    text
}

/// Messages Meta's verdict calls billable that wabill saw sent (an
/// outbound record) but never delivered: a delivery status lost on the
/// way, or Meta charging what did not arrive. Filed in the month they were
/// sent; a month with no other record is added.
pub(super) fn undelivered(
    ledger: &Ledger,
    config: &EngineConfig,
    index: &FxHashMap<(String, Month), usize>,
    out: &mut Vec<Reconciliation>,
) {
    let mut added: FxHashMap<(String, Month), usize> = FxHashMap::default();
    let mut clocks: FxHashMap<u32, EraClock> = FxHashMap::default();
    for msg in 0..ledger.n_messages() as u32 {
        let view = ledger.view_of(msg);
        let (Some((sent, pair, _)), None) = (view.outbound, view.delivery) else {
            continue;
        };
        let Some(verdict) = ledger.verdict(msg).filter(|v| v.billable == Some(true)) else {
            continue;
        };
        let w = ledger.pair(pair).waba;
        let waba = ledger.waba_name(w);
        let zone = &config.waba(waba).timezone;
        let month = Month::of(sent.local_date(zone));
        let clock = clocks
            .entry(w)
            .or_insert_with(|| EraClock::new(&config.timeline, zone));
        let era = clock.era_at(sent);
        let charge = ledger.meta_charge(msg);
        let category = charge.and_then(|c| c.message.or(c.conversation.map(|c| c.1)));
        let meta = era.zip(category).map(|(era, c)| Answer {
            era,
            category: c.category,
            free: c.free,
            conversation: verdict
                .conversation_id
                .as_deref()
                .unwrap_or(ledger.message_id(msg))
                .to_owned(),
            start: sent,
            end: sent,
            rule: verdict_text(&verdict),
        });
        let key = (waba.to_owned(), month);
        let i = match index.get(&key).or(added.get(&key)) {
            Some(&i) => i,
            None => {
                out.push(Reconciliation::empty(key.0.clone(), month));
                added.insert(key, out.len() - 1);
                out.len() - 1
            }
        };
        let mut d: Disagreement =
            super::disagreement(ledger, msg, Class::StatusMissing, None, meta);
        d.delivered = None;
        out[i].disagreements.push(d);
    }
    out.sort_by(|a, b| (&a.waba, a.month).cmp(&(&b.waba, b.month)));
}
