//! Validation of groups of events against the configuration, and what it
//! computes ahead for the ledger ([`Facts`]), possibly on parsing threads.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Rejection;
use crate::config::EngineConfig;
use crate::event::{Event, bsuid_region, is_bsuid};
use crate::hash::HashKey;
use crate::market::{Region, RegionLookup};
use crate::time::{Instant, local_midnight};

/// What validation found out about one event: what the ledger needs and
/// would otherwise compute itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub region: Region,
    pub id_hash: u64,
    pub pair_hash: u64,
    /// Rules P6: the WABA the event is kept under, when its phone moved
    /// from another (the hashes are under it).
    pub identity: Option<Arc<str>>,
    /// Rules P6: the provider it came from, when the configuration does
    /// not say that one carried its phone at its time.
    pub off_period: Option<crate::carriers::Provider>,
}

/// An event that passed validation, with what the ledger needs computed
/// ahead (possibly on a parsing thread): the user's region and the hashes of
/// its id and pair, under the key of the ledger whose validator checked it.
#[derive(Clone, Debug)]
pub struct Checked<'a> {
    pub event: Event<'a>,
    pub region: Region,
    pub id_hash: u64,
    pub pair_hash: u64,
    pub off_period: Option<crate::carriers::Provider>,
}

impl<'a> Checked<'a> {
    /// `event` with what validation found out about it, kept under the
    /// WABA of its phone's identity (rules P6).
    pub fn new(mut event: Event<'a>, facts: Facts) -> Checked<'a> {
        if let Some(waba) = facts.identity {
            event.waba = std::borrow::Cow::Owned(waba.to_string());
        }
        Checked {
            event,
            region: facts.region,
            id_hash: facts.id_hash,
            pair_hash: facts.pair_hash,
            off_period: facts.off_period,
        }
    }
}

/// Users' regions by name, hashed under a key: users come from outside.
type ByUser<K> = HashMap<K, Option<Region>, HashKey>;

/// Regions already determined, shared by the validators of one ledger (one
/// per parsing thread), so that each distinct user is parsed once: a
/// libphonenumber parse costs microseconds. It only remembers answers of a
/// pure function, so sharing it cannot change any result.
#[derive(Debug)]
pub struct RegionCache {
    lookup: RegionLookup,
    map: RwLock<ByUser<Box<str>>>,
}

impl RegionCache {
    /// An empty cache hashing users under `key`.
    pub fn new(key: HashKey) -> RegionCache {
        RegionCache {
            lookup: RegionLookup::default(),
            map: RwLock::new(HashMap::with_hasher(key)),
        }
    }

    fn get(&self, user: &str) -> Option<Option<Region>> {
        self.map.read().ok()?.get(user).copied()
    }

    fn insert(&self, user: &str, region: Option<Region>) {
        if let Ok(mut map) = self.map.write() {
            map.insert(user.into(), region);
        }
    }
}

/// Checks events against the configuration: a pricing era must apply
/// (rules section 1) and the user's region must be known (D1). Its caches
/// only remember answers.
#[derive(Clone, Debug)]
pub struct Validator {
    config: EngineConfig,
    first_starts: HashMap<String, Instant, HashKey>,
    last_waba: Option<(String, Instant)>,
    /// Users short enough to be numbers, keyed by [`numeric_key`]: no string
    /// to chase on a lookup (this runs once per event).
    numeric_regions: ByUser<u64>,
    regions: ByUser<String>,
    shared: Arc<RegionCache>,
    /// The key of the hashes in [`Facts`]: the ledger's.
    key: HashKey,
    /// Whether strings are held to events.md's limits (not while the
    /// service replays events it acknowledged before they existed).
    length_limits: bool,
    /// Rules P6: where the events being checked came from.
    provider: Option<crate::carriers::Provider>,
}

/// The longest strings an event may carry (events.md section 1): far
/// above what Meta sends, so that no client can make the ledger (or the
/// service's log, which replays forever) hold megabytes per event.
pub mod limits {
    /// A message id (a group delivery's: the message id, `#` and the
    /// participant).
    pub const ID: usize = 256;
    /// A WABA, a business phone, a group.
    pub const NAME: usize = 128;
    /// A user's number or business-scoped id (Meta's: a country, a
    /// period, up to 128 letters and digits, `ENT.` for a parent id; the
    /// engine reads ids of up to 160 bytes as business-scoped).
    pub const USER: usize = 160;
    /// A status name of another kind, and each text of Meta's verdict.
    pub const TEXT: usize = 256;
    /// Meta's `pricing` or `conversation` object, as received.
    pub const OBJECT: usize = 4096;
}

/// Refuses an event with a string over its limit ([`limits`]).
fn check_lengths(event: &Event<'_>) -> Result<(), Rejection> {
    let check = |field: &'static str, value: Option<&str>, max: usize| match value {
        Some(v) if v.len() > max => Err(Rejection::TooLong {
            field,
            bytes: v.len(),
            max,
        }),
        _ => Ok(()),
    };
    check("id", Some(&event.id), limits::ID)?;
    check("waba", Some(&event.waba), limits::NAME)?;
    check("phone", Some(&event.phone), limits::NAME)?;
    check("user", Some(&event.user), limits::USER)?;
    if let Some(also) = &event.also {
        check("user_id", also.bsuid.as_deref(), limits::USER)?;
        check("group", also.group.as_deref(), limits::NAME)?;
    }
    if let crate::event::EventBody::Status(crate::event::Status::Other(name)) = &event.body {
        check("status", Some(name), limits::TEXT)?;
    }
    if let Some(v) = &event.verdict {
        for (field, value) in [
            ("meta.pricing_model", &v.pricing_model),
            ("meta.category", &v.category),
            ("meta.pricing_type", &v.pricing_type),
            ("meta.conversation_id", &v.conversation_id),
            ("meta.origin", &v.origin),
            ("meta.cost", &v.cost),
        ] {
            check(field, value.as_deref(), limits::TEXT)?;
        }
        check("pricing", v.pricing_json.as_deref(), limits::OBJECT)?;
        check(
            "conversation",
            v.conversation_json.as_deref(),
            limits::OBJECT,
        )?;
    }
    Ok(())
}

