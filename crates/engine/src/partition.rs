//! Billing units for scale-out (service.md, "Cluster"): the WABAs whose
//! events bill together, so that one process holding a unit's events
//! bills it exactly as one process holding everything would. A unit joins
//! a portfolio's WABAs (volume tiers, free tier, user links: rules C4,
//! F9), the WABAs a moved phone names (rules P6) and a customer's WABAs
//! (its invoice reads them together, rules section 8). A unit's partition
//! is a fixed hash of its name, the same in every process and release.

use std::collections::BTreeMap;

use crate::EngineConfig;

/// The partition of every WABA under one configuration.
#[derive(Clone, Debug)]
pub struct Partitions {
    count: u32,
    /// A configured WABA's unit: the smallest WABA id of the unit.
    unit: BTreeMap<String, String>,
}

impl Partitions {
    /// `count` partitions (at least one) of `config`'s WABAs.
    pub fn new(config: &EngineConfig, count: u32) -> Partitions {
        let mut joined = Joined::default();
        let mut portfolios: BTreeMap<&str, &str> = BTreeMap::new();
        for (waba, settings) in &config.wabas {
            joined.add(waba);
            if let Some(portfolio) = &settings.portfolio {
                let first = *portfolios.entry(portfolio).or_insert(waba);
                joined.join(first, waba);
            }
        }
        for history in config.phones.values() {
            for pair in history.carriers.windows(2) {
                joined.join(&pair[0].waba, &pair[1].waba);
            }
        }
        for customer in &config.customers.customers {
            for pair in customer.wabas.windows(2) {
                joined.join(&pair[0].waba, &pair[1].waba);
            }
        }
        Partitions {
            count: count.max(1),
            unit: joined.units(),
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The unit `waba` bills in: a WABA no table names is a unit alone.
    pub fn unit<'a>(&'a self, waba: &'a str) -> &'a str {
        self.unit.get(waba).map_or(waba, String::as_str)
    }

    /// The partition of `waba`'s events and reads.
    pub fn of(&self, waba: &str) -> u32 {
        (fnv1a64(self.unit(waba).as_bytes()) % u64::from(self.count)) as u32
    }
}

/// FNV-1a, 64 bits: fixed (unlike the engine's keyed hashes), so every
/// process and every release puts a WABA in the same partition.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Union-find over WABA ids.
#[derive(Default)]
struct Joined {
    parent: BTreeMap<String, String>,
}

impl Joined {
    fn add(&mut self, waba: &str) {
        if !self.parent.contains_key(waba) {
            self.parent.insert(waba.to_owned(), waba.to_owned());
        }
    }

    fn root(&self, waba: &str) -> String {
        let mut at = waba;
        while let Some(up) = self.parent.get(at).filter(|up| *up != at) {
            at = up;
        }
        at.to_owned()
    }

    /// The smaller root stays the root: a unit is named by its smallest id.
    fn join(&mut self, a: &str, b: &str) {
        self.add(a);
        self.add(b);
        let (ra, rb) = (self.root(a), self.root(b));
        match ra.cmp(&rb) {
            std::cmp::Ordering::Less => self.parent.insert(rb, ra),
            std::cmp::Ordering::Greater => self.parent.insert(ra, rb),
            std::cmp::Ordering::Equal => None,
        };
    }

    fn units(self) -> BTreeMap<String, String> {
        self.parent
            .keys()
            .map(|waba| (waba.clone(), self.root(waba)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carriers::{Carrier, PhoneHistory, Provider};

    #[test]
    fn a_portfolio_a_moved_phone_and_a_customer_each_keep_their_wabas_in_one_partition() {
        let mut config = EngineConfig::new();
        for (waba, portfolio) in [("W1", Some("A")), ("W2", Some("A")), ("W3", None)] {
            let settings = config.wabas.entry(waba.to_owned()).or_default();
            settings.portfolio = portfolio.map(str::to_owned);
        }
        config.phones.insert(
            "P9".into(),
            PhoneHistory {
                carriers: ["W3", "W4"]
                    .into_iter()
                    .map(|waba| Carrier {
                        from: None,
                        provider: Provider::Meta,
                        waba: waba.into(),
                    })
                    .collect(),
            },
        );
        let partitions = Partitions::new(&config, 1 << 20);
        assert_eq!(partitions.unit("W2"), "W1");
        assert_eq!(partitions.of("W1"), partitions.of("W2"));
        assert_eq!(
            partitions.unit("W4"),
            "W3",
            "the moved phone joins W3 and W4"
        );
        assert_eq!(partitions.unit("W7"), "W7", "an unconfigured WABA is alone");
        assert_ne!(partitions.of("W1"), partitions.of("W3"));
        // The hash is fixed: these figures are what every release computes.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Partitions::new(&config, 0).count(), 1);
    }
}
