//! From the ledger to each pair's derivation (rules F1–F8, via
//! [`crate::derive`]), its records filed by WABA and local month.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use super::calendar::Calendar;
use super::{BillingError, Record};
use crate::conversation::{Delivered, InboundItem};
use crate::derive::derive_pair;
use crate::era::EraClock;
use crate::ledger::{Ledger, Message, Slot, template_of};
use crate::tariff::{Category, RateBook};
use crate::time::{Instant, Month};

/// Inbound and delivered messages sorted by pair, with the pair of each.
pub(crate) struct ByPair<'v> {
    pub inbound: &'v [InboundItem],
    pub inbound_pairs: &'v [u32],
    pub delivered: &'v [Delivered],
    pub delivered_pairs: &'v [u32],
}

/// Derives the pairs of `range` (indices of `delivered`, on pair
/// boundaries) and groups their records by WABA and local month.
pub(crate) fn derive_pairs(
    ledger: &Ledger,
    book: &RateBook,
    clocks: &[EraClock],
    calendars: &mut [Calendar<'_>],
    v: &ByPair<'_>,
    range: std::ops::Range<usize>,
) -> FxHashMap<(u32, Month), Group> {
    let mut groups: FxHashMap<(u32, Month), Group> = FxHashMap::default();
    each_pair(v, range, |pair, messages| {
        let waba = ledger.pair(pair).waba as usize;
        let calendar = &mut calendars[waba];
        derive_into(
            ledger,
            book,
            (&clocks[waba], calendar),
            pair,
            messages,
            &mut groups,
        );
    });
    groups
}

/// Calls `f` with each pair of `range` (indices of `delivered`, on pair
/// boundaries) and its inbound and delivered messages.
pub(crate) fn each_pair(
    v: &ByPair<'_>,
    range: std::ops::Range<usize>,
    mut f: impl FnMut(u32, (&[InboundItem], &[Delivered])),
) {
    let mut j = range.start;
    let Some(&first_pair) = v.delivered_pairs.get(j) else {
        return;
    };
    let mut i = v.inbound_pairs.partition_point(|p| *p < first_pair);
    while j < range.end {
        let pair = v.delivered_pairs[j];
        let j_end = j + v.delivered_pairs[j..].partition_point(|p| *p == pair);
        while i < v.inbound.len() && v.inbound_pairs[i] < pair {
            i += 1;
        }
        let i_end = i + v.inbound_pairs[i..].partition_point(|p| *p == pair);
        f(pair, (&v.inbound[i..i_end], &v.delivered[j..j_end]));
        i = i_end;
        j = j_end;
    }
}

/// Derives one pair's conversations from its inbound and delivered
/// messages (each in time order, ties by message id) and files its records
/// and errors by WABA and local month.
pub(crate) fn derive_into(
    ledger: &Ledger,
    book: &RateBook,
    (clock, calendar): (&EraClock, &mut Calendar<'_>),
    pair: u32,
    (inbound, delivered): (&[InboundItem], &[Delivered]),
    groups: &mut FxHashMap<(u32, Month), Group>,
) {
    let waba = ledger.pair(pair).waba;
    let mut errors = Vec::new();
    let meta = |m: u32| ledger.meta_charge(m);
    let verdicts: crate::derive::Verdicts<'_> =
        (calendar.basis == crate::config::Basis::Meta).then_some(&meta);
    let conversations = derive_pair(inbound, delivered, clock, verdicts, &mut errors);
    // Rules P6: filed to the WABA that carried the phone then (names read
    // only when some phone has periods).
    let names = (!ledger.config().phones.is_empty()).then(|| ledger.pair_names(pair));
    let carrier = |at| names.and_then(|(w, phone, _)| ledger.carrier_at(w, phone, at));
    let filed = |at: Instant, calendar: &mut Calendar<'_>| match carrier(at) {
        Some((w, provider)) if w != waba => {
            let zone = &ledger.config().waba(ledger.waba_name(w)).timezone;
            (w, Month::of(at.local_date(zone)), Some(provider))
        }
        Some((_, provider)) => (waba, calendar.month_of(at), Some(provider)),
        None => (waba, calendar.month_of(at), None),
    };
    for error in errors {
        let (waba, month, _) = filed(error.at, calendar);
        groups
            .entry((waba, month))
            .or_default()
            .errors
            .push(BillingError::NoEra {
                waba: ledger.waba_name(waba).to_owned(),
                message: ledger.message_id(error.msg).to_owned(),
                at: error.at.rfc3339(),
            });
    }
    let derived_from = pair;
    for mut c in conversations {
        // G1: a group delivery is billed to its participant.
        let pair = c
            .opened_by
            .and_then(|m| ledger.participant_pair(m))
            .unwrap_or(pair);
        if matches!(
            c.category,
            Category::Authentication | Category::AuthenticationInternational
        ) {
            c.category = authentication(ledger, calendar, pair, &c);
        }
        let (waba, month, provider) = filed(c.start, calendar);
        groups
            .entry((waba, month))
            .or_default()
            .records
            .push(Record {
                pair,
                derived_from,
                start: c.start,
                end: c.end,
                era: c.era,
                category: c.category,
                market: book.other_market(),
                free: c.free,
                unit_price: Decimal::ZERO,
                opened_by: c
                    .opened_by
                    .expect("a derived conversation opens with a ledger message"),
                messages: c.messages,
                provider,
                tier: None,
            });
    }
}

/// Rules D6: the category an authentication conversation or message is
/// priced at. Opened by Meta's verdict (basis `meta`): international when
/// the verdict says so and the card has that rate. Derived: when the WABA's
/// business country lies outside the user's market and the card has that
/// rate.
fn authentication(
    ledger: &Ledger,
    calendar: &mut Calendar<'_>,
    pair: u32,
    c: &crate::conversation::Conversation,
) -> Category {
    let per_message = c.era.rules().per_message();
    let said = c
        .opened_by
        .filter(|_| calendar.basis == crate::config::Basis::Meta)
        .and_then(|m| ledger.meta_charge(m))
        .and_then(|m| {
            if per_message {
                m.message
            } else {
                m.conversation.map(|x| x.1)
            }
        })
        .map(|charge| charge.category == Category::AuthenticationInternational);
    let business = calendar.business_country;
    if (said.is_none() && business.is_none()) || said == Some(false) {
        return Category::Authentication;
    }
    let key = ledger.pair(pair);
    let book = calendar.book;
    let Some((_, card)) = calendar.card_at(c.era.rules().family(), c.start) else {
        return Category::Authentication;
    };
    let user = || ledger.pair_names(pair).2;
    let Some(market) = book.market_under(card, user, ledger.region(key.user)) else {
        return Category::Authentication;
    };
    let international = match said {
        Some(_) => card.has_international(market),
        None => book.international(card, market, business),
    };
    if international {
        Category::AuthenticationInternational
    } else {
        Category::Authentication
    }
}

/// One pair's (or one WABA-month's) records and errors.
#[derive(Default, PartialEq, Eq)]
pub(crate) struct Group {
    pub records: Vec<Record>,
    pub errors: Vec<BillingError>,
}

/// Items picked from the ledger's messages, sorted by (pair, time, message
/// id) (F6: ties in time by id), and the pair of each.
fn by_pair<T>(
    ledger: &Ledger,
    pick: impl Fn(u32, &Message) -> Option<(Slot, T)>,
) -> (Vec<T>, Vec<u32>) {
    let mut items: Vec<(u32, i64, u32, T)> = ledger
        .messages
        .records
        .iter()
        .enumerate()
        .filter_map(|(m, message)| {
            let (slot, item) = pick(m as u32, message)?;
            Some((
                ledger.billing_pair(m as u32, slot.pair),
                slot.at,
                m as u32,
                item,
            ))
        })
        .collect();
    items.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| ledger.message_id(a.2).cmp(ledger.message_id(b.2)))
    });
    let pairs = items.iter().map(|i| i.0).collect();
    (items.into_iter().map(|i| i.3).collect(), pairs)
}

/// Inbound messages by pair (F1, F5).
pub(crate) fn inbound_by_pair(ledger: &Ledger) -> (Vec<InboundItem>, Vec<u32>) {
    by_pair(ledger, |_, message| {
        let slot = message.inbound.get()?;
        let item = InboundItem {
            at: Instant(slot.at),
            referral: slot.flag == 1,
        };
        Some((slot, item))
    })
}

/// Delivered business messages by pair (F2, F8).
pub(crate) fn delivered_by_pair(ledger: &Ledger) -> (Vec<Delivered>, Vec<u32>) {
    by_pair(ledger, |m, message| {
        let slot = message.delivery.get()?;
        // F3: the outbound record's category; without one, Meta's verdict's.
        let template = match message.outbound.get() {
            Some(o) => template_of(o.flag),
            None => ledger.verdict_template(m),
        };
        let item = Delivered {
            at: Instant(slot.at),
            msg: m,
            template,
        };
        Some((slot, item))
    })
}
