//! `wabill rates import`: a card checked against the book and timeline it
//! would join, and written back in the project's long layout.

use super::*;

mod identity;
mod long_layout;
#[cfg(test)]
mod tests;

pub use identity::*;
pub use long_layout::*;

/// The configuration a card is checked against (besides the rate book).
#[derive(Copy, Clone, Debug)]
pub struct ImportContext<'a> {
    pub timeline: &'a Timeline,
    /// The currencies WABAs are billed in.
    pub currencies: &'a [String],
}

/// The market map a card was checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapUsed {
    pub effective_from: Option<Date>,
    pub sources: Vec<String>,
    /// Its markets, `Other` included.
    pub markets: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tiered {
    pub market: String,
    pub category: Category,
    /// Sorted by `from`.
    pub bands: Vec<Band>,
}

/// The card in force after the imported one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextCard {
    pub effective_from: Date,
    pub source: String,
}

/// A valid card and what `wabill rates import` reports about it.
#[derive(Clone, Debug)]
pub struct Imported {
    pub card: RateCard,
    pub layout: Layout,
    pub family_from: Origin,
    pub currency_from: Origin,
    pub effective_from_from: Origin,
    /// None when no map is in force on the card's date (only `Other` is checked).
    pub map: Option<MapUsed>,
    /// Markets with a rate or a band for some category.
    pub markets_priced: usize,
    /// Categories with a rate or a band for some market, in name order.
    pub categories: Vec<Category>,
    /// What the card's family needs on its date, for every market of the map.
    pub required: Vec<Category>,
    /// By market, then category.
    pub tiered: Vec<Tiered>,
    /// The card of the book it replaces (same family, currency and date).
    pub replaces: Option<String>,
    pub next: Option<NextCard>,
    pub warnings: Vec<Warning>,
}

/// A card that is not valid: every problem found, and the warnings.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{source_name} is not a valid rate card ({} problem{})",
    .problems.len(),
    if .problems.len() == 1 { "" } else { "s" }
)]
pub struct Invalid {
    pub source_name: String,
    pub problems: Vec<RatesError>,
    pub warnings: Vec<Warning>,
}

/// The categories a card of `family` must price for every market on `date`
/// (rules D2: a free category needs no rate).
pub fn required_categories(
    family: Family,
    date: Date,
    until: Option<Date>,
    timeline: &Timeline,
) -> Vec<Category> {
    use Category::*;
    match family {
        Family::Cbp2022 => vec![BusinessInitiated, UserInitiated],
        // B7/D2: from 2024-11-01 service is free by rule and needs no rate.
        Family::Cbp2023 if date >= wabill_engine::era::free_service_from() => {
            vec![Authentication, Marketing, Utility]
        }
        Family::Cbp2023 => vec![Authentication, Marketing, Service, Utility],
        Family::Pmp => {
            // `service` is free under pmp-2025 and priced under pmp-2026: it
            // is needed when pmp-2026 applies on any day the card does.
            let entries = timeline.entries();
            let service = entries
                .iter()
                .position(|e| e.1 == EraKind::Pmp2026)
                .is_some_and(|i| {
                    let starts_before_card_ends = until.is_none_or(|u| entries[i].0 < u);
                    let ends_after_card_starts = entries.get(i + 1).is_none_or(|e| e.0 > date);
                    starts_before_card_ends && ends_after_card_starts
                });
            let mut cats = vec![Authentication, Marketing];
            if service {
                cats.push(Service);
            }
            cats.push(Utility);
            cats
        }
    }
}

/// `category utility` or `categories authentication, marketing`.
pub(crate) fn categories_text(categories: &[Category]) -> String {
    let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
    match names.as_slice() {
        [one] => format!("category {one}"),
        _ => format!("categories {}", names.join(", ")),
    }
}

/// The categories some era prices with cards of `family`.
fn used_categories(family: Family) -> &'static [Category] {
    use Category::*;
    match family {
        Family::Cbp2022 => &[BusinessInitiated, UserInitiated],
        Family::Cbp2023 | Family::Pmp => &[
            Authentication,
            AuthenticationInternational,
            Marketing,
            Service,
            Utility,
        ],
    }
}

