//! Rules P6: which provider carried a business phone number, and which
//! WABA paid for it, over dated periods. A number that moves keeps its
//! identity (Meta's, when the number is migrated): its users' windows and
//! open conversations go on across the move, and each conversation or
//! message is billed to the WABA that carried the number when it started.

use jiff::civil::Date;

use crate::config::EngineConfig;
use crate::time::{Instant, local_midnight};

/// The providers whose webhooks wabill reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    Meta,
    Dialog360,
    Zendesk,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "meta" => Some(Provider::Meta),
            "360dialog" => Some(Provider::Dialog360),
            "zendesk" => Some(Provider::Zendesk),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Meta => "meta",
            Provider::Dialog360 => "360dialog",
            Provider::Zendesk => "zendesk",
        }
    }
}

/// A period of a phone: from `from` (a local date of `waba`; the first
/// period may have none) until the next period's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carrier {
    pub from: Option<Date>,
    pub provider: Provider,
    pub waba: String,
}

/// A phone's periods, sorted by `from`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhoneHistory {
    pub carriers: Vec<Carrier>,
}

impl PhoneHistory {
    /// The WABA the phone's events are kept under: its first period's.
    pub fn identity(&self) -> Option<&str> {
        self.carriers.first().map(|c| c.waba.as_str())
    }

    pub fn names_waba(&self, waba: &str) -> bool {
        self.carriers.iter().any(|c| c.waba == waba)
    }
}

impl EngineConfig {
    /// The WABA whose events `(waba, phone)`'s are kept as, when not
    /// `waba` itself: a phone that moved between WABAs (rules P6).
    pub fn identity_waba(&self, waba: &str, phone: &str) -> Option<&str> {
        if self.phones.is_empty() {
            return None;
        }
        let history = self.phones.get(phone)?;
        let identity = history.identity()?;
        (identity != waba && history.names_waba(waba)).then_some(identity)
    }

    /// The period of `phone` in force at `at`, when the configuration
    /// gives the phone's periods and one of them is `waba`'s: a WABA no
    /// period names keeps its own events (its phone ids are its own).
    pub fn carrier_at(&self, waba: &str, phone: &str, at: Instant) -> Option<&Carrier> {
        if self.phones.is_empty() {
            return None;
        }
        let history = self.phones.get(phone).filter(|h| h.names_waba(waba))?;
        history
            .carriers
            .iter()
            .rev()
            .find(|c| {
                c.from
                    .is_none_or(|d| local_midnight(d, &self.waba(&c.waba).timezone) <= at)
            })
            .or_else(|| history.carriers.first())
    }

    /// Whether an event of `(waba, phone)` at `at` that came from
    /// `provider` came from one the configuration does not say carried the
    /// phone then (rules P6: accepted, and counted).
    pub fn off_period(&self, waba: &str, phone: &str, at: Instant, provider: Provider) -> bool {
        self.carrier_at(waba, phone, at)
            .is_some_and(|c| c.provider != provider)
    }
}

impl crate::ledger::Ledger {
    /// The WABA a record is billed to: the one that carried its phone when
    /// it started (rules P6), else its pair's.
    pub fn record_waba(&self, r: &crate::billing::Record) -> &str {
        let waba = self.pair_names(r.pair).0;
        if r.provider.is_none() {
            return waba;
        }
        // The phone that sent it (a group's, rules G1), as derivation files it.
        let (sent_by, phone, _) = self.pair_names(r.derived_from);
        self.config()
            .carrier_at(sent_by, phone, r.start)
            .map_or(waba, |c| c.waba.as_str())
    }

    /// Rules P6: the WABA (its index) and provider that carried `phone`
    /// (of WABA `waba`'s pairs) at `at`, when the configuration gives the
    /// phone's periods.
    pub(crate) fn carrier_at(
        &self,
        waba: &str,
        phone: &str,
        at: Instant,
    ) -> Option<(u32, Provider)> {
        let carrier = self.config().carrier_at(waba, phone, at)?;
        Some((self.waba_index(&carrier.waba)?, carrier.provider))
    }
}
