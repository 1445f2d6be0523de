//! Rate cards and market maps (rules D1, D2): the CSV layouts, and Meta's
//! published cards and maps, embedded in the binary (see `data/README.md`).
//!
//! A card is read in any of three layouts, told apart by its header: the
//! project's long layout (`market,category,price,tier_from,tier_to`), its wide
//! layout (`market,<category>,…`), and Meta's published layout (a row per
//! market, a column per category, optional tier and `Currency` columns,
//! human-written header names). [`import_card`] validates a card against the
//! rate book and timeline it would join (`wabill rates import`).
//!
//! Pure: everything here reads text handed to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use rust_decimal::Decimal;
use wabill_engine::era::{EraKind, Timeline};
use wabill_engine::market::{MarketId, MarketMap, Region};
use wabill_engine::rates::{Band, Category, Family, RateBook, RateCard};

/// A problem with a card or map file, located in it.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RatesError {
    #[error("{source_name}: {reason}")]
    File {
        source_name: String,
        reason: Problem,
    },
    #[error("{source_name}, line {line}: {reason}")]
    Row {
        source_name: String,
        line: u64,
        reason: Problem,
    },
}

impl RatesError {
    pub fn reason(&self) -> &Problem {
        match self {
            RatesError::File { reason, .. } | RatesError::Row { reason, .. } => reason,
        }
    }

    /// The line it is on, where it is on one.
    pub fn line(&self) -> Option<u64> {
        match self {
            RatesError::File { .. } => None,
            RatesError::Row { line, .. } => Some(*line),
        }
    }
}

/// A volume-tier band's bounds as written in messages: `1-100`, `101+`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub from: u64,
    pub to: Option<u64>,
}

impl From<&Band> for Bounds {
    fn from(b: &Band) -> Bounds {
        Bounds {
            from: b.from,
            to: b.to,
        }
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to {
            Some(to) => write!(f, "{}-{to}", self.from),
            None => write!(f, "{}+", self.from),
        }
    }
}

/// What is wrong; [`RatesError`] says where.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Problem {
    #[error("cannot read the header: {0}")]
    Header(String),
    #[error("{0}")]
    Csv(String),
    #[error("no `market` column")]
    NoMarketColumn,
    #[error("no category columns")]
    NoCategoryColumns,
    #[error(
        "unknown column {0:?} (expected market, currency, effective_from, effective_to, a category \
         such as utility, or a tier column such as \"utility tier 1-1000\")"
    )]
    UnknownColumn(String),
    #[error("column {0} has no name")]
    UnnamedColumn(usize),
    #[error("column {column:?} repeats column {first:?}")]
    RepeatedColumn { column: String, first: String },
    #[error(
        "tier column {0:?}: the bounds must read <from>-<to>, <from>:<to>, <from>:MAX or <from>+"
    )]
    TierColumnBounds(String),
    #[error("tier column {0:?}: the upper bound is below the lower")]
    TierColumnReversed(String),
    #[error(
        "tier column {column:?}: volume tiers are only for utility and authentication (rules C4), not {cat}", cat = .category.as_str())]
    TierColumnCategory { column: String, category: Category },
    #[error("empty market")]
    EmptyMarket,
    #[error("the row has {found} fields, the header {expected}")]
    FieldCount { found: usize, expected: usize },
    #[error("unknown category {0:?}")]
    UnknownCategory(String),
    #[error("rate {0} is negative")]
    NegativeRate(String),
    #[error("rate {0:?} is not a decimal number")]
    MalformedRate(String),
    #[error("rate {0:?} is out of range")]
    RateOutOfRange(String),
    #[error("tier bound {0:?} is not a whole number")]
    TierBound(String),
    #[error("tier_to without tier_from")]
    TierToWithoutFrom,
    #[error("tier_to is below tier_from")]
    TierToBelowFrom,
    #[error("market {market:?}, category {cat} is priced twice (first on line {first_line})", cat = .category.as_str())]
    PricedTwice {
        market: String,
        category: Category,
        first_line: u64,
    },
    #[error("{column} {text:?} is not a date (YYYY-MM-DD)")]
    BadDate { column: &'static str, text: String },
    #[error("effective_to {to} is before effective_from {from}")]
    EffectiveToBeforeFrom { from: Date, to: Date },
    #[error("currency {found} disagrees with {expected} ({said_by})")]
    CurrencyDisagrees {
        found: String,
        expected: String,
        said_by: String,
    },
    #[error("currency {0:?} is not an ISO 4217 code (three capital letters)")]
    BadCurrency(String),
    #[error(
        "market {market:?}, category {cat}: volume tiers are only for utility and authentication (rules C4)", cat = .category.as_str())]
    TiersNotAllowed { market: String, category: Category },
    #[error(
        "volume tiers are only for per-message (pmp) cards (rules C4); this {family} card would never use them", family = .0.as_str()
    )]
    TiersInConversationCard(Family),
    #[error("rate {0:?} has more decimal places than wabill can hold exactly (28)")]
    RateTooPrecise(String),
    #[error("market {market:?}, category {cat}: the first band {band} starts above 1", cat = .category.as_str())]
    BandStart {
        market: String,
        category: Category,
        band: Bounds,
    },
    #[error(
        "market {market:?}, category {cat}: gap between bands {before} and {after} (the next band must start at {expected})", cat = .category.as_str())]
    BandGap {
        market: String,
        category: Category,
        before: Bounds,
        after: Bounds,
        expected: u64,
    },
    #[error("market {market:?}, category {cat}: bands {before} and {after} overlap", cat = .category.as_str())]
    BandOverlap {
        market: String,
        category: Category,
        before: Bounds,
        after: Bounds,
    },
    #[error("market {market:?}, category {cat}: band {band} is open but not the last", cat = .category.as_str())]
    OpenBandNotLast {
        market: String,
        category: Category,
        band: Bounds,
    },
    #[error(
        "market {market:?}, category {cat}: the last band {band} is closed (messages beyond it would have no price; leave its upper bound empty)", cat = .category.as_str())]
    LastBandClosed {
        market: String,
        category: Category,
        band: Bounds,
    },
    #[error("no rate for market {market:?}, {} ({map})", categories_text(.categories))]
    MissingRate {
        market: String,
        /// In category order; one problem per market keeps reports short.
        categories: Vec<Category>,
        map: String,
    },
    #[error(
        "the card's {what} is unknown: give --{flag}, a `# {key}: …` header line{more}, or a file name such as my-pmp_USD_2026-10-01.csv"
    )]
    MissingIdentity {
        what: &'static str,
        flag: &'static str,
        key: &'static str,
        more: &'static str,
    },
    #[error("family {0:?} is not cbp-2022, cbp-2023 or pmp")]
    BadFamily(String),
    #[error("the file name does not say family, currency and date")]
    NoCardMeta,
    #[error("the header must be `region,market`")]
    MapHeader,
    #[error("{0:?} is neither an ISO region nor a number prefix")]
    BadMapKey(String),
    #[error("cannot write the card: {0}")]
    Write(String),
}

