//! Rules P3: subscription charges, their periods and proration by day.

use jiff::ToSpan;
use jiff::civil::Date;
use rust_decimal::{Decimal, RoundingStrategy};

use super::shape::{CustomerError, SubscriptionCharge};
use super::{Customer, Customers, Period, Plan, PlanVersion, Subscription};
use crate::billing::exact_mul;
use crate::time::Month;

/// Whole days from `from` to `to`.
pub(super) fn days_between(from: Date, to: Date) -> i64 {
    from.duration_until(to).as_hours().div_euclid(24)
}

/// `[from, to)` of the period of a plan billed every `period` that holds
/// `date`: calendar months, or years counted from `start` (the
/// subscription's first day).
pub(super) fn period_of(period: Period, start: Date, date: Date) -> Option<(Date, Date)> {
    match period {
        Period::Month => {
            let month = Month::of(date);
            Some((month.first_day(), month.next().first_day()))
        }
        Period::Year => {
            let mut years = i64::from(date.year() - start.year());
            loop {
                let from = start.checked_add(years.years()).ok()?;
                if from > date {
                    years -= 1;
                    continue;
                }
                let to = start.checked_add((years + 1).years()).ok()?;
                if date < to {
                    return Some((from, to));
                }
                years += 1;
            }
        }
    }
}

/// `price × part / whole` rounded half away from zero to `digits` places:
/// the one rounding of a prorated price (rules P3).
fn prorate(price: Decimal, part: i64, whole: i64, digits: u32) -> Option<Decimal> {
    let scaled = exact_mul(price, Decimal::from(part))?;
    let mut amount = scaled
        .checked_div(Decimal::from(whole))?
        .round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero);
    amount.rescale(digits);
    Some(amount)
}

/// The periods of `sub` (to `plan`) that start before `until`, each as
/// (period's first day, period's end, first day covered, end covered): a
/// period is covered whole but where the subscription starts or ends.
pub(super) fn periods(
    customer: &Customer,
    plan: &Plan,
    sub: &Subscription,
    until: Date,
) -> Result<Vec<(Date, Date, Date, Date)>, CustomerError> {
    let mut out = Vec::new();
    let mut at = sub.from;
    while at < until && sub.to.is_none_or(|end| at < end) {
        let (period_from, period_to) = period_of(plan.period, sub.from, at)
            .ok_or_else(|| CustomerError::overflow(customer))?;
        let to = sub.to.map_or(period_to, |end| end.min(period_to));
        out.push((period_from, period_to, at, to));
        at = to;
    }
    Ok(out)
}

/// `[from, to)` cut at calendar months: each part with its month.
pub(super) fn month_parts(from: Date, to: Date) -> impl Iterator<Item = (Month, Date, Date)> {
    std::iter::successors(Some(Month::of(from)), |m| Some(m.next()))
        .take_while(move |m| m.first_day() < to)
        .map(move |m| (m, m.first_day().max(from), m.next().first_day().min(to)))
}

/// The version of `plan` in force on `date`, or the error naming them.
pub(super) fn version_on<'p>(
    customer: &Customer,
    plan: &'p Plan,
    date: Date,
) -> Result<&'p PlanVersion, CustomerError> {
    plan.version_at(date)
        .ok_or_else(|| CustomerError::NoPlanVersion {
            customer: customer.id.clone(),
            plan: plan.id.clone(),
            date,
        })
}

/// Every subscription charge of `customer` that falls due before `until`,
/// with the month it is due in, in the order subscriptions and periods
/// run.
pub(super) fn charges(
    customers: &Customers,
    customer: &Customer,
    until: Date,
) -> Result<Vec<(Month, SubscriptionCharge)>, CustomerError> {
    let mut out = Vec::new();
    for sub in &customer.subscriptions {
        let Some(plan) = customers.plan(&sub.plan) else {
            continue;
        };
        for (period_from, period_to, from, to) in periods(customer, plan, sub, until)? {
            let version = version_on(customer, plan, from)?;
            let charge = |from: Date, to: Date, whole: i64, instalment: bool| {
                let days = days_between(from, to);
                let whole_days = if instalment { whole * 12 } else { whole };
                let amount = prorate(version.price, days, whole_days, customer.minor_unit_digits)
                    .ok_or_else(|| CustomerError::overflow(customer))?;
                Ok::<_, CustomerError>(SubscriptionCharge {
                    plan: plan.id.clone(),
                    version_from: version.from,
                    period: plan.period,
                    period_from,
                    period_to,
                    from,
                    to,
                    days,
                    whole_days: whole,
                    instalment,
                    price: version.price,
                    amount,
                })
            };
            if plan.period == Period::Year && plan.spread {
                // One twelfth of the year's price per month, by day within it.
                for (month, m_from, m_to) in month_parts(from, to.min(until)) {
                    let whole = days_between(month.first_day(), month.next().first_day());
                    out.push((month, charge(m_from, m_to, whole, true)?));
                }
            } else {
                let whole = days_between(period_from, period_to);
                out.push((Month::of(from), charge(from, to, whole, false)?));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn yearly_periods_run_from_the_subscription_anniversary() {
        let start = d("2026-03-15");
        assert_eq!(
            period_of(Period::Year, start, d("2027-03-14")),
            Some((start, d("2027-03-15")))
        );
        assert_eq!(
            period_of(Period::Year, start, d("2027-03-15")),
            Some((d("2027-03-15"), d("2028-03-15")))
        );
        assert_eq!(
            period_of(Period::Month, start, d("2026-02-10")),
            Some((d("2026-02-01"), d("2026-03-01")))
        );
    }

    #[test]
    fn a_prorated_price_is_rounded_once_half_away_from_zero() {
        // 30 × 17 / 31 = 16.4516…
        assert_eq!(
            prorate(Decimal::new(3000, 2), 17, 31, 2),
            Some(Decimal::new(1645, 2))
        );
        // 1 × 1 / 8 = 0.125 → 0.13
        assert_eq!(prorate(Decimal::ONE, 1, 8, 2), Some(Decimal::new(13, 2)));
        assert_eq!(days_between(d("2026-02-01"), d("2026-03-01")), 28);
    }
}
