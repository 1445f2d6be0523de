//! The ledger kept billed as events arrive: each fold marks the pairs whose
//! canonical events changed; settling re-derives only those pairs, re-rates
//! only the WABA-months whose conversations changed, re-allots volume tiers
//! (C4) only in the portfolio months those touch, and rebuilds only the
//! invoices that moved. The result equals [`crate::billing::bill`] over the
//! same events, whatever the order they came in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::billing::{
    Calendar, Group, Rated, TierOutcome, WabaMonth, allot_portfolio_month, apply_tier,
    candidate_months, derive_into, finish, rate_month, tiered_markets,
};
use crate::config::{EngineConfig, PortfolioKey};
use crate::era::EraClock;
use crate::event::Event;
use crate::grow::Chunked;
use crate::ledger::{CapacityError, Checked, IngestOutcome, Ledger, MessageView, Rejection};
use crate::live::PairLog;
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

/// A ledger whose billing is brought up to date by [`Incremental::settle`].
pub struct Incremental {
    ledger: Ledger,
    book: Arc<RateBook>,
    /// Per pair index, its share of the canonical events.
    logs: Chunked<PairLog>,
    /// Per message index, its canonical events as the pair logs hold them.
    views: Chunked<Option<MessageView>>,
    /// Per WABA index, its era clock.
    clocks: Vec<EraClock>,
    dirty_pairs: BTreeSet<u32>,
    billed: Billed,
}

/// What billing derived so far, and what folds have changed since.
#[derive(Default)]
struct Billed {
    /// Per pair, its records and errors by local month.
    derived: Chunked<BTreeMap<Month, Group>>,
    /// Per WABA-month, the pairs with records or errors in it.
    month_pairs: FxHashMap<WabaMonthKey, BTreeSet<u32>>,
    dirty_months: BTreeSet<WabaMonthKey>,
    rated: FxHashMap<WabaMonthKey, RatedMonth>,
    /// Per portfolio month, the WABA-months with tier candidates in it.
    portfolio_members: FxHashMap<PortfolioMonth, BTreeSet<WabaMonthKey>>,
    /// Per WABA-month, its volume-tier outcomes by portfolio month, each
    /// list in the order batch billing applies them.
    tiers: FxHashMap<WabaMonthKey, BTreeMap<Month, Vec<(usize, TierOutcome)>>>,
    /// Billed months by WABA name and month (batch billing's order).
    months: BTreeMap<(String, Month), Arc<WabaMonth>>,
}

/// Local calendars made on demand during one settle.
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

    fn waba(&mut self, ledger: &Ledger, waba: u32) -> &mut Calendar<'b> {
        let (book, config) = (self.book, self.config);
        self.wabas.entry(waba).or_insert_with(|| {
            let zone = config.waba(ledger.waba_name(waba)).timezone.clone();
            Calendar::new(zone, book, config)
        })
    }

    fn portfolio(&mut self, key: PortfolioKey<'b>) -> &mut Calendar<'b> {
        let (book, config) = (self.book, self.config);
        self.portfolios
            .entry(key)
            .or_insert_with(|| Calendar::new(config.portfolio_zone(key).clone(), book, config))
    }
}

impl Incremental {
    pub fn new(ledger: Ledger, book: Arc<RateBook>) -> Incremental {
        Incremental {
            ledger,
            book,
            logs: Chunked::default(),
            views: Chunked::default(),
            clocks: Vec::new(),
            dirty_pairs: BTreeSet::new(),
            billed: Billed::default(),
        }
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
        let pair = self.ledger.pair_index(waba, phone, user)?;
        self.pair_log(pair)
    }

