//! Meta's published cards and maps, embedded in the binary.

use super::*;

macro_rules! shipped_files {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../data/", $dir, "/", $name)))),*]
    };
}

/// Meta's market maps as shipped (`data/markets`).
pub const SHIPPED_MAPS: &[(&str, &str)] = shipped_files!("markets":
    "meta-markets-2022-02-01.csv",
    "meta-markets-2025-10-01.csv",
    "meta-markets-2026-07-01.csv",
    "meta-markets-2026-10-01.csv",
);

/// Meta's rate cards as shipped (`data/rates`).
pub const SHIPPED_CARDS: &[(&str, &str)] = shipped_files!("rates":
    "meta-cbp-2022_USD_2022-02-01.csv",
    "meta-cbp-2023_USD_2023-06-01.csv",
    "meta-cbp-2023_USD_2024-07-01.csv",
    "meta-cbp-2023_USD_2024-08-01.csv",
    "meta-cbp-2023_USD_2024-10-01.csv",
    "meta-cbp-2023_USD_2024-11-01.csv",
    "meta-cbp-2023_USD_2025-02-01.csv",
    "meta-cbp-2023_USD_2025-04-01.csv",
    "meta-pmp_USD_2025-07-01.csv",
    "meta-pmp_USD_2025-10-01.csv",
    "meta-pmp_USD_2026-01-01.csv",
    "meta-pmp_USD_2026-04-01.csv",
    "meta-pmp_USD_2026-07-01.csv",
    "meta-pmp_USD_2026-10-01.csv",
);

const SHIPPED_AUTH_INTERNATIONAL: (&str, &str) = (
    "meta-cbp-2023_USD_authentication-international.csv",
    include_str!("../../../data/rates/meta-cbp-2023_USD_authentication-international.csv"),
);

/// The rate book built from the shipped maps and cards.
pub fn shipped() -> Result<RateBook, RatesError> {
    let mut book = RateBook::new();
    for (name, text) in SHIPPED_MAPS {
        let date = map_date_from_name(name);
        let map = parse_map(text, date, name, &mut book)?;
        book.add_map(map);
    }
    let mut cards = Vec::new();
    for (name, text) in SHIPPED_CARDS {
        let meta =
            card_meta_from_name(name).ok_or_else(|| file_error(name, Problem::NoCardMeta))?;
        cards.push(parse_card(text, &meta, name, &mut book)?);
    }
    let (name, text) = SHIPPED_AUTH_INTERNATIONAL;
    apply_auth_international(text, name, &mut book, &mut cards)?;
    for card in cards {
        book.add_card(card);
    }
    Ok(book)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_card_and_map_parses() {
        let book = shipped().map_err(|e| e.to_string());
        let book = match book {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(book.cards().len(), SHIPPED_CARDS.len());
        assert_eq!(book.maps().len(), SHIPPED_MAPS.len());
        let brazil = book.market_id("Brazil");
        let card = book.card_at(Family::Cbp2022, "USD", Date::constant(2022, 3, 7));
        let rate = card
            .zip(brazil)
            .and_then(|(c, m)| c.rate(m, Category::BusinessInitiated));
        assert_eq!(rate.map(|r| r.to_string()), Some("0.0500".to_owned()));
    }

    #[test]
    fn d2_every_market_of_the_2022_map_is_priced_by_the_2022_card() {
        let Ok(book) = shipped() else {
            panic!("shipped data")
        };
        let map = book.map_at(Date::constant(2022, 2, 1));
        let card = book.card_at(Family::Cbp2022, "USD", Date::constant(2022, 2, 1));
        let (Some(map), Some(card)) = (map, card) else {
            panic!("2022 map and card")
        };
        for market in map.regions.values().chain([&book.other_market()]) {
            for category in [Category::BusinessInitiated, Category::UserInitiated] {
                assert!(
                    card.rate(*market, category).is_some(),
                    "{} {}",
                    book.market_name(*market),
                    category.as_str()
                );
            }
        }
    }
}
