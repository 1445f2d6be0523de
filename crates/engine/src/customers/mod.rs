//! Customers (rules section 8): what a platform invoices the businesses it
//! resells WhatsApp to. A customer groups WABAs over dated periods, pays in
//! its own currency and subscribes to dated plans; its invoice is built
//! from the WABA invoices' records ([`invoice`]) after billing, so it
//! changes nothing Meta's side computes.

mod charges;
mod invoice;
mod quote;
mod shape;
mod units;

use jiff::civil::Date;
use rust_decimal::Decimal;

pub use invoice::{CustomerMonth, customer_invoices, invoices_of};
pub use quote::{CustomerQuote, QuotedUnit, customer_quote};
pub use shape::{
    Conversion, CustomerError, CustomerInvoice, ExtraLine, IncludedPool, MarkupLine, PassThrough,
    SubscriptionCharge,
};

use crate::config::FeeAppliesTo;
use crate::tariff::Category;

/// How long one period of a plan lasts, and so how often its price is due.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Period {
    Month,
    Year,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Year => "year",
        }
    }
}

/// A plan's terms from `from` on (rules P2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanVersion {
    pub from: Date,
    /// The subscription price of one period.
    pub price: Decimal,
    /// Units included: per month, or per period when `pooled`.
    pub included: u64,
    pub pooled: bool,
    /// The platform's price per unit beyond the included ones.
    pub unit_price: Decimal,
    /// Prices that replace `unit_price` for some categories.
    pub by_category: Vec<(Category, Decimal)>,
    /// A fraction of Meta's pass-through added as the platform's (0: none).
    pub markup: Decimal,
    /// Which units count (rules D4's two choices).
    pub applies_to: FeeAppliesTo,
}

impl PlanVersion {
    pub fn unit_price_of(&self, category: Category) -> Decimal {
        self.by_category
            .iter()
            .find(|(c, _)| *c == category)
            .map_or(self.unit_price, |(_, p)| *p)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub period: Period,
    /// A yearly plan's price in twelve monthly instalments instead of at
    /// the start of each year.
    pub spread: bool,
    /// Sorted by `from`, no two on one date.
    pub versions: Vec<PlanVersion>,
}

impl Plan {
    /// The version in force on `date`, if any has started.
    pub fn version_at(&self, date: Date) -> Option<&PlanVersion> {
        let i = self.versions.partition_point(|v| v.from <= date);
        self.versions.get(i.checked_sub(1)?)
    }
}

/// `[from, to)` in local dates; `None` is open.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub from: Option<Date>,
    pub to: Option<Date>,
}

impl Span {
    pub const ALWAYS: Span = Span {
        from: None,
        to: None,
    };

    pub fn contains(&self, date: Date) -> bool {
        self.from.is_none_or(|f| f <= date) && self.to.is_none_or(|t| date < t)
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        let starts_before_other_ends = match (self.from, other.to) {
            (Some(f), Some(t)) => f < t,
            _ => true,
        };
        let other_starts_before_end = match (other.from, self.to) {
            (Some(f), Some(t)) => f < t,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_end
    }
}

/// A WABA billed to a customer over `span` (its local dates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub waba: String,
    pub span: Span,
}

/// A customer on plan `plan` from `from` until `to` (local dates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub plan: String,
    pub from: Date,
    pub to: Option<Date>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    /// ISO 4217 code its invoices are in.
    pub currency: String,
    pub minor_unit_digits: u32,
    pub wabas: Vec<Membership>,
    /// Sorted by `from`, not overlapping.
    pub subscriptions: Vec<Subscription>,
}

/// One unit of `from` is worth `rate` of `to` from `effective_from` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeRate {
    pub from: String,
    pub to: String,
    pub effective_from: Date,
    pub rate: Decimal,
}

/// Everything about customers the configuration says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Customers {
    /// Sorted by id.
    pub plans: Vec<Plan>,
    /// Sorted by id.
    pub customers: Vec<Customer>,
    /// Sorted by (from, to, effective_from).
    pub rates: Vec<ExchangeRate>,
}

impl Customers {
    pub fn plan(&self, id: &str) -> Option<&Plan> {
        let i = self
            .plans
            .binary_search_by(|p| p.id.as_str().cmp(id))
            .ok()?;
        Some(&self.plans[i])
    }

    pub fn customer(&self, id: &str) -> Option<&Customer> {
        let i = self
            .customers
            .binary_search_by(|c| c.id.as_str().cmp(id))
            .ok()?;
        Some(&self.customers[i])
    }

    /// The rate from `from` to `to` in force on `date` (rules P5).
    pub fn rate_at(&self, from: &str, to: &str, date: Date) -> Option<&ExchangeRate> {
        self.rates
            .iter()
            .rfind(|r| r.from == from && r.to == to && r.effective_from <= date)
    }

    /// The customer WABA `waba` is billed to on `date`.
    pub fn customer_of(&self, waba: &str, date: Date) -> Option<&Customer> {
        self.customers.iter().find(|c| {
            c.wabas
                .iter()
                .any(|m| m.waba == waba && m.span.contains(date))
        })
    }

    /// Every WABA customer `id` was ever billed for.
    pub fn wabas_of(&self, id: &str) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .customer(id)
            .map(|c| c.wabas.iter().map(|m| m.waba.as_str()).collect())
            .unwrap_or_default();
        out.sort_unstable();
        out.dedup();
        out
    }
}
