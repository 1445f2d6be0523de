//! What a customer invoice holds (cli.md "Customer invoices"), and why
//! one cannot be built.

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::Period;
use crate::billing::Counts;
use crate::tariff::Category;
use crate::time::Month;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("customer {customer}: WABA {waba}'s invoice for {month} cannot be built: {reasons}")]
    WabaInvoice {
        customer: String,
        waba: String,
        month: Month,
        reasons: String,
    },
    #[error(
        "customer {customer}: no exchange rate from {from} to {to} is in force on {date} (WABA {waba})"
    )]
    NoExchangeRate {
        customer: String,
        waba: String,
        from: String,
        to: String,
        date: Date,
    },
    #[error("customer {customer}: plan {plan} has no version in force on {date}")]
    NoPlanVersion {
        customer: String,
        plan: String,
        date: Date,
    },
    #[error(
        "customer {customer}: an amount cannot be held exactly in 28 decimal places (a price, rate or markup with too many digits, or too large)"
    )]
    Overflow { customer: String },
}

impl CustomerError {
    /// An amount of `customer`'s that cannot be held exactly.
    pub(super) fn overflow(customer: &super::Customer) -> CustomerError {
        CustomerError::Overflow {
            customer: customer.id.clone(),
        }
    }
}

/// A subscription price due in the invoice's month (rules P3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionCharge {
    pub plan: String,
    pub version_from: Date,
    pub period: Period,
    pub period_from: Date,
    pub period_to: Date,
    /// The days charged: `[from, to)`.
    pub from: Date,
    pub to: Date,
    pub days: i64,
    /// Days of the period (an instalment's: of its month).
    pub whole_days: i64,
    /// A twelfth of a yearly price (`spread`).
    pub instalment: bool,
    pub price: Decimal,
    pub amount: Decimal,
}

/// Converted at one rate (rules P5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    pub from: String,
    pub to: String,
    pub rate: Decimal,
    pub effective_from: Date,
    pub amount: Decimal,
    pub converted: Decimal,
}

/// Meta's charges of one WABA invoice (or the part of its month the WABA
/// was the customer's), passed through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassThrough {
    pub waba: String,
    pub month: Month,
    pub timezone: String,
    /// The WABA invoice's currency.
    pub currency: String,
    /// Rules P6: the provider that carried the phone (one entry per
    /// provider of the month), when configured.
    pub provider: Option<crate::carriers::Provider>,
    /// Set when the WABA was the customer's for part of the month only.
    pub part: Option<(Option<Date>, Option<Date>)>,
    pub conversations: Counts,
    pub messages: Counts,
    pub meta_amount: Decimal,
    pub conversions: Vec<Conversion>,
    /// `meta_amount` in the customer's currency.
    pub amount: Decimal,
    /// Units that used included volume, and units beyond it.
    pub included_units: u64,
    pub extra_units: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncludedPool {
    pub plan: String,
    pub version_from: Date,
    pub from: Date,
    pub to: Date,
    pub allowance: u64,
    pub used_before: u64,
    pub used: u64,
    pub left: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraLine {
    pub plan: String,
    pub version_from: Date,
    pub category: Category,
    pub unit_price: Decimal,
    pub quantity: u64,
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkupLine {
    pub plan: String,
    pub version_from: Date,
    pub rate: Decimal,
    /// The pass-through it applies to, in the customer's currency.
    pub base: Decimal,
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerInvoice {
    pub customer: String,
    pub name: Option<String>,
    pub month: Month,
    pub currency: String,
    pub subscription: Vec<SubscriptionCharge>,
    pub wabas: Vec<PassThrough>,
    pub pass_through: Decimal,
    pub included: Vec<IncludedPool>,
    pub extra: Vec<ExtraLine>,
    pub markup: Vec<MarkupLine>,
    pub platform_total: Decimal,
    pub total: Decimal,
    pub amount_due: Decimal,
}
