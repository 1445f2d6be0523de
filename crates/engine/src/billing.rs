//! From the ledger to rated conversations, messages and invoices: per-pair
//! derivation under each era, free tiers per WABA (A5, B7) or phone
//! (section 5) and local month, volume tiers per portfolio (C4), rating
//! (A6, B8, C1, D1–D5).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::{Decimal, RoundingStrategy};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::{EngineConfig, FeeAppliesTo, PortfolioKey};
pub use crate::conversation::Free;
use crate::conversation::{Delivered, InboundItem, derive_pair};
use crate::era::{EraClock, EraKind, EraRules, FreeTierPool};
use crate::ledger::{Ledger, Message, Slot, template_of};
use crate::market::MarketId;
use crate::rates::{Category, Family, RateBook, RateCard};
use crate::time::{Instant, Month, local_midnight};

/// Why a conversation (or a whole month) could not be rated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("no era applies to message {message} delivered {at} (WABA {waba})")]
    NoEra {
        waba: String,
        message: String,
        at: String,
    },
    #[error("no {family} rate card in {currency} is in force on {date} (WABA {waba})")]
    NoCard {
        family: &'static str,
        currency: String,
        date: Date,
        waba: String,
    },
    #[error("no market map is in force for rate card {card}")]
    NoMarketMap { card: String },
    #[error("rate card {card} has no rate for market {market:?}, category {category}")]
    MissingRate {
        card: String,
        market: String,
        category: &'static str,
    },
    #[error(
        "rate card {card} has no volume-tier band for charged message {n} of the month in market {market:?}, category {category}"
    )]
    NoTierBand {
        card: String,
        market: String,
        category: &'static str,
        n: u64,
    },
    #[error(
        "the invoice's {what} is too large or has too many decimal places to compute exactly (check rates and fees)"
    )]
    Overflow { what: &'static str },
}

/// A rated conversation, or under a per-message era one rated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub pair: u32,
    pub start: Instant,
    pub end: Instant,
    pub era: EraKind,
    pub category: Category,
    pub market: MarketId,
    pub free: Free,
    pub unit_price: Decimal,
    pub opened_by: u32,
    pub messages: u32,
    /// Volume-tier band that priced a per-message record (rules C4).
    pub tier: Option<(u64, Option<u64>)>,
}

/// `total` split into how it is free or paid.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub free_tier: u64,
    pub free_entry_point: u64,
    pub free_customer_service: u64,
    pub paid: u64,
}

impl Counts {
    fn add(&mut self, free: Free) {
        self.total += 1;
        match free {
            Free::None => self.paid += 1,
            Free::FreeTier => self.free_tier += 1,
            Free::FreeEntryPoint => self.free_entry_point += 1,
            Free::FreeCustomerService => self.free_customer_service += 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub era: EraKind,
    pub market: String,
    pub category: Category,
    /// Volume-tier band `(from, to)` of a per-message line.
    pub tier: Option<(u64, Option<u64>)>,
    /// `counts.total` is the line's quantity.
    pub counts: Counts,
    pub unit_price: Decimal,
    pub meta_amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformFee {
    pub unit: Decimal,
    pub quantity: u64,
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    pub waba: String,
    pub month: Month,
    pub timezone: String,
    pub currency: String,
    pub conversations: Counts,
    pub messages: Counts,
    pub lines: Vec<Line>,
    pub meta_total: Decimal,
    pub platform_fee: PlatformFee,
    pub total: Decimal,
    pub amount_due: Decimal,
}

/// Everything about one WABA and local month.
#[derive(Clone, Debug)]
pub struct WabaMonth {
    pub waba: String,
    pub month: Month,
    /// Conversations sorted by (start, phone, user, opener id).
    pub records: Vec<Record>,
    pub invoice: Result<Invoice, Vec<BillingError>>,
}

/// The result of billing a ledger.
pub struct Billing<'a> {
    pub ledger: &'a Ledger,
    pub book: &'a RateBook,
    /// Sorted by WABA, then month.
    pub months: Vec<WabaMonth>,
}

impl Billing<'_> {
    pub fn market_name(&self, id: MarketId) -> &str {
        self.book.market_name(id)
    }
}

/// Bills every WABA-month of the ledger under its own configuration.
pub fn bill<'a>(ledger: &'a Ledger, book: &'a RateBook) -> Billing<'a> {
    bill_with(ledger, book, ledger.config())
}

/// Bills the ledger under `config` (a what-if run passes a different era
/// timeline; everything else should match the ledger's).
pub fn bill_with<'a>(ledger: &'a Ledger, book: &'a RateBook, config: &EngineConfig) -> Billing<'a> {
    let ((inbound, inbound_pairs), (delivered, delivered_pairs)) =
        join(|| inbound_by_pair(ledger), || delivered_by_pair(ledger));

    let zone = |w: usize| config.waba(ledger.waba_name(w as u32)).timezone.clone();
    let clocks: Vec<EraClock> = (0..ledger.n_wabas())
        .map(|w| EraClock::new(&config.timeline, &zone(w)))
        .collect();
    // Two halves of the pairs, derived on two threads and merged; records
    // are sorted per WABA-month afterwards, so the split cannot show.
    let mid = delivered_pairs
        .get(delivered_pairs.len() / 2)
        .map_or(0, |m| delivered_pairs.partition_point(|p| p < m));
    let inputs = ByPair {
        inbound: &inbound,
        inbound_pairs: &inbound_pairs,
        delivered: &delivered,
        delivered_pairs: &delivered_pairs,
    };
    let calendars = || -> Vec<Calendar<'_>> {
        (0..ledger.n_wabas())
            .map(|w| Calendar::new(zone(w), book, config))
            .collect()
    };
    let derive = |range: std::ops::Range<usize>| {
        derive_pairs(ledger, book, &clocks, &mut calendars(), &inputs, range)
    };
    let (mut groups, second) = join(|| derive(0..mid), || derive(mid..delivered.len()));
    for (key, group) in second {
        let entry = groups.entry(key).or_default();
        entry.records.extend(group.records);
        entry.errors.extend(group.errors);
    }

