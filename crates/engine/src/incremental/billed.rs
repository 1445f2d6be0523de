//! The billing side of incremental billing, in two steps. [`Billed::derive`]
//! re-derives the pairs that folds changed, from the pair logs, and copies
//! the names rating will need; it is the only step that reads the
//! [`Incremental`]. [`Billed::rate`] then re-rates only the WABA-months
//! whose conversations changed (keeping each month's records in billing
//! order and merging in those of the pairs that changed, rather than
//! sorting the month again), re-allots volume tiers (C4) only in the
//! portfolio months those touch, and rebuilds only the invoices that moved,
//! without the events side: the service rates while its writer goes on
//! folding.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::Incremental;
use super::names::CopiedNames;
use crate::billing::{
    Calendar, Group, Rated, Record, TierOutcome, WabaMonth, allot_portfolio_month, apply_tier,
    candidate_months, derive_into, finish, merge_ordered, rate_ordered, tiered_markets,
};
use crate::config::{EngineConfig, PortfolioKey};
use crate::era::EraClock;
use crate::grow::Chunked;
use crate::ledger::Ledger;
use crate::live::PairLog;
use crate::market::MarketId;
use crate::names::Names;
use crate::tariff::RateBook;
use crate::time::Month;

type WabaMonthKey = (u32, Month);
/// A portfolio (`true` for a configured one, else a WABA alone) and one
/// of its local months.
type PortfolioMonth = ((bool, String), Month);

/// A WABA-month rated but for its volume tiers.
struct RatedMonth {
    rated: Rated,
    /// The portfolio month of each of `rated.tier_candidates`.
    candidate_months: Vec<Month>,
}

/// What billing derived and rated so far from an [`Incremental`]'s pair
/// logs. The result equals [`crate::billing::bill`] over the same events,
/// whatever the order they came in.
pub struct Billed {
    book: Arc<RateBook>,
    config: EngineConfig,
    names: CopiedNames,
    /// Per WABA index, its era clock.
    clocks: Vec<EraClock>,
    rating: Rating,
}

/// Per pair and WABA-month, what was derived and rated, and what changed
/// since.
#[derive(Default)]
struct Rating {
    /// Per pair, its records and errors by WABA-month (a moved phone's
    /// go to more than one WABA, rules P6).
    derived: Chunked<BTreeMap<WabaMonthKey, Group>>,
    /// Per WABA-month, the pairs with records or errors in it.
    month_pairs: FxHashMap<WabaMonthKey, BTreeSet<u32>>,
    /// Per WABA-month, the pairs with derivation errors in it.
    error_pairs: FxHashMap<WabaMonthKey, BTreeSet<u32>>,
    /// Per WABA-month to re-rate, the pairs whose records in it changed.
    dirty_months: BTreeMap<WabaMonthKey, BTreeSet<u32>>,
    rated: FxHashMap<WabaMonthKey, RatedMonth>,
    /// Per portfolio month, the WABA-months with tier candidates in it.
    portfolio_members: FxHashMap<PortfolioMonth, BTreeSet<WabaMonthKey>>,
    /// Per WABA-month, its volume-tier outcomes by portfolio month, each
    /// list in the order batch billing applies them.
    tiers: FxHashMap<WabaMonthKey, BTreeMap<Month, Vec<(usize, TierOutcome)>>>,
    /// Billed months by WABA name and month (batch billing's order).
    months: BTreeMap<(String, Month), Arc<WabaMonth>>,
}

/// Local calendars made on demand during one step.
struct Calendars<'b> {
    book: &'b RateBook,
    config: &'b EngineConfig,
    wabas: FxHashMap<u32, Calendar<'b>>,
    portfolios: FxHashMap<PortfolioKey<'b>, Calendar<'b>>,
}

