//! What can be wrong with a card or map file, and what is only worth a
//! warning.

use super::*;

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
    #[error(transparent)]
    TooManyMarkets(#[from] wabill_engine::tariff::TooManyMarkets),
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
        "the card is in {card} but no WABA is billed in it (the configuration bills in {billed}): this configuration would refuse it"
    )]
    OtherCurrency { card: String, billed: String },
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

pub(crate) fn file_error(source: &str, reason: Problem) -> RatesError {
    RatesError::File {
        source_name: source.to_owned(),
        reason,
    }
}

pub(crate) fn row_error(source: &str, line: u64, reason: Problem) -> RatesError {
    RatesError::Row {
        source_name: source.to_owned(),
        line,
        reason,
    }
}
