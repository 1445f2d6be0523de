//! The invoice of a WABA-month (cli.md): counts, lines, Meta's amounts,
//! the platform fee (D4, D5) and the amount due (D3).

use rust_decimal::{Decimal, RoundingStrategy};
use rustc_hash::FxHashMap;

use super::money::{at_scale, exact_add, exact_mul};
use super::{BillingError, Record};
use crate::config::{EngineConfig, FeeAppliesTo};
use crate::conversation::Free;
use crate::era::EraKind;
use crate::market::MarketId;
use crate::tariff::{Category, RateBook};
use crate::time::Month;

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
    pub(crate) fn add(&mut self, free: Free) {
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
    /// Rules P6: the provider that carried the phone, when configured.
    pub provider: Option<crate::carriers::Provider>,
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

impl FeeAppliesTo {
    /// D4: whether a conversation or message, free as `free`, bears the
    /// platform fee.
    pub fn bears_fee(self, free: Free) -> bool {
        match self {
            FeeAppliesTo::Paid => free == Free::None,
            FeeAppliesTo::All => true,
        }
    }

    /// D4: how many of a month's conversations and messages bear the fee.
    pub fn fee_bearing(self, conversations: &Counts, messages: &Counts) -> u64 {
        match self {
            FeeAppliesTo::Paid => conversations.paid + messages.paid,
            FeeAppliesTo::All => conversations.total + messages.total,
        }
    }
}

/// D5: the fee is charged on the fee-bearing units beyond the plan's
/// included ones.
pub fn fee_quantity(fee_bearing: u64, included: u64) -> u64 {
    fee_bearing.saturating_sub(included)
}

/// The invoice of one WABA-month from its rated records (cli.md).
pub(crate) fn invoice(
    book: &RateBook,
    config: &EngineConfig,
    waba: String,
    month: Month,
    records: &[Record],
) -> Result<Invoice, BillingError> {
    let settings = config.waba(&waba);
    let (conversations, messages, lines) = count_lines(book, records)?;
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
    let fee_bearing = config
        .platform
        .fee_applies_to
        .fee_bearing(&conversations, &messages);
    let quantity = fee_quantity(fee_bearing, settings.included_conversations);
    let unit = config.platform.fee_per_conversation;
    let fee_amount = exact_mul(unit, Decimal::from(quantity)).ok_or(overflow("platform fee"))?;
    let fee_amount = at_scale(fee_amount, unit.scale());
    let total = exact_add(meta_total, fee_amount).ok_or(overflow("total"))?;
    let total = at_scale(total, scale.max(unit.scale()));
    let currency = config.currency_on(&waba, month.first_day()).to_owned();
    let digits = config.minor_unit_digits(&currency);
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
        currency,
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

fn overflow(what: &'static str) -> BillingError {
    BillingError::Overflow { what }
}

/// The month's conversation and message counts, and its lines: one per
/// (era, market, category, unit price, tier), sorted so (cli.md), each
/// with its exact amount.
fn count_lines(
    book: &RateBook,
    records: &[Record],
) -> Result<(Counts, Counts, Vec<Line>), BillingError> {
    let mut conversations = Counts::default();
    let mut messages = Counts::default();
    type LineKey = (
        EraKind,
        MarketId,
        Category,
        Decimal,
        Option<(u64, Option<u64>)>,
        Option<crate::carriers::Provider>,
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
            .entry((
                r.era,
                r.market,
                r.category,
                r.unit_price,
                r.tier,
                r.provider,
            ))
            .or_default()
            .add(r.free);
    }
    let mut lines: Vec<_> = by_key
        .into_iter()
        .map(|((era, market, category, price, tier, provider), counts)| {
            (
                (
                    era,
                    book.market_name(market),
                    category,
                    price,
                    tier,
                    provider,
                ),
                counts,
            )
        })
        .collect();
    lines.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let lines = lines
        .into_iter()
        .map(
            |((era, market, category, unit_price, tier, provider), counts)| {
                let amount = exact_mul(Decimal::from(counts.paid), unit_price)
                    .ok_or(overflow("line amount"))?;
                Ok(Line {
                    era,
                    market: market.to_owned(),
                    category,
                    tier,
                    provider,
                    counts,
                    unit_price,
                    meta_amount: at_scale(amount, unit_price.scale()),
                })
            },
        )
        .collect::<Result<_, BillingError>>()?;
    Ok((conversations, messages, lines))
}
