//! The project's long layout, written.

use super::*;

/// A card in the project's long layout, after the header lines that say
/// what it is: rows by market, category and `tier_from`, prices exactly as
/// read (the decimals keep their scale).
pub fn to_long_layout(card: &RateCard, book: &RateBook) -> Result<String, RatesError> {
    let keys: BTreeSet<(&str, Category, MarketId)> = card
        .rates
        .keys()
        .chain(card.tiers.keys())
        .map(|(m, c)| (book.market_name(*m), *c, *m))
        .collect();
    let write_error =
        |e: &dyn fmt::Display| file_error(&card.source, Problem::Write(e.to_string()));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["market", "category", "price", "tier_from", "tier_to"])
        .map_err(|e| write_error(&e))?;
    for (name, category, market) in keys {
        if let Some(rate) = card.rate(market, category) {
            w.write_record([name, category.as_str(), &rate.to_string(), "", ""])
                .map_err(|e| write_error(&e))?;
        }
        let mut bands: Vec<&Band> = card
            .tiers
            .get(&(market, category))
            .into_iter()
            .flatten()
            .collect();
        bands.sort_by_key(|b| b.from);
        for b in bands {
            let to = b.to.map(|t| t.to_string()).unwrap_or_default();
            w.write_record([
                name,
                category.as_str(),
                &b.price.to_string(),
                &b.from.to_string(),
                &to,
            ])
            .map_err(|e| write_error(&e))?;
        }
    }
    let body = w.into_inner().map_err(|e| write_error(&e))?;
    let body = String::from_utf8(body).map_err(|e| write_error(&e))?;
    Ok(format!(
        "# family: {}\n# currency: {}\n# effective_from: {}\n{body}",
        card.family.as_str(),
        card.currency,
        card.effective_from
    ))
}