    let mut keys: Vec<(u32, Month)> = groups.keys().copied().collect();
    keys.sort_by(|a, b| {
        ledger
            .waba_name(a.0)
            .cmp(ledger.waba_name(b.0))
            .then(a.1.cmp(&b.1))
    });
    let mut jobs: Vec<((u32, Month), Group)> = keys
        .into_iter()
        .map(|key| (key, groups.remove(&key).unwrap_or_default()))
        .collect();
    let tiered = tiered_markets(book);
    let rate_all = |jobs: Vec<((u32, Month), Group)>| -> Vec<Rated> {
        let mut calendars = calendars();
        jobs.into_iter()
            .map(|(key, group)| {
                let calendar = &mut calendars[key.0 as usize];
                rate_month(ledger, config, calendar, &tiered, key, group)
            })
            .collect()
    };
    // Halves of about equal work: per-message months are far larger.
    let total: usize = jobs.iter().map(|j| j.1.records.len()).sum();
    let mut running = 0;
    let split = jobs
        .iter()
        .position(|j| {
            running += j.1.records.len();
            running * 2 >= total
        })
        .map_or(jobs.len(), |i| i + 1);
    let second_half = jobs.split_off(split.min(jobs.len()));
    let (mut rated, second) = join(|| rate_all(jobs), || rate_all(second_half));
    rated.extend(second);
    allot_volume_tiers(ledger, book, config, &mut rated);
    let months = rated
        .into_iter()
        .map(|r| finish(ledger, book, config, r))
        .collect();
    Billing {
        ledger,
        book,
        months,
    }
}

/// A month rated to the end (volume tiers allotted) with its invoice.
pub(crate) fn finish(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
    r: Rated,
) -> WabaMonth {
    let waba = ledger.waba_name(r.waba).to_owned();
    let invoice = if r.errors.is_empty() {
        invoice(book, config, waba.clone(), r.month, &r.records).map_err(|e| vec![e])
    } else {
        Err(r.errors)
    };
    WabaMonth {
        waba,
        month: r.month,
        records: r.records,
        invoice,
    }
}

/// Runs `a` and `b` on two threads. Data parallelism only: each half is
/// computed independently and the caller merges them in a fixed order, so
/// results never depend on scheduling.
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|s| {
        let b = s.spawn(b);
        let a = a();
        (a, b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    })
}

/// Appends `error` unless the list has it already.
fn push_once(errors: &mut Vec<BillingError>, error: BillingError) {
    if !errors.contains(&error) {
        errors.push(error);
    }
}

/// Inbound and delivered messages sorted by pair, with the pair of each.
struct ByPair<'v> {
    inbound: &'v [InboundItem],
    inbound_pairs: &'v [u32],
    delivered: &'v [Delivered],
    delivered_pairs: &'v [u32],
}