    /// Validates and folds one group of events (as [`Ledger::ingest`]) and
    /// marks what they changed.
    pub fn ingest(&mut self, events: &[Event<'_>]) -> Result<IngestOutcome, Rejection> {
        let outcome = self.ledger.ingest(events)?;
        // A duplicate may still carry the copy that is canonical now (F6).
        for e in events {
            if let Some(msg) = self.ledger.messages.lookup(&e.id) {
                self.mirror(msg);
            }
        }
        Ok(outcome)
    }

    /// Folds one event validated elsewhere (as [`Ledger::apply`]) and marks
    /// what it changed; false when it was a duplicate.
    pub fn apply(&mut self, c: &Checked<'_>) -> Result<bool, CapacityError> {
        let new_event = self.ledger.apply(c)?;
        // A duplicate may still carry the copy that is canonical now (F6).
        if let Some(msg) = self.ledger.messages.lookup(&c.event.id) {
            self.mirror(msg);
        }
        Ok(new_event)
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
            let template = view.outbound.and_then(|o| o.2);
            let log = self.logs.at(pair as usize);
            log.set_delivery(id, Some((at, template, msg)));
        }
        self.dirty_pairs
            .extend(old.into_iter().chain(now).flatten());
    }

    /// Whether every fold so far is reflected in [`Incremental::months`].
    pub fn is_settled(&self) -> bool {
        self.dirty_pairs.is_empty() && self.billed.dirty_months.is_empty()
    }

    /// Re-derives the conversations of the pairs changed since the last
    /// call; the months they touch wait for [`Incremental::settle`].
    pub fn settle_pairs(&mut self) {
        let config = self.ledger.config();
        while self.clocks.len() < self.ledger.n_wabas() {
            let waba = self.ledger.waba_name(self.clocks.len() as u32);
            let zone = &config.waba(waba).timezone;
            self.clocks.push(EraClock::new(&config.timeline, zone));
        }
        let mut calendars = Calendars::new(&self.book, config);
        let empty = PairLog::default();
        for pair in std::mem::take(&mut self.dirty_pairs) {
            let log = self.logs.get(pair as usize).unwrap_or(&empty);
            let now = derive_pair_months(&self.ledger, &self.clocks, &mut calendars, pair, log);
            self.billed
                .replace_pair(self.ledger.pair(pair).waba, pair, now);
        }
    }

    /// Brings every month up to date: re-rates the changed WABA-months,
    /// re-allots the volume tiers of the portfolio months they touch, and
    /// rebuilds the invoices that moved.
    pub fn settle(&mut self) {
        self.settle_pairs();
        if self.billed.dirty_months.is_empty() {
            return;
        }
        let (ledger, book) = (&self.ledger, &*self.book);
        let mut calendars = Calendars::new(book, ledger.config());
        let (portfolio_months, mut to_finish) = self.billed.rerate_months(ledger, &mut calendars);
        self.billed
            .reallot_tiers(ledger, book, portfolio_months, &mut to_finish);
        self.billed.finish_months(ledger, book, to_finish);
    }

    /// The billed WABA-month, as of the last [`Incremental::settle`].
    pub fn month(&self, waba: &str, month: Month) -> Option<&Arc<WabaMonth>> {
        self.billed.months.get(&(waba.to_owned(), month))
    }

    /// Every billed WABA-month, sorted by WABA, then month (as
    /// [`crate::billing::Billing::months`]), as of the last settle.
    pub fn months(&self) -> impl Iterator<Item = &Arc<WabaMonth>> {
        self.billed.months.values()
    }
}

/// One pair derived afresh from its log: its records and errors by local
/// month.
fn derive_pair_months(
    ledger: &Ledger,
    clocks: &[EraClock],
    calendars: &mut Calendars<'_>,
    pair: u32,
    log: &PairLog,
) -> BTreeMap<Month, Group> {
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
    groups.into_iter().map(|((_, m), g)| (m, g)).collect()
}

