//! From the ledger to rated conversations and invoices: per-pair derivation,
//! free-tier allocation per WABA and local month (A5), rating (A6, D1–D5).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::{Decimal, RoundingStrategy};
use rustc_hash::FxHashMap;

use crate::config::FeeAppliesTo;
use crate::conversation::{Delivered, DeliveryError, InboundItem, derive_pair};
use crate::era::EraKind;
use crate::ledger::{Ledger, template_of};
use crate::market::MarketId;
use crate::rates::{Category, Family, RateBook, RateCard};
use crate::time::{Instant, Month, local_midnight};

/// Why a conversation (or a whole month) could not be rated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error(
        "era {era} is not supported yet: message {message} delivered {at} (WABA {waba}) falls in it"
    )]
    UnsupportedEra {
        era: &'static str,
        waba: String,
        message: String,
        at: String,
    },
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
    #[error("the invoice's {what} is too large to compute exactly (check rates and fees)")]
    Overflow { what: &'static str },
}

/// How a conversation or message is free, if it is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Free {
    None,
    FreeTier,
    FreeEntryPoint,
    FreeCustomerService,
}

impl Free {
    pub fn as_str(self) -> &'static str {
        match self {
            Free::None => "none",
            Free::FreeTier => "free_tier",
            Free::FreeEntryPoint => "free_entry_point",
            Free::FreeCustomerService => "free_customer_service",
        }
    }
}

/// A rated conversation.
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

/// Bills every WABA-month of the ledger.
pub fn bill<'a>(ledger: &'a Ledger, book: &'a RateBook) -> Billing<'a> {
    // Data parallelism only: each half is computed independently and merged
    // in a fixed order, so results never depend on scheduling.
    let ((inbound, inbound_pairs), (delivered, delivered_pairs)) = std::thread::scope(|s| {
        let inbound = s.spawn(|| inbound_by_pair(ledger));
        let delivered = delivered_by_pair(ledger);
        (
            inbound
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            delivered,
        )
    });

    let mut calendars: Vec<Calendar<'_>> = (0..ledger.wabas.len())
        .map(|w| {
            let name = ledger.waba_name(w as u32);
            Calendar::new(ledger.config().waba(name).timezone.clone(), book, ledger)
        })
        .collect();
    let mut groups: FxHashMap<(u32, Month), Group> = FxHashMap::default();
    let mut errors = Vec::new();
    let mut i = 0;
    let mut j = 0;
    while j < delivered.len() {
        let pair = delivered_pairs[j];
        let j_end = j + delivered_pairs[j..].partition_point(|p| *p == pair);
        while i < inbound.len() && inbound_pairs[i] < pair {
            i += 1;
        }
        let i_end = i + inbound_pairs[i..].partition_point(|p| *p == pair);
        let waba = ledger.pair(pair).waba;
        let clock = ledger.clock(waba);
        let conversations =
            derive_pair(&inbound[i..i_end], &delivered[j..j_end], clock, &mut errors);
        let calendar = &mut calendars[waba as usize];
        for error in errors.drain(..) {
            let (at, message) = match error {
                DeliveryError::UnsupportedEra { at, msg, .. }
                | DeliveryError::NoEra { at, msg } => (at, msg),
            };
            let waba_name = ledger.waba_name(waba).to_owned();
            let message = ledger.message_id(message).to_owned();
            let at_text = at.rfc3339();
            let billing_error = match error {
                DeliveryError::UnsupportedEra { era, .. } => BillingError::UnsupportedEra {
                    era: era.as_str(),
                    waba: waba_name,
                    message,
                    at: at_text,
                },
                DeliveryError::NoEra { .. } => BillingError::NoEra {
                    waba: waba_name,
                    message,
                    at: at_text,
                },
            };
            let month = calendar.month_of(at);
            groups
                .entry((waba, month))
                .or_default()
                .errors
                .push(billing_error);
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
                    free: Free::None,
                    unit_price: Decimal::ZERO,
                    opened_by: c.opened_by,
                    messages: c.messages,
                });
        }
        i = i_end;
        j = j_end;
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
    let rate_all = |jobs: Vec<((u32, Month), Group)>| -> Vec<WabaMonth> {
        let mut calendars: Vec<Calendar<'_>> = (0..ledger.wabas.len())
            .map(|w| {
                let name = ledger.waba_name(w as u32);
                Calendar::new(ledger.config().waba(name).timezone.clone(), book, ledger)
            })
            .collect();
        jobs.into_iter()
            .map(|(key, group)| {
                rate_month(ledger, book, &mut calendars[key.0 as usize], key, group)
            })
            .collect()
    };
    let second_half = jobs.split_off(jobs.len() / 2);
    let months = std::thread::scope(|s| {
        let second = s.spawn(|| rate_all(second_half));
        let mut months = rate_all(jobs);
        months.extend(
            second
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        );
        months
    });
    Billing {
        ledger,
        book,
        months,
    }
}

