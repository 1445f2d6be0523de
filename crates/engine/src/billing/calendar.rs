//! A WABA's (or portfolio's) local calendar: which local month an instant
//! falls in, and which rate card is in force at it (rules D2).

use jiff::tz::TimeZone;
use rustc_hash::FxHashMap;

use crate::config::{Basis, EngineConfig};
use crate::market::Region;
use crate::tariff::{Family, RateBook, RateCard};
use crate::time::{Instant, Month, local_midnight};

/// Local calendar of one WABA (or portfolio): its months and the instants
/// its cards start.
pub(crate) struct Calendar<'b> {
    pub(crate) tz: TimeZone,
    months: Vec<(Instant, Instant, Month)>,
    /// Per (family, currency), when each card starts and its index in
    /// the book.
    cards: FxHashMap<(Family, usize), Vec<(Instant, usize)>>,
    pub(crate) book: &'b RateBook,
    /// Rules D7: the currency billed from each instant on, sorted.
    currencies: Vec<(Instant, String)>,
    /// What-if runs: cards are chosen as if no traffic were earlier.
    floor: Option<Instant>,
    /// A WABA's: the basis of its invoices (rules V1) and its business
    /// country (D6), which derivation reads.
    pub(crate) basis: Basis,
    pub(crate) business_country: Option<Region>,
}

impl<'b> Calendar<'b> {
    pub fn new(tz: TimeZone, book: &'b RateBook, config: &EngineConfig) -> Calendar<'b> {
        Calendar {
            floor: config.rate_floor.map(|d| local_midnight(d, &tz)),
            tz,
            months: Vec::new(),
            cards: FxHashMap::default(),
            book,
            currencies: vec![(Instant(i64::MIN), config.platform.currency.clone())],
            basis: config.basis,
            business_country: None,
        }
    }

    /// The calendar of WABA `waba`, configured as `config` says.
    pub fn of_waba(waba: &str, book: &'b RateBook, config: &EngineConfig) -> Calendar<'b> {
        let settings = config.waba(waba);
        let mut calendar = Calendar {
            business_country: settings.business_country,
            ..Calendar::new(settings.timezone.clone(), book, config)
        };
        for (from, currency) in &settings.currencies {
            let at = local_midnight(*from, &calendar.tz);
            calendar.currencies.push((at, currency.clone()));
        }
        calendar
    }

    /// Rules D7: the currency billed at `at`.
    pub(crate) fn currency_at(&self, at: Instant) -> &str {
        self.currencies[self.currency_index(at)].1.as_str()
    }

    fn currency_index(&self, at: Instant) -> usize {
        self.currencies
            .partition_point(|(from, _)| *from <= at)
            .saturating_sub(1)
    }

    pub fn month_of(&mut self, at: Instant) -> Month {
        let i = self.months.partition_point(|m| m.0 <= at);
        if let Some(&(start, end, month)) = i.checked_sub(1).map(|i| &self.months[i])
            && start <= at
            && at < end
        {
            return month;
        }
        let month = Month::of(at.local_date(&self.tz));
        let start = local_midnight(month.first_day(), &self.tz);
        let end = local_midnight(month.next().first_day(), &self.tz);
        self.months.insert(i, (start, end, month));
        month
    }

    /// The card of `family` in force at `at` (rules D2), or for a what-if
    /// run at the floor when `at` is earlier, with its index in the book.
    pub(crate) fn card_at(&mut self, family: Family, at: Instant) -> Option<(usize, &'b RateCard)> {
        // The currency is the record's own month's (D7), whatever the floor.
        let c = self.currency_index(at);
        let at = self.floor.map_or(at, |floor| at.max(floor));
        let (book, tz, currency) = (self.book, &self.tz, &self.currencies[c].1);
        let starts = self.cards.entry((family, c)).or_insert_with(|| {
            book.cards()
                .iter()
                .enumerate()
                .filter(|(_, c)| c.family == family && &c.currency == currency)
                .map(|(i, c)| (local_midnight(c.effective_from, tz), i))
                .collect()
        });
        let i = starts.partition_point(|(start, _)| *start <= at);
        let card = starts[i.checked_sub(1)?].1;
        Some((card, &book.cards()[card]))
    }
}
