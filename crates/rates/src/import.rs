//! `wabill rates import`: a card checked against the book and timeline it
//! would join, and written back in the project's long layout.

use super::*;

/// Where a card's family, currency or date came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `--family`, `--currency`, `--effective-from`.
    Option,
    /// `# family: …` and the like.
    HeaderLine,
    /// `…<family>_<CUR>_<date>.csv`.
    FileName,
    /// Meta's `Currency` column.
    CurrencyColumn,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Option => "option",
            Origin::HeaderLine => "header line",
            Origin::FileName => "file name",
            Origin::CurrencyColumn => "Currency column",
        })
    }
}

/// What the command line says about a card; each wins over the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardFlags {
    pub family: Option<Family>,
    pub currency: Option<String>,
    pub effective_from: Option<Date>,
}

/// The configuration a card is checked against (besides the rate book).
#[derive(Copy, Clone, Debug)]
pub struct ImportContext<'a> {
    pub timeline: &'a Timeline,
    pub platform_currency: &'a str,
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

/// The first of `candidates` that says something, warning when an option
/// says otherwise than the file.
fn pick<T: Clone + PartialEq>(
    candidates: [(Option<T>, Origin); 3],
    flag: &'static str,
    show: fn(&T) -> String,
    warnings: &mut Vec<Warning>,
) -> Option<(T, Origin)> {
    let mut said = candidates
        .into_iter()
        .filter_map(|(value, origin)| value.map(|v| (v, origin)));
    let chosen = said.next()?;
    if chosen.1 == Origin::Option
        && let Some((found, said_by)) = said.find(|(v, _)| *v != chosen.0)
    {
        warnings.push(Warning::Overridden {
            flag,
            given: show(&chosen.0),
            found: show(&found),
            said_by,
        });
    }
    Some(chosen)
}

/// What a card says it is, each part with where it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub family: Option<(Family, Origin)>,
    pub currency: Option<(String, Origin)>,
    pub effective_from: Option<(Date, Origin)>,
}

