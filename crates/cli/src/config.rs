//! The TOML configuration (cli.md): parsed, validated, and turned into the
//! engine's configuration and rate book. Every error names the key or file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use jiff::civil::Date;
use serde::Deserialize;
use wabill_engine::config::{Basis, EngineConfig, FeeAppliesTo, Plan, WabaConfig};
use wabill_engine::era::{EraKind, Timeline};
use wabill_engine::market::{MarketMap, Region};
use wabill_engine::tariff::{Family, RateBook, RateCard};
mod customers;
mod phones;

use wabill_rates::{
    CardFlags, CardMeta, card_currency_from_columns, card_meta_from_header, identify,
    map_date_from_name, parse_card, parse_map,
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    platform: Platform,
    #[serde(default)]
    waba: Vec<Waba>,
    #[serde(default)]
    rates: Rates,
    eras: Option<Eras>,
    #[serde(default)]
    billing: Billing,
    #[serde(default)]
    plan: Vec<customers::PlanFile>,
    #[serde(default)]
    customer: Vec<customers::CustomerFile>,
    #[serde(default)]
    exchange_rate: Vec<customers::RateFile>,
    #[serde(default)]
    phone: Vec<phones::PhoneFile>,
    // The service's tables (service.md): one file serves every command, and
    // each ignores the tables it does not use.
    server: Option<toml::Value>,
    meta: Option<toml::Value>,
    route: Option<toml::Value>,
    api_key: Option<toml::Value>,
    cluster: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    #[serde(default = "usd")]
    currency: String,
    #[serde(default)]
    fee_per_conversation: Option<toml::Value>,
    #[serde(default = "paid")]
    fee_applies_to: String,
}

fn usd() -> String {
    "USD".to_owned()
}

fn paid() -> String {
    "paid".to_owned()
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            currency: usd(),
            fee_per_conversation: None,
            fee_applies_to: paid(),
        }
    }
}

