//! Rate cards and market maps (rules D1, D2): the CSV layouts, and Meta's
//! published cards and maps, embedded in the binary (see `data/README.md`).
//!
//! Pure: everything here reads text handed to it.

use std::str::FromStr;

use jiff::civil::Date;
use rust_decimal::Decimal;
use wabill_engine::market::{MarketMap, Region};
use wabill_engine::rates::{Band, Category, Family, RateBook, RateCard};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RatesError {
    #[error("{source_name}: {reason}")]
    File { source_name: String, reason: String },
    #[error("{source_name}, line {line}: {reason}")]
    Row {
        source_name: String,
        line: u64,
        reason: String,
    },
}

fn file_error(source: &str, reason: impl Into<String>) -> RatesError {
    RatesError::File {
        source_name: source.to_owned(),
        reason: reason.into(),
    }
}

fn row_error(source: &str, line: u64, reason: impl Into<String>) -> RatesError {
    RatesError::Row {
        source_name: source.to_owned(),
        line,
        reason: reason.into(),
    }
}

/// What a card file's name says about it: `<anything><family>_<CUR>_<YYYY-MM-DD>.csv`,
/// as in `meta-cbp-2022_USD_2022-02-01.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardMeta {
    pub family: Family,
    pub currency: String,
    pub effective_from: Date,
}

pub fn card_meta_from_name(file_name: &str) -> Option<CardMeta> {
    let stem = file_name.rsplit('/').next()?.strip_suffix(".csv")?;
    let mut parts = stem.rsplitn(3, '_');
    let date = Date::from_str(parts.next()?).ok()?;
    let currency = parts.next()?;
    let head = parts.next()?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let family = ["cbp-2022", "cbp-2023", "pmp"]
        .into_iter()
        .find(|f| head.ends_with(f))
        .and_then(Family::parse)?;
    Some(CardMeta {
        family,
        currency: currency.to_owned(),
        effective_from: date,
    })
}

/// What a card file's leading comment lines say about it:
/// `# family: cbp-2022`, `# currency: USD`, `# effective_from: 2022-02-01`.
/// Each is None where the file does not say it; a line that names one of
/// these keys with a bad value is an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardHeader {
    pub family: Option<Family>,
    pub currency: Option<String>,
    pub effective_from: Option<Date>,
}

pub fn card_meta_from_header(text: &str, source: &str) -> Result<CardHeader, RatesError> {
    let (mut family, mut currency, mut date) = (None, None, None);
    for line in text.lines().take_while(|l| l.trim_start().starts_with('#')) {
        let Some((key, value)) = line.trim_start_matches('#').split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "family" => {
                family = Some(Family::parse(value).ok_or_else(|| {
                    file_error(
                        source,
                        format!("family {value:?} is not cbp-2022, cbp-2023 or pmp"),
                    )
                })?);
            }
            "currency" => currency = Some(value.to_owned()),
            "effective_from" => {
                date = Some(Date::from_str(value).map_err(|_| {
                    file_error(
                        source,
                        format!("effective_from {value:?} is not a date (YYYY-MM-DD)"),
                    )
                })?);
            }
            _ => {}
        }
    }
    Ok(CardHeader {
        family,
        currency,
        effective_from: date,
    })
}

/// The date a market map file's name ends with (`…-2025-10-01.csv`), if any.
pub fn map_date_from_name(file_name: &str) -> Option<Date> {
    let stem = file_name.rsplit('/').next()?.strip_suffix(".csv")?;
    let tail = stem.get(stem.len().checked_sub(10)?..)?;
    Date::from_str(tail).ok()
}

fn parse_rate(source: &str, line: u64, text: &str) -> Result<Decimal, RatesError> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('-')
        && Decimal::from_str(rest).is_ok()
    {
        return Err(row_error(source, line, format!("rate {text} is negative")));
    }
    // Plain decimal notation only: digits with an optional fraction.
    let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !plain(int) || !plain(frac) {
        return Err(row_error(
            source,
            line,
            format!("rate {text:?} is not a decimal number"),
        ));
    }
    Decimal::from_str(text)
        .map_err(|_| row_error(source, line, format!("rate {text:?} is out of range")))
}

