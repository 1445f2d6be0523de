//! Header cells: what each names, and the layout they add up to.

use super::*;

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

pub(crate) fn tierable(category: Category) -> bool {
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

/// A card's header row, its cells read as columns.
pub(crate) struct Header {
    /// The cells as written.
    pub(crate) cells: csv::StringRecord,
    pub(crate) line: u64,
    /// `category` and `price` columns: the long layout.
    pub(crate) long: bool,
    /// Every cell is written as [`normalize`] writes it (`market,marketing`).
    pub(crate) written_normalized: bool,
    /// One per cell; [`Column::Ignored`] where the cell is a problem.
    pub(crate) columns: Vec<Column>,
}

impl Header {
    /// Reads the header row, each problem with a cell in `problems`; None,
    /// with that problem, when there is no header to read.
    pub(crate) fn read(
        rdr: &mut csv::Reader<&[u8]>,
        source: &str,
        problems: &mut Vec<RatesError>,
    ) -> Option<Header> {
        let cells = match rdr.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                problems.push(file_error(source, Problem::Header(e.to_string())));
                return None;
            }
        };
        let line = cells.position().map_or(1, csv::Position::line);
        let names: Vec<String> = cells.iter().map(normalize).collect();
        let long = names.iter().any(|n| n == "category") && names.iter().any(|n| n == "price");
        let mut columns: Vec<Column> = Vec::new();
        for (i, raw) in cells.iter().enumerate() {
            let unnamed = names.get(i).is_none_or(String::is_empty);
            let col = match header_column(i, raw, unnamed, long, &columns, &cells) {
                Ok(c) => c,
                Err(problem) => {
                    problems.push(row_error(source, line, problem));
                    Column::Ignored
                }
            };
            columns.push(col);
        }
        let written_normalized = cells.iter().zip(&names).all(|(raw, name)| raw == name);
        Some(Header {
            cells,
            line,
            long,
            written_normalized,
            columns,
        })
    }

    /// Where the column is, if the header has it.
    pub(crate) fn find(&self, wanted: &Column) -> Option<usize> {
        self.columns.iter().position(|c| c == wanted)
    }

    /// The layout, given where the market column is.
    pub(crate) fn layout(&self, market_col: usize) -> Layout {
        if self.long {
            Layout::Long
        } else if market_col == 0
            && self.written_normalized
            && self
                .columns
                .iter()
                .skip(1)
                .all(|c| matches!(c, Column::Rate(_)))
        {
            Layout::Wide
        } else {
            Layout::Meta
        }
    }

    /// Whether some column holds a category's rates (wide and Meta layouts).
    pub(crate) fn has_rate_columns(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(c, Column::Rate(_) | Column::Tier { .. }))
    }
}

/// What header cell `i` names, given the columns before it (`seen`): a
/// column already seen is a problem, as is a cell without a name.
fn header_column(
    i: usize,
    raw: &str,
    unnamed: bool,
    long: bool,
    seen: &[Column],
    cells: &csv::StringRecord,
) -> Result<Column, Problem> {
    if unnamed {
        return Err(Problem::UnnamedColumn(i + 1));
    }
    let found = column(raw, long)?;
    match seen.iter().position(|c| *c == found) {
        Some(j) => Err(Problem::RepeatedColumn {
            column: raw.to_owned(),
            first: cells.get(j).unwrap_or_default().to_owned(),
        }),
        None => Ok(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
