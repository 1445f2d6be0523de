//! What a customer pays for one more message (service.md `GET /v1/quote`,
//! `customer`): Meta's price in the customer's currency, the platform's
//! price under the plan in force, or nothing when included volume is left.

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::invoice::pools_after;
use super::shape::CustomerError;
use super::units::{Use, terms_at};
use crate::billing::{Free, WabaMonth, exact_add, exact_mul};
use crate::config::EngineConfig;
use crate::tariff::Category;
use crate::time::Month;

/// The message a quote prices, as Meta's side of the quote found it.
pub struct QuotedUnit<'a> {
    pub waba: &'a str,
    /// Its local date and month in the WABA's zone.
    pub date: Date,
    pub month: Month,
    pub category: Category,
    pub free: Free,
    /// Whether it is a new conversation or a priced message (else it joins
    /// one, and is no unit of its own).
    pub new_unit: bool,
    /// Meta's price, in the WABA's currency on `date`.
    pub meta_price: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerQuote {
    pub customer: String,
    pub currency: String,
    /// Meta's price in `currency`.
    pub meta_price: Decimal,
    /// The platform's price of the unit: 0 when included or not a unit.
    pub platform_price: Decimal,
    pub markup: Decimal,
    pub included: bool,
    /// `meta_price + platform_price + markup`, exact.
    pub price: Decimal,
}

/// The quote of `unit` for the customer its WABA is billed to on its date
/// (None: no customer has it), after the units of `months` (the
/// customer's WABAs' settled months) that share its pool took their place.
pub fn customer_quote(
    config: &EngineConfig,
    months: &[&WabaMonth],
    unit: &QuotedUnit<'_>,
) -> Result<Option<CustomerQuote>, CustomerError> {
    let customers = &config.customers;
    let Some(customer) = customers.customer_of(unit.waba, unit.date) else {
        return Ok(None);
    };
    let overflow = || CustomerError::overflow(customer);
    // Only units that can share the quoted one's pool count before it:
    // those of its plan period's months up to its own (a monthly plan's:
    // its month), so a quote costs one period of history, not all of it.
    let terms = terms_at(customers, customer, unit.date);
    let first = terms
        .and_then(|t| super::charges::period_of(t.plan.period, t.subscription.from, unit.date))
        .map_or(unit.month, |(from, _)| Month::of(from));
    let months: Vec<&WabaMonth> = months
        .iter()
        .copied()
        .filter(|m| first <= m.month && m.month <= unit.month)
        .collect();
    let mut pools = pools_after(config, customer, &months, unit.month.next().first_day())?;
    let used = if unit.new_unit {
        pools.allot(terms, (unit.month, unit.date), unit.category, unit.free)
    } else {
        Use::Uncounted
    };
    let currency = config.currency_on(unit.waba, unit.date);
    let meta_price = if currency == customer.currency {
        unit.meta_price
    } else {
        let rate = customers
            .rate_at(currency, &customer.currency, unit.date)
            .ok_or_else(|| CustomerError::NoExchangeRate {
                customer: customer.id.clone(),
                waba: unit.waba.to_owned(),
                from: currency.to_owned(),
                to: customer.currency.clone(),
                date: unit.date,
            })?;
        exact_mul(unit.meta_price, rate.rate).ok_or_else(overflow)?
    };
    let (platform_price, included) = match used {
        Use::Uncounted => (Decimal::ZERO, false),
        Use::Included => (Decimal::ZERO, true),
        Use::Extra { unit_price, .. } => (unit_price, false),
    };
    let markup = match terms {
        Some(t) => exact_mul(meta_price, t.version.markup).ok_or_else(overflow)?,
        None => Decimal::ZERO,
    };
    let price = exact_add(meta_price, platform_price)
        .and_then(|p| exact_add(p, markup))
        .ok_or_else(overflow)?;
    Ok(Some(CustomerQuote {
        customer: customer.id.clone(),
        currency: customer.currency.clone(),
        meta_price,
        platform_price,
        markup,
        included,
        price,
    }))
}
