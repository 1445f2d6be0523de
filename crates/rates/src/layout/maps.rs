//! Market maps, and the companion file of `cbp-2023` cards'
//! authentication-international rates.

use super::*;

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
        .map_err(|e| file_error(source, Problem::Header(e.to_string())))?;
    if headers.get(0) != Some("region") || headers.get(1) != Some("market") {
        return Err(file_error(source, Problem::MapHeader));
    }
    let mut map = MarketMap::new(effective_from, source.to_owned());
    for record in rdr.records() {
        let record = record.map_err(|e| file_error(source, Problem::Csv(e.to_string())))?;
        let line = record.position().map_or(0, csv::Position::line);
        let key = record.get(0).unwrap_or_default();
        let market_name = record.get(1).unwrap_or_default();
        if market_name.is_empty() {
            return Err(row_error(source, line, Problem::EmptyMarket));
        }
        let market = book
            .market(market_name)
            .map_err(|e| row_error(source, line, e.into()))?;
        let digits = key.strip_prefix('+').unwrap_or(key);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            map.set_prefix(digits, market);
        } else if let Some(region) = Region::parse(key) {
            map.set_region(region, market);
        } else {
            return Err(row_error(source, line, Problem::BadMapKey(key.to_owned())));
        }
    }
    Ok(map)
}

/// Authentication-international rates of `cbp-2023` cards, kept in a
/// companion file because the wide layout has no such column: each row
/// applies to the cards whose date lies in its `[effective_from, effective_to]`.
pub(crate) fn apply_auth_international(
    text: &str,
    source: &str,
    book: &mut RateBook,
    cards: &mut [RateCard],
) -> Result<(), RatesError> {
    let mut rdr = reader(text);
    for record in rdr.records() {
        let record = record.map_err(|e| file_error(source, Problem::Csv(e.to_string())))?;
        let line = record.position().map_or(0, csv::Position::line);
        let market = book
            .market(record.get(0).unwrap_or_default())
            .map_err(|e| row_error(source, line, e.into()))?;
        let price = parse_rate(source, line, record.get(1).unwrap_or_default())?;
        let date = |i: usize, column: &'static str| -> Result<Option<Date>, RatesError> {
            let text = record.get(i).unwrap_or_default();
            if text.is_empty() {
                return Ok(None);
            }
            Date::from_str(text).map(Some).map_err(|_| {
                row_error(
                    source,
                    line,
                    Problem::BadDate {
                        column,
                        text: text.to_owned(),
                    },
                )
            })
        };
        let (from, to) = (date(2, "effective_from")?, date(3, "effective_to")?);
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