/// A user of at most 17 digits as one number that keeps its length, so
/// `"0123"` and `"123"` stay apart; None for anything else.
fn numeric_key(user: &str) -> Option<u64> {
    if user.is_empty() || user.len() > 17 {
        return None;
    }
    let mut value = 0u64;
    for b in user.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Some(value << 5 | user.len() as u64)
}

impl Validator {
    /// A validator whose [`Facts`] carry hashes under `key`: only a ledger
    /// of the same key can fold them ([`super::Ledger::validator`] gives one).
    pub fn new(config: EngineConfig, key: HashKey) -> Validator {
        Validator::with_cache(config, Arc::new(RegionCache::new(key)), key)
    }

    pub(super) fn with_cache(
        config: EngineConfig,
        shared: Arc<RegionCache>,
        key: HashKey,
    ) -> Validator {
        Validator {
            config,
            first_starts: HashMap::with_hasher(key),
            last_waba: None,
            numeric_regions: HashMap::with_hasher(key),
            regions: HashMap::with_hasher(key),
            shared,
            key,
            length_limits: true,
            provider: None,
        }
    }

    /// Rules P6: the provider the next events came from (None: not
    /// known, as for the platform's own NDJSON).
    pub fn set_provider(&mut self, provider: Option<crate::carriers::Provider>) {
        self.provider = provider;
    }

    /// Holds strings to events.md's limits, or not: events logged before
    /// the limits existed still replay (nothing acknowledged is hidden).
    pub fn set_length_limits(&mut self, on: bool) {
        self.length_limits = on;
    }

    /// Another validator of the same configuration, cache and key, with
    /// caches of its own.
    pub(super) fn sibling(&self) -> Validator {
        Validator::with_cache(self.config.clone(), Arc::clone(&self.shared), self.key)
    }

    pub(super) fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn first_start(&mut self, waba: &str) -> Instant {
        // Inputs come in long runs of one WABA: skip the hash when it repeats.
        if let Some((last, start)) = &self.last_waba
            && last == waba
        {
            return *start;
        }
        if let Some(start) = self.first_starts.get(waba) {
            self.last_waba = Some((waba.to_owned(), *start));
            return *start;
        }
        let start = local_midnight(
            self.config.timeline.first_date(),
            &self.config.waba(waba).timezone,
        );
        self.first_starts.insert(waba.to_owned(), start);
        self.last_waba = Some((waba.to_owned(), start));
        start
    }

    fn region(&mut self, user: &str) -> Option<Region> {
        let key = numeric_key(user);
        if let Some(key) = key {
            if let Some(region) = self.numeric_regions.get(&key) {
                return *region;
            }
        } else if let Some(region) = self.regions.get(user) {
            return *region;
        }
        let region = match self.shared.get(user) {
            Some(region) => region,
            None => {
                let region = self.shared.lookup.region_of(user);
                self.shared.insert(user, region);
                region
            }
        };
        match key {
            Some(key) => self.numeric_regions.insert(key, region),
            None => self.regions.insert(user.to_owned(), region),
        };
        region
    }

