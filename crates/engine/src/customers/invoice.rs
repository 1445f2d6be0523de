//! The customer invoice (rules section 8, cli.md `invoice --by customer`):
//! built from the WABA invoices' rated records, month by month in order
//! (a pooled allowance is used up across months).

use std::collections::BTreeMap;

use jiff::civil::Date;
use rust_decimal::{Decimal, RoundingStrategy};

use super::Customer;
use super::charges::charges;
use super::shape::{
    Conversion, CustomerError, CustomerInvoice, ExtraLine, IncludedPool, MarkupLine, PassThrough,
    SubscriptionCharge,
};
use super::units::{Pools, Terms, Use, terms_at};
use crate::billing::{Counts, Free, Record, WabaMonth, exact_add, exact_mul};
use crate::config::EngineConfig;
use crate::tariff::Category;
use crate::time::Month;

/// The latest month any WABA invoice is for: customer invoices run up to
/// it (a subscription with no end charges no further).
fn horizon(months: &[&WabaMonth]) -> Option<Month> {
    months.iter().map(|m| m.month).max()
}

/// One customer-month's result.
pub type CustomerMonth = (String, Month, Result<CustomerInvoice, Vec<CustomerError>>);

/// Every customer's invoices, by customer id then month: one for each
/// month up to [`horizon`] with traffic of its WABAs or a subscription
/// charge due.
pub fn customer_invoices(config: &EngineConfig, months: &[&WabaMonth]) -> Vec<CustomerMonth> {
    let Some(last) = horizon(months) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for customer in &config.customers.customers {
        out.extend(invoices_of(config, customer, months, last));
    }
    out
}

/// [`customer_invoices`] of one customer, up to month `last` (the
/// horizon of every WABA's months, so that the answer is the same
/// whichever months besides its WABAs' are given).
pub fn invoices_of(
    config: &EngineConfig,
    customer: &Customer,
    months: &[&WabaMonth],
    last: Month,
) -> Vec<CustomerMonth> {
    match of_customer(config, customer, months, last.next().first_day()) {
        Ok(invoices) => invoices,
        Err(e) => vec![(customer.id.clone(), last, Err(vec![e]))],
    }
}

/// One month being built; plan ids are the configuration's.
#[derive(Default)]
struct MonthBuild<'c> {
    /// By WABA month (its index among the months, in WABA order),
    /// provider (rules P6) and the customer's span of the WABA (a month it
    /// was the customer's twice shows twice).
    portions: BTreeMap<(usize, Option<crate::carriers::Provider>, SpanKey), PortionBuild>,
    extra: BTreeMap<(&'c str, Date, Category, Decimal), u64>,
    markup: BTreeMap<(&'c str, Date, Decimal), Decimal>,
    errors: Vec<CustomerError>,
}

#[derive(Default)]
struct PortionBuild {
    conversations: Counts,
    messages: Counts,
    /// By the date a rate took effect (None: no conversion): amount in
    /// the WABA's currency, and the rate.
    amounts: BTreeMap<Option<Date>, (Decimal, Decimal)>,
    included_units: u64,
    extra_units: u64,
}

/// A record of a member WABA: where it is and its local date.
struct Item {
    month: Month,
    date: Date,
    month_of: usize,
    record: usize,
    /// The customer's span (of its `wabas`) the date falls in.
    span: super::Span,
}

/// A customer's invoices before `until`.
fn of_customer(
    config: &EngineConfig,
    customer: &Customer,
    months: &[&WabaMonth],
    until: Date,
) -> Result<Vec<CustomerMonth>, CustomerError> {
    let customers = &config.customers;
    let mut due: BTreeMap<Month, Vec<SubscriptionCharge>> = BTreeMap::new();
    for (month, charge) in charges(customers, customer, until)? {
        due.entry(month).or_default().push(charge);
    }
    let mut pools = Pools::of(customers, customer, until)?;
    let mut builds: BTreeMap<Month, MonthBuild> = BTreeMap::new();
    for item in member_items(config, customer, months, &mut builds) {
        let wm = months[item.month_of];
        let record = &wm.records[item.record];
        let terms = terms_at(customers, customer, item.date);
        let used = allot(&mut pools, terms, &item, record);
        let build = builds.entry(item.month).or_default();
        add_item(config, customer, build, &item, (wm, record), (terms, used))?;
    }
    for month in due.keys() {
        builds.entry(*month).or_default();
    }
    let mut out = Vec::new();
    for (month, build) in builds {
        let charges = due.remove(&month).unwrap_or_default();
        let invoice = if build.errors.is_empty() {
            finish(customer, month, months, build, charges, &pools).map_err(|e| vec![e])
        } else {
            Err(build.errors)
        };
        out.push((customer.id.clone(), month, invoice));
    }
    Ok(out)
}

/// A customer's pools once every unit of `months` before `until` took
/// its place (what a quote needs: no charge, no invoice).
pub(super) fn pools_after(
    config: &EngineConfig,
    customer: &Customer,
    months: &[&WabaMonth],
    until: Date,
) -> Result<Pools, CustomerError> {
    let customers = &config.customers;
    let mut pools = Pools::of(customers, customer, until)?;
    for item in member_items(config, customer, months, &mut BTreeMap::new()) {
        let record = &months[item.month_of].records[item.record];
        allot(
            &mut pools,
            terms_at(customers, customer, item.date),
            &item,
            record,
        );
    }
    Ok(pools)
}

/// Rules P4 for one member record under `terms`.
fn allot<'c>(pools: &mut Pools, terms: Option<Terms<'c>>, item: &Item, record: &Record) -> Use<'c> {
    pools.allot(terms, (item.month, item.date), record.category, record.free)
}