impl<'b> Calendars<'b> {
    fn new(book: &'b RateBook, config: &'b EngineConfig) -> Calendars<'b> {
        Calendars {
            book,
            config,
            wabas: FxHashMap::default(),
            portfolios: FxHashMap::default(),
        }
    }

    fn waba(&mut self, names: &impl Names, waba: u32) -> &mut Calendar<'b> {
        let (book, config) = (self.book, self.config);
        self.wabas
            .entry(waba)
            .or_insert_with(|| Calendar::of_waba(names.waba_name(waba), book, config))
    }

    fn portfolio(&mut self, key: PortfolioKey<'b>) -> &mut Calendar<'b> {
        let (book, config) = (self.book, self.config);
        self.portfolios
            .entry(key)
            .or_insert_with(|| Calendar::new(config.portfolio_zone(key).clone(), book, config))
    }
}

impl Billed {
    /// Nothing billed yet, under the engine's `config` (the ledger's).
    pub fn new(config: EngineConfig, book: Arc<RateBook>) -> Billed {
        Billed {
            book,
            config,
            names: CopiedNames::default(),
            clocks: Vec::new(),
            rating: Rating::default(),
        }
    }

    /// Step 1: re-derives `pairs` (as [`Incremental::take_changed`] gave
    /// them) from `engine`'s pair logs, copies the names rating needs, and
    /// marks the WABA-months whose records changed for [`Billed::rate`].
    pub fn derive(&mut self, engine: &Incremental, pairs: &[u32]) {
        let ledger = engine.ledger();
        let config = &self.config;
        while self.clocks.len() < ledger.n_wabas() {
            let waba = ledger.waba_name(self.clocks.len() as u32);
            let zone = &config.waba(waba).timezone;
            self.clocks.push(EraClock::new(&config.timeline, zone));
        }
        let mut calendars = Calendars::new(&self.book, config);
        let empty = PairLog::default();
        for &pair in pairs {
            let log = engine.pair_log(pair).unwrap_or(&empty);
            let now = derive_pair_months(ledger, &self.clocks, &mut calendars, pair, log);
            self.names.copy_pair(ledger, pair);
            for (&(waba, _), group) in &now {
                self.names.copy_waba(ledger, waba);
                // G1: a group's records are its participants'.
                for r in group.records.iter().filter(|r| r.pair != pair) {
                    self.names.copy_pair(ledger, r.pair);
                }
                self.names.copy_tied_openers(ledger, &group.records);
            }
            self.rating.replace_pair(pair, now);
        }
    }

    /// Step 2: brings every month up to date with what [`Billed::derive`]
    /// found: re-rates the changed WABA-months, re-allots the volume tiers
    /// of the portfolio months they touch, and rebuilds the invoices that
    /// moved. Reads no event.
    pub fn rate(&mut self) {
        if self.rating.dirty_months.is_empty() {
            return;
        }
        let (names, book, config) = (&self.names, &*self.book, &self.config);
        let mut calendars = Calendars::new(book, config);
        let (portfolio_months, mut to_finish) =
            self.rating.rerate_months(names, config, &mut calendars);
        self.rating
            .reallot_tiers(names, book, portfolio_months, &mut to_finish);
        self.rating.finish_months(names, book, config, to_finish);
    }

    /// Both steps over everything folded since the last call: what a
    /// single thread does (the service splits them, see `wabill-server`).
    pub fn settle(&mut self, engine: &mut Incremental) {
        let changed = engine.take_changed();
        self.derive(engine, &changed);
        self.rate();
    }

    /// Whether every derivation is rated (after [`Billed::rate`]).
    pub fn is_rated(&self) -> bool {
        self.rating.dirty_months.is_empty()
    }

    /// The billed WABA-month, as of the last [`Billed::rate`].
    pub fn month(&self, waba: &str, month: Month) -> Option<&Arc<WabaMonth>> {
        self.rating.months.get(&(waba.to_owned(), month))
    }

    /// Every billed WABA-month, sorted by WABA, then month (as
    /// [`crate::billing::Billing::months`]), as of the last rate.
    pub fn months(&self) -> impl Iterator<Item = &Arc<WabaMonth>> {
        self.rating.months.values()
    }