/// Rules V1.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Billing {
    basis: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Waba {
    id: String,
    timezone: Option<String>,
    business_country: Option<String>,
    #[serde(default)]
    included_conversations: i64,
    plan: Option<String>,
    portfolio: Option<String>,
    currency: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rates {
    #[serde(default)]
    cards: Vec<toml::Value>,
    #[serde(default)]
    markets: Vec<toml::Value>,
}

/// A card or map file: a path, or a table `{ path, … }` whose other keys
/// (from `allowed`) say what the file does not.
struct FileEntry {
    path: String,
    keys: std::collections::BTreeMap<String, String>,
}

fn file_entry(value: &toml::Value, key: &str, allowed: &[&str]) -> anyhow::Result<FileEntry> {
    match value {
        toml::Value::String(path) => Ok(FileEntry {
            path: path.clone(),
            keys: Default::default(),
        }),
        toml::Value::Table(table) => {
            let with_path: Vec<&str> = std::iter::once("path")
                .chain(allowed.iter().copied())
                .collect();
            let mut keys = string_table(table, key, &with_path)?;
            let path = keys
                .remove("path")
                .ok_or_else(|| anyhow!("{key}.path: missing"))?;
            Ok(FileEntry { path, keys })
        }
        _ => bail!("{key}: must be a file path or a table {{ path = \"…\", … }}"),
    }
}

/// An inline table `key` of string values under the `allowed` keys only.
fn string_table(
    table: &toml::Table,
    key: &str,
    allowed: &[&str],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in table {
        if !allowed.contains(&k.as_str()) {
            bail!("{key}.{k}: unknown key (expected {})", allowed.join(", "));
        }
        let text = v
            .as_str()
            .ok_or_else(|| anyhow!("{key}.{k}: must be a string"))?;
        out.insert(k.clone(), text.to_owned());
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Eras {
    timeline: Option<Vec<EraEntry>>,
    pmp_2026_free_service_per_phone: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraEntry {
    era: String,
    from: String,
}

/// What a command needs: the engine configuration and the rate book.
pub struct Configured {
    pub engine: EngineConfig,
    pub book: RateBook,
}

/// Reads the configuration file at `path`, or the built-in defaults when
/// None.
pub fn read_config(path: Option<&Path>) -> anyhow::Result<Configured> {
    let (file, base) = match path {
        None => (File::default(), PathBuf::from(".")),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read configuration {}", path.display()))?;
            let file: File = toml::from_str(&text).map_err(|e| {
                let e = wabill_server::config::toml_error(&e, &text);
                anyhow!("configuration {}: {e}", path.display())
            })?;
            let base = path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            (file, base)
        }
    };
    let _ = (
        &file.server,
        &file.meta,
        &file.route,
        &file.api_key,
        &file.cluster,
    );
    let mut engine = EngineConfig::new();
    platform(&file.platform, &mut engine)?;
    for (i, w) in file.waba.iter().enumerate() {
        let key = format!("waba[{i}]");
        if w.id.is_empty() {
            bail!("{key}.id: must not be empty");
        }
        let mut settings = waba(w, &key)?;
        if let Some(currency) = &w.currency {
            settings.currencies =
                customers::waba_currencies(currency, &format!("{key}.currency"), &mut engine)?;
        }
        if engine.set_waba(&w.id, settings).is_some() {
            bail!("{key}.id: WABA {:?} is configured twice", w.id);
        }
    }
    if let Some(eras) = &file.eras {
        if let Some(timeline) = &eras.timeline {
            engine.timeline = parse_timeline(timeline)?;
        }
        if let Some(n) = eras.pmp_2026_free_service_per_phone {
            engine.pmp_2026_free_service_per_phone = u64::try_from(n).map_err(|_| {
                anyhow!("eras.pmp_2026_free_service_per_phone: must not be negative (got {n})")
            })?;
        }
    }
    if let Some(basis) = &file.billing.basis {
        engine.basis = Basis::parse(basis)
            .ok_or_else(|| anyhow!("billing.basis: {basis:?} is not \"derived\" or \"meta\""))?;
    }
    phones::phones(&file.phone, &mut engine)?;
    customers::customers(&file.plan, &file.customer, &file.exchange_rate, &mut engine)?;
    if !engine.platform.fee_per_conversation.is_zero()
        && let Some(other) = engine
            .billing_currencies()
            .into_iter()
            .find(|c| *c != engine.platform.currency)
    {
        bail!(
            "platform.fee_per_conversation: the fee is in platform.currency {} but a WABA is billed in {other}; \
             give the fee in a [[plan]] of a [[customer]] instead",
            engine.platform.currency
        );
    }
    simple_fee_or_plans(&engine)?;
    phones::one_customer_per_phone(&engine)?;
    let book = rate_book(&file.rates, &base, &engine.billing_currencies())?;
    Ok(Configured { engine, book })
}

/// Rules D5: the platform's fee is `[platform]`'s (the simple case) or,
/// once customers are configured, their plans': never both.
fn simple_fee_or_plans(engine: &EngineConfig) -> anyhow::Result<()> {
    let customers = &engine.customers.customers;
    if customers.is_empty() {
        return Ok(());
    }
    if !engine.platform.fee_per_conversation.is_zero() {
        bail!(
            "platform.fee_per_conversation: with [[customer]] configured the platform's fee is in each customer's [[plan]] \
             (unit_price, included); set it to \"0\" so that no unit is charged twice"
        );
    }
    for c in customers {
        if let Some(m) = c
            .wabas
            .iter()
            .find(|m| engine.waba(&m.waba).included_conversations > 0)
        {
            bail!(
                "waba {:?}: included_conversations is the simple case's allowance; WABA {:?} is customer {:?}'s, whose [[plan]] gives its included volume",
                m.waba,
                m.waba,
                c.id
            );
        }
    }
    Ok(())
}

fn platform(p: &Platform, engine: &mut EngineConfig) -> anyhow::Result<()> {
    let digits = customers::currency_digits(&p.currency, "platform.currency")?;
    engine.platform.currency = p.currency.clone();
    engine.platform.minor_unit_digits = digits;
    engine.minor_units.insert(p.currency.clone(), digits);
    if let Some(fee) = &p.fee_per_conversation {
        engine.platform.fee_per_conversation =
            customers::decimal(fee, "platform.fee_per_conversation")?;
    }
    engine.platform.fee_applies_to = match p.fee_applies_to.as_str() {
        "paid" => FeeAppliesTo::Paid,
        "all" => FeeAppliesTo::All,
        other => bail!("platform.fee_applies_to: {other:?} is not \"paid\" or \"all\""),
    };
    Ok(())
}

fn waba(w: &Waba, key: &str) -> anyhow::Result<WabaConfig> {
    let mut settings = WabaConfig::default();
    if let Some(name) = &w.timezone {
        settings.timezone = jiff::tz::db()
            .get(name)
            .map_err(|_| anyhow!("{key}.timezone: {name:?} is not an IANA time zone"))?;
        // The database's spelling (`america/sao_paulo` → `America/Sao_Paulo`).
        settings.timezone_name = settings.timezone.iana_name().unwrap_or(name).to_owned();
    }
    settings.included_conversations = u64::try_from(w.included_conversations).map_err(|_| {
        anyhow!(
            "{key}.included_conversations: must not be negative (got {})",
            w.included_conversations
        )
    })?;
    settings.plan = match w.plan.as_deref() {
        None | Some("monthly") => Plan::Monthly,
        Some("yearly") => Plan::Yearly,
        Some(other) => bail!("{key}.plan: {other:?} is not \"monthly\" or \"yearly\""),
    };
    settings.portfolio = w.portfolio.clone();
    if let Some(country) = &w.business_country {
        settings.business_country = Some(Region::parse(country).ok_or_else(|| {
            anyhow!("{key}.business_country: {country:?} is not an ISO 3166 alpha-2 country code")
        })?);
    }
    Ok(settings)
}

fn date(text: &str, key: &str) -> anyhow::Result<Date> {
    Date::from_str(text).map_err(|_| anyhow!("{key}: {text:?} is not a date (YYYY-MM-DD)"))
}

fn parse_timeline(entries: &[EraEntry]) -> anyhow::Result<Timeline> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let key = format!("eras.timeline[{i}]");
        let era = EraKind::parse(&e.era).ok_or_else(|| {
            anyhow!(
                "{key}.era: unknown era {:?} (known: cbp-2022, cbp-2023, pmp-2025, pmp-2026)",
                e.era
            )
        })?;
        out.push((date(&e.from, &format!("{key}.from"))?, era));
    }
    Timeline::new(out).map_err(|e| anyhow!("eras.timeline: {e}"))
}

/// Meta's shipped maps and cards, then the configuration's maps and cards
/// over them.
fn rate_book(rates: &Rates, base: &Path, currencies: &[String]) -> anyhow::Result<RateBook> {
    let mut book = wabill_rates::shipped().map_err(|e| anyhow!("shipped rate data: {e}"))?;
    for (i, entry) in rates.markets.iter().enumerate() {
        let key = format!("rates.markets[{i}]");
        let map = read_map(entry, &key, base, &mut book)?;
        book.overlay_map(map);
    }
    for (i, entry) in rates.cards.iter().enumerate() {
        let key = format!("rates.cards[{i}]");
        let card = read_card(entry, &key, base, currencies, &mut book)?;
        book.add_card(card);
    }
    Ok(book)
}

/// The market map of `rates.markets[i]` (`key`).
fn read_map(
    entry: &toml::Value,
    key: &str,
    base: &Path,
    book: &mut RateBook,
) -> anyhow::Result<MarketMap> {
    let entry = file_entry(entry, key, &["effective_from"])?;
    let date = match entry.keys.get("effective_from") {
        Some(d) => Some(date(d, &format!("{key}.effective_from"))?),
        None => map_date_from_name(&entry.path),
    };
    let full = base.join(&entry.path);
    let text = std::fs::read_to_string(&full)
        .with_context(|| format!("{key}: cannot read {}", full.display()))?;
    parse_map(&text, date, &full.display().to_string(), book).map_err(|e| anyhow!("{key}: {e}"))
}

/// The rate card of `rates.cards[i]` (`key`), which must be in a
/// currency some WABA is billed in (`currencies`).
fn read_card(
    entry: &toml::Value,
    key: &str,
    base: &Path,
    currencies: &[String],
    book: &mut RateBook,
) -> anyhow::Result<RateCard> {
    let entry = file_entry(entry, key, &["family", "currency", "effective_from"])?;
    let full = base.join(&entry.path);
    let source = full.display().to_string();
    let text = std::fs::read_to_string(&full)
        .with_context(|| format!("{key}: cannot read {}", full.display()))?;
    // What the card is: the configuration's keys, else the file's header
    // comments, else its name (else, for the currency, a Currency column).
    let header = card_meta_from_header(&text, &source).map_err(|e| anyhow!("{key}: {e}"))?;
    let given =
        CardFlags {
            family: match entry.keys.get("family") {
                Some(f) => Some(Family::parse(f).ok_or_else(|| {
                    anyhow!("{key}.family: {f:?} is not cbp-2022, cbp-2023 or pmp")
                })?),
                None => None,
            },
            currency: entry.keys.get("currency").cloned(),
            effective_from: match entry.keys.get("effective_from") {
                Some(d) => Some(date(d, &format!("{key}.effective_from"))?),
                None => None,
            },
        };
    let column = card_currency_from_columns(&text, &source);
    let identity = identify(
        &header,
        &entry.path,
        &given,
        column.as_deref(),
        &mut Vec::new(),
    );
    let family = identity.family.map(|f| f.0);
    let card_currency = identity.currency.map(|c| c.0);
    let effective_from = identity.effective_from.map(|d| d.0);
    let (Some(family), Some(card_currency), Some(effective_from)) =
        (family, card_currency, effective_from)
    else {
        bail!(
            "{key}: {:?} does not say its family, currency and effective date; give them as \
             header lines (# family: cbp-2022, # currency: USD, # effective_from: 2022-02-01), \
             in the file name (my-cbp-2022_USD_2022-02-01.csv) or as {{ path, family, currency, effective_from }}",
            entry.path
        );
    };
    if !currencies.contains(&card_currency) {
        bail!(
            "{key}: card {:?} is in {card_currency} but no WABA is billed in it (platform.currency and [[waba]] currency give {})",
            entry.path,
            currencies.join(", ")
        );
    }
    let meta = CardMeta {
        family,
        currency: card_currency,
        effective_from,
    };
    parse_card(&text, &meta, &source, book).map_err(|e| anyhow!("{key}: {e}"))
}
