//! The card scanner: a card in any layout read row by row, going on past
//! problems to find them all.

use super::*;

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

impl Scan {
    fn new(source: &str) -> Scan {
        Scan {
            card: RateCard::new(Family::Pmp, String::new(), Date::MIN, source.to_owned()),
            layout: Layout::Long,
            currency: None,
            market_lines: BTreeMap::new(),
            row_dates: Vec::new(),
            problems: Vec::new(),
            rows_read: false,
        }
    }
}

/// Reads a card in any layout, going on past problems to find them all.
pub(crate) fn scan_card(text: &str, source: &str, book: &mut RateBook) -> Scan {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut scan = Scan::new(source);
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(true)
        .from_reader(text.as_bytes());
    let Some(header) = Header::read(&mut rdr, source, &mut scan.problems) else {
        return scan;
    };
    let Some(market_col) = header.find(&Column::Market) else {
        scan.problems
            .push(row_error(source, header.line, Problem::NoMarketColumn));
        return scan;
    };
    scan.layout = header.layout(market_col);
    if !header.long && !header.has_rate_columns() {
        if scan.problems.is_empty() {
            scan.problems
                .push(row_error(source, header.line, Problem::NoCategoryColumns));
        }
        return scan;
    }
    scan.rows_read = true;
    let mut rows = RowReader::new(source, &header, market_col);
    for record in rdr.records() {
        rows.read(record, &mut scan, book);
    }
    check_bands(source, book, rows.bands, &mut scan.card, &mut scan.problems);
    // In file order (band problems are found after the rows).
    scan.problems.sort_by_key(|p| p.line().unwrap_or(0));
    scan
}

/// Where the long layout's own columns are.
#[derive(Copy, Clone)]
struct LongColumns {
    category: usize,
    price: usize,
    tier_from: Option<usize>,
    tier_to: Option<usize>,
}

/// Reads a card's rows into a [`Scan`], remembering what later rows are
/// checked against.
struct RowReader<'a> {
    source: &'a str,
    header: &'a Header,
    market_col: usize,
    /// Present when the header has a `category` and a `price` column.
    long_cols: Option<LongColumns>,
    /// The line each list rate was first given on.
    rate_lines: BTreeMap<(MarketId, Category), u64>,
    bands: BandsRead,
}

/// The row being read: its line and market.
struct Row<'r> {
    line: u64,
    market: MarketId,
    market_name: &'r str,
}

impl<'a> RowReader<'a> {
    fn new(source: &'a str, header: &'a Header, market_col: usize) -> Self {
        let long_cols = match (header.find(&Column::Category), header.find(&Column::Price)) {
            (Some(category), Some(price)) => Some(LongColumns {
                category,
                price,
                tier_from: header.find(&Column::TierFrom),
                tier_to: header.find(&Column::TierTo),
            }),
            _ => None,
        };
        RowReader {
            source,
            header,
            market_col,
            long_cols,
            rate_lines: BTreeMap::new(),
            bands: BandsRead::new(),
        }
    }

    fn read(
        &mut self,
        record: Result<csv::StringRecord, csv::Error>,
        scan: &mut Scan,
        book: &mut RateBook,
    ) {
        let source = self.source;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let problem = Problem::Csv(e.to_string());
                scan.problems.push(match e.position() {
                    Some(p) => row_error(source, p.line(), problem),
                    None => file_error(source, problem),
                });
                return;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != self.header.cells.len() {
            scan.problems.push(row_error(
                source,
                line,
                Problem::FieldCount {
                    found: record.len(),
                    expected: self.header.cells.len(),
                },
            ));
            return;
        }
        let market_name = record.get(self.market_col).unwrap_or_default();
        if market_name.is_empty() {
            scan.problems
                .push(row_error(source, line, Problem::EmptyMarket));
            return;
        }
        let market = match book.market(market_name) {
            Ok(market) => market,
            Err(e) => return scan.problems.push(row_error(source, line, e.into())),
        };
        scan.market_lines.entry(market).or_insert(line);
        let row = Row {
            line,
            market,
            market_name,
        };
        let (from_date, to_date) = self.read_cells(&row, &record, scan);
        note_row_dates(source, line, from_date, to_date, scan);
        if let Some(cols) = self.long_cols {
            self.read_long_row(&row, &record, cols, scan);
        }
    }