fn parse_count(source: &str, line: u64, text: &str) -> Result<Option<u64>, RatesError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        row_error(
            source,
            line,
            format!("tier bound {text:?} is not a whole number"),
        )
    })
}

fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes())
}

/// Parses a card in either layout: wide (`market,<category>,…`, one column
/// per category) or long (`market,category,price,tier_from,tier_to`, rows
/// with tier bounds being volume-tier bands).
pub fn parse_card(
    text: &str,
    meta: &CardMeta,
    source: &str,
    book: &mut RateBook,
) -> Result<RateCard, RatesError> {
    let mut rdr = reader(text);
    let headers = rdr
        .headers()
        .map_err(|e| file_error(source, format!("cannot read the header: {e}")))?
        .clone();
    let cols: Vec<&str> = headers.iter().collect();
    let mut card = RateCard::new(
        meta.family,
        meta.currency.clone(),
        meta.effective_from,
        source.to_owned(),
    );
    if cols.first() != Some(&"market") {
        return Err(file_error(source, "the first column must be `market`"));
    }
    let long = cols.get(1) == Some(&"category") && cols.get(2) == Some(&"price");
    let categories: Vec<Category> = if long {
        Vec::new()
    } else {
        cols[1..]
            .iter()
            .map(|c| {
                Category::parse(c)
                    .ok_or_else(|| file_error(source, format!("unknown category column {c:?}")))
            })
            .collect::<Result<_, _>>()?
    };
    if !long && categories.is_empty() {
        return Err(file_error(source, "no category columns"));
    }
    for record in rdr.records() {
        let record = record.map_err(|e| file_error(source, e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let market_name = record.get(0).unwrap_or_default();
        if market_name.is_empty() {
            return Err(row_error(source, line, "empty market"));
        }
        let market = book.market(market_name);
        if long {
            let category_text = record.get(1).unwrap_or_default();
            let category = Category::parse(category_text).ok_or_else(|| {
                row_error(source, line, format!("unknown category {category_text:?}"))
            })?;
            let price = parse_rate(source, line, record.get(2).unwrap_or_default())?;
            let from = parse_count(source, line, record.get(3).unwrap_or_default())?;
            let to = parse_count(source, line, record.get(4).unwrap_or_default())?;
            match from {
                None if to.is_none() => {
                    if card.rates.insert((market, category), price).is_some() {
                        return Err(row_error(
                            source,
                            line,
                            format!("second list rate for {market_name}, {category_text}"),
                        ));
                    }
                }
                None => return Err(row_error(source, line, "tier_to without tier_from")),
                Some(from) => {
                    if to.is_some_and(|to| to < from) {
                        return Err(row_error(source, line, "tier_to is below tier_from"));
                    }
                    card.tiers
                        .entry((market, category))
                        .or_default()
                        .push(Band { from, to, price });
                }
            }
        } else {
            if record.len() != cols.len() {
                return Err(row_error(source, line, "wrong number of columns"));
            }
            for (i, category) in categories.iter().enumerate() {
                let text = record.get(i + 1).unwrap_or_default();
                if text.is_empty() {
                    continue;
                }
                let price = parse_rate(source, line, text)?;
                if card.rates.insert((market, *category), price).is_some() {
                    return Err(row_error(
                        source,
                        line,
                        format!("market {market_name} twice"),
                    ));
                }
            }
        }
    }
    for bands in card.tiers.values_mut() {
        bands.sort_by_key(|b| b.from);
    }
    Ok(card)
}

/// Parses a market map (`region,market`; a first column of digits, with an
/// optional `+`, is a number prefix instead of a region).
pub fn parse_map(
    text: &str,
    effective_from: Option<Date>,
    source: &str,
    book: &mut RateBook,
) -> Result<MarketMap, RatesError> {
    let mut rdr = reader(text);
    let headers = rdr
        .headers()
        .map_err(|e| file_error(source, format!("cannot read the header: {e}")))?;
    if headers.get(0) != Some("region") || headers.get(1) != Some("market") {
        return Err(file_error(source, "the header must be `region,market`"));
    }
    let mut map = MarketMap::new(effective_from, source.to_owned());
    for record in rdr.records() {
        let record = record.map_err(|e| file_error(source, e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let key = record.get(0).unwrap_or_default();
        let market_name = record.get(1).unwrap_or_default();
        if market_name.is_empty() {
            return Err(row_error(source, line, "empty market"));
        }
        let market = book.market(market_name);
        let digits = key.strip_prefix('+').unwrap_or(key);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            map.set_prefix(digits, market);
        } else if let Some(region) = Region::parse(key) {
            map.set_region(region, market);
        } else {
            return Err(row_error(
                source,
                line,
                format!("{key:?} is neither an ISO region nor a number prefix"),
            ));
        }
    }
    Ok(map)
}

/// Authentication-international rates of `cbp-2023` cards, kept in a
/// companion file because the wide layout has no such column: each row
/// applies to the cards whose date lies in its `[effective_from, effective_to]`.
fn apply_auth_international(
    text: &str,
    source: &str,
    book: &mut RateBook,
    cards: &mut [RateCard],
) -> Result<(), RatesError> {
    let mut rdr = reader(text);
    for record in rdr.records() {
        let record = record.map_err(|e| file_error(source, e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let market = book.market(record.get(0).unwrap_or_default());
        let price = parse_rate(source, line, record.get(1).unwrap_or_default())?;
        let date = |i: usize| -> Result<Option<Date>, RatesError> {
            let text = record.get(i).unwrap_or_default();
            if text.is_empty() {
                return Ok(None);
            }
            Date::from_str(text)
                .map(Some)
                .map_err(|_| row_error(source, line, format!("bad date {text:?}")))
        };
        let (from, to) = (date(2)?, date(3)?);
        for card in cards.iter_mut().filter(|c| c.family == Family::Cbp2023) {
            let d = card.effective_from;
            if from.is_some_and(|f| f <= d) && to.is_none_or(|t| d <= t) {
                card.rates
                    .insert((market, Category::AuthenticationInternational), price);
            }
        }
    }
    Ok(())
}

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
        let meta = card_meta_from_name(name).ok_or_else(|| {
            file_error(name, "the file name does not say family, currency and date")
        })?;
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
    fn card_file_names_carry_family_currency_and_date() {
        assert_eq!(
            card_meta_from_name("data/meta-cbp-2022_USD_2022-02-01.csv"),
            Some(CardMeta {
                family: Family::Cbp2022,
                currency: "USD".into(),
                effective_from: Date::constant(2022, 2, 1),
            })
        );
        assert_eq!(
            card_meta_from_name("my-pmp_EUR_2026-10-01.csv").map(|m| m.family),
            Some(Family::Pmp)
        );
        assert_eq!(card_meta_from_name("my-card.csv"), None);
        assert_eq!(
            map_date_from_name("meta-markets-2025-10-01.csv"),
            Some(Date::constant(2025, 10, 1))
        );
        assert_eq!(map_date_from_name("my-map.csv"), None);
    }

    #[test]
    fn card_files_may_say_what_they_are_in_comment_lines() {
        let text = "# family: cbp-2022\n# currency: EUR\n# effective_from: 2023-01-01\nmarket,business_initiated\n";
        assert_eq!(
            card_meta_from_header(text, "x.csv"),
            Ok(CardHeader {
                family: Some(Family::Cbp2022),
                currency: Some("EUR".to_owned()),
                effective_from: Some(Date::constant(2023, 1, 1)),
            })
        );
        assert!(card_meta_from_header("# family: nbp\n", "x.csv").is_err());
        assert_eq!(
            card_meta_from_header("market,x\n", "x.csv"),
            Ok(CardHeader::default())
        );
    }

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

    #[test]
    fn bad_rates_are_rejected_with_file_and_line() {
        let mut book = RateBook::new();
        let meta = CardMeta {
            family: Family::Cbp2022,
            currency: "USD".into(),
            effective_from: Date::constant(2022, 2, 1),
        };
        let err = parse_card(
            "market,business_initiated,user_initiated\nBrazil,0.05,-0.01\n",
            &meta,
            "x.csv",
            &mut book,
        );
        assert_eq!(
            err.map(|_| ()).map_err(|e| e.to_string()),
            Err("x.csv, line 2: rate -0.01 is negative".to_owned())
        );
        let err = parse_card(
            "market,business_initiated\nBrazil,1e-2\n",
            &meta,
            "x.csv",
            &mut book,
        );
        assert!(err.is_err());
    }
}