    #[cfg(test)]
    pub(super) fn dirty_months(&self) -> BTreeSet<WabaMonthKey> {
        self.rating.dirty_months.keys().copied().collect()
    }
}

/// One pair derived afresh from its log: its records and errors by
/// WABA-month.
fn derive_pair_months(
    ledger: &Ledger,
    clocks: &[EraClock],
    calendars: &mut Calendars<'_>,
    pair: u32,
    log: &PairLog,
) -> BTreeMap<WabaMonthKey, Group> {
    let waba = ledger.pair(pair).waba;
    let (inbound, delivered) = log.derivation_input();
    let mut groups = FxHashMap::default();
    if !delivered.is_empty() {
        let book = calendars.book;
        derive_into(
            ledger,
            book,
            (&clocks[waba as usize], calendars.waba(ledger, waba)),
            pair,
            (&inbound, &delivered),
            &mut groups,
        );
    }
    groups.into_iter().collect()
}

impl Rating {
    /// Keeps a pair's new derivation and marks the months where it differs
    /// from the one before.
    fn replace_pair(&mut self, pair: u32, now: BTreeMap<WabaMonthKey, Group>) {
        let before = std::mem::take(self.derived.at(pair as usize));
        let keys: BTreeSet<WabaMonthKey> = before.keys().chain(now.keys()).copied().collect();
        for key in keys {
            let new = now.get(&key);
            if before.get(&key) == new {
                continue;
            }
            self.dirty_months.entry(key).or_default().insert(pair);
            let members = self.month_pairs.entry(key).or_default();
            if new.is_some() {
                members.insert(pair);
            } else {
                members.remove(&pair);
            }
            let with_errors = self.error_pairs.entry(key).or_default();
            if new.is_some_and(|g| !g.errors.is_empty()) {
                with_errors.insert(pair);
            } else {
                with_errors.remove(&pair);
            }
        }
        *self.derived.at(pair as usize) = now;
    }