/// The records of `customer`'s WABAs on dates they were its, in the
/// order units are counted: by month, start, WABA, then record. A WABA
/// invoice with errors is an error of each month it has records in.
fn member_items(
    config: &EngineConfig,
    customer: &Customer,
    months: &[&WabaMonth],
    builds: &mut BTreeMap<Month, MonthBuild>,
) -> Vec<Item> {
    let mut items = Vec::new();
    for (m, wm) in months.iter().enumerate() {
        let spans: Vec<_> = customer
            .wabas
            .iter()
            .filter(|w| w.waba == wm.waba)
            .map(|w| w.span)
            .collect();
        if spans.is_empty() {
            continue;
        }
        let tz = &config.waba(&wm.waba).timezone;
        let before = items.len();
        for (i, r) in wm.records.iter().enumerate() {
            let date = tz.to_datetime(r.start.timestamp()).date();
            if let Some(span) = spans.iter().find(|s| s.contains(date)) {
                items.push(Item {
                    month: wm.month,
                    date,
                    month_of: m,
                    record: i,
                    span: *span,
                });
            }
        }
        if let Err(errors) = &wm.invoice
            && items.len() > before
        {
            items.truncate(before);
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            builds
                .entry(wm.month)
                .or_default()
                .errors
                .push(CustomerError::WabaInvoice {
                    customer: customer.id.clone(),
                    waba: wm.waba.clone(),
                    month: wm.month,
                    reasons: reasons.join("; "),
                });
        }
    }
    items.sort_by(|a, b| {
        let (ra, rb) = (
            &months[a.month_of].records[a.record],
            &months[b.month_of].records[b.record],
        );
        (a.month, ra.start, &months[a.month_of].waba, a.record).cmp(&(
            b.month,
            rb.start,
            &months[b.month_of].waba,
            b.record,
        ))
    });
    items
}

