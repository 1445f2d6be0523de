//! Reading cards and maps: file names and header lines, the three card
//! layouts, tier ladders, market maps.

use super::*;

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
    if !is_currency_code(currency) {
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

pub(crate) fn is_currency_code(text: &str) -> bool {
    text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase())
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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (mut family, mut currency, mut date) = (None, None, None);
    for (i, line) in text
        .lines()
        .enumerate()
        .take_while(|(_, l)| l.trim_start().starts_with('#'))
    {
        let Some((key, value)) = line.trim_start().trim_start_matches('#').split_once(':') else {
            continue;
        };
        let value = value.trim();
        let line_no = u64::try_from(i + 1).unwrap_or(u64::MAX);
        match key.trim() {
            "family" => {
                family = Some(Family::parse(value).ok_or_else(|| {
                    row_error(source, line_no, Problem::BadFamily(value.to_owned()))
                })?);
            }
            "currency" => currency = Some(value.to_owned()),
            "effective_from" => {
                date = Some(Date::from_str(value).map_err(|_| {
                    row_error(
                        source,
                        line_no,
                        Problem::BadDate {
                            column: "effective_from",
                            text: value.to_owned(),
                        },
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

/// A rate: plain decimal notation (digits, optional fraction), optionally
/// after a `$`; never negative, never in exponent notation.
fn parse_rate(source: &str, line: u64, text: &str) -> Result<Decimal, RatesError> {
    let text = text.trim();
    let unsigned = text.strip_prefix('-');
    let body = unsigned.unwrap_or(text);
    let body = body.strip_prefix('$').unwrap_or(body);
    let (body, negative) = match body.strip_prefix('-') {
        Some(rest) if unsigned.is_none() => (rest, true),
        _ => (body, unsigned.is_some()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !plain(int) || !plain(frac) {
        return Err(row_error(
            source,
            line,
            Problem::MalformedRate(text.to_owned()),
        ));
    }
    if negative {
        return Err(row_error(
            source,
            line,
            Problem::NegativeRate(text.to_owned()),
        ));
    }
    let rate = Decimal::from_str(body)
        .map_err(|_| row_error(source, line, Problem::RateOutOfRange(text.to_owned())))?;
    // rust_decimal rounds what it cannot hold; a price must be exact (D3).
    let digits = body.split_once('.').map_or(0, |(_, f)| f.len());
    if usize::try_from(rate.scale()).unwrap_or(0) != digits {
        return Err(row_error(
            source,
            line,
            Problem::RateTooPrecise(text.to_owned()),
        ));
    }
    Ok(rate)
}

fn parse_count(source: &str, line: u64, text: &str) -> Result<Option<u64>, RatesError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| row_error(source, line, Problem::TierBound(text.to_owned())))
}

fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes())
}

/// How a card file lays out its rates.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `market,category,price,tier_from,tier_to`: a row per market and
    /// category; rows with tier bounds are volume-tier bands.
    Long,
    /// `market,<category>,…`: a row per market, a column per category.
    Wide,
    /// Meta's published layout: a row per market, a column per category,
    /// human-written names, optional `Currency` and tier columns.
    Meta,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Long => "long",
            Layout::Wide => "wide",
            Layout::Meta => "meta",
        }
    }
}

/// What a header cell names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Column {
    Market,
    Currency,
    EffectiveFrom,
    EffectiveTo,
    /// Long layout.
    Category,
    Price,
    TierFrom,
    TierTo,
    /// Wide and Meta layouts: the list rate of a category.
    Rate(Category),
    /// Meta layout: one volume-tier band of a category.
    Tier {
        category: Category,
        from: u64,
        to: Option<u64>,
    },
    /// Already reported as a problem.
    Ignored,
}

/// Header names as people write them: `Authentication-International`,
/// `business initiated` and `authentication_international` are alike.
pub(crate) fn normalize(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .split(|c: char| c == '-' || c == '_' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A whole number, with optional thousands separators (`1,000,000`).
fn grouped_number(text: &str) -> Option<u64> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut groups = text.split(',');
    let first = groups.next()?;
    if !digits(first) || (text.contains(',') && first.len() > 3) {
        return None;
    }
    let mut all = first.to_owned();
    for group in groups {
        if group.len() != 3 || !digits(group) {
            return None;
        }
        all.push_str(group);
    }
    all.parse().ok()
}

/// The bounds of a tier column after `tier`, normalized: `1_1000` (from
/// `1-1000`), `1:1000`, `1:max`, `100,001+`.
pub(crate) fn tier_bounds(text: &str) -> Option<(u64, Option<u64>)> {
    if let Some(from) = text.strip_suffix('+') {
        return Some((grouped_number(from.trim_end_matches('_'))?, None));
    }
    let (from, to) = text.split_once(['_', ':'])?;
    let to = match to {
        "max" => None,
        to => Some(grouped_number(to)?),
    };
    Some((grouped_number(from)?, to))
}

fn tierable(category: Category) -> bool {
    matches!(category, Category::Utility | Category::Authentication)
}

pub(crate) fn column(raw: &str, long: bool) -> Result<Column, Problem> {
    let name = normalize(raw);
    match name.as_str() {
        "market" => return Ok(Column::Market),
        "currency" => return Ok(Column::Currency),
        "effective_from" => return Ok(Column::EffectiveFrom),
        "effective_to" => return Ok(Column::EffectiveTo),
        "category" if long => return Ok(Column::Category),
        "price" if long => return Ok(Column::Price),
        "tier_from" if long => return Ok(Column::TierFrom),
        "tier_to" if long => return Ok(Column::TierTo),
        _ => {}
    }
    let raw = raw.trim().to_owned();
    if !long {
        if let Some(category) = Category::parse(&name) {
            return Ok(Column::Rate(category));
        }
        if let Some((category, bounds)) = name.split_once("_tier_")
            && let Some(category) = Category::parse(category)
        {
            let Some((from, to)) = tier_bounds(bounds) else {
                return Err(Problem::TierColumnBounds(raw));
            };
            if to.is_some_and(|to| to < from) {
                return Err(Problem::TierColumnReversed(raw));
            }
            if !tierable(category) {
                return Err(Problem::TierColumnCategory {
                    column: raw,
                    category,
                });
            }
            return Ok(Column::Tier { category, from, to });
        }
    }
    Err(Problem::UnknownColumn(raw))
}

/// Everything read from a card's text, problems included.
pub(crate) struct Scan {
    /// Its rates and bands; family, currency and date are placeholders.
    pub(crate) card: RateCard,
    pub(crate) layout: Layout,
    /// The `Currency` column's currency and the line it first appears on.
    pub(crate) currency: Option<(String, u64)>,
    /// The line each market first appears on.
    pub(crate) market_lines: BTreeMap<MarketId, u64>,
    /// `effective_from`/`effective_to` of the rows that give them.
    pub(crate) row_dates: Vec<(u64, Option<Date>, Option<Date>)>,
    pub(crate) problems: Vec<RatesError>,
    /// Whether the rows could be read at all (the header makes sense).
    pub(crate) rows_read: bool,
}

/// Volume-tier bands as read, each with its line.
type BandsRead = BTreeMap<(MarketId, Category), Vec<(Band, u64)>>;

/// Reads a card in any layout, going on past problems to find them all.
pub(crate) fn scan_card(text: &str, source: &str, book: &mut RateBook) -> Scan {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut scan = Scan {
        card: RateCard::new(Family::Pmp, String::new(), Date::MIN, source.to_owned()),
        layout: Layout::Long,
        currency: None,
        market_lines: BTreeMap::new(),
        row_dates: Vec::new(),
        problems: Vec::new(),
        rows_read: false,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            scan.problems
                .push(file_error(source, Problem::Header(e.to_string())));
            return scan;
        }
    };
    let header_line = headers.position().map_or(1, csv::Position::line);
    let names: Vec<String> = headers.iter().map(normalize).collect();
    let long = names.iter().any(|n| n == "category") && names.iter().any(|n| n == "price");
    let mut columns: Vec<Column> = Vec::new();
    for (i, raw) in headers.iter().enumerate() {
        let found = if names.get(i).is_none_or(String::is_empty) {
            Err(Problem::UnnamedColumn(i + 1))
        } else {
            column(raw, long)
        };
        let col = match found {
            Ok(c) => match columns.iter().position(|seen| *seen == c) {
                Some(j) => {
                    scan.problems.push(row_error(
                        source,
                        header_line,
                        Problem::RepeatedColumn {
                            column: raw.to_owned(),
                            first: headers.get(j).unwrap_or_default().to_owned(),
                        },
                    ));
                    Column::Ignored
                }
                None => c,
            },
            Err(problem) => {
                scan.problems.push(row_error(source, header_line, problem));
                Column::Ignored
            }
        };
        columns.push(col);
    }
    let find = |wanted: &Column| columns.iter().position(|c| c == wanted);
    let Some(market_col) = find(&Column::Market) else {
        scan.problems
            .push(row_error(source, header_line, Problem::NoMarketColumn));
        return scan;
    };
    scan.layout = if long {
        Layout::Long
    } else if market_col == 0
        && headers.iter().zip(&names).all(|(raw, name)| raw == name)
        && columns.iter().skip(1).all(|c| matches!(c, Column::Rate(_)))
    {
        Layout::Wide
    } else {
        Layout::Meta
    };
    if !long
        && !columns
            .iter()
            .any(|c| matches!(c, Column::Rate(_) | Column::Tier { .. }))
    {
        if scan.problems.is_empty() {
            scan.problems
                .push(row_error(source, header_line, Problem::NoCategoryColumns));
        }
        return scan;
    }
    let long_cols = (
        find(&Column::Category),
        find(&Column::Price),
        find(&Column::TierFrom),
        find(&Column::TierTo),
    );
    scan.rows_read = true;
    let mut rate_lines: BTreeMap<(MarketId, Category), u64> = BTreeMap::new();
    let mut bands = BandsRead::new();
    for record in rdr.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let problem = Problem::Csv(e.to_string());
                scan.problems.push(match e.position() {
                    Some(p) => row_error(source, p.line(), problem),
                    None => file_error(source, problem),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let problems = &mut scan.problems;
        if record.len() != headers.len() {
            problems.push(row_error(
                source,
                line,
                Problem::FieldCount {
                    found: record.len(),
                    expected: headers.len(),
                },
            ));
            continue;
        }
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let market_name = cell(market_col);
        if market_name.is_empty() {
            problems.push(row_error(source, line, Problem::EmptyMarket));
            continue;
        }
        let market = book.market(market_name);
        scan.market_lines.entry(market).or_insert(line);
        let mut list_rate =
            |category: Category, price: Decimal, problems: &mut Vec<RatesError>| match rate_lines
                .get(&(market, category))
            {
                Some(first_line) => problems.push(row_error(
                    source,
                    line,
                    Problem::PricedTwice {
                        market: market_name.to_owned(),
                        category,
                        first_line: *first_line,
                    },
                )),
                None => {
                    rate_lines.insert((market, category), line);
                    scan.card.rates.insert((market, category), price);
                }
            };
        let (mut from_date, mut to_date) = (None, None);
        for (i, col) in columns.iter().enumerate() {
            let text = cell(i);
            if text.is_empty() {
                continue;
            }
            match col {
                Column::Currency => {
                    let found = text.to_uppercase();
                    match &scan.currency {
                        None => scan.currency = Some((found, line)),
                        Some((first, first_line)) if *first != found => {
                            problems.push(row_error(
                                source,
                                line,
                                Problem::CurrencyDisagrees {
                                    found,
                                    expected: first.clone(),
                                    said_by: format!("the Currency column on line {first_line}"),
                                },
                            ));
                        }
                        Some(_) => {}
                    }
                }
                Column::EffectiveFrom | Column::EffectiveTo => {
                    let (name, slot) = if *col == Column::EffectiveFrom {
                        ("effective_from", &mut from_date)
                    } else {
                        ("effective_to", &mut to_date)
                    };
                    match Date::from_str(text) {
                        Ok(d) => *slot = Some(d),
                        Err(_) => problems.push(row_error(
                            source,
                            line,
                            Problem::BadDate {
                                column: name,
                                text: text.to_owned(),
                            },
                        )),
                    }
                }
                Column::Rate(category) => match parse_rate(source, line, text) {
                    Ok(price) => list_rate(*category, price, problems),
                    Err(e) => problems.push(e),
                },
                Column::Tier { category, from, to } => match parse_rate(source, line, text) {
                    Ok(price) => bands.entry((market, *category)).or_default().push((
                        Band {
                            from: *from,
                            to: *to,
                            price,
                        },
                        line,
                    )),
                    Err(e) => problems.push(e),
                },
                _ => {}
            }
        }
        if from_date.is_some() || to_date.is_some() {
            if let (Some(from), Some(to)) = (from_date, to_date)
                && to < from
            {
                problems.push(row_error(
                    source,
                    line,
                    Problem::EffectiveToBeforeFrom { from, to },
                ));
            }
            scan.row_dates.push((line, from_date, to_date));
        }
        if let (Some(category_col), Some(price_col), from_col, to_col) = long_cols {
            let category_text = cell(category_col);
            let Some(category) = Category::parse(&normalize(category_text)) else {
                problems.push(row_error(
                    source,
                    line,
                    Problem::UnknownCategory(category_text.to_owned()),
                ));
                continue;
            };
            let count = |col: Option<usize>| parse_count(source, line, col.map_or("", cell));
            let (price, from, to) = match (
                parse_rate(source, line, cell(price_col)),
                count(from_col),
                count(to_col),
            ) {
                (Ok(price), Ok(from), Ok(to)) => (price, from, to),
                (price, from, to) => {
                    problems.extend(price.err());
                    problems.extend(from.err());
                    problems.extend(to.err());
                    continue;
                }
            };
            match (from, to) {
                (None, None) => list_rate(category, price, problems),
                (None, Some(_)) => {
                    problems.push(row_error(source, line, Problem::TierToWithoutFrom));
                }
                (Some(from), Some(to)) if to < from => {
                    problems.push(row_error(source, line, Problem::TierToBelowFrom));
                }
                (Some(from), to) => bands
                    .entry((market, category))
                    .or_default()
                    .push((Band { from, to, price }, line)),
            }
        }
    }
    check_bands(source, book, bands, &mut scan.card, &mut scan.problems);
    // In file order (band problems are found after the rows).
    scan.problems.sort_by_key(|p| p.line().unwrap_or(0));
    scan
}

/// Rules C4: tiers only for utility and authentication; per market and
/// category the bands, by `from`, start at 0 or 1, follow each other without
/// gap or overlap, and only the last, which is open, has no upper bound.
fn check_bands(
    source: &str,
    book: &RateBook,
    bands: BandsRead,
    card: &mut RateCard,
    problems: &mut Vec<RatesError>,
) {
    let mut keyed: Vec<_> = bands.into_iter().collect();
    keyed.sort_by(|a, b| (book.market_name(a.0.0), a.0.1).cmp(&(book.market_name(b.0.0), b.0.1)));
    for ((market, category), mut list) in keyed {
        list.sort_by_key(|(b, _)| (b.from, b.to.is_none(), b.to));
        let name = book.market_name(market).to_owned();
        let mut push =
            |line: u64, problem: Problem| problems.push(row_error(source, line, problem));
        if let Some((first, line)) = list.first() {
            if !tierable(category) {
                push(
                    *line,
                    Problem::TiersNotAllowed {
                        market: name.clone(),
                        category,
                    },
                );
            } else if first.from > 1 {
                push(
                    *line,
                    Problem::BandStart {
                        market: name.clone(),
                        category,
                        band: first.into(),
                    },
                );
            }
        }
        if tierable(category) {
            for pair in list.windows(2) {
                let [(before, before_line), (after, after_line)] = pair else {
                    continue;
                };
                let (market, before_b, after_b) = (name.clone(), before.into(), after.into());
                match before.to {
                    None => push(
                        *before_line,
                        Problem::OpenBandNotLast {
                            market,
                            category,
                            band: before_b,
                        },
                    ),
                    Some(to) if after.from <= to => push(
                        *after_line,
                        Problem::BandOverlap {
                            market,
                            category,
                            before: before_b,
                            after: after_b,
                        },
                    ),
                    Some(to) if after.from > to.saturating_add(1) => push(
                        *after_line,
                        Problem::BandGap {
                            market,
                            category,
                            before: before_b,
                            after: after_b,
                            expected: to.saturating_add(1),
                        },
                    ),
                    Some(_) => {}
                }
            }
            if let Some((last, line)) = list.last()
                && last.to.is_some()
            {
                push(
                    *line,
                    Problem::LastBandClosed {
                        market: name.clone(),
                        category,
                        band: last.into(),
                    },
                );
            }
        }
        card.tiers.insert(
            (market, category),
            list.into_iter().map(|(b, _)| b).collect(),
        );
    }
}

/// Parses a card in any of its layouts (long, wide or Meta's, told apart by
/// the header), checking its volume-tier bands; the first problem found is
/// the error (`wabill rates import` lists them all).
pub fn parse_card(
    text: &str,
    meta: &CardMeta,
    source: &str,
    book: &mut RateBook,
) -> Result<RateCard, RatesError> {
    let scan = scan_card(text, source, book);
    let mut problems = scan.problems;
    if let Some((found, line)) = scan.currency
        && found != meta.currency
    {
        problems.push(row_error(
            source,
            line,
            Problem::CurrencyDisagrees {
                found,
                expected: meta.currency.clone(),
                said_by: "the card's currency".to_owned(),
            },
        ));
    }
    if meta.family != Family::Pmp && !scan.card.tiers.is_empty() {
        problems.push(file_error(
            source,
            Problem::TiersInConversationCard(meta.family),
        ));
    }
    if let Some(first) = problems.into_iter().next() {
        return Err(first);
    }
    let mut card = scan.card;
    card.family = meta.family;
    card.currency = meta.currency.clone();
    card.effective_from = meta.effective_from;
    Ok(card)
}

/// The currency a card's `Currency` column gives, if it has one; rows that
/// disagree are [`parse_card`]'s to report.
pub fn card_currency_from_columns(text: &str, source: &str) -> Option<String> {
    scan_card(text, source, &mut RateBook::new())
        .currency
        .map(|(currency, _)| currency)
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
        let market = book.market(market_name);
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
        let market = book.market(record.get(0).unwrap_or_default());
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
