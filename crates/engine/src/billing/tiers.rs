//! Rules C4/C5: volume tiers. A charged per-message record in a market and
//! category that a card tiers is priced by its rank among the month's
//! charged messages of its business portfolio, which may span WABAs and
//! time zones. Batch and incremental billing both allot one portfolio
//! month at a time with [`allot_portfolio_month`].

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rustc_hash::{FxHashMap, FxHashSet};

use super::calendar::Calendar;
use super::error::push_once;
use super::rate::record_order;
use super::{BillingError, Rated, Record};
use crate::config::{EngineConfig, PortfolioKey};
use crate::ledger::Ledger;
use crate::market::MarketId;
use crate::names::Names;
use crate::tariff::{Category, RateBook};
use crate::time::Month;

/// The (market, category) pairs some card gives volume tiers for.
pub(crate) fn tiered_markets(book: &RateBook) -> FxHashSet<(MarketId, Category)> {
    book.cards()
        .iter()
        .flat_map(|c| c.tiers.keys().copied())
        .collect()
}

/// The portfolio-local month of each of `rated`'s tier candidates, in
/// `calendar` (its portfolio's).
pub(crate) fn candidate_months(rated: &Rated, calendar: &mut Calendar<'_>) -> Vec<Month> {
    rated
        .tier_candidates
        .iter()
        .map(|&(index, _)| calendar.month_of(rated.records[index].start))
        .collect()
}

/// C4 for one portfolio and local month: the tier candidates of `members`
/// (each a rated WABA-month of the portfolio and the portfolio month of
/// each of its candidates) that fall in `month`, grouped by market and
/// category, each group allotted. Per member, its outcomes by record
/// index, in the order they apply.
pub(crate) fn allot_portfolio_month<N: Names>(
    ledger: &N,
    book: &RateBook,
    members: &[(&Rated, &[Month])],
    month: Month,
) -> Vec<Vec<(usize, TierOutcome)>> {
    let mut groups: BTreeMap<(MarketId, Category), Vec<TierMember>> = BTreeMap::new();
    for (w, (rated, months)) in members.iter().enumerate() {
        let candidates = rated.tier_candidates.iter().zip(*months);
        for (&(index, card), _) in candidates.filter(|(_, m)| **m == month) {
            let record = &rated.records[index];
            groups
                .entry((record.market, record.category))
                .or_default()
                .push((w, index, card));
        }
    }
    let mut outcomes: Vec<Vec<(usize, TierOutcome)>> = vec![Vec::new(); members.len()];
    for (market_category, mut group) in groups {
        let record = |w: usize, i: usize| &members[w].0.records[i];
        for ((w, index, _), outcome) in
            allot_group(ledger, book, market_category, &mut group, record)
        {
            outcomes[w].push((index, outcome));
        }
    }
    outcomes
}

/// A charged per-message record waiting for its volume tier: its
/// WABA-month (an index the caller gives), its index there, and the book
/// index of the card pricing it.
type TierMember = (usize, usize, usize);

/// The band price and band of a tiered record, or why it has none.
pub(crate) type TierOutcome = Result<(Decimal, (u64, Option<u64>)), BillingError>;

/// C4/C5 for one portfolio, local month, market and category: its charged
/// messages in order of (delivery, waba, phone, user, message id); the
/// n-th pays the rate of its card's band containing n. Members whose card
/// has no bands there keep their rate and are left out.
fn allot_group<'r, N: Names>(
    ledger: &N,
    book: &RateBook,
    (market, category): (MarketId, Category),
    members: &mut [TierMember],
    record: impl Fn(usize, usize) -> &'r Record,
) -> Vec<(TierMember, TierOutcome)> {
    members.sort_by(|a, b| record_order(ledger, record(a.0, a.1), record(b.0, b.1)));
    let mut out = Vec::with_capacity(members.len());
    for (n, &member) in (1u64..).zip(members.iter()) {
        let card = &book.cards()[member.2];
        let Some(bands) = card.bands(market, category) else {
            continue;
        };
        let outcome = bands
            .iter()
            .find(|b| b.from <= n && b.to.is_none_or(|to| n <= to))
            .map(|band| (band.price, (band.from, band.to)))
            .ok_or_else(|| BillingError::NoTierBand {
                card: card.source.clone(),
                market: book.market_name(market).to_owned(),
                category: category.as_str(),
                n,
            });
        out.push((member, outcome));
    }
    out
}

/// Applies a volume-tier outcome to record `index` of a rated month.
pub(crate) fn apply_tier(rated: &mut Rated, index: usize, outcome: TierOutcome) {
    match outcome {
        Ok((price, band)) => {
            if let Some(record) = rated.records.get_mut(index) {
                record.unit_price = price;
                record.tier = Some(band);
            }
        }
        Err(e) => push_once(&mut rated.errors, e),
    }
}

/// C4 over every rated month of a batch run: each portfolio month allotted
/// and its outcomes applied.
pub(crate) fn allot_volume_tiers(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
    rated: &mut [Rated],
) {
    let mut calendars: FxHashMap<PortfolioKey<'_>, Calendar<'_>> = FxHashMap::default();
    let mut portfolio_months: BTreeMap<(PortfolioKey<'_>, Month), Vec<usize>> = BTreeMap::new();
    let mut months: Vec<Vec<Month>> = Vec::with_capacity(rated.len());
    for (m, r) in rated.iter().enumerate() {
        let key = config.portfolio_key(ledger.waba_name(r.waba));
        let calendar = calendars
            .entry(key)
            .or_insert_with(|| Calendar::new(config.portfolio_zone(key).clone(), book, config));
        let of_candidates = candidate_months(r, calendar);
        let mut last = None;
        for &month in &of_candidates {
            if last.replace(month) == Some(month) {
                continue;
            }
            let members = portfolio_months.entry((key, month)).or_default();
            if members.last() != Some(&m) {
                members.push(m);
            }
        }
        months.push(of_candidates);
    }
    for ((_, month), members) in portfolio_months {
        let view: Vec<(&Rated, &[Month])> = members
            .iter()
            .map(|&m| (&rated[m], months[m].as_slice()))
            .collect();
        let outcomes = allot_portfolio_month(ledger, book, &view, month);
        for (m, list) in members.into_iter().zip(outcomes) {
            for (index, outcome) in list {
                apply_tier(&mut rated[m], index, outcome);
            }
        }
    }
}
