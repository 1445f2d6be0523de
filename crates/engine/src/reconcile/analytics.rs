//! Reconciliation against Meta's analytics (`pricing_analytics`,
//! `conversation_analytics`): per data point window, market and category,
//! Meta's volume beside the number of wabill's records.

use std::collections::{BTreeMap, BTreeSet};

use super::Class;
use crate::billing::{Record, WabaMonth};
use crate::config::EngineConfig;
use crate::ledger::Ledger;
use crate::market::{MarketId, Region};
use crate::tariff::RateBook;
use crate::time::Instant;

/// One data point of Meta's analytics, read (ingest's job) into plain
/// values. `category` is wabill's name for Meta's category (or Meta's own
/// text, lower-cased, when wabill has none); None when the export has no
/// category dimension. `region` None: no country dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaCount {
    pub waba: String,
    pub start: Instant,
    pub end: Instant,
    pub region: Option<Region>,
    pub category: Option<String>,
    pub volume: u64,
}

/// Meta's volume and wabill's count for one window, market and category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsRow {
    pub waba: String,
    pub start: Instant,
    pub end: Instant,
    /// None: every market (the export has no country dimension).
    pub market: Option<String>,
    /// None: every category.
    pub category: Option<String>,
    pub wabill: u64,
    pub meta: u64,
    /// Why they differ, where it can be told; None when they agree.
    pub class: Option<Class>,
}

type Key = (String, Instant, Instant, Option<String>, Option<String>);

/// Compares `counts` with wabill's derivation of `ledger` (`derived`: its
/// months billed on wabill's basis, [`super::Bases`]), sorted by WABA,
/// window, market, category.
pub fn compare_analytics(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
    derived: &[WabaMonth],
    counts: &[MetaCount],
) -> Vec<AnalyticsRow> {
    let other = book.other_market();
    let (mut rows, windows) = meta_rows(book, config, counts);
    // Markets the +1 and +7 numbers of a window touch (rules D1's cases).
    let mut ambiguous: BTreeMap<(String, Instant, Instant), BTreeSet<String>> = BTreeMap::new();
    // Windows are looked up by start: only those that began at most the
    // longest window's length before a record can hold it.
    let longest = windows.keys().map(|(_, s, e)| e.0 - s.0).max().unwrap_or(0);
    for month in derived {
        let waba = month.waba.as_str();
        if !windows.keys().any(|(w, ..)| w == waba) {
            continue;
        }
        for r in &month.records {
            let from = (
                waba.to_owned(),
                Instant(r.start.0.saturating_sub(longest)),
                Instant(i64::MIN),
            );
            let to = (waba.to_owned(), r.start, Instant(i64::MAX));
            let in_window = windows
                .range(from..=to)
                .filter(|((_, _, e), _)| r.start < *e);
            let mut ambiguous_markets = None;
            for ((w, s, e), (by_market, by_category)) in in_window {
                let market = by_market.then(|| book.market_name(r.market).to_owned());
                let category = by_category.then(|| r.category.as_str().to_owned());
                rows.entry((w.clone(), *s, *e, market, category))
                    .or_default()
                    .0 += 1;
                let markets = ambiguous_markets
                    .get_or_insert_with(|| plus_one_or_seven(ledger, book, config, w, r, other));
                if let Some(markets) = markets {
                    ambiguous
                        .entry((w.clone(), *s, *e))
                        .or_default()
                        .extend(markets.iter().cloned());
                }
            }
        }
    }
    rows.into_iter()
        .map(|((waba, start, end, market, category), (wabill, meta))| {
            let touched = ambiguous.get(&(waba.clone(), start, end));
            let class =
                (wabill != meta).then(|| classify(market.as_deref(), category.as_deref(), touched));
            AnalyticsRow {
                waba,
                start,
                end,
                market,
                category,
                wabill,
                meta,
                class,
            }
        })
        .collect()
}

/// Per WABA and window: how the export groups (by market? by category?).
type Windows = BTreeMap<(String, Instant, Instant), (bool, bool)>;

/// Meta's side of the rows, and the windows its data points cover.
fn meta_rows(
    book: &RateBook,
    config: &EngineConfig,
    counts: &[MetaCount],
) -> (BTreeMap<Key, (u64, u64)>, Windows) {
    let other = book.other_market();
    let mut rows: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    let mut windows = Windows::new();
    for c in counts {
        let zone = &config.waba(&c.waba).timezone;
        let market = c.region.map(|r| {
            let map = book.map_at(c.start.local_date(zone));
            let id = map.map_or(other, |m| m.market_of("", r, other));
            book.market_name(id).to_owned()
        });
        let key = (c.waba.clone(), c.start, c.end, market, c.category.clone());
        rows.entry(key).or_default().1 += c.volume;
        let w = windows.entry((c.waba.clone(), c.start, c.end)).or_default();
        w.0 |= c.region.is_some();
        w.1 |= c.category.is_some();
    }
    (rows, windows)
}

/// Why a row differs: a market a +1/+7 number of its window touches, a
/// category wabill does not know, or nothing wabill can tell.
fn classify(
    market: Option<&str>,
    category: Option<&str>,
    touched: Option<&BTreeSet<String>>,
) -> Class {
    if market.is_some_and(|m| touched.is_some_and(|t| t.contains(m))) {
        Class::PlusOneOrSeven
    } else if category.is_some_and(|c| crate::tariff::Category::parse(c).is_none()) {
        Class::UnknownValue
    } else {
        Class::Unexplained
    }
}

/// For a record whose user's number starts with +1 or +7: its market and
/// the market of the calling code's main country (US, RU), which Meta may
/// use instead.
fn plus_one_or_seven(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
    waba: &str,
    r: &Record,
    other: MarketId,
) -> Option<[String; 2]> {
    let user = ledger.pair_names(r.pair).2;
    let main = match user.as_bytes().first() {
        Some(b'1') => Region::parse("US")?,
        Some(b'7') => Region::parse("RU")?,
        _ => return None,
    };
    let zone = &config.waba(waba).timezone;
    let map = book.map_at(r.start.local_date(zone))?;
    let theirs = book.market_name(map.market_of("", main, other)).to_owned();
    Some([book.market_name(r.market).to_owned(), theirs])
}