#[derive(Default)]
struct Group {
    records: Vec<Record>,
    errors: Vec<BillingError>,
}

/// Inbound messages sorted by (pair, time, id), and the pair of each.
fn inbound_by_pair(ledger: &Ledger) -> (Vec<InboundItem>, Vec<u32>) {
    let mut items: Vec<(u32, i64, u32, bool)> = ledger
        .messages
        .records
        .iter()
        .enumerate()
        .filter_map(|(m, message)| {
            let slot = message.inbound.get()?;
            Some((slot.pair, slot.at, m as u32, slot.flag == 1))
        })
        .collect();
    items.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| ledger.message_id(a.2).cmp(ledger.message_id(b.2)))
    });
    let pairs = items.iter().map(|i| i.0).collect();
    let inbound = items
        .into_iter()
        .map(|(_, at, _, referral)| InboundItem {
            at: Instant(at),
            referral,
        })
        .collect();
    (inbound, pairs)
}

/// Delivered business messages sorted by (pair, delivery, id) (F2, F6, F8).
fn delivered_by_pair(ledger: &Ledger) -> (Vec<Delivered>, Vec<u32>) {
    let mut items: Vec<(u32, Delivered)> = ledger
        .messages
        .records
        .iter()
        .enumerate()
        .filter_map(|(m, message)| {
            let slot = message.delivery.get()?;
            // F3: a delivered message without an outbound record is not a template.
            let template = message.outbound.get().and_then(|o| template_of(o.flag));
            Some((
                slot.pair,
                Delivered {
                    at: Instant(slot.at),
                    msg: m as u32,
                    template,
                },
            ))
        })
        .collect();
    items.sort_unstable_by(|a, b| {
        (a.0, a.1.at)
            .cmp(&(b.0, b.1.at))
            .then_with(|| ledger.message_id(a.1.msg).cmp(ledger.message_id(b.1.msg)))
    });
    let pairs = items.iter().map(|i| i.0).collect();
    (items.into_iter().map(|i| i.1).collect(), pairs)
}

/// Local calendar of one WABA: its months and the instants its cards start.
struct Calendar<'b> {
    tz: TimeZone,
    months: Vec<(Instant, Instant, Month)>,
    cards: FxHashMap<Family, Vec<(Instant, &'b RateCard)>>,
    book: &'b RateBook,
    currency: String,
}