/// A card's family, currency and date, by precedence: `given` (options, or
/// the configuration's keys), else the file's header lines, else its name
/// (`path`), else, for the currency, its `Currency` column. An option that
/// overrides what the file says is worth a warning.
pub fn identify(
    header: &CardHeader,
    path: &str,
    given: &CardFlags,
    currency_column: Option<&str>,
    warnings: &mut Vec<Warning>,
) -> Identity {
    let from_name = card_meta_from_name(path);
    let name = from_name.as_ref();
    let family = pick(
        [
            (given.family, Origin::Option),
            (header.family, Origin::HeaderLine),
            (name.map(|m| m.family), Origin::FileName),
        ],
        "family",
        |f| f.as_str().to_owned(),
        warnings,
    );
    let effective_from = pick(
        [
            (given.effective_from, Origin::Option),
            (header.effective_from, Origin::HeaderLine),
            (name.map(|m| m.effective_from), Origin::FileName),
        ],
        "effective-from",
        Date::to_string,
        warnings,
    );
    let currency = pick(
        [
            (given.currency.clone(), Origin::Option),
            (header.currency.clone(), Origin::HeaderLine),
            (name.map(|m| m.currency.clone()), Origin::FileName),
        ],
        "currency",
        String::clone,
        warnings,
    )
    .or_else(|| currency_column.map(|c| (c.to_owned(), Origin::CurrencyColumn)));
    Identity {
        family,
        currency,
        effective_from,
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
    let column = scan.currency.as_ref().map(|(code, _)| code.as_str());
    let Identity {
        family,
        currency,
        effective_from: date,
    } = identify(&header, source, flags, column, &mut warnings);
    match (&currency, &scan.currency) {
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
    if let Some((code, _)) = &currency
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
    if family.is_none() {
        problems.push(missing("family", "family", "family", ""));
    }
    if currency.is_none() {
        problems.push(missing(
            "currency",
            "currency",
            "currency",
            ", a Currency column",
        ));
    }
    if date.is_none() {
        problems.push(missing(
            "effective date",
            "effective-from",
            "effective_from",
            "",
        ));
    }
    problems.extend(scan.problems);
    let (Some((family, family_from)), Some((currency, currency_from)), Some((date, date_from))) =
        (family, currency, date)
    else {
        return Err(Invalid {
            source_name: source.to_owned(),
            problems,
            warnings,
        });
    };
    let mut card = scan.card;
    card.family = family;
    card.currency = currency.clone();
    card.effective_from = date;
    if family != Family::Pmp && !card.tiers.is_empty() {
        problems.push(file_error(source, Problem::TiersInConversationCard(family)));
    }

    // Every market of the map in force, and Other, priced for what the
    // family needs on this date.
    let other = book.other_market();
    let map = book.map_at(date);
    let mut map_markets: BTreeMap<&str, MarketId> = BTreeMap::new();
    map_markets.insert(book.market_name(other), other);
    if let Some(map) = map {
        let ids = map
            .regions
            .values()
            .chain(map.prefixes().iter().map(|p| &p.1));
        for id in ids {
            map_markets.insert(book.market_name(*id), *id);
        }
    } else {
        warnings.push(Warning::NoMarketMap(date));
    }
    let map_label = map.map_or_else(
        || "no market map in force; Other is always needed".to_owned(),
        |m| {
            m.effective_from.map_or_else(
                || "undated market map".to_owned(),
                |d| format!("market map of {d}"),
            )
        },
    );
    // The card applies until the next of its family and currency.
    let until = book.next_card(&card).map(|c| c.effective_from);
    let required = required_categories(family, date, until, context.timeline);
    let priced = |m: MarketId, c: Category| {
        card.rates.contains_key(&(m, c)) || card.tiers.contains_key(&(m, c))
    };
    // A file whose rows could not be read misses everything: its header
    // problem says it.
    for (market_name, id) in map_markets.iter().filter(|_| scan.rows_read) {
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
                    map: map_label.clone(),
                },
            ));
        }
    }
    let mut outside: Vec<(u64, MarketId)> = scan
        .market_lines
        .iter()
        .filter(|(id, _)| !map_markets.values().any(|m| m == *id))
        .map(|(id, line)| (*line, *id))
        .collect();
    outside.sort();
    for (line, id) in outside {
        let market = book.market_name(id);
        let wanted = normalize(market);
        let suggestion = map_markets
            .keys()
            .find(|m| normalize(m) == wanted)
            .map(|m| (*m).to_owned());
        warnings.push(Warning::MarketNotInMap {
            market: market.to_owned(),
            line,
            suggestion,
        });
    }
    let categories: Vec<Category> = card
        .rates
        .keys()
        .chain(card.tiers.keys())
        .map(|k| k.1)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for category in &categories {
        if !used_categories(family).contains(category) {
            warnings.push(Warning::UnusedCategory {
                category: *category,
                family,
            });
        }
    }
    let markets_priced = card
        .rates
        .keys()
        .chain(card.tiers.keys())
        .map(|k| k.0)
        .collect::<BTreeSet<_>>()
        .len();
    let era = context.timeline.era_on(date);
    if era.map(|e| e.rules().family()) != Some(family) {
        warnings.push(Warning::NoEraForFamily { family, date, era });
    }
    for (line, from, to) in &scan.row_dates {
        if from.is_some_and(|f| f > date) || to.is_some_and(|t| t < date) {
            warnings.push(Warning::RowDates { line: *line, date });
        }
    }
    if currency != context.platform_currency {
        warnings.push(Warning::OtherCurrency {
            card: currency.clone(),
            platform: context.platform_currency.to_owned(),
        });
    }
    let replaces = book
        .cards()
        .iter()
        .find(|c| c.family == family && c.currency == currency && c.effective_from == date)
        .map(|c| c.source.clone());
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
    let next = book.next_card(&card).map(|c| NextCard {
        effective_from: c.effective_from,
        source: c.source.clone(),
    });
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
    Ok(Imported {
        map: map.map(|m| MapUsed {
            effective_from: m.effective_from,
            sources: m.sources.clone(),
            markets: map_markets.len(),
        }),
        card,
        layout: scan.layout,
        family_from,
        currency_from,
        effective_from_from: date_from,
        markets_priced,
        categories,
        required,
        tiered,
        replaces,
        next,
        warnings,
    })
}

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
