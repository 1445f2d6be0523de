//! Rules P4: which of a customer's conversations and messages count as
//! units, which included pool each uses, and the price of the rest.

use std::collections::BTreeMap;

use jiff::civil::Date;
use rust_decimal::Decimal;

use super::charges::{days_between, month_parts, periods, version_on};
use super::shape::CustomerError;
use super::{Customer, Customers, Plan, PlanVersion, Subscription};
use crate::conversation::Free;
use crate::tariff::Category;
use crate::time::Month;

/// What a customer's subscription says on one date.
#[derive(Copy, Clone)]
pub(super) struct Terms<'c> {
    /// The subscription's index.
    pub sub: usize,
    pub subscription: &'c Subscription,
    pub plan: &'c Plan,
    pub version: &'c PlanVersion,
}

/// The terms in force on `date`, if a subscription is.
pub(super) fn terms_at<'c>(
    customers: &'c Customers,
    customer: &'c Customer,
    date: Date,
) -> Option<Terms<'c>> {
    let (sub, subscription) = customer
        .subscriptions
        .iter()
        .enumerate()
        .find(|(_, s)| s.from <= date && s.to.is_none_or(|t| date < t))?;
    let plan = customers.plan(&subscription.plan)?;
    Some(Terms {
        sub,
        subscription,
        plan,
        version: plan.version_at(date)?,
    })
}

/// Included units available over `[from, to)`.
#[derive(Clone, Debug)]
pub(super) struct Pool {
    pub plan: String,
    pub version_from: Date,
    pub from: Date,
    pub to: Date,
    pub allowance: u64,
    /// Units used, by the month they were used in, and in all.
    pub used: BTreeMap<Month, u64>,
    used_total: u64,
}

/// What one unit was.
pub(super) enum Use<'c> {
    /// Not a unit: outside every subscription, or not counted by the
    /// plan's `applies_to`, or a free entry point.
    Uncounted,
    Included,
    Extra {
        plan: &'c str,
        version_from: Date,
        unit_price: Decimal,
    },
}

/// A customer's included pools, keyed by (subscription, first day).
pub(super) struct Pools(pub BTreeMap<(usize, Date), Pool>);

impl Pools {
    /// Every pool of `customer`'s subscriptions that starts before `until`:
    /// one per calendar month, or per plan period for a version whose
    /// included volume is pooled, each prorated by day when the
    /// subscription covers part of it (rounded down).
    pub fn of(
        customers: &Customers,
        customer: &Customer,
        until: Date,
    ) -> Result<Pools, CustomerError> {
        let mut pools = BTreeMap::new();
        for (s, sub) in customer.subscriptions.iter().enumerate() {
            let Some(plan) = customers.plan(&sub.plan) else {
                continue;
            };
            for (period_from, period_to, from, to) in periods(customer, plan, sub, until)? {
                // A version that changes the included volume starts new
                // pools (one that changes only prices does not).
                let mut at = from;
                while at < to {
                    let seg_to = terms_change(plan, at, to).unwrap_or(to);
                    let pooled = plan.version_at(at).is_some_and(|v| v.pooled);
                    let spans = if pooled {
                        vec![(at, seg_to, period_from, period_to)]
                    } else {
                        month_parts(at, seg_to)
                            .map(|(month, from, to)| {
                                (from, to, month.first_day(), month.next().first_day())
                            })
                            .collect()
                    };
                    for (from, to, whole_from, whole_to) in spans {
                        let v = version_on(customer, plan, from)?;
                        let covered = u128::try_from(days_between(from, to)).unwrap_or(0);
                        let whole = u128::try_from(days_between(whole_from, whole_to)).unwrap_or(1);
                        let allowance = u128::from(v.included) * covered / whole.max(1);
                        let pool = Pool {
                            plan: plan.id.clone(),
                            version_from: v.from,
                            from,
                            to,
                            allowance: u64::try_from(allowance).unwrap_or(u64::MAX),
                            used: BTreeMap::new(),
                            used_total: 0,
                        };
                        pools.insert((s, from), pool);
                    }
                    at = seg_to;
                }
            }
        }
        Ok(Pools(pools))
    }

