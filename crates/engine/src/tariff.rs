//! Rules D2: the tariff as the engine holds it in memory: versioned rate
//! cards, their volume-tier bands and the market maps they use, in one
//! [`RateBook`]. Reading them from files is `wabill-rates`' work.

use jiff::civil::Date;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::market::{MarketId, MarketMap, Region};

/// A rate card family (rules D2). Each era names the family it prices with.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Cbp2022,
    Cbp2023,
    Pmp,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "cbp-2022" => Some(Family::Cbp2022),
            "cbp-2023" => Some(Family::Cbp2023),
            "pmp" => Some(Family::Pmp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Cbp2022 => "cbp-2022",
            Family::Cbp2023 => "cbp-2023",
            Family::Pmp => "pmp",
        }
    }
}

/// A billing category: of a conversation, of a priced message, or of a card
/// column. The order is the byte order of the names, which is the order of
/// invoice lines (cli.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Authentication,
    AuthenticationInternational,
    BusinessInitiated,
    FreeEntryPoint,
    Marketing,
    Service,
    UserInitiated,
    Utility,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Authentication,
        Category::AuthenticationInternational,
        Category::BusinessInitiated,
        Category::FreeEntryPoint,
        Category::Marketing,
        Category::Service,
        Category::UserInitiated,
        Category::Utility,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::AuthenticationInternational => "authentication_international",
            Category::BusinessInitiated => "business_initiated",
            Category::FreeEntryPoint => "free_entry_point",
            Category::Marketing => "marketing",
            Category::Service => "service",
            Category::UserInitiated => "user_initiated",
            Category::Utility => "utility",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl From<crate::event::TemplateCategory> for Category {
    fn from(t: crate::event::TemplateCategory) -> Category {
        match t {
            crate::event::TemplateCategory::Marketing => Category::Marketing,
            crate::event::TemplateCategory::Utility => Category::Utility,
            crate::event::TemplateCategory::Authentication => Category::Authentication,
        }
    }
}

/// A volume-tier band of a per-message card (rules C4): messages `from..=to`
/// of the month pay `price`; `to` None is the open band.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    pub from: u64,
    pub to: Option<u64>,
    pub price: Decimal,
}

/// One card: a rate per (market, category) in one currency, in force from a
/// local date until the next card of its family.
#[derive(Clone, Debug)]
pub struct RateCard {
    pub family: Family,
    pub currency: String,
    pub effective_from: Date,
    /// File the card came from (named in every error about it).
    pub source: String,
    pub rates: FxHashMap<(MarketId, Category), Decimal>,
    pub tiers: FxHashMap<(MarketId, Category), Vec<Band>>,
}

impl RateCard {
    pub fn new(family: Family, currency: String, effective_from: Date, source: String) -> RateCard {
        RateCard {
            family,
            currency,
            effective_from,
            source,
            rates: FxHashMap::default(),
            tiers: FxHashMap::default(),
        }
    }

    pub fn rate(&self, market: MarketId, category: Category) -> Option<Decimal> {
        self.rates.get(&(market, category)).copied()
    }

    /// Rules C4: the volume-tier bands of a market and category, if tiered.
    /// Whether the card prices authentication-international in `market`.
    pub fn has_international(&self, market: MarketId) -> bool {
        let intl = Category::AuthenticationInternational;
        self.rate(market, intl).is_some() || self.bands(market, intl).is_some()
    }

    pub fn bands(&self, market: MarketId, category: Category) -> Option<&[Band]> {
        self.tiers.get(&(market, category)).map(Vec::as_slice)
    }
}

/// Every card and market map a deployment prices with.
#[derive(Clone, Debug)]
pub struct RateBook {
    markets: Vec<String>,
    market_ids: FxHashMap<String, MarketId>,
    /// Dated maps, sorted by date; the undated overlay is already merged in.
    maps: Vec<MarketMap>,
    /// Sorted by (family, currency, effective_from).
    cards: Vec<RateCard>,
}

pub const OTHER_MARKET: &str = "Other";

/// A book names at most 65 536 markets (a [`MarketId`] is 16 bits; Meta
/// prices about 60).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("market {name:?} cannot be named: rate data may name at most 65536 markets")]
pub struct TooManyMarkets {
    pub name: String,
}

impl Default for RateBook {
    fn default() -> Self {
        RateBook::new()
    }
}

impl RateBook {
    pub fn new() -> RateBook {
        RateBook {
            markets: vec![OTHER_MARKET.to_owned()],
            market_ids: [(OTHER_MARKET.to_owned(), MarketId(0))]
                .into_iter()
                .collect(),
            maps: Vec::new(),
            cards: Vec::new(),
        }
    }

    /// The id of market `name`, named now if it is new.
    pub fn market(&mut self, name: &str) -> Result<MarketId, TooManyMarkets> {
        if let Some(id) = self.market_ids.get(name) {
            return Ok(*id);
        }
        let id = u16::try_from(self.markets.len()).map_err(|_| TooManyMarkets {
            name: name.to_owned(),
        })?;
        self.markets.push(name.to_owned());
        self.market_ids.insert(name.to_owned(), MarketId(id));
        Ok(MarketId(id))
    }