/// One record into its month: counts, pass-through (by the exchange rate
/// of its date), markup and extra volume.
fn add_item<'c>(
    config: &EngineConfig,
    customer: &Customer,
    build: &mut MonthBuild<'c>,
    item: &Item,
    (wm, record): (&WabaMonth, &Record),
    (terms, used): (Option<Terms<'c>>, Use<'c>),
) -> Result<(), CustomerError> {
    let customers = &config.customers;
    let overflow = || CustomerError::overflow(customer);
    let currency = wm
        .invoice
        .as_ref()
        .map(|i| i.currency.as_str())
        .unwrap_or(&customer.currency);
    let portion = build
        .portions
        .entry((item.month_of, record.provider, span_key(item.span)))
        .or_default();
    if record.era.rules().per_message() {
        portion.messages.add(record.free);
    } else {
        portion.conversations.add(record.free);
    }
    match used {
        Use::Uncounted => {}
        Use::Included => portion.included_units += 1,
        Use::Extra {
            plan,
            version_from,
            unit_price,
        } => {
            portion.extra_units += 1;
            *build
                .extra
                .entry((plan, version_from, record.category, unit_price))
                .or_default() += 1;
        }
    }
    let amount = if record.free == Free::None {
        record.unit_price
    } else {
        Decimal::ZERO
    };
    let (key, rate) = match conversion(customers, customer, currency, item.date) {
        Ok(rate) => rate,
        Err((from, to)) => {
            let error = CustomerError::NoExchangeRate {
                customer: customer.id.clone(),
                waba: wm.waba.clone(),
                from,
                to,
                date: item.date,
            };
            if !build.errors.contains(&error) {
                build.errors.push(error);
            }
            return Ok(());
        }
    };
    let slot = portion.amounts.entry(key).or_insert((Decimal::ZERO, rate));
    slot.0 = exact_add(slot.0, amount).ok_or_else(overflow)?;
    if let Some(Terms { plan, version, .. }) = terms
        && !version.markup.is_zero()
        && !amount.is_zero()
    {
        let converted = exact_mul(amount, rate).ok_or_else(overflow)?;
        let base = build
            .markup
            .entry((&plan.id, version.from, version.markup))
            .or_default();
        *base = exact_add(*base, converted).ok_or_else(overflow)?;
    }
    Ok(())
}

/// Rules P5: the rate from `currency` to the customer's on `date` (the
/// date it took effect, and the rate; none and 1 for the same currency),
/// or the pair of currencies that has none.
fn conversion(
    customers: &super::Customers,
    customer: &Customer,
    currency: &str,
    date: Date,
) -> Result<(Option<Date>, Decimal), (String, String)> {
    if currency == customer.currency {
        return Ok((None, Decimal::ONE));
    }
    customers
        .rate_at(currency, &customer.currency, date)
        .map(|r| (Some(r.effective_from), r.rate))
        .ok_or_else(|| (currency.to_owned(), customer.currency.clone()))
}

fn finish(
    customer: &Customer,
    month: Month,
    months: &[&WabaMonth],
    build: MonthBuild,
    subscription: Vec<SubscriptionCharge>,
    pools: &Pools,
) -> Result<CustomerInvoice, CustomerError> {
    let overflow = || CustomerError::overflow(customer);
    let sum = |values: &mut dyn Iterator<Item = Decimal>| {
        let mut total = Decimal::ZERO;
        for v in values {
            total = exact_add(total, v).ok_or_else(overflow)?;
        }
        Ok::<_, CustomerError>(total)
    };
    let wabas = build
        .portions
        .into_iter()
        .map(|((month_of, provider, span), p)| {
            let wm = months[month_of];
            let entry = pass_through(customer, wm, p).ok_or_else(overflow)?;
            Ok(PassThrough {
                provider,
                part: part_of(span, wm.month),
                ..entry
            })
        })
        .collect::<Result<Vec<_>, CustomerError>>()?;
    let (extra, markup) = priced_lines(&build.extra, &build.markup).ok_or_else(overflow)?;
    let pass_through = sum(&mut wabas.iter().map(|w| w.amount))?;
    let platform_total = sum(&mut subscription
        .iter()
        .map(|c| c.amount)
        .chain(extra.iter().map(|e| e.amount))
        .chain(markup.iter().map(|m| m.amount)))?;
    let total = exact_add(pass_through, platform_total).ok_or_else(overflow)?;
    let digits = customer.minor_unit_digits;
    let mut amount_due =
        total.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero);
    amount_due.rescale(digits);
    Ok(CustomerInvoice {
        customer: customer.id.clone(),
        name: customer.name.clone(),
        month,
        currency: customer.currency.clone(),
        subscription,
        wabas,
        pass_through,
        included: included(pools, month),
        extra,
        markup,
        platform_total,
        total,
        amount_due,
    })
}