    /// Rules P4 for one conversation or message of `category`, free as
    /// `free`, on local date `date` of `month`; units come in order.
    pub fn allot<'c>(
        &mut self,
        terms: Option<Terms<'c>>,
        (month, date): (Month, Date),
        category: Category,
        free: Free,
    ) -> Use<'c> {
        let Some(Terms {
            sub: s,
            plan,
            version,
            ..
        }) = terms
        else {
            return Use::Uncounted;
        };
        if free == Free::FreeEntryPoint || !version.applies_to.bears_fee(free) {
            return Use::Uncounted;
        }
        let pool = self
            .0
            .range(..=(s, date))
            .next_back()
            .filter(|((ps, _), p)| *ps == s && p.from <= date && date < p.to)
            .map(|(k, _)| *k);
        if let Some(pool) = pool.and_then(|k| self.0.get_mut(&k))
            && pool.used_total < pool.allowance
        {
            *pool.used.entry(month).or_default() += 1;
            pool.used_total += 1;
            return Use::Included;
        }
        Use::Extra {
            plan: &plan.id,
            version_from: version.from,
            unit_price: version.unit_price_of(category),
        }
    }
}

/// The first date in `(from, to)` where a version of `plan` changes the
/// included volume or whether it is pooled.
fn terms_change(plan: &Plan, from: Date, to: Date) -> Option<Date> {
    let terms = |v: &PlanVersion| (v.included, v.pooled);
    let mut current = plan.version_at(from).map(terms);
    for v in plan
        .versions
        .iter()
        .filter(|v| from < v.from && v.from < to)
    {
        if current != Some(terms(v)) {
            return Some(v.from);
        }
        current = Some(terms(v));
    }
    None
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::config::FeeAppliesTo;
    use crate::customers::{Period, Span};

    fn d(s: &str) -> Date {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn version(from: &str, included: u64, pooled: bool, unit_price: i64) -> PlanVersion {
        PlanVersion {
            from: d(from),
            price: Decimal::ZERO,
            included,
            pooled,
            unit_price: Decimal::new(unit_price, 2),
            by_category: Vec::new(),
            markup: Decimal::ZERO,
            applies_to: FeeAppliesTo::Paid,
        }
    }

    /// The pools of one customer on a yearly plan with these versions, as
    /// (first day, last day + 1, allowance).
    fn pools(versions: Vec<PlanVersion>) -> Vec<(Date, Date, u64)> {
        let customers = Customers {
            plans: vec![Plan {
                id: "p".into(),
                period: Period::Year,
                spread: false,
                versions,
            }],
            customers: vec![Customer {
                id: "C".into(),
                name: None,
                currency: "USD".into(),
                minor_unit_digits: 2,
                wabas: vec![crate::customers::Membership {
                    waba: "W".into(),
                    span: Span::ALWAYS,
                }],
                subscriptions: vec![Subscription {
                    plan: "p".into(),
                    from: d("2026-01-01"),
                    to: None,
                }],
            }],
            rates: Vec::new(),
        };
        let pools = Pools::of(&customers, &customers.customers[0], d("2026-06-01"))
            .unwrap_or_else(|e| panic!("{e}"));
        pools
            .0
            .values()
            .map(|p| (p.from, p.to, p.allowance))
            .collect()
    }

    #[test]
    fn a_version_that_pools_its_volume_mid_year_starts_one_pool_for_the_rest_of_it() {
        let got = pools(vec![
            version("2026-01-01", 1, false, 1),
            version("2026-03-01", 12, true, 1),
        ]);
        // 12 × 306 / 365 days, rounded down.
        assert_eq!(
            got,
            [
                (d("2026-01-01"), d("2026-02-01"), 1),
                (d("2026-02-01"), d("2026-03-01"), 1),
                (d("2026-03-01"), d("2027-01-01"), 10),
            ]
        );
    }

    #[test]
    fn a_price_change_leaves_a_pooled_year_whole() {
        let got = pools(vec![
            version("2026-01-01", 12, true, 1),
            version("2026-03-01", 12, true, 2),
        ]);
        assert_eq!(got, [(d("2026-01-01"), d("2027-01-01"), 12)]);
    }
}
