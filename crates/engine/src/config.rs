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
}

impl Default for WabaConfig {
    fn default() -> Self {
        WabaConfig {
            timezone: TimeZone::UTC,
            timezone_name: "UTC".to_owned(),
            included_conversations: 0,
            plan: Plan::Monthly,
            portfolio: None,
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
            default_waba: WabaConfig::default(),
        }
    }

    pub fn waba(&self, id: &str) -> &WabaConfig {
        self.wabas.get(id).unwrap_or(&self.default_waba)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::new()
    }
}
