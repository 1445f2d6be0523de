//! What the engine is told: era timeline, WABA settings, platform fee.
//! Built and validated by the shell (TOML in the CLI); the engine only reads it.

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::era::Timeline;

/// Rules D4: whether the platform fee applies to paid conversations only.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FeeAppliesTo {
    Paid,
    All,
}

/// Rules D5.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Monthly,
    Yearly,
}

/// Rules V1: what invoices are based on.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Basis {
    /// wabill's own rules (sections 2 to 5).
    #[default]
    Derived,
    /// Meta's verdict wherever one arrived, wabill's rules elsewhere.
    Meta,
}

impl Basis {
    pub fn parse(s: &str) -> Option<Basis> {
        match s {
            "derived" => Some(Basis::Derived),
            "meta" => Some(Basis::Meta),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Derived => "derived",
            Basis::Meta => "meta",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PlatformConfig {
    /// ISO 4217 code of invoices and of the cards used.
    pub currency: String,
    /// Digits after the decimal point of the currency's minor unit.
    pub minor_unit_digits: u32,
    pub fee_per_conversation: Decimal,
    pub fee_applies_to: FeeAppliesTo,
}

#[derive(Clone, Debug)]
pub struct WabaConfig {
    pub timezone: TimeZone,
    /// The IANA name, as printed on invoices.
    pub timezone_name: String,
    pub included_conversations: u64,
    pub plan: Plan,
    pub portfolio: Option<String>,
    /// Rules D6: the country of the business (ISO 3166 alpha-2), which
    /// decides authentication-international prices.
    pub business_country: Option<crate::market::Region>,
    /// Rules D7: the currency Meta bills the WABA in from each local date
    /// (the first day of a month), sorted; before the first, the platform's.
    pub currencies: Vec<(jiff::civil::Date, String)>,
}

impl Default for WabaConfig {
    fn default() -> Self {
        WabaConfig {
            timezone: TimeZone::UTC,
            timezone_name: "UTC".to_owned(),
            included_conversations: 0,
            plan: Plan::Monthly,
            portfolio: None,
            business_country: None,
            currencies: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub timeline: Timeline,
    pub platform: PlatformConfig,
    pub wabas: FxHashMap<String, WabaConfig>,
    /// Rules A5/B7: free conversations per WABA and local month.
    pub free_tier_per_month: u64,
    /// Rules section 5.
    pub pmp_2026_free_service_per_phone: u64,
    /// WABA ids in configuration order: a portfolio's month is that of its
    /// first WABA (rules C4).
    pub waba_order: Vec<String>,
    /// What-if runs: cards are chosen as if no traffic were earlier than this
    /// local date (the start of the era being tried).
    pub rate_floor: Option<jiff::civil::Date>,
    /// Rules V1.
    pub basis: Basis,
    /// Digits of each configured currency's minor unit.
    pub minor_units: std::collections::BTreeMap<String, u32>,
    /// Rules P6: business phones' periods, by phone id.
    pub phones: FxHashMap<String, crate::carriers::PhoneHistory>,
    /// Rules section 8.
    pub customers: crate::customers::Customers,
    default_waba: WabaConfig,
}

impl EngineConfig {
    /// The built-in defaults of cli.md: default timeline, every WABA in UTC,
    /// USD, platform fee 0, included volume 0.
    pub fn new() -> EngineConfig {
        EngineConfig {
            timeline: Timeline::meta_default(),
            platform: PlatformConfig {
                currency: "USD".to_owned(),
                minor_unit_digits: 2,
                fee_per_conversation: Decimal::ZERO,
                fee_applies_to: FeeAppliesTo::Paid,
            },
            wabas: FxHashMap::default(),
            free_tier_per_month: 1000,
            pmp_2026_free_service_per_phone: 1000,
            waba_order: Vec::new(),
            rate_floor: None,
            basis: Basis::Derived,
            minor_units: Default::default(),
            phones: FxHashMap::default(),
            customers: Default::default(),
            default_waba: WabaConfig::default(),
        }
    }

    pub fn waba(&self, id: &str) -> &WabaConfig {
        self.wabas.get(id).unwrap_or(&self.default_waba)
    }

    /// Rules D7: the currency WABA `id` is billed in on its local `date`.
    pub fn currency_on(&self, id: &str, date: jiff::civil::Date) -> &str {
        let changes = &self.waba(id).currencies;
        let i = changes.partition_point(|(from, _)| *from <= date);
        i.checked_sub(1)
            .map_or(&self.platform.currency, |i| &changes[i].1)
    }

    /// The digits of `currency`'s minor unit (the shell fills them in for
    /// every currency it configures).
    pub fn minor_unit_digits(&self, currency: &str) -> u32 {
        self.minor_units
            .get(currency)
            .copied()
            .unwrap_or(self.platform.minor_unit_digits)
    }

    /// Every currency a WABA is billed in: the platform's and each
    /// WABA's, sorted.
    pub fn billing_currencies(&self) -> Vec<String> {
        let mut out: Vec<String> = std::iter::once(self.platform.currency.clone())
            .chain(
                self.wabas
                    .values()
                    .flat_map(|w| w.currencies.iter().map(|(_, c)| c.clone())),
            )
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds (or replaces) a WABA's settings, keeping configuration order.
    pub fn set_waba(&mut self, id: &str, settings: WabaConfig) -> Option<WabaConfig> {
        if !self.waba_order.iter().any(|w| w == id) {
            self.waba_order.push(id.to_owned());
        }
        self.wabas.insert(id.to_owned(), settings)
    }

    /// Rules C4: the WABAs whose volume tiers accrue together with `id`'s are
    /// named by this key; the zone of the key's month is `portfolio_zone`.
    pub fn portfolio_key<'a>(&'a self, id: &'a str) -> PortfolioKey<'a> {
        match &self.waba(id).portfolio {
            Some(name) => PortfolioKey::Named(name),
            None => PortfolioKey::Alone(id),
        }
    }

    /// The time zone of a portfolio's month: its first WABA's in
    /// configuration order (a WABA alone: its own).
    pub fn portfolio_zone(&self, key: PortfolioKey<'_>) -> &TimeZone {
        match key {
            PortfolioKey::Alone(id) => &self.waba(id).timezone,
            PortfolioKey::Named(name) => {
                let first = self
                    .waba_order
                    .iter()
                    .find(|w| self.waba(w).portfolio.as_deref() == Some(name));
                // Settings added without an order: the smallest id decides.
                let first = first.map(String::as_str).or_else(|| {
                    self.wabas
                        .iter()
                        .filter(|(_, w)| w.portfolio.as_deref() == Some(name))
                        .map(|(id, _)| id.as_str())
                        .min()
                });
                first.map_or(&self.default_waba.timezone, |id| &self.waba(id).timezone)
            }
        }
    }
}

/// A business portfolio (rules C4): a configured group, or a WABA alone.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortfolioKey<'a> {
    Named(&'a str),
    Alone(&'a str),
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::new()
    }
}
