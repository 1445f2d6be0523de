//! Cells: rates, tier bounds, counts.

use super::*;

/// A rate: plain decimal notation (digits, optional fraction), optionally
/// after a `$`; never negative, never in exponent notation.
pub(crate) fn parse_rate(source: &str, line: u64, text: &str) -> Result<Decimal, RatesError> {
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

pub(crate) fn parse_count(source: &str, line: u64, text: &str) -> Result<Option<u64>, RatesError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| row_error(source, line, Problem::TierBound(text.to_owned())))
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