/// Something worth knowing about a valid card that does not make it invalid.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Warning {
    #[error(
        "line {line}: market {market:?} is not in the market map{}; its rates will never be used",
        .suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
    )]
    MarketNotInMap {
        market: String,
        line: u64,
        suggestion: Option<String>,
    },
    #[error("it replaces the card {0} (same family, currency and date)")]
    Replaces(String),
    #[error(
        "no era of the timeline prices with {fam} cards on {date} (era in force: {})",
        .era.map_or("none", |e| e.as_str()), fam = .family.as_str())]
    NoEraForFamily {
        family: Family,
        date: Date,
        era: Option<EraKind>,
    },
    #[error(
        "the card is in {card} but platform.currency is {platform}: this configuration would refuse it"
    )]
    OtherCurrency { card: String, platform: String },
    #[error("--{flag} {given} is used instead of {found} ({said_by})")]
    Overridden {
        flag: &'static str,
        given: String,
        found: String,
        said_by: Origin,
    },
    #[error("category {cat} is never priced with {fam} cards; its rates will never be used", cat = .category.as_str(), fam = .family.as_str())]
    UnusedCategory { category: Category, family: Family },
    #[error(
        "line {line}: effective_from/effective_to do not include the card's date {date}; the card's date is what applies"
    )]
    RowDates { line: u64, date: Date },
    #[error("no market map is in force on {0}; only Other is checked")]
    NoMarketMap(Date),
}

fn file_error(source: &str, reason: Problem) -> RatesError {
    RatesError::File {
        source_name: source.to_owned(),
        reason,
    }
}