/// The month's extra volume and markup lines, each amount exact.
fn priced_lines(
    extra: &BTreeMap<(&str, Date, Category, Decimal), u64>,
    markup: &BTreeMap<(&str, Date, Decimal), Decimal>,
) -> Option<(Vec<ExtraLine>, Vec<MarkupLine>)> {
    let extra = extra
        .iter()
        .map(|((plan, version_from, category, unit_price), quantity)| {
            Some(ExtraLine {
                plan: (*plan).to_owned(),
                version_from: *version_from,
                category: *category,
                unit_price: *unit_price,
                quantity: *quantity,
                amount: exact_mul(*unit_price, Decimal::from(*quantity))?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let markup = markup
        .iter()
        .map(|((plan, version_from, rate), base)| {
            Some(MarkupLine {
                plan: (*plan).to_owned(),
                version_from: *version_from,
                rate: *rate,
                base: *base,
                amount: exact_mul(*base, *rate)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((extra, markup))
}

/// A WABA's part of the month, its amounts converted.
fn pass_through(customer: &Customer, wm: &WabaMonth, p: PortionBuild) -> Option<PassThrough> {
    let invoice = wm.invoice.as_ref().ok()?;
    let scale = invoice.meta_total.scale();
    let mut meta_amount = Decimal::ZERO;
    let mut amount = Decimal::ZERO;
    let mut conversions = Vec::new();
    for (effective_from, (sum, rate)) in p.amounts {
        meta_amount = exact_add(meta_amount, sum)?;
        let converted = exact_mul(sum, rate)?;
        amount = exact_add(amount, converted)?;
        if let Some(effective_from) = effective_from {
            conversions.push(Conversion {
                from: invoice.currency.clone(),
                to: customer.currency.clone(),
                rate,
                effective_from,
                amount: crate::billing::at_scale(sum, scale),
                converted,
            });
        }
    }
    let meta_amount = crate::billing::at_scale(meta_amount, scale);
    Some(PassThrough {
        part: None,
        waba: wm.waba.clone(),
        month: wm.month,
        timezone: invoice.timezone.clone(),
        currency: invoice.currency.clone(),
        provider: None,
        conversations: p.conversations,
        messages: p.messages,
        amount: if conversions.is_empty() {
            meta_amount
        } else {
            amount
        },
        meta_amount,
        conversions,
        included_units: p.included_units,
        extra_units: p.extra_units,
    })
}

/// A span as a sortable key (open ends first and last).
type SpanKey = (Option<Date>, Option<Date>);

fn span_key(span: super::Span) -> SpanKey {
    (span.from, span.to)
}

/// The days of `month` a span of the customer covers, when not all of it.
fn part_of((from, to): SpanKey, month: Month) -> Option<(Option<Date>, Option<Date>)> {
    let (first, next) = (month.first_day(), month.next().first_day());
    let from = from.filter(|f| *f > first);
    let to = to.filter(|t| *t < next);
    (from.is_some() || to.is_some()).then_some((from, to))
}

/// The pools that cover part of `month`, and what they have left.
fn included(pools: &Pools, month: Month) -> Vec<IncludedPool> {
    let (first, next) = (month.first_day(), month.next().first_day());
    pools
        .0
        .values()
        .filter(|p| p.from < next && first < p.to)
        .map(|p| {
            let used_before: u64 = p.used.range(..month).map(|(_, n)| n).sum();
            let used = p.used.get(&month).copied().unwrap_or(0);
            IncludedPool {
                plan: p.plan.clone(),
                version_from: p.version_from,
                from: p.from,
                to: p.to,
                allowance: p.allowance,
                used_before,
                used,
                left: p.allowance.saturating_sub(used_before + used),
            }
        })
        .collect()
}
