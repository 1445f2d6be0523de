//! `[[plan]]`, `[[customer]]`, `[[exchange_rate]]` and `[[waba]].currency`
//! (cli.md "Customers"): parsed and checked into the engine's
//! [`Customers`]. Every error names its key.

use std::str::FromStr;

use anyhow::{anyhow, bail};
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Deserialize;
use wabill_engine::config::{EngineConfig, FeeAppliesTo};
use wabill_engine::customers::{
    Customer, Customers, ExchangeRate, Membership, Period, Plan, PlanVersion, Span, Subscription,
};
use wabill_engine::tariff::Category;

use super::{date, string_table};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlanFile {
    id: String,
    period: String,
    #[serde(default)]
    spread: bool,
    #[serde(default)]
    version: Vec<VersionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    from: String,
    #[serde(default)]
    price: Option<toml::Value>,
    #[serde(default)]
    included: i64,
    included_per: Option<String>,
    #[serde(default)]
    unit_price: Option<toml::Value>,
    #[serde(default)]
    unit_price_by_category: std::collections::BTreeMap<String, toml::Value>,
    #[serde(default)]
    markup: Option<toml::Value>,
    applies_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CustomerFile {
    id: String,
    name: Option<String>,
    currency: Option<String>,
    #[serde(default)]
    wabas: Vec<toml::Value>,
    #[serde(default)]
    subscriptions: Vec<SubscriptionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionFile {
    plan: String,
    from: String,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateFile {
    from: String,
    to: String,
    rate: toml::Value,
    effective_from: String,
}

/// A decimal string (or integer) of at most 28 places, kept exact; never
/// negative.
pub(super) fn decimal(value: &toml::Value, key: &str) -> anyhow::Result<Decimal> {
    let parsed = match value {
        toml::Value::String(s) => Decimal::from_str(s).ok().filter(|d| {
            let places = s.split_once('.').map_or(0, |(_, f)| f.len());
            // rust_decimal rounds past 28 places; money must be exact.
            s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                && usize::try_from(d.scale()).is_ok_and(|scale| scale == places)
        }),
        toml::Value::Integer(i) => Some(Decimal::from(*i)),
        _ => None,
    }
    .ok_or_else(|| {
        anyhow!(
            "{key}: must be a decimal string such as \"0.0050\", with at most 28 decimal places"
        )
    })?;
    if parsed.is_sign_negative() && !parsed.is_zero() {
        bail!("{key}: must not be negative (got {parsed})");
    }
    Ok(parsed)
}

/// The digits of ISO 4217 `code`'s minor unit, or an error naming `key`.
pub(super) fn currency_digits(code: &str, key: &str) -> anyhow::Result<u32> {
    let currency = iso_currency::Currency::from_code(code)
        .ok_or_else(|| anyhow!("{key}: {code:?} is not an ISO 4217 currency code"))?;
    Ok(u32::from(currency.exponent().unwrap_or(0)))
}

fn applies_to(text: Option<&str>, key: &str) -> anyhow::Result<FeeAppliesTo> {
    match text {
        None | Some("paid") => Ok(FeeAppliesTo::Paid),
        Some("all") => Ok(FeeAppliesTo::All),
        Some(other) => bail!("{key}: {other:?} is not \"paid\" or \"all\""),
    }
}

fn plan(p: &PlanFile, key: &str) -> anyhow::Result<Plan> {
    if p.id.is_empty() {
        bail!("{key}.id: must not be empty");
    }
    let period = match p.period.as_str() {
        "month" => Period::Month,
        "year" => Period::Year,
        other => bail!("{key}.period: {other:?} is not \"month\" or \"year\""),
    };
    if p.spread && period == Period::Month {
        bail!("{key}.spread: only a yearly plan's price can be spread over its months");
    }
    if p.version.is_empty() {
        bail!("{key}.version: a plan needs at least one [[plan.version]]");
    }
    let mut versions = Vec::new();
    for (i, v) in p.version.iter().enumerate() {
        let key = format!("{key}.version[{i}]");
        versions.push(version(v, &key)?);
    }
    versions.sort_by_key(|v| v.from);
    if let Some(w) = versions.windows(2).find(|w| w[0].from == w[1].from) {
        bail!("{key}.version: two versions start on {}", w[0].from);
    }
    Ok(Plan {
        id: p.id.clone(),
        period,
        spread: p.spread,
        versions,
    })
}

fn version(v: &VersionFile, key: &str) -> anyhow::Result<PlanVersion> {
    let price = |value: &Option<toml::Value>, name: &str| {
        value
            .as_ref()
            .map_or(Ok(Decimal::ZERO), |v| decimal(v, &format!("{key}.{name}")))
    };
    let mut by_category = Vec::new();
    for (name, value) in &v.unit_price_by_category {
        let category = Category::parse(name).ok_or_else(|| {
            anyhow!("{key}.unit_price_by_category.{name}: not a category of cli.md's invoice lines")
        })?;
        by_category.push((
            category,
            decimal(value, &format!("{key}.unit_price_by_category.{name}"))?,
        ));
    }
    Ok(PlanVersion {
        from: date(&v.from, &format!("{key}.from"))?,
        price: price(&v.price, "price")?,
        included: u64::try_from(v.included)
            .map_err(|_| anyhow!("{key}.included: must not be negative (got {})", v.included))?,
        pooled: match v.included_per.as_deref() {
            None | Some("month") => false,
            Some("period") => true,
            Some(other) => bail!("{key}.included_per: {other:?} is not \"month\" or \"period\""),
        },
        unit_price: price(&v.unit_price, "unit_price")?,
        by_category,
        markup: price(&v.markup, "markup")?,
        applies_to: applies_to(v.applies_to.as_deref(), &format!("{key}.applies_to"))?,
    })
}

/// `wabas[i]`: an id (always the customer's), or `{ waba, from, to }`.
fn membership(value: &toml::Value, key: &str) -> anyhow::Result<Membership> {
    match value {
        toml::Value::String(waba) if !waba.is_empty() => Ok(Membership {
            waba: waba.clone(),
            span: Span::ALWAYS,
        }),
        toml::Value::Table(t) => {
            let t = string_table(t, key, &["waba", "from", "to"])?;
            let waba = t
                .get("waba")
                .filter(|w| !w.is_empty())
                .ok_or_else(|| anyhow!("{key}.waba: missing"))?;
            let day = |k: &str| -> anyhow::Result<Option<Date>> {
                t.get(k).map(|d| date(d, &format!("{key}.{k}"))).transpose()
            };
            let span = Span {
                from: day("from")?,
                to: day("to")?,
            };
            if let (Some(f), Some(t)) = (span.from, span.to)
                && f >= t
            {
                bail!("{key}: from {f} is not before to {t}");
            }
            Ok(Membership {
                waba: waba.to_owned(),
                span,
            })
        }
        _ => bail!(
            "{key}: must be a WABA id or a table {{ waba = \"…\", from = \"…\", to = \"…\" }}"
        ),
    }
}

fn customer(c: &CustomerFile, key: &str, plans: &[Plan]) -> anyhow::Result<Customer> {
    if c.id.is_empty() {
        bail!("{key}.id: must not be empty");
    }
    let currency = c.currency.clone().unwrap_or_else(|| "USD".to_owned());
    let minor_unit_digits = currency_digits(&currency, &format!("{key}.currency"))?;
    let mut wabas = Vec::new();
    for (i, w) in c.wabas.iter().enumerate() {
        wabas.push(membership(w, &format!("{key}.wabas[{i}]"))?);
    }
    let mut subscriptions = Vec::new();
    for (i, s) in c.subscriptions.iter().enumerate() {
        let key = format!("{key}.subscriptions[{i}]");
        let plan = plans
            .iter()
            .find(|p| p.id == s.plan)
            .ok_or_else(|| anyhow!("{key}.plan: no [[plan]] has id {:?}", s.plan))?;
        let from = date(&s.from, &format!("{key}.from"))?;
        let to =
            s.to.as_deref()
                .map(|t| date(t, &format!("{key}.to")))
                .transpose()?;
        if to.is_some_and(|t| t <= from) {
            bail!("{key}: from {from} is not before to {}", to.unwrap_or(from));
        }
        if plan.version_at(from).is_none() {
            bail!(
                "{key}.from: plan {:?} has no version in force on {from} (its first starts {})",
                plan.id,
                plan.versions[0].from
            );
        }
        subscriptions.push(Subscription {
            plan: s.plan.clone(),
            from,
            to,
        });
    }
    subscriptions.sort_by_key(|s| s.from);
    for w in subscriptions.windows(2) {
        if w[0].to.is_none_or(|t| t > w[1].from) {
            bail!(
                "{key}.subscriptions: the subscription to {:?} from {} overlaps the one from {}",
                w[0].plan,
                w[0].from,
                w[1].from
            );
        }
    }
    Ok(Customer {
        id: c.id.clone(),
        name: c.name.clone(),
        currency,
        minor_unit_digits,
        wabas,
        subscriptions,
    })
}

fn exchange_rate(r: &RateFile, key: &str) -> anyhow::Result<ExchangeRate> {
    currency_digits(&r.from, &format!("{key}.from"))?;
    currency_digits(&r.to, &format!("{key}.to"))?;
    if r.from == r.to {
        bail!("{key}: from and to are both {}", r.from);
    }
    let rate = decimal(&r.rate, &format!("{key}.rate"))?;
    if rate.is_zero() {
        bail!("{key}.rate: must be more than 0");
    }
    Ok(ExchangeRate {
        from: r.from.clone(),
        to: r.to.clone(),
        effective_from: date(&r.effective_from, &format!("{key}.effective_from"))?,
        rate,
    })
}

/// Everything about customers, checked as a whole: ids unique, no WABA
/// billed to two customers (or twice) on one date, one rate per pair and
/// date.
pub(super) fn customers(
    plans: &[PlanFile],
    customers: &[CustomerFile],
    rates: &[RateFile],
    engine: &mut EngineConfig,
) -> anyhow::Result<()> {
    let mut out = Customers::default();
    for (i, p) in plans.iter().enumerate() {
        let plan = plan(p, &format!("plan[{i}]"))?;
        if out.plans.iter().any(|q| q.id == plan.id) {
            bail!("plan[{i}].id: plan {:?} is configured twice", plan.id);
        }
        out.plans.push(plan);
    }
    for (i, c) in customers.iter().enumerate() {
        let key = format!("customer[{i}]");
        let c = customer(c, &key, &out.plans)?;
        if out.customers.iter().any(|d| d.id == c.id) {
            bail!("{key}.id: customer {:?} is configured twice", c.id);
        }
        for m in &c.wabas {
            let clash = out
                .customers
                .iter()
                .chain(std::iter::once(&c))
                .find_map(|d| {
                    d.wabas
                        .iter()
                        .filter(|n| n.waba == m.waba && !std::ptr::eq(*n, m))
                        .find(|n| n.span.overlaps(&m.span))
                        .map(|_| &d.id)
                });
            if let Some(other) = clash {
                bail!(
                    "{key}.wabas: WABA {:?} would be billed to customer {other:?} and {:?} on the same dates",
                    m.waba,
                    c.id
                );
            }
        }
        engine
            .minor_units
            .insert(c.currency.clone(), c.minor_unit_digits);
        out.customers.push(c);
    }
    for (i, r) in rates.iter().enumerate() {
        let key = format!("exchange_rate[{i}]");
        let rate = exchange_rate(r, &key)?;
        if out.rates.iter().any(|q| {
            (&q.from, &q.to, q.effective_from) == (&rate.from, &rate.to, rate.effective_from)
        }) {
            bail!(
                "{key}: a rate from {} to {} on {} is given twice",
                rate.from,
                rate.to,
                rate.effective_from
            );
        }
        out.rates.push(rate);
    }
    out.plans.sort_by(|a, b| a.id.cmp(&b.id));
    out.customers.sort_by(|a, b| a.id.cmp(&b.id));
    out.rates.sort_by(|a, b| {
        (&a.from, &a.to, a.effective_from).cmp(&(&b.from, &b.to, b.effective_from))
    });
    engine.customers = out;
    Ok(())
}

/// `[[waba]].currency`: a code, or dated `[{ currency, from }]`, each from
/// the first day of a month (rules D7).
pub(super) fn waba_currencies(
    value: &toml::Value,
    key: &str,
    engine: &mut EngineConfig,
) -> anyhow::Result<Vec<(Date, String)>> {
    let entries: Vec<(Option<Date>, String)> = match value {
        toml::Value::String(code) => vec![(None, code.clone())],
        toml::Value::Array(list) => {
            let mut out = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let key = format!("{key}[{i}]");
                let t = item.as_table().ok_or_else(|| {
                    anyhow!("{key}: must be a table {{ currency = \"…\", from = \"…\" }}")
                })?;
                let t = string_table(t, &key, &["currency", "from"])?;
                let code = t
                    .get("currency")
                    .ok_or_else(|| anyhow!("{key}.currency: missing"))?;
                let from = t
                    .get("from")
                    .map(|d| date(d, &format!("{key}.from")))
                    .transpose()?;
                out.push((from, code.to_owned()));
            }
            out
        }
        _ => bail!("{key}: must be a currency code or a list of {{ currency, from }}"),
    };
    let mut out = Vec::new();
    for (i, (from, code)) in entries.into_iter().enumerate() {
        let digits = currency_digits(&code, key)?;
        engine.minor_units.insert(code.clone(), digits);
        let from = match from {
            Some(d) if d.day() != 1 => bail!(
                "{key}: {code} from {d}: a WABA's currency changes on the first day of a month (Meta bills a month in one currency)"
            ),
            Some(d) => d,
            None if i == 0 => Date::MIN,
            None => bail!("{key}[{i}].from: missing (only the first currency may omit it)"),
        };
        if out.last().is_some_and(|(last, _)| *last >= from) {
            bail!("{key}: the currencies must be in date order, each from a later date");
        }
        out.push((from, code));
    }
    Ok(out)
}