    /// Re-rates every dirty WABA-month (a month left with no pair is
    /// dropped). Returns the portfolio months whose volume tiers must be
    /// re-allotted, and the WABA-months to finish.
    fn rerate_months<'b>(
        &mut self,
        names: &'b CopiedNames,
        config: &'b EngineConfig,
        calendars: &mut Calendars<'b>,
    ) -> (BTreeSet<PortfolioMonth>, BTreeSet<WabaMonthKey>) {
        let tiered = tiered_markets(calendars.book);
        let other_market = calendars.book.other_market();
        let mut portfolio_months = BTreeSet::new();
        let mut to_finish = BTreeSet::new();
        for (key, changed) in std::mem::take(&mut self.dirty_months) {
            let (waba, month) = key;
            let waba_name = names.waba_name(waba);
            let owned = portfolio_id(config.portfolio_key(waba_name));
            self.tiers.remove(&key);
            let old = self.rated.remove(&key).map(|old| {
                for m in old.candidate_months {
                    let pm = (owned.clone(), m);
                    if let Some(members) = self.portfolio_members.get_mut(&pm) {
                        members.remove(&key);
                    }
                    portfolio_months.insert(pm);
                }
                old.rated.records
            });
            let Some(group) = self.month_group(names, key, old, &changed, other_market) else {
                self.month_pairs.remove(&key);
                self.error_pairs.remove(&key);
                self.months.remove(&(waba_name.to_owned(), month));
                continue;
            };
            let calendar = calendars.waba(names, waba);
            let rated = rate_ordered(names, config, calendar, &tiered, key, group);
            let portfolio = calendars.portfolio(config.portfolio_key(waba_name));
            let candidate_months = candidate_months(&rated, portfolio);
            for m in candidate_months.iter().copied().collect::<BTreeSet<_>>() {
                let pm = (owned.clone(), m);
                self.portfolio_members
                    .entry(pm.clone())
                    .or_default()
                    .insert(key);
                portfolio_months.insert(pm);
            }
            let rated_month = RatedMonth {
                rated,
                candidate_months,
            };
            self.rated.insert(key, rated_month);
            to_finish.insert(key);
        }
        (portfolio_months, to_finish)
    }

    /// The records of a WABA-month's pairs in billing order, and their
    /// errors in pair index order (as batch billing files them); None when
    /// no pair is left in it. `old` holds the records as last rated, in
    /// billing order: those of pairs not `changed` are kept and the changed
    /// pairs' records merged in, so a large month is not sorted again.
    fn month_group(
        &self,
        names: &CopiedNames,
        key: WabaMonthKey,
        old: Option<Vec<Record>>,
        changed: &BTreeSet<u32>,
        other_market: MarketId,
    ) -> Option<Group> {
        let pairs = self.month_pairs.get(&key).filter(|p| !p.is_empty())?;
        let of_pair = |pair: &u32| self.derived.get(*pair as usize)?.get(&key);
        let (kept, to_add) = match old {
            Some(mut records) => {
                records.retain(|r| !changed.contains(&r.derived_from));
                records.iter_mut().for_each(|r| r.unrate(other_market));
                (records, changed)
            }
            None => (Vec::new(), pairs),
        };
        let added = to_add.iter().filter_map(of_pair);
        let added = added.flat_map(|g| g.records.iter().cloned()).collect();
        let errors = self.error_pairs.get(&key).into_iter().flatten();
        let errors = errors
            .filter_map(of_pair)
            .flat_map(|g| g.errors.iter().cloned());
        Some(Group {
            records: merge_ordered(names, kept, added),
            errors: errors.collect(),
        })
    }

    /// C4 again in each of `portfolio_months`; every member's outcomes are
    /// kept and the member is marked to finish.
    fn reallot_tiers(
        &mut self,
        names: &CopiedNames,
        book: &RateBook,
        portfolio_months: BTreeSet<PortfolioMonth>,
        to_finish: &mut BTreeSet<WabaMonthKey>,
    ) {
        for pm in portfolio_months {
            let members = self.portfolio_members.get(&pm).filter(|m| !m.is_empty());
            let Some(members) = members else {
                self.portfolio_members.remove(&pm);
                continue;
            };
            let members: Vec<(WabaMonthKey, &RatedMonth)> = members
                .iter()
                .filter_map(|key| Some((*key, self.rated.get(key)?)))
                .collect();
            let view: Vec<(&Rated, &[Month])> = members
                .iter()
                .map(|(_, rm)| (&rm.rated, rm.candidate_months.as_slice()))
                .collect();
            let outcomes = allot_portfolio_month(names, book, &view, pm.1);
            let keys: Vec<WabaMonthKey> = members.iter().map(|(key, _)| *key).collect();
            for (key, list) in keys.into_iter().zip(outcomes) {
                self.tiers.entry(key).or_default().insert(pm.1, list);
                to_finish.insert(key);
            }
        }
    }

    /// Applies the kept volume-tier outcomes to each month of `to_finish`
    /// and rebuilds its invoice.
    fn finish_months(
        &mut self,
        names: &CopiedNames,
        book: &RateBook,
        config: &EngineConfig,
        to_finish: BTreeSet<WabaMonthKey>,
    ) {
        for key in to_finish {
            let Some(rm) = self.rated.get(&key) else {
                continue;
            };
            let mut r = rm.rated.clone();
            for list in self.tiers.get(&key).into_iter().flat_map(BTreeMap::values) {
                for (index, outcome) in list {
                    apply_tier(&mut r, *index, outcome.clone());
                }
            }
            let billed = finish(names, book, config, r);
            self.months
                .insert((billed.waba.clone(), billed.month), Arc::new(billed));
        }
    }
}

fn portfolio_id(key: PortfolioKey<'_>) -> (bool, String) {
    match key {
        PortfolioKey::Named(name) => (true, name.to_owned()),
        PortfolioKey::Alone(waba) => (false, waba.to_owned()),
    }
}