/// Reads and validates one card (`wabill rates import`): its family,
/// currency and date from `flags`, else the file's header lines, else its
/// name, else (the currency) its `Currency` column; its rates in any layout;
/// then that every market of the map in force on its date, and `Other`, has
/// a rate or bands for every category its family needs. `book` is the book
/// the card would join (only market names are added to it).
pub fn import_card(
    text: &str,
    source: &str,
    flags: &CardFlags,
    context: ImportContext<'_>,
    book: &mut RateBook,
) -> Result<Imported, Invalid> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let header = card_meta_from_header(text, source).unwrap_or_else(|e| {
        problems.push(e);
        CardHeader::default()
    });
    let scan = scan_card(text, source, book);
    let identity = identify_card(&header, source, flags, &scan, &mut problems, &mut warnings);
    problems.extend(scan.problems);
    let (Some((family, family_from)), Some((currency, currency_from)), Some((date, date_from))) =
        (identity.family, identity.currency, identity.effective_from)
    else {
        return Err(Invalid {
            source_name: source.to_owned(),
            problems,
            warnings,
        });
    };
    let mut card = scan.card;
    card.family = family;
    card.currency = currency;
    card.effective_from = date;
    if family != Family::Pmp && !card.tiers.is_empty() {
        problems.push(file_error(source, Problem::TiersInConversationCard(family)));
    }

    let book: &RateBook = book;
    let map = MapInForce::at(book, date, &mut warnings);
    // The card applies until the next of its family and currency.
    let until = book.next_card(&card).map(|c| c.effective_from);
    let required = required_categories(family, date, until, context.timeline);
    // A file whose rows could not be read misses everything: its header
    // problem says it.
    if scan.rows_read {
        problems.extend(missing_rates(source, &card, &map, &required));
    }
    warn_markets_outside_map(book, &scan.market_lines, &map, &mut warnings);
    let categories = categories_priced(&card);
    warn_unused_categories(&categories, family, &mut warnings);
    let markets_priced = markets_priced(&card);
    warn_where_it_applies(&card, context, &scan.row_dates, &mut warnings);
    let replaces = replaced_card(book, &card);
    if let Some(replaced) = &replaces {
        warnings.push(Warning::Replaces(replaced.clone()));
    }
    if !problems.is_empty() {
        return Err(Invalid {
            source_name: source.to_owned(),
            problems,
            warnings,
        });
    }
    Ok(Imported {
        map: map.used(),
        tiered: tiered(&card, book),
        next: book.next_card(&card).map(|c| NextCard {
            effective_from: c.effective_from,
            source: c.source.clone(),
        }),
        card,
        layout: scan.layout,
        family_from,
        currency_from,
        effective_from_from: date_from,
        markets_priced,
        categories,
        required,
        replaces,
        warnings,
    })
}

/// The card's identity (see [`identify`]), with a problem for each part that
/// is unknown or wrong, and for a `Currency` column that disagrees with it.
fn identify_card(
    header: &CardHeader,
    source: &str,
    flags: &CardFlags,
    scan: &Scan,
    problems: &mut Vec<RatesError>,
    warnings: &mut Vec<Warning>,
) -> Identity {
    let column = scan.currency.as_ref().map(|(code, _)| code.as_str());
    let identity = identify(header, source, flags, column, warnings);
    match (&identity.currency, &scan.currency) {
        (Some((chosen, origin)), Some((column, line)))
            if *origin != Origin::CurrencyColumn && chosen != column =>
        {
            problems.push(row_error(
                source,
                *line,
                Problem::CurrencyDisagrees {
                    found: column.clone(),
                    expected: chosen.clone(),
                    said_by: format!("from the {origin}"),
                },
            ));
        }
        _ => {}
    }
    if let Some((code, _)) = &identity.currency
        && !is_currency_code(code)
    {
        problems.push(file_error(source, Problem::BadCurrency(code.clone())));
    }
    let missing = |what, flag, key, more| {
        file_error(
            source,
            Problem::MissingIdentity {
                what,
                flag,
                key,
                more,
            },
        )
    };
    if identity.family.is_none() {
        problems.push(missing("family", "family", "family", ""));
    }
    if identity.currency.is_none() {
        problems.push(missing(
            "currency",
            "currency",
            "currency",
            ", a Currency column",
        ));
    }
    if identity.effective_from.is_none() {
        problems.push(missing(
            "effective date",
            "effective-from",
            "effective_from",
            "",
        ));
    }
    identity
}

/// The market map in force on a card's date, and the markets the card must
/// price: the map's, and `Other`.
struct MapInForce<'b> {
    map: Option<&'b MarketMap>,
    /// By name.
    markets: BTreeMap<&'b str, MarketId>,
    /// How problems name the map.
    label: String,
}

impl<'b> MapInForce<'b> {
    /// The map in force on `date`; a warning when there is none.
    fn at(book: &'b RateBook, date: Date, warnings: &mut Vec<Warning>) -> Self {
        let other = book.other_market();
        let map = book.map_at(date);
        let mut markets: BTreeMap<&str, MarketId> = BTreeMap::new();
        markets.insert(book.market_name(other), other);
        if let Some(map) = map {
            let ids = map
                .regions
                .values()
                .chain(map.prefixes().iter().map(|p| &p.1));
            for id in ids {
                markets.insert(book.market_name(*id), *id);
            }
        } else {
            warnings.push(Warning::NoMarketMap(date));
        }
        let label = map.map_or_else(
            || "no market map in force; Other is always needed".to_owned(),
            |m| {
                m.effective_from.map_or_else(
                    || "undated market map".to_owned(),
                    |d| format!("market map of {d}"),
                )
            },
        );
        MapInForce {
            map,
            markets,
            label,
        }
    }