    /// The row's cells by column (every column but the long layout's own),
    /// and the `effective_from`/`effective_to` it gives.
    fn read_cells(
        &mut self,
        row: &Row<'_>,
        record: &csv::StringRecord,
        scan: &mut Scan,
    ) -> (Option<Date>, Option<Date>) {
        let (source, line) = (self.source, row.line);
        let (mut from_date, mut to_date) = (None, None);
        for (i, col) in self.header.columns.iter().enumerate() {
            let text = record.get(i).unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            match col {
                Column::Currency => read_currency(source, line, text, scan),
                Column::EffectiveFrom => {
                    from_date = read_date(source, line, "effective_from", text, scan);
                }
                Column::EffectiveTo => {
                    to_date = read_date(source, line, "effective_to", text, scan);
                }
                Column::Rate(category) => match parse_rate(source, line, text) {
                    Ok(price) => {
                        list_rate(&mut self.rate_lines, source, row, *category, price, scan);
                    }
                    Err(e) => scan.problems.push(e),
                },
                Column::Tier { category, from, to } => match parse_rate(source, line, text) {
                    Ok(price) => self
                        .bands
                        .entry((row.market, *category))
                        .or_default()
                        .push((
                            Band {
                                from: *from,
                                to: *to,
                                price,
                            },
                            line,
                        )),
                    Err(e) => scan.problems.push(e),
                },
                _ => {}
            }
        }
        (from_date, to_date)
    }

    /// A long-layout row: its category, price and tier bounds.
    fn read_long_row(
        &mut self,
        row: &Row<'_>,
        record: &csv::StringRecord,
        cols: LongColumns,
        scan: &mut Scan,
    ) {
        let (source, line) = (self.source, row.line);
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let category_text = cell(cols.category);
        let Some(category) = Category::parse(&normalize(category_text)) else {
            scan.problems.push(row_error(
                source,
                line,
                Problem::UnknownCategory(category_text.to_owned()),
            ));
            return;
        };
        let count = |col: Option<usize>| parse_count(source, line, col.map_or("", cell));
        let (price, from, to) = match (
            parse_rate(source, line, cell(cols.price)),
            count(cols.tier_from),
            count(cols.tier_to),
        ) {
            (Ok(price), Ok(from), Ok(to)) => (price, from, to),
            (price, from, to) => {
                scan.problems.extend(price.err());
                scan.problems.extend(from.err());
                scan.problems.extend(to.err());
                return;
            }
        };
        match (from, to) {
            (None, None) => list_rate(&mut self.rate_lines, source, row, category, price, scan),
            (None, Some(_)) => {
                scan.problems
                    .push(row_error(source, line, Problem::TierToWithoutFrom));
            }
            (Some(from), Some(to)) if to < from => {
                scan.problems
                    .push(row_error(source, line, Problem::TierToBelowFrom));
            }
            (Some(from), to) => self
                .bands
                .entry((row.market, category))
                .or_default()
                .push((Band { from, to, price }, line)),
        }
    }
}

/// A list rate, unless the market and category already has one.
fn list_rate(
    rate_lines: &mut BTreeMap<(MarketId, Category), u64>,
    source: &str,
    row: &Row<'_>,
    category: Category,
    price: Decimal,
    scan: &mut Scan,
) {
    match rate_lines.get(&(row.market, category)) {
        Some(first_line) => scan.problems.push(row_error(
            source,
            row.line,
            Problem::PricedTwice {
                market: row.market_name.to_owned(),
                category,
                first_line: *first_line,
            },
        )),
        None => {
            rate_lines.insert((row.market, category), row.line);
            scan.card.rates.insert((row.market, category), price);
        }
    }
}

/// A `Currency` cell: the first one read is the card's, the others must
/// agree with it.
fn read_currency(source: &str, line: u64, text: &str, scan: &mut Scan) {
    let found = text.to_uppercase();
    match &scan.currency {
        None => scan.currency = Some((found, line)),
        Some((first, first_line)) if *first != found => {
            scan.problems.push(row_error(
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

/// An `effective_from` or `effective_to` cell; None, with a problem, if it
/// is no date.
fn read_date(
    source: &str,
    line: u64,
    column: &'static str,
    text: &str,
    scan: &mut Scan,
) -> Option<Date> {
    match Date::from_str(text) {
        Ok(d) => Some(d),
        Err(_) => {
            scan.problems.push(row_error(
                source,
                line,
                Problem::BadDate {
                    column,
                    text: text.to_owned(),
                },
            ));
            None
        }
    }
}

/// Keeps a row's `effective_from`/`effective_to`, if it gives either, and
/// checks that they are in order.
fn note_row_dates(
    source: &str,
    line: u64,
    from_date: Option<Date>,
    to_date: Option<Date>,
    scan: &mut Scan,
) {
    if from_date.is_none() && to_date.is_none() {
        return;
    }
    if let (Some(from), Some(to)) = (from_date, to_date)
        && to < from
    {
        scan.problems.push(row_error(
            source,
            line,
            Problem::EffectiveToBeforeFrom { from, to },
        ));
    }
    scan.row_dates.push((line, from_date, to_date));
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
