//! What a card or map file's name, and a card's leading comment lines, say
//! about it.

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
}