    pub fn market_id(&self, name: &str) -> Option<MarketId> {
        self.market_ids.get(name).copied()
    }

    pub fn other_market(&self) -> MarketId {
        self.market_id(OTHER_MARKET)
            .expect("RateBook::new names the Other market first")
    }

    pub fn market_name(&self, id: MarketId) -> &str {
        self.markets
            .get(usize::from(id.0))
            .expect("a MarketId comes from the book that named it")
    }

    /// Adds a dated map; one with the same date is merged into (entry by
    /// entry, the new one wins).
    pub fn add_map(&mut self, map: MarketMap) {
        match self
            .maps
            .iter_mut()
            .find(|m| m.effective_from == map.effective_from)
        {
            Some(existing) => existing.merge_from(&map),
            None => {
                self.maps.push(map);
                self.maps.sort_by_key(|m| m.effective_from);
            }
        }
    }

    /// Adds a map over an existing date, or for a new date over the map in
    /// force before it (so a dated extra map only changes what it lists).
    pub fn overlay_map(&mut self, map: MarketMap) {
        let Some(date) = map.effective_from else {
            for existing in &mut self.maps {
                existing.merge_from(&map);
            }
            return;
        };
        if self.maps.iter().any(|m| m.effective_from == Some(date)) {
            self.add_map(map);
            return;
        }
        let mut base = self
            .map_at(date)
            .cloned()
            .unwrap_or_else(|| MarketMap::new(Some(date), String::new()));
        base.effective_from = Some(date);
        base.sources.retain(|s| !s.is_empty());
        base.merge_from(&map);
        self.add_map(base);
    }

    /// Adds a card; one with the same family, currency and date replaces it.
    pub fn add_card(&mut self, card: RateCard) {
        self.cards.retain(|c| {
            !(c.family == card.family
                && c.currency == card.currency
                && c.effective_from == card.effective_from)
        });
        self.cards.push(card);
        self.cards.sort_by(|a, b| {
            (a.family, &a.currency, a.effective_from).cmp(&(
                b.family,
                &b.currency,
                b.effective_from,
            ))
        });
    }

    pub fn cards(&self) -> &[RateCard] {
        &self.cards
    }

    pub fn maps(&self) -> &[MarketMap] {
        &self.maps
    }

    /// The card of `family` in `currency` in force on local date `date`.
    pub fn card_at(&self, family: Family, currency: &str, date: Date) -> Option<&RateCard> {
        self.cards
            .iter()
            .rfind(|c| c.family == family && c.currency == currency && c.effective_from <= date)
    }

    /// The card in force after `card` in its family and currency, if any.
    pub fn next_card(&self, card: &RateCard) -> Option<&RateCard> {
        self.cards.iter().find(|c| {
            c.family == card.family
                && c.currency == card.currency
                && c.effective_from > card.effective_from
        })
    }

    /// The market map with the latest date on or before `date`.
    pub fn map_at(&self, date: Date) -> Option<&MarketMap> {
        self.maps
            .iter()
            .rfind(|m| m.effective_from.is_none_or(|d| d <= date))
    }

    /// Rules D1/D2: the user's market under `card`, by the market map in
    /// force on the card's date (a number prefix first, else the region);
    /// None when no map is in force. Billing and the quote both ask here.
    /// `user` (the user's digits) is called only for a map with prefixes.
    pub fn market_under<'u>(
        &self,
        card: &RateCard,
        user: impl FnOnce() -> &'u str,
        region: Region,
    ) -> Option<MarketId> {
        let map = self.map_at(card.effective_from)?;
        let user = if map.prefixes().is_empty() {
            ""
        } else {
            user()
        };
        Some(map.market_of(user, region, self.other_market()))
    }

    /// Rules D6: whether an authentication message to a user in `market`
    /// is priced as authentication-international under `card`: the card
    /// has that rate for the market and the business (its country) lies
    /// outside it.
    pub fn international(
        &self,
        card: &RateCard,
        market: MarketId,
        business: Option<Region>,
    ) -> bool {
        let Some(business) = business else {
            return false;
        };
        card.has_international(market) && self.market_under(card, || "", business) != Some(market)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_book_refuses_a_market_past_its_id_space_instead_of_reusing_an_id() {
        let mut book = RateBook::new();
        for n in 1..=u16::MAX {
            let id = book.market(&format!("m{n}")).unwrap();
            assert_eq!(id, MarketId(n));
        }
        assert_eq!(book.market("m1"), Ok(MarketId(1)));
        assert_eq!(
            book.market("one too many"),
            Err(TooManyMarkets {
                name: "one too many".to_owned()
            })
        );
        assert_eq!(book.market_name(MarketId(u16::MAX)), "m65535");
    }
}
