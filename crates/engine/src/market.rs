//! Rules D1: user number → ISO region (libphonenumber) → pricing market.

use rustc_hash::FxHashMap;

/// An ISO 3166-1 alpha-2 region code, as libphonenumber reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region([u8; 2]);

impl Region {
    pub fn parse(s: &str) -> Option<Region> {
        let b = s.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Some(Region([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
            ]))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("Region::parse keeps two ASCII letters")
    }
}

/// libphonenumber's answer to "which country is this number in" (rules
/// D1), through `rlibphonenumber`, a port checked against Google's library.
pub struct RegionLookup {
    util: rlibphonenumber::PhoneNumberUtil,
    /// The regions libphonenumber knows (a business-scoped user id names
    /// its country by code, rules F9).
    known: std::collections::BTreeSet<Region>,
}

impl std::fmt::Debug for RegionLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegionLookup")
    }
}

impl Default for RegionLookup {
    fn default() -> Self {
        RegionLookup::new()
    }
}

impl RegionLookup {
    /// Loads the metadata compiled into the binary (a few milliseconds).
    pub fn new() -> RegionLookup {
        // The metadata is embedded at build time and validated by the crate's
        // build; a failure here is a build defect, not bad input.
        let util = rlibphonenumber::PhoneNumberUtil::new()
            .expect("libphonenumber metadata compiled into the binary loads");
        let known = util
            .get_supported_regions()
            .filter_map(|r| Region::parse(&r.as_region_str()))
            .collect();
        RegionLookup { util, known }
    }

    /// Whether `region` is a country libphonenumber knows.
    pub fn knows(&self, region: Region) -> bool {
        self.known.contains(&region)
    }

    /// The region of an international number written as digits only
    /// (`wa_id`). None when the number cannot be parsed or no region can be
    /// determined (rules D1: an input error, never silently `Other`).
    pub fn region_of(&self, user_digits: &str) -> Option<Region> {
        if user_digits.is_empty() || !user_digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = self.util.parse(format!("+{user_digits}"), None).ok()?;
        let region = self.util.get_region_for_number(&number)?;
        // Non-geographic entities ("001": +800, +882, …) are no ISO region.
        Region::parse(&region.as_region_str())
    }
}

/// Index of a market name in a [`crate::tariff::RateBook`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MarketId(pub u16);

/// One version of the region → market map, with optional number prefixes
/// (longest match wins over the region).
#[derive(Clone, Debug, Default)]
pub struct MarketMap {
    /// Local date from which this map is in force; None for an undated map.
    pub effective_from: Option<jiff::civil::Date>,
    /// Where it came from (file name), for messages and `rates list`.
    pub sources: Vec<String>,
    pub regions: FxHashMap<Region, MarketId>,
    /// Digit prefixes, kept sorted longest first.
    prefixes: Vec<(String, MarketId)>,
}

impl MarketMap {
    pub fn new(effective_from: Option<jiff::civil::Date>, source: String) -> MarketMap {
        MarketMap {
            effective_from,
            sources: vec![source],
            ..MarketMap::default()
        }
    }

    pub fn set_region(&mut self, region: Region, market: MarketId) {
        self.regions.insert(region, market);
    }

    pub fn set_prefix(&mut self, digits: &str, market: MarketId) {
        match self.prefixes.iter_mut().find(|(p, _)| p == digits) {
            Some(entry) => entry.1 = market,
            None => {
                self.prefixes.push((digits.to_owned(), market));
                self.prefixes
                    .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            }
        }
    }

    pub fn prefixes(&self) -> &[(String, MarketId)] {
        &self.prefixes
    }

    /// Entry by entry, `other` wins over `self`.
    pub fn merge_from(&mut self, other: &MarketMap) {
        for (region, market) in &other.regions {
            self.regions.insert(*region, *market);
        }
        for (prefix, market) in &other.prefixes {
            self.set_prefix(prefix, *market);
        }
        self.sources.extend(other.sources.iter().cloned());
    }

    /// The market of a user; `other` is the id of the `Other` market.
    pub fn market_of(&self, user_digits: &str, region: Region, other: MarketId) -> MarketId {
        for (prefix, market) in &self.prefixes {
            if user_digits.starts_with(prefix.as_str()) {
                return *market;
            }
        }
        self.regions.get(&region).copied().unwrap_or(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region_of(digits: &str) -> Option<Region> {
        RegionLookup::new().region_of(digits)
    }

    #[test]
    fn d1_region_comes_from_libphonenumber_metadata() {
        let cases = [
            ("17875550100", "PR"),
            ("12125550100", "US"),
            ("12423570100", "BS"),
            ("77272500000", "KZ"),
            ("447911123456", "GG"),
            ("390612345678", "IT"),
            ("390212345678", "IT"),
            ("390669812345", "VA"),
            ("393123456789", "IT"),
            // Russian landlines: +7 8… is not a trunk prefix here.
            ("78121234567", "RU"),
            ("78001234567", "RU"),
            ("77172123456", "KZ"),
            ("5511999990001", "BR"),
            ("2348031234567", "NG"),
        ];
        for (digits, region) in cases {
            assert_eq!(
                region_of(digits).map(|r| r.as_str().to_owned()),
                Some(region.to_owned()),
                "{digits}"
            );
        }
    }

    #[test]
    fn d1_unparseable_number_has_no_region() {
        assert_eq!(region_of(""), None);
        assert_eq!(region_of("12a4"), None);
        assert_eq!(region_of("999123"), None);
        assert_eq!(region_of("80012345678"), None);
    }

    #[test]
    fn d1_longest_prefix_wins_over_region() {
        let gb = Region::parse("GG").unwrap_or(Region(*b"GG"));
        let mut map = MarketMap::new(None, "test".into());
        map.set_region(gb, MarketId(1));
        map.set_prefix("44", MarketId(2));
        map.set_prefix("4479", MarketId(3));
        assert_eq!(map.market_of("447911123456", gb, MarketId(0)), MarketId(3));
        assert_eq!(map.market_of("447811123456", gb, MarketId(0)), MarketId(2));
        map.prefixes.clear();
        assert_eq!(map.market_of("447911123456", gb, MarketId(0)), MarketId(1));
        let us = Region(*b"US");
        assert_eq!(map.market_of("12125550100", us, MarketId(0)), MarketId(0));
    }
}