impl<'b> Calendar<'b> {
    fn new(tz: TimeZone, book: &'b RateBook, ledger: &Ledger) -> Calendar<'b> {
        Calendar {
            tz,
            months: Vec::new(),
            cards: FxHashMap::default(),
            book,
            currency: ledger.config().platform.currency.clone(),
        }
    }

    fn month_of(&mut self, at: Instant) -> Month {
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

    fn card_at(&mut self, family: Family, at: Instant) -> Option<&'b RateCard> {
        let (book, tz, currency) = (self.book, &self.tz, &self.currency);
        let starts = self.cards.entry(family).or_insert_with(|| {
            book.cards()
                .iter()
                .filter(|c| c.family == family && &c.currency == currency)
                .map(|c| (local_midnight(c.effective_from, tz), c))
                .collect()
        });
        let i = starts.partition_point(|(start, _)| *start <= at);
        i.checked_sub(1).map(|i| starts[i].1)
    }
}

fn rate_month(
    ledger: &Ledger,
    book: &RateBook,
    calendar: &mut Calendar<'_>,
    (waba, month): (u32, Month),
    mut group: Group,
) -> WabaMonth {
    let config = ledger.config();
    let waba_name = ledger.waba_name(waba).to_owned();
    group.records.sort_by(|a, b| record_order(ledger, a, b));

    // A5/B7: the first N eligible conversations of the month are free.
    let mut free_left = config.free_tier_per_month;
    let mut errors = group.errors;
    for record in &mut group.records {
        let Some(rules) = record.era.rules() else {
            continue;
        };
        record.free = if record.category == Category::FreeEntryPoint {
            Free::FreeEntryPoint
        } else if free_left > 0 && rules.free_tier_eligible(record.category, record.start) {
            free_left -= 1;
            Free::FreeTier
        } else {
            Free::None
        };
        match price(ledger, book, calendar, rules.family(), record) {
            Ok((market, unit)) => {
                record.market = market;
                record.unit_price = unit;
            }
            Err(e) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
    let invoice = if errors.is_empty() {
        invoice(ledger, book, waba_name.clone(), month, &group.records).map_err(|e| vec![e])
    } else {
        Err(errors)
    };
    WabaMonth {
        waba: waba_name,
        month,
        records: group.records,
        invoice,
    }
}

/// A5: conversations ordered by (start, phone, user, opening message id).
fn record_order(ledger: &Ledger, a: &Record, b: &Record) -> Ordering {
    a.start.cmp(&b.start).then_with(|| {
        let (_, pa, ua) = ledger.pair_names(a.pair);
        let (_, pb, ub) = ledger.pair_names(b.pair);
        (pa, ua, ledger.message_id(a.opened_by)).cmp(&(pb, ub, ledger.message_id(b.opened_by)))
    })
}

/// D1/D2/A6: the market and the card's unit price for a conversation.
fn price(
    ledger: &Ledger,
    book: &RateBook,
    calendar: &mut Calendar<'_>,
    family: Family,
    record: &Record,
) -> Result<(MarketId, Decimal), BillingError> {
    let key = ledger.pair(record.pair);
    let card = calendar
        .card_at(family, record.start)
        .ok_or_else(|| BillingError::NoCard {
            family: family.as_str(),
            currency: ledger.config().platform.currency.clone(),
            date: record.start.local_date(&calendar.tz),
            waba: ledger.waba_name(key.waba).to_owned(),
        })?;
    let map = book
        .map_at(card.effective_from)
        .ok_or_else(|| BillingError::NoMarketMap {
            card: card.source.clone(),
        })?;
    let (_, _, user) = ledger.pair_names(record.pair);
    let market = map.market_of(user, ledger.region(key.user), book.other_market());
    if record.category == Category::FreeEntryPoint {
        return Ok((market, Decimal::ZERO));
    }
    let unit = card
        .rate(market, record.category)
        .ok_or_else(|| BillingError::MissingRate {
            card: card.source.clone(),
            market: book.market_name(market).to_owned(),
            category: record.category.as_str(),
        })?;
    Ok((market, unit))
}

fn invoice(
    ledger: &Ledger,
    book: &RateBook,
    waba: String,
    month: Month,
    records: &[Record],
) -> Result<Invoice, BillingError> {
    let config = ledger.config();
    let settings = config.waba(&waba);
    let mut conversations = Counts::default();
    let mut lines: BTreeMap<(EraKind, &str, Category, Decimal), Counts> = BTreeMap::new();
    for r in records {
        conversations.add(r.free);
        lines
            .entry((r.era, book.market_name(r.market), r.category, r.unit_price))
            .or_default()
            .add(r.free);
    }
    let overflow = |what| BillingError::Overflow { what };
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|((era, market, category, unit_price), counts)| {
            let amount = Decimal::from(counts.paid)
                .checked_mul(unit_price)
                .ok_or(overflow("line amount"))?;
            Ok(Line {
                era,
                market: market.to_owned(),
                category,
                tier: None,
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
        .try_fold(Decimal::ZERO, |sum, l| sum.checked_add(l.meta_amount))
        .ok_or(overflow("Meta total"))?;
    let meta_total = at_scale(meta_total, scale);
    let messages = Counts::default();
    // D4/D5: the fee applies beyond the plan's included volume.
    let fee_bearing = match config.platform.fee_applies_to {
        FeeAppliesTo::Paid => conversations.paid + messages.paid,
        FeeAppliesTo::All => conversations.total + messages.total,
    };
    let quantity = fee_bearing.saturating_sub(settings.included_conversations);
    let unit = config.platform.fee_per_conversation;
    let fee_amount = unit
        .checked_mul(Decimal::from(quantity))
        .ok_or(overflow("platform fee"))?;
    let fee_amount = at_scale(fee_amount, unit.scale());
    let total = meta_total
        .checked_add(fee_amount)
        .ok_or(overflow("total"))?;
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

/// `value` with at least `scale` decimal places (exact: only adds zeros).
fn at_scale(mut value: Decimal, scale: u32) -> Decimal {
    if value.scale() < scale {
        value.rescale(scale);
    }
    value
}
