//! Rules section 8 in the quote: what a customer pays for one more
//! message depends on the units before it that share its included pool
//! (its plan period's, not later ones, not other periods').

mod common;

use common::*;
use rust_decimal::Decimal;
use wabill_engine::billing::{Free, WabaMonth};
use wabill_engine::config::FeeAppliesTo;
use wabill_engine::customers::{
    Customer, Customers, Membership, Period, Plan, PlanVersion, QuotedUnit, Span, Subscription,
    customer_quote,
};
use wabill_engine::event::TemplateCategory::Marketing;
use wabill_engine::tariff::Category;
use wabill_engine::time::Month;

fn customers(period: Period, pooled: bool) -> Customers {
    let date = |s: &str| s.parse().unwrap_or_else(|e| panic!("{e}"));
    Customers {
        plans: vec![Plan {
            id: "p".into(),
            period,
            spread: false,
            versions: vec![PlanVersion {
                from: date("2026-01-01"),
                price: Decimal::ZERO,
                included: 2,
                pooled,
                unit_price: Decimal::new(1, 2),
                by_category: Vec::new(),
                markup: Decimal::ZERO,
                applies_to: FeeAppliesTo::Paid,
            }],
        }],
        customers: vec![Customer {
            id: "C1".into(),
            name: None,
            currency: "USD".into(),
            minor_unit_digits: 2,
            wabas: vec![Membership {
                waba: W.into(),
                span: Span::ALWAYS,
            }],
            subscriptions: vec![Subscription {
                plan: "p".into(),
                from: date("2026-01-01"),
                to: None,
            }],
        }],
        rates: Vec::new(),
    }
}

/// Whether a marketing message on `date` would use included volume, after
/// one paid marketing message on each of `history`'s dates.
fn included_after(period: Period, pooled: bool, history: &[&str], date: &str) -> bool {
    let mut tr = Traffic::new();
    tr.config.customers = customers(period, pooled);
    for (i, day) in history.iter().enumerate() {
        tr.template(BRAZIL, &format!("{day} 1{i}:00"), Marketing);
    }
    let ledger = wabill_engine::Ledger::new(tr.config.clone(), wabill_engine::HashKey::fixed());
    let mut ledger = ledger;
    ledger.ingest(&tr.events).unwrap_or_else(|r| panic!("{r}"));
    let billing = wabill_engine::bill(&ledger, &tr.book);
    let months: Vec<&WabaMonth> = billing.months.iter().collect();
    let day: jiff::civil::Date = date.parse().unwrap_or_else(|e| panic!("{e}"));
    let unit = QuotedUnit {
        waba: W,
        date: day,
        month: Month::of(day),
        category: Category::Marketing,
        free: Free::None,
        new_unit: true,
        meta_price: Decimal::new(625, 4),
    };
    let quote = customer_quote(&tr.config, &months, &unit)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no customer"));
    assert_eq!(
        quote.platform_price,
        if quote.included {
            Decimal::ZERO
        } else {
            Decimal::new(1, 2)
        }
    );
    quote.included
}

#[test]
fn a_pooled_yearly_allowance_counts_the_earlier_months_of_its_year() {
    // Two included for the year: January and February used them.
    assert!(!included_after(
        Period::Year,
        true,
        &["2026-01-10", "2026-02-10"],
        "2026-03-10"
    ));
    assert!(included_after(
        Period::Year,
        true,
        &["2026-01-10"],
        "2026-03-10"
    ));
}

#[test]
fn a_monthly_allowance_counts_its_month_only_and_never_later_units() {
    assert!(included_after(
        Period::Month,
        false,
        &["2026-01-10", "2026-02-10"],
        "2026-03-10"
    ));
    assert!(!included_after(
        Period::Month,
        false,
        &["2026-03-01", "2026-03-02"],
        "2026-03-10"
    ));
    // A quote for a past date is not charged for units after it.
    assert!(included_after(
        Period::Month,
        false,
        &["2026-04-01", "2026-04-02"],
        "2026-03-10"
    ));
    assert!(included_after(
        Period::Year,
        true,
        &["2026-04-01", "2026-04-02"],
        "2026-03-10"
    ));
}