impl Billed {
    /// Keeps a pair's new derivation and marks the months where it differs
    /// from the one before.
    fn replace_pair(&mut self, waba: u32, pair: u32, now: BTreeMap<Month, Group>) {
        let before = std::mem::take(self.derived.at(pair as usize));
        let months: BTreeSet<Month> = before.keys().chain(now.keys()).copied().collect();
        for month in months {
            let new = now.get(&month);
            if before.get(&month) == new {
                continue;
            }
            self.dirty_months.insert((waba, month));
            let members = self.month_pairs.entry((waba, month)).or_default();
            if new.is_some() {
                members.insert(pair);
            } else {
                members.remove(&pair);
            }
        }
        *self.derived.at(pair as usize) = now;
    }

    /// Re-rates every dirty WABA-month (a month left with no pair is
    /// dropped). Returns the portfolio months whose volume tiers must be
    /// re-allotted, and the WABA-months to finish.
    fn rerate_months<'b>(
        &mut self,
        ledger: &'b Ledger,
        calendars: &mut Calendars<'b>,
    ) -> (BTreeSet<PortfolioMonth>, BTreeSet<WabaMonthKey>) {
        let config = ledger.config();
        let tiered = tiered_markets(calendars.book);
        let mut portfolio_months = BTreeSet::new();
        let mut to_finish = BTreeSet::new();
        for key in std::mem::take(&mut self.dirty_months) {
            let (waba, month) = key;
            let waba_name = ledger.waba_name(waba);
            let owned = portfolio_id(config.portfolio_key(waba_name));
            self.tiers.remove(&key);
            if let Some(old) = self.rated.remove(&key) {
                for m in old.candidate_months {
                    let pm = (owned.clone(), m);
                    if let Some(members) = self.portfolio_members.get_mut(&pm) {
                        members.remove(&key);
                    }
                    portfolio_months.insert(pm);
                }
            }
            let Some(group) = self.month_group(key) else {
                self.month_pairs.remove(&key);
                self.months.remove(&(waba_name.to_owned(), month));
                continue;
            };
            let calendar = calendars.waba(ledger, waba);
            let rated = rate_month(ledger, config, calendar, &tiered, key, group);
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

    /// The records and errors of a WABA-month's pairs, in pair index order
    /// (as batch billing files them); None when no pair is left in it.
    fn month_group(&self, key: WabaMonthKey) -> Option<Group> {
        let pairs = self.month_pairs.get(&key).filter(|p| !p.is_empty())?;
        let mut group = Group::default();
        for pair in pairs {
            let Some(g) = self.derived.get(*pair as usize).and_then(|d| d.get(&key.1)) else {
                continue;
            };
            group.records.extend_from_slice(&g.records);
            group.errors.extend_from_slice(&g.errors);
        }
        Some(group)
    }

    /// C4 again in each of `portfolio_months`; every member's outcomes are
    /// kept and the member is marked to finish.
    fn reallot_tiers(
        &mut self,
        ledger: &Ledger,
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
            let outcomes = allot_portfolio_month(ledger, book, &view, pm.1);
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
        ledger: &Ledger,
        book: &RateBook,
        to_finish: BTreeSet<WabaMonthKey>,
    ) {
        let config = ledger.config();
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
            let billed = finish(ledger, book, config, r);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;
    use crate::event::{EventBody, Status};
    use crate::time::{Instant, NANOS_PER_SEC};

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
        }
    }

    fn ingest(live: &mut Incremental, events: &[Event<'_>]) {
        live.ingest(events).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_late_event_re_derives_only_its_pair_and_waba_month() {
        let mut live = Incremental::new(
            Ledger::new(EngineConfig::new(), crate::HashKey::fixed()),
            Arc::new(RateBook::new()),
        );
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
        live.settle();
        assert!(live.is_settled());
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
        assert_eq!(live.dirty_pairs, BTreeSet::from([first]));
        live.settle_pairs();
        assert_eq!(live.billed.dirty_months, BTreeSet::from([(waba, march)]));
        live.settle();
        assert!(live.is_settled());

        // Its duplicate changes nothing, so nothing is re-derived.
        ingest(&mut live, &late);
        assert!(live.is_settled());
    }
}