    fn used(&self) -> Option<MapUsed> {
        self.map.map(|m| MapUsed {
            effective_from: m.effective_from,
            sources: m.sources.clone(),
            markets: self.markets.len(),
        })
    }
}

/// Rules D2: a problem for each market of the map that lacks a rate or
/// bands for some of the `required` categories.
fn missing_rates(
    source: &str,
    card: &RateCard,
    map: &MapInForce<'_>,
    required: &[Category],
) -> Vec<RatesError> {
    let priced = |m: MarketId, c: Category| {
        card.rates.contains_key(&(m, c)) || card.tiers.contains_key(&(m, c))
    };
    let mut problems = Vec::new();
    for (market_name, id) in &map.markets {
        let categories: Vec<Category> = required
            .iter()
            .copied()
            .filter(|c| !priced(*id, *c))
            .collect();
        if !categories.is_empty() {
            problems.push(file_error(
                source,
                Problem::MissingRate {
                    market: (*market_name).to_owned(),
                    categories,
                    map: map.label.clone(),
                },
            ));
        }
    }
    problems
}

/// A warning for each market of the card that the map does not have, in
/// file order, suggesting a map market spelt alike.
fn warn_markets_outside_map(
    book: &RateBook,
    market_lines: &BTreeMap<MarketId, u64>,
    map: &MapInForce<'_>,
    warnings: &mut Vec<Warning>,
) {
    let mut outside: Vec<(u64, MarketId)> = market_lines
        .iter()
        .filter(|(id, _)| !map.markets.values().any(|m| m == *id))
        .map(|(id, line)| (*line, *id))
        .collect();
    outside.sort();
    for (line, id) in outside {
        let market = book.market_name(id);
        let wanted = normalize(market);
        let suggestion = map
            .markets
            .keys()
            .find(|m| normalize(m) == wanted)
            .map(|m| (*m).to_owned());
        warnings.push(Warning::MarketNotInMap {
            market: market.to_owned(),
            line,
            suggestion,
        });
    }
}

/// Warnings about the card's date and currency: no era of the timeline
/// using its family then, rows whose own dates leave it out, a currency
/// other than the platform's.
fn warn_where_it_applies(
    card: &RateCard,
    context: ImportContext<'_>,
    row_dates: &[(u64, Option<Date>, Option<Date>)],
    warnings: &mut Vec<Warning>,
) {
    let (family, date) = (card.family, card.effective_from);
    let era = context.timeline.era_on(date);
    if era.map(|e| e.rules().family()) != Some(family) {
        warnings.push(Warning::NoEraForFamily { family, date, era });
    }
    for (line, from, to) in row_dates {
        if from.is_some_and(|f| f > date) || to.is_some_and(|t| t < date) {
            warnings.push(Warning::RowDates { line: *line, date });
        }
    }
    if !context.currencies.contains(&card.currency) {
        warnings.push(Warning::OtherCurrency {
            card: card.currency.clone(),
            billed: context.currencies.join(", "),
        });
    }
}

/// Categories with a rate or a band for some market, in name order.
fn categories_priced(card: &RateCard) -> Vec<Category> {
    card.rates
        .keys()
        .chain(card.tiers.keys())
        .map(|k| k.1)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn warn_unused_categories(categories: &[Category], family: Family, warnings: &mut Vec<Warning>) {
    for category in categories {
        if !used_categories(family).contains(category) {
            warnings.push(Warning::UnusedCategory {
                category: *category,
                family,
            });
        }
    }
}

/// Markets with a rate or a band for some category.
fn markets_priced(card: &RateCard) -> usize {
    card.rates
        .keys()
        .chain(card.tiers.keys())
        .map(|k| k.0)
        .collect::<BTreeSet<_>>()
        .len()
}

/// The card of the book with the same family, currency and date.
fn replaced_card(book: &RateBook, card: &RateCard) -> Option<String> {
    book.cards()
        .iter()
        .find(|c| {
            c.family == card.family
                && c.currency == card.currency
                && c.effective_from == card.effective_from
        })
        .map(|c| c.source.clone())
}

/// The card's volume-tier bands, by market name, then category.
fn tiered(card: &RateCard, book: &RateBook) -> Vec<Tiered> {
    let mut tiered: Vec<Tiered> = card
        .tiers
        .iter()
        .map(|((m, c), bands)| Tiered {
            market: book.market_name(*m).to_owned(),
            category: *c,
            bands: bands.clone(),
        })
        .collect();
    tiered.sort_by(|a, b| (&a.market, a.category).cmp(&(&b.market, b.category)));
    tiered
}
