//! Rating one WABA-month: its records in billing order, the free tiers
//! (A5, B7, section 5), and each record's market and card price (A6, B8,
//! C1, D1, D2). Volume tiers (C4) come after, across the portfolio.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use rustc_hash::FxHashSet;

use super::calendar::Calendar;
use super::error::push_once;
use super::free_tier::FreeTiers;
use super::{BillingError, Group, Record};
use crate::config::EngineConfig;
use crate::conversation::Free;
use crate::market::MarketId;
use crate::names::Names;
use crate::rules::EraRules;
use crate::tariff::Category;
use crate::time::Month;

/// A WABA-month rated but for its volume tiers.
#[derive(Clone)]
pub(crate) struct Rated {
    pub waba: u32,
    pub month: Month,
    pub records: Vec<Record>,
    pub errors: Vec<BillingError>,
    /// Charged per-message records in a market and category that some card
    /// tiers, with the book index of the card that prices each (rules C4).
    pub tier_candidates: Vec<(usize, usize)>,
    /// The month's free tiers once every record took its slot.
    pub free_tiers: FreeTiers<String>,
}

/// Rates one WABA-month but for its volume tiers: orders its records (A5,
/// C5), gives free-tier slots in that order, and prices each record.
pub(crate) fn rate_month<N: Names>(
    ledger: &N,
    config: &EngineConfig,
    calendar: &mut Calendar<'_>,
    tiered: &FxHashSet<(MarketId, Category)>,
    key: (u32, Month),
    mut group: Group,
) -> Rated {
    order_records(ledger, &mut group.records);
    rate_ordered(ledger, config, calendar, tiered, key, group)
}

/// Puts records in billing order (A5, C5).
fn order_records<N: Names>(ledger: &N, records: &mut [Record]) {
    // A total order (each record has its own opener), so unstable is exact.
    records.sort_unstable_by(|a, b| record_order(ledger, a, b));
}

/// `kept`, in billing order, with `new` merged in: what incremental rating
/// does when a few pairs of a large month changed, in O(n) where sorting
/// the month would take O(n log n). No record of `new` may equal one of
/// `kept` (they come from different pairs).
pub(crate) fn merge_ordered<N: Names>(
    ledger: &N,
    kept: Vec<Record>,
    mut new: Vec<Record>,
) -> Vec<Record> {
    order_records(ledger, &mut new);
    if kept.is_empty() {
        return new;
    }
    let mut out = Vec::with_capacity(kept.len() + new.len());
    let mut kept = kept.into_iter();
    for record in new {
        let before = kept
            .as_slice()
            .partition_point(|k| record_order(ledger, k, &record).is_lt());
        out.extend(kept.by_ref().take(before));
        out.push(record);
    }
    out.extend(kept);
    out
}

/// [`rate_month`] for records already in billing order.
pub(crate) fn rate_ordered<N: Names>(
    ledger: &N,
    config: &EngineConfig,
    calendar: &mut Calendar<'_>,
    tiered: &FxHashSet<(MarketId, Category)>,
    (waba, month): (u32, Month),
    mut group: Group,
) -> Rated {
    // A5/B7: the first N eligible conversations of the month are free;
    // section 5: the first N service messages of each phone.
    let mut free_tiers: FreeTiers<u32> = FreeTiers::new(config);
    let mut errors = group.errors;
    let mut tier_candidates = Vec::new();
    for (index, record) in group.records.iter_mut().enumerate() {
        let rules = record.era.rules();
        if record.free == Free::None {
            let pool = rules.free_tier_pool(record.category, record.free);
            if free_tiers.take(pool, ledger.pair(record.pair).phone) {
                record.free = Free::FreeTier;
            }
        }
        match price(ledger, calendar, rules, tiered, record) {
            Ok((market, unit, tier_card)) => {
                record.market = market;
                record.unit_price = unit;
                if let Some(card) = tier_card {
                    tier_candidates.push((index, card));
                }
            }
            Err(e) => push_once(&mut errors, e),
        }
    }
    Rated {
        waba,
        month,
        records: group.records,
        errors,
        tier_candidates,
        free_tiers: free_tiers.renamed(|phone| ledger.phone_name(*phone).to_owned()),
    }
}

/// Two records of one pair that start at the same instant: by the id of
/// the message that opened each.
fn opener_order<N: Names>(ledger: &N, a: &Record, b: &Record) -> Ordering {
    if a.opened_by == b.opened_by {
        return Ordering::Equal;
    }
    ledger
        .message_id(a.opened_by)
        .cmp(ledger.message_id(b.opened_by))
}

/// A5: conversations ordered by (start, phone, user, opening message id;
/// G1: the pair a record was derived with before the id);
/// C5: messages by (delivery, waba, phone, user, message id). Within one
/// WABA the two orders are the same.
pub(crate) fn record_order<N: Names>(ledger: &N, a: &Record, b: &Record) -> Ordering {
    a.start
        .cmp(&b.start)
        .then_with(|| {
            if a.pair == b.pair {
                return Ordering::Equal;
            }
            ledger.pair_names(a.pair).cmp(&ledger.pair_names(b.pair))
        })
        // G1: a participant's own record and a group's one to the same
        // participant, by the pair each was derived with.
        .then_with(|| {
            if a.derived_from == b.derived_from {
                return Ordering::Equal;
            }
            ledger
                .pair_names(a.derived_from)
                .cmp(&ledger.pair_names(b.derived_from))
        })
        // Distinct pairs have distinct names: ids only break a tie between
        // two records of one derivation (each record has its own opener).
        .then_with(|| opener_order(ledger, a, b))
}

/// D1/D2/A6/B8/C1: the market and the card's unit price of a record, and
/// the card when its price waits for the volume tiers (C4).
fn price<N: Names>(
    ledger: &N,
    calendar: &mut Calendar<'_>,
    rules: &dyn EraRules,
    tiered: &FxHashSet<(MarketId, Category)>,
    record: &Record,
) -> Result<(MarketId, Decimal, Option<usize>), BillingError> {
    let family = rules.family();
    let key = ledger.pair(record.pair);
    let book = calendar.book;
    let (card_index, card) =
        calendar
            .card_at(family, record.start)
            .ok_or_else(|| BillingError::NoCard {
                family: family.as_str(),
                currency: calendar.currency_at(record.start).to_owned(),
                date: record.start.local_date(&calendar.tz),
                waba: ledger.waba_name(key.waba).to_owned(),
            })?;
    let user = || ledger.pair_names(record.pair).2;
    let market = book
        .market_under(card, user, ledger.region(key.user))
        .ok_or_else(|| BillingError::NoMarketMap {
            card: card.source.clone(),
        })?;
    let category = record.category;
    if rules.priced_at_zero(category, record.free) {
        return Ok((market, Decimal::ZERO, None));
    }
    let missing = || BillingError::MissingRate {
        card: card.source.clone(),
        market: book.market_name(market).to_owned(),
        category: category.as_str(),
    };
    let rate = card.rate(market, category);
    if rules.per_message() && record.free == Free::None && tiered.contains(&(market, category)) {
        if rate.is_none() && card.bands(market, category).is_none() {
            return Err(missing());
        }
        return Ok((market, rate.unwrap_or_default(), Some(card_index)));
    }
    match rate {
        Some(rate) => Ok((market, rate, None)),
        // A message free by rule shows the card's rate where it has one.
        None if record.free.by_rule() => Ok((market, Decimal::ZERO, None)),
        None => Err(missing()),
    }
}