/// Derives the pairs of `range` (indices of `delivered`, on pair
/// boundaries) and groups their records by WABA and local month.
fn derive_pairs(
    ledger: &Ledger,
    book: &RateBook,
    clocks: &[EraClock],
    calendars: &mut [Calendar<'_>],
    v: &ByPair<'_>,
    range: std::ops::Range<usize>,
) -> FxHashMap<(u32, Month), Group> {
    let mut groups: FxHashMap<(u32, Month), Group> = FxHashMap::default();
    let mut j = range.start;
    let Some(&first_pair) = v.delivered_pairs.get(j) else {
        return groups;
    };
    let mut i = v.inbound_pairs.partition_point(|p| *p < first_pair);
    while j < range.end {
        let pair = v.delivered_pairs[j];
        let j_end = j + v.delivered_pairs[j..].partition_point(|p| *p == pair);
        while i < v.inbound.len() && v.inbound_pairs[i] < pair {
            i += 1;
        }
        let i_end = i + v.inbound_pairs[i..].partition_point(|p| *p == pair);
        let waba = ledger.pair(pair).waba as usize;
        derive_into(
            ledger,
            book,
            (&clocks[waba], &mut calendars[waba]),
            pair,
            (&v.inbound[i..i_end], &v.delivered[j..j_end]),
            &mut groups,
        );
        i = i_end;
        j = j_end;
    }
    groups
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
    let conversations = derive_pair(inbound, delivered, clock, &mut errors);
    for error in errors {
        let month = calendar.month_of(error.at);
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
    for c in conversations {
        let month = calendar.month_of(c.start);
        groups
            .entry((waba, month))
            .or_default()
            .records
            .push(Record {
                pair,
                start: c.start,
                end: c.end,
                era: c.era,
                category: c.category,
                market: book.other_market(),
                free: c.free,
                unit_price: Decimal::ZERO,
                opened_by: c.opened_by,
                messages: c.messages,
                tier: None,
            });
    }
}

#[derive(Default, PartialEq, Eq)]
pub(crate) struct Group {
    pub records: Vec<Record>,
    pub errors: Vec<BillingError>,
}

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
            Some((slot.pair, slot.at, m as u32, item))
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
fn inbound_by_pair(ledger: &Ledger) -> (Vec<InboundItem>, Vec<u32>) {
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
fn delivered_by_pair(ledger: &Ledger) -> (Vec<Delivered>, Vec<u32>) {
    by_pair(ledger, |m, message| {
        let slot = message.delivery.get()?;
        // F3: a delivered message without an outbound record is not a template.
        let template = message.outbound.get().and_then(|o| template_of(o.flag));
        let item = Delivered {
            at: Instant(slot.at),
            msg: m,
            template,
        };
        Some((slot, item))
    })
}

/// Local calendar of one WABA (or portfolio): its months and the instants
/// its cards start.
pub(crate) struct Calendar<'b> {
    tz: TimeZone,
    months: Vec<(Instant, Instant, Month)>,
    /// Per family, when each card starts and its index in the book.
    cards: FxHashMap<Family, Vec<(Instant, usize)>>,
    book: &'b RateBook,
    currency: String,
    /// What-if runs: cards are chosen as if no traffic were earlier.
    floor: Option<Instant>,
}

impl<'b> Calendar<'b> {
    pub fn new(tz: TimeZone, book: &'b RateBook, config: &EngineConfig) -> Calendar<'b> {
        Calendar {
            floor: config.rate_floor.map(|d| local_midnight(d, &tz)),
            tz,
            months: Vec::new(),
            cards: FxHashMap::default(),
            book,
            currency: config.platform.currency.clone(),
        }
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
    fn card_at(&mut self, family: Family, at: Instant) -> Option<(usize, &'b RateCard)> {
        let at = self.floor.map_or(at, |floor| at.max(floor));
        let (book, tz, currency) = (self.book, &self.tz, &self.currency);
        let starts = self.cards.entry(family).or_insert_with(|| {
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

/// The (market, category) pairs some card gives volume tiers for.
pub(crate) fn tiered_markets(book: &RateBook) -> FxHashSet<(MarketId, Category)> {
    book.cards()
        .iter()
        .flat_map(|c| c.tiers.keys().copied())
        .collect()
}

pub(crate) fn rate_month(
    ledger: &Ledger,
    config: &EngineConfig,
    calendar: &mut Calendar<'_>,
    tiered: &FxHashSet<(MarketId, Category)>,
    (waba, month): (u32, Month),
    mut group: Group,
) -> Rated {
    // A total order (each record has its own opener), so unstable is exact.
    group
        .records
        .sort_unstable_by(|a, b| record_order(ledger, a, b));

    // A5/B7: the first N eligible conversations of the month are free;
    // section 5: the first N service messages of each phone.
    let mut waba_free_left = config.free_tier_per_month;
    let mut phone_free_used: FxHashMap<u32, u64> = FxHashMap::default();
    let mut errors = group.errors;
    let mut tier_candidates = Vec::new();
    for (index, record) in group.records.iter_mut().enumerate() {
        let rules = record.era.rules();
        if record.free == Free::None {
            match rules.free_tier_pool(record.category, record.free) {
                Some(FreeTierPool::Waba) if waba_free_left > 0 => {
                    waba_free_left -= 1;
                    record.free = Free::FreeTier;
                }
                Some(FreeTierPool::Phone) => {
                    let used = phone_free_used
                        .entry(ledger.pair(record.pair).phone)
                        .or_default();
                    if *used < config.pmp_2026_free_service_per_phone {
                        *used += 1;
                        record.free = Free::FreeTier;
                    }
                }
                _ => {}
            }
        }
        match price(ledger, config, calendar, rules, tiered, record) {
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
    }
}

/// A5: conversations ordered by (start, phone, user, opening message id);
/// C5: messages by (delivery, waba, phone, user, message id). Within one
/// WABA the two orders are the same.
fn record_order(ledger: &Ledger, a: &Record, b: &Record) -> Ordering {
    a.start.cmp(&b.start).then_with(|| {
        let (wa, pa, ua) = ledger.pair_names(a.pair);
        let (wb, pb, ub) = ledger.pair_names(b.pair);
        (wa, pa, ua, ledger.message_id(a.opened_by)).cmp(&(
            wb,
            pb,
            ub,
            ledger.message_id(b.opened_by),
        ))
    })
}

/// D1/D2/A6/B8/C1: the market and the card's unit price of a record, and
/// the card when its price waits for the volume tiers (C4).
fn price(
    ledger: &Ledger,
    config: &EngineConfig,
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
                currency: config.platform.currency.clone(),
                date: record.start.local_date(&calendar.tz),
                waba: ledger.waba_name(key.waba).to_owned(),
            })?;
    let map = book
        .map_at(card.effective_from)
        .ok_or_else(|| BillingError::NoMarketMap {
            card: card.source.clone(),
        })?;
    // The user's digits matter only to a map with number prefixes.
    let user = if map.prefixes().is_empty() {
        ""
    } else {
        ledger.pair_names(record.pair).2
    };
    let market = map.market_of(user, ledger.region(key.user), book.other_market());
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

/// A charged per-message record waiting for its volume tier: its
/// WABA-month (an index the caller gives), its index there, and the book
/// index of the card pricing it.
pub(crate) type TierMember = (usize, usize, usize);

/// The band price and band of a tiered record, or why it has none.
pub(crate) type TierOutcome = Result<(Decimal, (u64, Option<u64>)), BillingError>;

/// C4/C5 for one portfolio, local month, market and category: its charged
/// messages in order of (delivery, waba, phone, user, message id); the
/// n-th pays the rate of its card's band containing n. Members whose card
/// has no bands there keep their rate and are left out.
pub(crate) fn allot_group<'r>(
    ledger: &Ledger,
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

/// C4 over every rated month: groups the tier candidates by portfolio,
/// portfolio-local month, market and category, and allots each group.
fn allot_volume_tiers(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
    rated: &mut [Rated],
) {
    let mut portfolio_calendars: FxHashMap<PortfolioKey<'_>, Calendar<'_>> = FxHashMap::default();
    let mut groups: BTreeMap<(PortfolioKey<'_>, Month, MarketId, Category), Vec<TierMember>> =
        BTreeMap::new();
    for (m, r) in rated.iter().enumerate() {
        let key = config.portfolio_key(ledger.waba_name(r.waba));
        let calendar = portfolio_calendars
            .entry(key)
            .or_insert_with(|| Calendar::new(config.portfolio_zone(key).clone(), book, config));
        for &(index, card) in &r.tier_candidates {
            let record = &r.records[index];
            let month = calendar.month_of(record.start);
            groups
                .entry((key, month, record.market, record.category))
                .or_default()
                .push((m, index, card));
        }
    }
    for ((_, _, market, category), mut members) in groups {
        let outcomes = allot_group(ledger, book, (market, category), &mut members, |m, i| {
            &rated[m].records[i]
        });
        for ((m, index, _), outcome) in outcomes {
            apply_tier(&mut rated[m], index, outcome);
        }
    }
}

fn invoice(
    book: &RateBook,
    config: &EngineConfig,
    waba: String,
    month: Month,
    records: &[Record],
) -> Result<Invoice, BillingError> {
    let settings = config.waba(&waba);
    let mut conversations = Counts::default();
    let mut messages = Counts::default();
    type LineKey = (
        EraKind,
        MarketId,
        Category,
        Decimal,
        Option<(u64, Option<u64>)>,
    );
    // Hashed by market id (cheap per record), then sorted by market name.
    let mut by_key: FxHashMap<LineKey, Counts> = FxHashMap::default();
    for r in records {
        if r.era.rules().per_message() {
            messages.add(r.free);
        } else {
            conversations.add(r.free);
        }
        by_key
            .entry((r.era, r.market, r.category, r.unit_price, r.tier))
            .or_default()
            .add(r.free);
    }
    let mut lines: Vec<_> = by_key
        .into_iter()
        .map(|((era, market, category, price, tier), counts)| {
            (
                (era, book.market_name(market), category, price, tier),
                counts,
            )
        })
        .collect();
    lines.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let overflow = |what| BillingError::Overflow { what };
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|((era, market, category, unit_price, tier), counts)| {
            let amount =
                exact_mul(Decimal::from(counts.paid), unit_price).ok_or(overflow("line amount"))?;
            Ok(Line {
                era,
                market: market.to_owned(),
                category,
                tier,
                counts,
                unit_price,
                meta_amount: at_scale(amount, unit_price.scale()),
            })
        })
        .collect::<Result<_, BillingError>>()?;
    // Amounts keep the scale of the prices they come from, zero included
    // (`0.0000`, not `0`), so every amount of an invoice reads alike.
    let scale = lines
        .iter()
        .map(|l| l.meta_amount.scale())
        .max()
        .unwrap_or(0);
    let meta_total = lines
        .iter()
        .try_fold(Decimal::ZERO, |sum, l| exact_add(sum, l.meta_amount))
        .ok_or(overflow("Meta total"))?;
    let meta_total = at_scale(meta_total, scale);
    // D4/D5: the fee applies beyond the plan's included volume.
    let fee_bearing = match config.platform.fee_applies_to {
        FeeAppliesTo::Paid => conversations.paid + messages.paid,
        FeeAppliesTo::All => conversations.total + messages.total,
    };
    let quantity = fee_bearing.saturating_sub(settings.included_conversations);
    let unit = config.platform.fee_per_conversation;
    let fee_amount = exact_mul(unit, Decimal::from(quantity)).ok_or(overflow("platform fee"))?;
    let fee_amount = at_scale(fee_amount, unit.scale());
    let total = exact_add(meta_total, fee_amount).ok_or(overflow("total"))?;
    let total = at_scale(total, scale.max(unit.scale()));
    let digits = config.platform.minor_unit_digits;
    let mut amount_due =
        total.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero);
    amount_due.rescale(digits);
    if amount_due.scale() != digits {
        return Err(overflow("amount due"));
    }
    Ok(Invoice {
        waba,
        month,
        timezone: settings.timezone_name.clone(),
        currency: config.platform.currency.clone(),
        conversations,
        messages,
        lines,
        meta_total,
        platform_fee: PlatformFee {
            unit,
            quantity,
            amount: fee_amount,
        },
        total,
        amount_due,
    })
}

/// `a × b` exactly (D3), or None: rust_decimal rounds a product it cannot
/// hold (more than 28 decimal places) instead of failing.
pub fn exact_mul(a: Decimal, b: Decimal) -> Option<Decimal> {
    let product = a.checked_mul(b)?;
    // A zero product comes back at scale 0, and is exact.
    (product.is_zero() || product.scale() == a.scale() + b.scale()).then_some(product)
}

/// `a + b` exactly (D3), or None (see [`exact_mul`]).
pub fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let sum = a.checked_add(b)?;
    // Adding zero returns the other operand as it is, and is exact.
    (a.is_zero() || b.is_zero() || sum.scale() == a.scale().max(b.scale())).then_some(sum)
}

/// `value` with at least `scale` decimal places (exact: only adds zeros).
fn at_scale(mut value: Decimal, scale: u32) -> Decimal {
    if value.scale() < scale {
        value.rescale(scale);
    }
    value
}