fn row_error(source: &str, line: u64, reason: Problem) -> RatesError {
    RatesError::Row {
        source_name: source.to_owned(),
        line,
        reason,
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

fn is_currency_code(text: &str) -> bool {
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
enum Column {
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
fn normalize(name: &str) -> String {
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
fn tier_bounds(text: &str) -> Option<(u64, Option<u64>)> {
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

fn column(raw: &str, long: bool) -> Result<Column, Problem> {
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
struct Scan {
    /// Its rates and bands; family, currency and date are placeholders.
    card: RateCard,
    layout: Layout,
    /// The `Currency` column's currency and the line it first appears on.
    currency: Option<(String, u64)>,
    /// The line each market first appears on.
    market_lines: BTreeMap<MarketId, u64>,
    /// `effective_from`/`effective_to` of the rows that give them.
    row_dates: Vec<(u64, Option<Date>, Option<Date>)>,
    problems: Vec<RatesError>,
    /// Whether the rows could be read at all (the header makes sense).
    rows_read: bool,
}

/// Volume-tier bands as read, each with its line.
type BandsRead = BTreeMap<(MarketId, Category), Vec<(Band, u64)>>;

/// Reads a card in any layout, going on past problems to find them all.
fn scan_card(text: &str, source: &str, book: &mut RateBook) -> Scan {
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
fn apply_auth_international(
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
fn categories_text(categories: &[Category]) -> String {
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
    let from_name = card_meta_from_name(source);
    let scan = scan_card(text, source, book);
    let name = from_name.as_ref();
    let family = pick(
        [
            (flags.family, Origin::Option),
            (header.family, Origin::HeaderLine),
            (name.map(|m| m.family), Origin::FileName),
        ],
        "family",
        |f| f.as_str().to_owned(),
        &mut warnings,
    );
    let date = pick(
        [
            (flags.effective_from, Origin::Option),
            (header.effective_from, Origin::HeaderLine),
            (name.map(|m| m.effective_from), Origin::FileName),
        ],
        "effective-from",
        Date::to_string,
        &mut warnings,
    );
    let mut currency = pick(
        [
            (flags.currency.clone(), Origin::Option),
            (header.currency.clone(), Origin::HeaderLine),
            (name.map(|m| m.currency.clone()), Origin::FileName),
        ],
        "currency",
        String::clone,
        &mut warnings,
    );
    match (&currency, &scan.currency) {
        (None, Some((column, _))) => currency = Some((column.clone(), Origin::CurrencyColumn)),
        (Some((chosen, origin)), Some((column, line))) if chosen != column => {
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
    let until = book
        .cards()
        .iter()
        .filter(|c| c.family == family && c.currency == currency && c.effective_from > date)
        .map(|c| c.effective_from)
        .min();
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

    fn pmp_meta(date: Date) -> CardMeta {
        CardMeta {
            family: Family::Pmp,
            currency: "USD".into(),
            effective_from: date,
        }
    }

    fn problems_of(text: &str, meta: &CardMeta) -> Vec<String> {
        let scan = scan_card(text, "x.csv", &mut RateBook::new());
        let mut out: Vec<String> = scan.problems.iter().map(ToString::to_string).collect();
        if let Err(e) = parse_card(text, meta, "x.csv", &mut RateBook::new()) {
            assert_eq!(
                out.first(),
                Some(&e.to_string()),
                "parse_card reports the first"
            );
        } else {
            out.clear();
        }
        out
    }

    fn shipped_book() -> RateBook {
        match shipped() {
            Ok(book) => book,
            Err(e) => panic!("{e}"),
        }
    }

    /// A Meta-layout card pricing every market of the map in force on
    /// `date`, and Other, at `$0.0100` in each of `columns`.
    fn complete_meta_card(book: &RateBook, date: Date, columns: &[&str]) -> String {
        let mut markets: BTreeSet<&str> = BTreeSet::from(["Other"]);
        if let Some(map) = book.map_at(date) {
            markets.extend(map.regions.values().map(|m| book.market_name(*m)));
        }
        let mut text = format!("Market,{}\n", columns.join(","));
        for m in markets {
            let cells = vec!["$0.0100"; columns.len()];
            text.push_str(&format!("\"{m}\",{}\n", cells.join(",")));
        }
        text
    }

    fn import(
        text: &str,
        source: &str,
        flags: &CardFlags,
        timeline: &Timeline,
    ) -> Result<Imported, Invalid> {
        let mut book = shipped_book();
        let context = ImportContext {
            timeline,
            platform_currency: "USD",
        };
        import_card(text, source, flags, context, &mut book)
    }

    fn pmp_flags(date: Date) -> CardFlags {
        CardFlags {
            family: Some(Family::Pmp),
            currency: Some("USD".into()),
            effective_from: Some(date),
        }
    }

    fn problem_texts(invalid: &Invalid) -> Vec<String> {
        invalid.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn meta_layout_headers_rates_and_tier_columns() {
        let text = "\u{feff}Market , Currency,MARKETING,Utility,Authentication-International,\"Utility tier 0-100,000\",\"Utility  tier 100,001:1,000,000\",\"Utility tier 1,000,001+\",authentication tier 1:1000,Authentication tier 1001:MAX\n\
                    Brazil,USD,$0.0625,0.0080,,0.0080,$0.0075,0.0070,,\n\
                    India,usd,0.0107,0.0014,$0.0280,,,,0.0014,0.0012\n";
        let mut book = RateBook::new();
        let card = match parse_card(
            text,
            &pmp_meta(Date::constant(2026, 10, 1)),
            "m.csv",
            &mut book,
        ) {
            Ok(card) => card,
            Err(e) => panic!("{e}"),
        };
        let (Some(brazil), Some(india)) = (book.market_id("Brazil"), book.market_id("India"))
        else {
            panic!("markets")
        };
        let rate = |m, c| card.rate(m, c).map(|r| r.to_string());
        assert_eq!(rate(brazil, Category::Marketing).as_deref(), Some("0.0625"));
        assert_eq!(rate(brazil, Category::Utility).as_deref(), Some("0.0080"));
        assert_eq!(rate(brazil, Category::AuthenticationInternational), None);
        assert_eq!(
            rate(india, Category::AuthenticationInternational).as_deref(),
            Some("0.0280")
        );
        let bands = |m, c| -> Vec<String> {
            card.tiers
                .get(&(m, c))
                .into_iter()
                .flatten()
                .map(|b| format!("{} {}", Bounds::from(b), b.price))
                .collect()
        };
        assert_eq!(
            bands(brazil, Category::Utility),
            [
                "0-100000 0.0080",
                "100001-1000000 0.0075",
                "1000001+ 0.0070"
            ]
        );
        assert!(bands(india, Category::Utility).is_empty());
        assert_eq!(
            bands(india, Category::Authentication),
            ["1-1000 0.0014", "1001+ 0.0012"]
        );
        assert!(bands(brazil, Category::Authentication).is_empty());
    }

    #[test]
    fn meta_layout_names_conversation_categories_with_hyphens_and_spaces() {
        let text = "market,Business-Initiated,User Initiated\nBrazil,0.0500,$0.0300\n";
        let meta = CardMeta {
            family: Family::Cbp2022,
            currency: "USD".into(),
            effective_from: Date::constant(2022, 2, 1),
        };
        let mut book = RateBook::new();
        let card = parse_card(text, &meta, "c.csv", &mut book).map_err(|e| e.to_string());
        let brazil = book.market_id("Brazil");
        let rate = card
            .ok()
            .zip(brazil)
            .and_then(|(c, m)| c.rate(m, Category::UserInitiated));
        assert_eq!(rate.map(|r| r.to_string()).as_deref(), Some("0.0300"));
    }

    #[test]
    fn tier_column_names_and_bounds() {
        assert_eq!(
            normalize(" Authentication - International "),
            "authentication_international"
        );
        assert_eq!(
            tier_bounds("100,001_1,000,000"),
            Some((100_001, Some(1_000_000)))
        );
        assert_eq!(tier_bounds("1:max"), Some((1, None)));
        assert_eq!(tier_bounds("80,000,001+"), Some((80_000_001, None)));
        assert_eq!(tier_bounds("1,00_2"), None);
        assert_eq!(tier_bounds("1000,000+"), None);
        assert_eq!(tier_bounds("5000"), None);
        assert_eq!(
            column("Utility tier 1-100", false),
            Ok(Column::Tier {
                category: Category::Utility,
                from: 1,
                to: Some(100)
            })
        );
    }

    #[test]
    fn column_problems_name_the_column() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        assert_eq!(
            problems_of("Market,Marketing,Region\nBrazil,0.1,LATAM\n", &meta),
            [
                "x.csv, line 1: unknown column \"Region\" (expected market, currency, effective_from, effective_to, a category such as utility, or a tier column such as \"utility tier 1-1000\")"
            ]
        );
        assert_eq!(
            problems_of(
                "Market,Marketing tier 1+,Utility tier 1-,Utility tier 10-1,Utility,UTILITY,\nBrazil,0.1,0.1,0.1,0.1,0.1,\n",
                &meta
            ),
            [
                "x.csv, line 1: tier column \"Marketing tier 1+\": volume tiers are only for utility and authentication (rules C4), not marketing",
                "x.csv, line 1: tier column \"Utility tier 1-\": the bounds must read <from>-<to>, <from>:<to>, <from>:MAX or <from>+",
                "x.csv, line 1: tier column \"Utility tier 10-1\": the upper bound is below the lower",
                "x.csv, line 1: column \"UTILITY\" repeats column \"Utility\"",
                "x.csv, line 1: column 7 has no name",
            ]
        );
        assert_eq!(
            problems_of("Country,Marketing\nBrazil,0.1\n", &meta)
                .last()
                .map(String::as_str),
            Some("x.csv, line 1: no `market` column")
        );
        assert_eq!(
            problems_of("market\nBrazil\n", &meta),
            ["x.csv, line 1: no category columns"]
        );
    }

    #[test]
    fn every_row_problem_is_reported_with_its_line() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let text = "# a comment\nMarket,Currency,Marketing,Utility,Effective_From,Effective To\n\
                    Brazil,USD,-0.01,1e-2,2026-10-01,2026-09-30\n\
                    Brazil,EUR,0.1.2,$-1,01/10/2026,\n\
                    ,USD,0.1,0.1,,\n\
                    India,USD,0.1\n\
                    India,USD,99999999999999999999999999999999,0.1,,\n";
        assert_eq!(
            problems_of(text, &meta),
            [
                "x.csv, line 3: rate -0.01 is negative",
                "x.csv, line 3: rate \"1e-2\" is not a decimal number",
                "x.csv, line 3: effective_to 2026-09-30 is before effective_from 2026-10-01",
                "x.csv, line 4: currency EUR disagrees with USD (the Currency column on line 3)",
                "x.csv, line 4: rate \"0.1.2\" is not a decimal number",
                "x.csv, line 4: rate $-1 is negative",
                "x.csv, line 4: effective_from \"01/10/2026\" is not a date (YYYY-MM-DD)",
                "x.csv, line 5: empty market",
                "x.csv, line 6: the row has 3 fields, the header 6",
                "x.csv, line 7: rate \"99999999999999999999999999999999\" is out of range",
            ]
        );
    }

    #[test]
    fn long_layout_row_problems() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let text = "market,category,price,tier_from,tier_to\n\
                    Brazil,utility,0.1,,\n\
                    Brazil,Utility,0.2,,\n\
                    Brazil,promotion,0.1,,\n\
                    Brazil,utility,0.1,,100\n\
                    Brazil,utility,0.1,100,10\n\
                    Brazil,utility,0.1,1.5,\n";
        assert_eq!(
            problems_of(text, &meta),
            [
                "x.csv, line 3: market \"Brazil\", category utility is priced twice (first on line 2)",
                "x.csv, line 4: unknown category \"promotion\"",
                "x.csv, line 5: tier_to without tier_from",
                "x.csv, line 6: tier_to is below tier_from",
                "x.csv, line 7: tier bound \"1.5\" is not a whole number",
            ]
        );
        assert_eq!(
            problems_of("Market,Marketing\nBrazil,0.1\nBrazil,0.2\n", &meta),
            [
                "x.csv, line 3: market \"Brazil\", category marketing is priced twice (first on line 2)"
            ]
        );
    }

    #[test]
    fn c4_band_ladders_are_checked() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let head = "market,category,price,tier_from,tier_to\n";
        let check = |rows: &str| problems_of(&format!("{head}{rows}"), &meta);
        // Valid ladders start at 0 or 1, are contiguous and end open.
        assert!(check("A,utility,0.3,0,100\nA,utility,0.2,101,\n").is_empty());
        assert!(check("A,utility,0.2,101,\nA,utility,0.3,1,100\n").is_empty());
        assert!(check("A,authentication,0.1,1,\n").is_empty());
        assert_eq!(
            check("A,utility,0.3,2,100\nA,utility,0.2,101,\n"),
            ["x.csv, line 2: market \"A\", category utility: the first band 2-100 starts above 1"]
        );
        assert_eq!(
            check("A,utility,0.3,1,100\nA,utility,0.2,102,\n"),
            [
                "x.csv, line 3: market \"A\", category utility: gap between bands 1-100 and 102+ (the next band must start at 101)"
            ]
        );
        assert_eq!(
            check("A,utility,0.3,1,100\nA,utility,0.2,100,\n"),
            ["x.csv, line 3: market \"A\", category utility: bands 1-100 and 100+ overlap"]
        );
        assert_eq!(
            check("A,utility,0.3,1,\nA,utility,0.2,101,\n"),
            ["x.csv, line 2: market \"A\", category utility: band 1+ is open but not the last"]
        );
        assert_eq!(
            check("A,utility,0.3,1,100\nA,utility,0.2,101,200\n"),
            [
                "x.csv, line 3: market \"A\", category utility: the last band 101-200 is closed (messages beyond it would have no price; leave its upper bound empty)"
            ]
        );
        assert_eq!(
            check("A,marketing,0.3,1,100\nA,marketing,0.2,101,\n"),
            [
                "x.csv, line 2: market \"A\", category marketing: volume tiers are only for utility and authentication (rules C4)"
            ]
        );
        // Meta's layout: a market's empty cell leaves a gap in its ladder.
        assert_eq!(
            problems_of(
                "Market,Utility tier 1-10,Utility tier 11-20,Utility tier 21+\nA,0.3,,0.1\nB,0.3,0.2,0.1\n",
                &meta
            ),
            [
                "x.csv, line 2: market \"A\", category utility: gap between bands 1-10 and 21+ (the next band must start at 11)"
            ]
        );
    }

    #[test]
    fn parse_card_refuses_a_currency_column_that_disagrees_with_the_card() {
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let err = parse_card(
            "Market,Currency,Marketing\nBrazil,EUR,0.1\n",
            &meta,
            "x.csv",
            &mut RateBook::new(),
        );
        assert_eq!(
            err.map(|_| ()).map_err(|e| e.to_string()),
            Err("x.csv, line 2: currency EUR disagrees with USD (the card's currency)".to_owned())
        );
        assert_eq!(
            card_currency_from_columns("Market,Currency,Marketing\nBrazil,eur,0.1\n", "x.csv"),
            Some("EUR".to_owned())
        );
        assert_eq!(
            card_currency_from_columns("market,marketing\nBrazil,0.1\n", "x.csv"),
            None
        );
    }

    #[test]
    fn a_card_whose_rows_cannot_be_read_reports_that_alone() {
        let timeline = Timeline::meta_default();
        let date = Date::constant(2026, 10, 1);
        for (text, problem) in [
            ("", "x.csv, line 1: no `market` column"),
            (
                "Country,Marketing\nBrazil,0.1\n",
                "x.csv, line 1: no `market` column",
            ),
            ("market\nBrazil\n", "x.csv, line 1: no category columns"),
        ] {
            let Err(invalid) = import(text, "x.csv", &pmp_flags(date), &timeline) else {
                panic!("{text:?} is no card")
            };
            assert_eq!(
                problem_texts(&invalid).last().map(String::as_str),
                Some(problem)
            );
            assert!(
                !problem_texts(&invalid)
                    .iter()
                    .any(|p| p.contains("no rate for")),
                "{text:?}"
            );
        }
    }

    #[test]
    fn layouts_are_told_apart_by_the_header() {
        let layout = |text: &str| scan_card(text, "x.csv", &mut RateBook::new()).layout;
        assert_eq!(
            layout("market,category,price,tier_from,tier_to\n"),
            Layout::Long
        );
        assert_eq!(layout("market,category,price\n"), Layout::Long);
        assert_eq!(layout("market,marketing,utility\n"), Layout::Wide);
        assert_eq!(layout("Market,Marketing\n"), Layout::Meta);
        assert_eq!(layout("market,currency,marketing\n"), Layout::Meta);
    }

    #[test]
    fn a_complete_meta_card_imports_with_its_report() {
        let book = shipped_book();
        let date = Date::constant(2026, 10, 1);
        let text = complete_meta_card(
            &book,
            date,
            &["Marketing", "Utility", "Authentication", "Service"],
        );
        let text = text.replace(
            "Market,Marketing,Utility,Authentication,Service\n",
            "Market,Marketing,Utility,Authentication,Service,Utility tier 1-1000,Utility tier 1001+\n",
        );
        // Every row needs the two tier cells; only Brazil fills them.
        let text: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("{l}\n"),
                _ if l.starts_with("\"Brazil\"") => format!("{l},0.0090,0.0080\n"),
                _ => format!("{l},,\n"),
            })
            .collect();
        let timeline = Timeline::meta_default();
        let imported = match import(
            &text,
            "acme-pmp_USD_2026-10-01.csv",
            &CardFlags::default(),
            &timeline,
        ) {
            Ok(i) => i,
            Err(e) => panic!("{:?}", problem_texts(&e)),
        };
        assert_eq!(imported.layout, Layout::Meta);
        assert_eq!(imported.family_from, Origin::FileName);
        assert_eq!(imported.card.family, Family::Pmp);
        assert_eq!(imported.markets_priced, 47);
        assert_eq!(imported.map.as_ref().map(|m| m.markets), Some(47));
        assert_eq!(
            imported.required,
            [
                Category::Authentication,
                Category::Marketing,
                Category::Service,
                Category::Utility
            ]
        );
        assert_eq!(imported.tiered.len(), 1);
        assert_eq!(imported.tiered[0].market, "Brazil");
        assert_eq!(
            imported.replaces.as_deref(),
            Some("meta-pmp_USD_2026-10-01.csv")
        );
        assert_eq!(imported.next, None);
        assert_eq!(
            imported.warnings,
            [Warning::Replaces("meta-pmp_USD_2026-10-01.csv".to_owned())]
        );
    }

    #[test]
    fn d2_a_missing_market_or_category_is_named() {
        let book = shipped_book();
        let date = Date::constant(2026, 10, 1);
        let text = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"])
            .lines()
            .filter(|l| !l.starts_with("\"Kenya\"") && !l.starts_with("\"Nigeria\""))
            .collect::<Vec<_>>()
            .join("\n");
        let timeline = Timeline::meta_default();
        let Err(invalid) = import(&text, "acme.csv", &pmp_flags(date), &timeline) else {
            panic!("a card without service rates on 2026-10-01 is invalid")
        };
        let problems = problem_texts(&invalid);
        // Service is priced from pmp-2026 on: every market misses it, one
        // problem per market.
        assert_eq!(problems.len(), 47, "{problems:#?}");
        assert!(problems.contains(
            &"acme.csv: no rate for market \"Nigeria\", categories authentication, marketing, service, utility (market map of 2026-10-01)"
                .to_owned()
        ));
        assert!(problems.contains(
            &"acme.csv: no rate for market \"Other\", category service (market map of 2026-10-01)"
                .to_owned()
        ));
        assert!(
            !problems.iter().any(|p| p.contains("Kenya")),
            "Kenya is no market"
        );
        // Under pmp-2025 service is free: no rate needed, only Nigeria is missing.
        let date = Date::constant(2026, 4, 1);
        let text = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"])
            .lines()
            .filter(|l| !l.starts_with("\"Nigeria\""))
            .collect::<Vec<_>>()
            .join("\n");
        let Err(invalid) = import(&text, "acme.csv", &pmp_flags(date), &timeline) else {
            panic!("Nigeria is missing")
        };
        assert_eq!(
            problem_texts(&invalid),
            [
                "acme.csv: no rate for market \"Nigeria\", categories authentication, marketing, utility (market map of 2025-10-01)",
            ]
        );
        // A timeline whose pmp-2026 starts earlier needs service earlier.
        let early = Timeline::new(vec![
            (Date::constant(2022, 2, 1), EraKind::Cbp2022),
            (Date::constant(2025, 7, 1), EraKind::Pmp2025),
            (Date::constant(2026, 1, 1), EraKind::Pmp2026),
        ]);
        let Ok(early) = early else { panic!("timeline") };
        let until = Some(Date::constant(2026, 7, 1));
        assert!(required_categories(Family::Pmp, date, until, &early).contains(&Category::Service));
        assert!(
            !required_categories(Family::Pmp, date, until, &timeline).contains(&Category::Service)
        );
        // A card with no next card prices pmp-2026 traffic too.
        assert!(
            required_categories(Family::Pmp, date, None, &timeline).contains(&Category::Service)
        );
    }

    #[test]
    fn a_market_with_bands_only_counts_as_priced() {
        let book = shipped_book();
        let date = Date::constant(2025, 7, 1);
        let header = "Market,Marketing,Utility,Authentication";
        let complete = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"]);
        // Brazil without a utility list rate, with or without a ladder.
        let card = |ladder: &str| -> String {
            complete
                .lines()
                .map(|l| match l {
                    l if l == header => format!("{l},Utility tier 1+\n"),
                    "\"Brazil\",$0.0100,$0.0100,$0.0100" => {
                        format!("\"Brazil\",$0.0100,,$0.0100,{ladder}\n")
                    }
                    l => format!("{l},\n"),
                })
                .collect()
        };
        let timeline = Timeline::meta_default();
        let Err(invalid) = import(&card(""), "a.csv", &pmp_flags(date), &timeline) else {
            panic!("Brazil utility is missing")
        };
        assert_eq!(
            problem_texts(&invalid),
            ["a.csv: no rate for market \"Brazil\", category utility (market map of 2022-02-01)"]
        );
        let imported = import(&card("0.0100"), "a.csv", &pmp_flags(date), &timeline);
        assert!(
            imported.is_ok(),
            "{:?}",
            imported.err().map(|e| problem_texts(&e))
        );
    }

    #[test]
    fn identity_comes_from_options_header_name_then_currency_column() {
        let timeline = Timeline::meta_default();
        let Err(invalid) = import(
            "Market,Marketing\nBrazil,0.1\n",
            "card.csv",
            &CardFlags::default(),
            &timeline,
        ) else {
            panic!("no identity")
        };
        let problems = problem_texts(&invalid);
        assert_eq!(
            problems[..3],
            [
                "card.csv: the card's family is unknown: give --family, a `# family: …` header line, or a file name such as my-pmp_USD_2026-10-01.csv",
                "card.csv: the card's currency is unknown: give --currency, a `# currency: …` header line, a Currency column, or a file name such as my-pmp_USD_2026-10-01.csv",
                "card.csv: the card's effective date is unknown: give --effective-from, a `# effective_from: …` header line, or a file name such as my-pmp_USD_2026-10-01.csv",
            ]
        );
        // The Currency column says the currency; a header line the rest;
        // an option wins over the file, with a warning.
        let text = "# family: cbp-2022\n# effective_from: 2022-02-01\nMarket,Currency,Business Initiated,User Initiated\nBrazil,usd,0.1,0.1\n";
        let flags = CardFlags {
            effective_from: Some(Date::constant(2022, 3, 1)),
            ..CardFlags::default()
        };
        let result = import(text, "my-cbp-2023_EUR_2024-01-01.csv", &flags, &timeline);
        let Err(invalid) = result else {
            panic!("incomplete card")
        };
        assert_eq!(
            invalid.problems.first().map(ToString::to_string).as_deref(),
            Some(
                "my-cbp-2023_EUR_2024-01-01.csv, line 4: currency USD disagrees with EUR (from the file name)"
            )
        );
        assert!(invalid.warnings.contains(&Warning::Overridden {
            flag: "effective-from",
            given: "2022-03-01".into(),
            found: "2022-02-01".into(),
            said_by: Origin::HeaderLine,
        }));
        let Err(invalid) = import(text, "card.csv", &flags, &timeline) else {
            panic!("incomplete card")
        };
        // Family from the header line (cbp-2022: business/user initiated),
        // currency from the column: only the missing markets remain.
        assert!(
            invalid
                .problems
                .iter()
                .all(|p| matches!(p.reason(), Problem::MissingRate { .. }))
        );
        let flags = CardFlags {
            currency: Some("usd".into()),
            ..flags
        };
        let Err(invalid) = import(text, "card.csv", &flags, &timeline) else {
            panic!("bad currency")
        };
        assert!(
            problem_texts(&invalid).contains(
                &"card.csv: currency \"usd\" is not an ISO 4217 code (three capital letters)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn warnings_do_not_make_a_card_invalid() {
        let book = shipped_book();
        let date = Date::constant(2025, 7, 1);
        let mut text = complete_meta_card(
            &book,
            date,
            &[
                "Marketing",
                "Utility",
                "Authentication",
                "Service",
                "Business-Initiated",
            ],
        );
        // No other EUR card: this one applies into pmp-2026, so it prices
        // service too.
        text.push_str("\"india\",0.1,0.1,0.1,0.1,0.1\nAtlantis,0.1,0.1,0.1,0.1,0.1\n");
        let text = text.replacen("Market,", "Market,Effective From,", 1);
        let text: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| match i {
                0 => format!("{l}\n"),
                1 => l.replacen(',', ",2025-08-01,", 1) + "\n",
                _ => l.replacen(',', ",,", 1) + "\n",
            })
            .collect();
        let timeline = Timeline::meta_default();
        let flags = CardFlags {
            currency: Some("EUR".into()),
            ..pmp_flags(Date::constant(2025, 6, 15))
        };
        let imported = match import(&text, "x.csv", &flags, &timeline) {
            Ok(i) => i,
            Err(e) => panic!("{:?}", problem_texts(&e)),
        };
        let warnings: Vec<String> = imported.warnings.iter().map(ToString::to_string).collect();
        let lines = text.lines().count();
        assert_eq!(
            warnings,
            [
                format!("line {}: market \"india\" is not in the market map (did you mean \"India\"?); its rates will never be used", lines - 1),
                format!("line {lines}: market \"Atlantis\" is not in the market map; its rates will never be used"),
                "category business_initiated is never priced with pmp cards; its rates will never be used".to_owned(),
                "no era of the timeline prices with pmp cards on 2025-06-15 (era in force: cbp-2023)".to_owned(),
                "line 2: effective_from/effective_to do not include the card's date 2025-06-15; the card's date is what applies".to_owned(),
                "the card is in EUR but platform.currency is USD: this configuration would refuse it".to_owned(),
            ]
        );
        assert_eq!(
            imported.next.map(|n| (n.effective_from, n.source)),
            None,
            "no EUR card follows"
        );
    }

    #[test]
    fn the_next_card_of_the_family_is_reported() {
        let book = shipped_book();
        let date = Date::constant(2026, 2, 1);
        let text = complete_meta_card(&book, date, &["Marketing", "Utility", "Authentication"]);
        let timeline = Timeline::meta_default();
        let imported =
            import(&text, "x.csv", &pmp_flags(date), &timeline).map_err(|e| problem_texts(&e));
        let Ok(imported) = imported else {
            panic!("{imported:?}")
        };
        assert_eq!(imported.replaces, None);
        assert_eq!(
            imported.next,
            Some(NextCard {
                effective_from: Date::constant(2026, 4, 1),
                source: "meta-pmp_USD_2026-04-01.csv".to_owned()
            })
        );
    }

    #[test]
    fn every_shipped_card_imports_as_valid() {
        let timeline = Timeline::meta_default();
        for (name, text) in SHIPPED_CARDS {
            let result = import(text, name, &CardFlags::default(), &timeline);
            let Ok(imported) = result else {
                panic!("{name}: {:?}", result.err().map(|e| problem_texts(&e)))
            };
            assert_eq!(imported.replaces.as_deref(), Some(*name));
        }
    }

    #[test]
    fn the_long_layout_written_reads_back_the_same() {
        let text = "Market,Marketing,Utility,\"Utility tier 0-100,000\",Utility tier 100001+\nBrazil,$0.0625,0.00800,0.0080,0.0070\n\"Rest of Central & Eastern Europe, East\",0.10,0.2,,\n";
        let meta = pmp_meta(Date::constant(2026, 10, 1));
        let mut book = RateBook::new();
        let card = match parse_card(text, &meta, "m.csv", &mut book) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let long = match to_long_layout(&card, &book) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            long,
            "# family: pmp\n# currency: USD\n# effective_from: 2026-10-01\n\
             market,category,price,tier_from,tier_to\n\
             Brazil,marketing,0.0625,,\n\
             Brazil,utility,0.00800,,\n\
             Brazil,utility,0.0080,0,100000\n\
             Brazil,utility,0.0070,100001,\n\
             \"Rest of Central & Eastern Europe, East\",marketing,0.10,,\n\
             \"Rest of Central & Eastern Europe, East\",utility,0.2,,\n"
        );
        let header = card_meta_from_header(&long, "out.csv");
        assert_eq!(
            header,
            Ok(CardHeader {
                family: Some(Family::Pmp),
                currency: Some("USD".into()),
                effective_from: Some(Date::constant(2026, 10, 1)),
            })
        );
        let again = match parse_card(&long, &meta, "out.csv", &mut book) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(again.rates, card.rates);
        assert_eq!(again.tiers, card.tiers);
    }
}