    /// Checks one event: what the ledger needs of it ([`Facts`]), or why
    /// it cannot be billed.
    pub fn check_event(&mut self, event: &Event<'_>) -> Result<Facts, Rejection> {
        if self.length_limits {
            check_lengths(event)?;
        }
        let identity: Option<Arc<str>> = self
            .config
            .identity_waba(&event.waba, &event.phone)
            .map(Arc::from);
        let waba = identity.as_deref().unwrap_or(&event.waba);
        if event.ts < self.first_start(waba) {
            return Err(Rejection::BeforeFirstEra {
                at: event.ts.rfc3339(),
                first: self.config.timeline.first_date(),
                tz: self.config.waba(waba).timezone_name.clone(),
            });
        }
        let region = if is_bsuid(&event.user) {
            // Rules F9: a user known by business-scoped id is in its country.
            bsuid_region(&event.user).filter(|r| self.shared.lookup.knows(*r))
        } else {
            self.region(&event.user)
        };
        let Some(region) = region else {
            return Err(Rejection::UnknownRegion {
                user: event.user.to_string(),
            });
        };
        let waba: &str = identity.as_deref().unwrap_or(&event.waba);
        Ok(Facts {
            region,
            id_hash: self.key.message_hash(waba, &event.id),
            pair_hash: self.key.pair_hash(waba, &event.phone, &event.user),
            off_period: self.provider.filter(|p| {
                self.config
                    .off_period(&event.waba, &event.phone, event.ts, *p)
            }),
            identity,
        })
    }

    /// Checks a group accepted or rejected whole, appending for each event
    /// its [`Facts`] to `out`; on error `out` is left as it was.
    pub fn check_group(
        &mut self,
        events: &[Event<'_>],
        out: &mut Vec<Facts>,
    ) -> Result<(), Rejection> {
        let start = out.len();
        for event in events {
            match self.check_event(event) {
                Ok(facts) => out.push(facts),
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// As [`Validator::check_group`], moving the events into `out`.
    pub fn check<'a>(
        &mut self,
        events: &mut Vec<Event<'a>>,
        out: &mut Vec<Checked<'a>>,
    ) -> Result<(), Rejection> {
        let mut facts = Vec::with_capacity(events.len());
        self.check_group(events, &mut facts)?;
        out.extend(
            events
                .drain(..)
                .zip(facts)
                .map(|(event, f)| Checked::new(event, f)),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventBody;
    use crate::ledger::Ledger;
    use crate::ledger::fold::tests::{MARCH_2022, ev};
    use std::borrow::Cow;

    #[test]
    fn events_before_the_first_era_are_rejected() {
        let mut ledger = Ledger::new(EngineConfig::new(), HashKey::fixed());
        let old = ev(
            EventBody::Inbound { referral: false },
            "m1",
            MARCH_2022 - 40 * 86_400,
        );
        assert!(matches!(
            ledger.ingest(&[old]),
            Err(Rejection::BeforeFirstEra { .. })
        ));
        assert_eq!(ledger.accepted(), 0);
    }

    #[test]
    fn a_group_with_one_bad_user_is_rejected_whole() {
        let mut ledger = Ledger::new(EngineConfig::new(), HashKey::fixed());
        let good = ev(EventBody::Inbound { referral: false }, "m1", MARCH_2022);
        let mut bad = ev(EventBody::Inbound { referral: false }, "m2", MARCH_2022);
        bad.user = Cow::Borrowed("999123");
        assert!(matches!(
            ledger.ingest(&[good, bad]),
            Err(Rejection::UnknownRegion { .. })
        ));
        assert_eq!(ledger.n_messages(), 0);
    }

    #[test]
    fn a_string_over_its_limit_is_refused_naming_the_field_and_the_limit() {
        let mut validator = Ledger::new(EngineConfig::new(), HashKey::fixed()).validator();
        let mut e = ev(EventBody::Inbound { referral: false }, "m1", MARCH_2022);
        assert!(validator.check_event(&e).is_ok());
        e.id = Cow::Owned("x".repeat(limits::ID));
        assert!(validator.check_event(&e).is_ok(), "at the limit");
        e.id = Cow::Owned("x".repeat(limits::ID + 1));
        let refused = validator.check_event(&e).map(|_| ()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "`id` is 257 bytes long; at most 256 are accepted"
        );
        e.id = Cow::Borrowed("m1");
        e.phone = Cow::Owned("p".repeat(900_000));
        assert!(matches!(
            validator.check_event(&e),
            Err(Rejection::TooLong { field: "phone", .. })
        ));
    }

    #[test]
    fn numeric_user_keys_keep_leading_zeros_and_refuse_what_is_not_a_short_number() {
        assert_ne!(numeric_key("0123"), numeric_key("123"));
        assert_eq!(numeric_key("5511999990001"), numeric_key("5511999990001"));
        assert_ne!(numeric_key("5511999990001"), numeric_key("5511999990002"));
        assert_eq!(numeric_key(""), None);
        assert_eq!(numeric_key("12a4"), None);
        assert_eq!(numeric_key("123456789012345678"), None);
        assert!(numeric_key("99999999999999999").is_some());
    }
}
