//! A card's identity (family, currency, date): what the options, the
//! file's header lines, its name and its `Currency` column say.

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
