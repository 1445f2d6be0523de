//! From the ledger to rated conversations, messages and invoices, in four
//! steps: per pair, deliveries go to the era in force ([`derivation`]);
//! per WABA and local month, free tiers and card prices ([`rate`],
//! [`free_tier`]); per portfolio month, volume tiers ([`tiers`]); then the
//! invoices ([`invoice`]). [`crate::incremental`] runs the same steps on
//! what changed.

mod calendar;
mod derivation;
mod error;
mod free_tier;
mod invoice;
mod money;
mod rate;
mod tiers;

use rust_decimal::Decimal;

pub(crate) use calendar::Calendar;
pub(crate) use derivation::{Group, derive_into};
pub use error::BillingError;
pub use free_tier::FreeTiers;
pub use invoice::{Counts, Invoice, Line, PlatformFee, fee_quantity};
pub(crate) use money::at_scale;
pub use money::{exact_add, exact_mul};
pub(crate) use rate::{Rated, merge_ordered, rate_month, rate_ordered};
pub(crate) use tiers::{
    TierOutcome, allot_portfolio_month, apply_tier, candidate_months, tiered_markets,
};

use crate::config::EngineConfig;
pub use crate::conversation::Free;
use crate::era::{EraClock, EraKind};
use crate::ledger::Ledger;
use crate::market::MarketId;
use crate::names::Names;
use crate::tariff::{Category, RateBook};
use crate::time::{Instant, Month};
use derivation::{ByPair, delivered_by_pair, derive_pairs, inbound_by_pair};

/// A rated conversation, or under a per-message era one rated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The pair it is billed to: under rules G1 a group delivery's
    /// participant, else the pair it was derived with.
    pub pair: u32,
    /// The pair it was derived with (a group's, rules G1).
    pub derived_from: u32,
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
    /// Rules P6: the provider that carried its phone when it started,
    /// when the configuration says.
    pub provider: Option<crate::carriers::Provider>,
}

impl Record {
    /// Back to what derivation gave, before rating took a free-tier slot,
    /// found the market and priced it (`other` is the book's
    /// [`RateBook::other_market`]): incremental rating re-rates the records
    /// it keeps.
    pub(crate) fn unrate(&mut self, other: MarketId) {
        if self.free == Free::FreeTier {
            self.free = Free::None;
        }
        self.market = other;
        self.unit_price = Decimal::ZERO;
        self.tier = None;
    }
}

/// Everything about one WABA and local month.
#[derive(Clone, Debug)]
pub struct WabaMonth {
    pub waba: String,
    pub month: Month,
    /// Conversations sorted by (start, phone, user, opener id).
    pub records: Vec<Record>,
    pub invoice: Result<Invoice, Vec<BillingError>>,
    /// The month's free tiers once every record took its slot.
    pub free_tiers: FreeTiers<String>,
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
    let groups = derive_all(ledger, book, config);
    let mut rated = rate_all(ledger, book, config, groups);
    tiers::allot_volume_tiers(ledger, book, config, &mut rated);
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

/// Which conversation each delivered message went to under `config`'s
/// basis: (message, the message that opened its conversation; under
/// per-message eras itself), both ledger indices, by pair in delivery
/// order. What reconciliation and a webhooks-only stream compare with
/// Meta's conversation ids.
pub fn attribution(ledger: &Ledger, config: &EngineConfig) -> Vec<(u32, u32)> {
    let (inbound, inbound_pairs) = inbound_by_pair(ledger);
    let (delivered, delivered_pairs) = delivered_by_pair(ledger);
    let inputs = ByPair {
        inbound: &inbound,
        inbound_pairs: &inbound_pairs,
        delivered: &delivered,
        delivered_pairs: &delivered_pairs,
    };
    let clocks = clocks(ledger, config);
    let meta = |m: u32| ledger.meta_charge(m);
    let verdicts: crate::derive::Verdicts<'_> =
        (config.basis == crate::config::Basis::Meta).then_some(&meta);
    let mut out = Vec::with_capacity(delivered.len());
    derivation::each_pair(&inputs, 0..delivered.len(), |pair, (inbound, delivered)| {
        let clock = &clocks[ledger.pair(pair).waba as usize];
        let mut went = Vec::with_capacity(delivered.len());
        let state = crate::derive::run_pair_with(
            inbound,
            delivered,
            clock,
            verdicts,
            &mut Vec::new(),
            |msg, i| went.push((msg, i)),
        );
        out.extend(went.into_iter().filter_map(|(msg, i)| {
            let opener = state.conversations.get(i)?.opened_by?;
            Some((msg, opener))
        }));
    });
    out
}

/// Every WABA's era clock, by WABA index.
fn clocks(ledger: &Ledger, config: &EngineConfig) -> Vec<EraClock> {
    (0..ledger.n_wabas())
        .map(|w| {
            let zone = &config.waba(ledger.waba_name(w as u32)).timezone;
            EraClock::new(&config.timeline, zone)
        })
        .collect()
}

/// Every WABA's local calendar, by WABA index.
fn calendars<'b>(ledger: &Ledger, book: &'b RateBook, config: &EngineConfig) -> Vec<Calendar<'b>> {
    (0..ledger.n_wabas())
        .map(|w| Calendar::of_waba(ledger.waba_name(w as u32), book, config))
        .collect()
}

/// Step 1: every pair derived, its records filed by WABA-month, sorted by
/// WABA name, then month.
fn derive_all(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
) -> Vec<((u32, Month), Group)> {
    let ((inbound, inbound_pairs), (delivered, delivered_pairs)) =
        join(|| inbound_by_pair(ledger), || delivered_by_pair(ledger));
    let clocks = clocks(ledger, config);
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
    let derive = |range: std::ops::Range<usize>| {
        let mut calendars = calendars(ledger, book, config);
        derive_pairs(ledger, book, &clocks, &mut calendars, &inputs, range)
    };
    let (mut groups, second) = join(|| derive(0..mid), || derive(mid..delivered.len()));
    for (key, group) in second {
        let entry = groups.entry(key).or_default();
        entry.records.extend(group.records);
        entry.errors.extend(group.errors);
    }
    let mut groups: Vec<((u32, Month), Group)> = groups.into_iter().collect();
    groups.sort_unstable_by(|(a, _), (b, _)| {
        ledger
            .waba_name(a.0)
            .cmp(ledger.waba_name(b.0))
            .then(a.1.cmp(&b.1))
    });
    groups
}

/// Step 2: every WABA-month rated but for its volume tiers, on two
/// threads, in the order given.
fn rate_all(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
    mut jobs: Vec<((u32, Month), Group)>,
) -> Vec<Rated> {
    let tiered = tiered_markets(book);
    let rate_jobs = |jobs: Vec<((u32, Month), Group)>| -> Vec<Rated> {
        let mut calendars = calendars(ledger, book, config);
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
    let (mut rated, second) = join(|| rate_jobs(jobs), || rate_jobs(second_half));
    rated.extend(second);
    rated
}

/// A month rated to the end (volume tiers allotted) with its invoice.
pub(crate) fn finish<N: Names>(
    ledger: &N,
    book: &RateBook,
    config: &EngineConfig,
    r: Rated,
) -> WabaMonth {
    let waba = ledger.waba_name(r.waba).to_owned();
    let invoice = if r.errors.is_empty() {
        invoice::invoice(book, config, waba.clone(), r.month, &r.records).map_err(|e| vec![e])
    } else {
        Err(r.errors)
    };
    WabaMonth {
        waba,
        month: r.month,
        records: r.records,
        invoice,
        free_tiers: r.free_tiers,
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
