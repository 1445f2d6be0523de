use std::str::FromStr;

use serde_json::value::RawValue;
use wabill_engine::Instant;
use wabill_engine::time::NANOS_PER_SEC;

/// events.md: an RFC 3339 string with an offset (sub-second digits kept to
/// the nanosecond), or Unix seconds as a JSON number (integer or decimal) or
/// a string of digits. Anything else is rejected; the error completes the
/// sentence "`ts` …".
pub fn parse_timestamp(raw: &RawValue) -> Result<Instant, String> {
    parse_timestamp_json(raw.get())
}

/// [`parse_timestamp`] of a JSON value's text.
pub(crate) fn parse_timestamp_json(text: &str) -> Result<Instant, String> {
    if text.starts_with('"') {
        // A string without escapes is its raw text between the quotes.
        let s: std::borrow::Cow<'_, str> = match text.get(1..text.len() - 1) {
            Some(inner) if !inner.contains(['\\', '"']) => std::borrow::Cow::Borrowed(inner),
            _ => serde_json::from_str(text).map_err(|e| format!("is not a valid string: {e}"))?,
        };
        return parse_timestamp_str(&s);
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (text.contains('.') && frac.is_empty()) {
        return Err(format!(
            "{text} is not Unix seconds (a non-negative integer or decimal) nor an RFC 3339 string"
        ));
    }
    if frac.len() > 9 {
        return Err(format!("{text} has more than nanosecond precision"));
    }
    unix_seconds(int, frac).ok_or_else(|| format!("{text} is out of range"))
}

/// A timestamp given as text (a JSON string's contents, a query parameter):
/// RFC 3339 with an offset, or Unix seconds as digits.
pub fn parse_timestamp_str(s: &str) -> Result<Instant, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return unix_seconds(s, "").ok_or_else(|| format!("{s:?} is out of range"));
    }
    let not_rfc3339 = || format!("{s:?} is not an RFC 3339 time with an offset, nor Unix seconds");
    if !is_rfc3339(s) {
        return Err(not_rfc3339());
    }
    let ts = jiff::Timestamp::from_str(s).map_err(|_| not_rfc3339())?;
    Instant::from_timestamp(ts).ok_or_else(|| format!("{s:?} is out of range"))
}

/// RFC 3339's `date-time`: `YYYY-MM-DD`, `T` (or `t`, or a space, which RFC
/// 3339 allows), `hh:mm:ss`, an optional `.` fraction, and `Z`, `z` or
/// `±hh:mm`. jiff accepts more (basic format, short offsets, annotations);
/// events.md accepts only this.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0..4) && at(4, b"-") && digits(5..7) && at(7, b"-") && digits(8..10)) {
        return false;
    }
    if !(at(10, b"Tt ")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while at(i, b"0123456789") {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6) && i + 6 == b.len()
        }
        _ => false,
    }
}

/// Whole seconds plus up to nine fraction digits, within jiff's range.
fn unix_seconds(int: &str, frac: &str) -> Option<Instant> {
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    let total = secs.checked_mul(NANOS_PER_SEC)?.checked_add(nanos)?;
    // Stay inside jiff's supported range so every Instant converts back.
    let ts = jiff::Timestamp::from_nanosecond(i128::from(total)).ok()?;
    Instant::from_timestamp(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(json: &str) -> Result<i64, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        parse_timestamp(&raw).map(|i| i.0)
    }

    #[test]
    fn accepted_timestamp_forms() {
        let secs = 1_646_647_322_i64 * NANOS_PER_SEC;
        assert_eq!(ts("1646647322"), Ok(secs));
        assert_eq!(ts("\"1646647322\""), Ok(secs));
        assert_eq!(ts("1646647322.5"), Ok(secs + 500_000_000));
        assert_eq!(ts("\"2022-03-07T10:02:02Z\""), Ok(secs));
        assert_eq!(ts("\"2022-03-07T13:02:02+03:00\""), Ok(secs));
        assert_eq!(ts("\"2022-03-07T10:02:02.000000001Z\""), Ok(secs + 1));
        assert_eq!(ts("\"2022-03-07t10:02:02z\""), Ok(secs));
        assert_eq!(ts("\"2022-03-07 10:02:02-00:00\""), Ok(secs));
    }

    #[test]
    fn rejected_timestamp_forms() {
        for bad in [
            "\"2022-03-07T10:02:02\"",
            "\"2022-03-07\"",
            "\"yesterday\"",
            "\"\"",
            "-5",
            "1.6e9",
            "1646647322.",
            "true",
            "null",
            "99999999999999999999",
            "1646647322.1234567891",
            "\"20220307T100000Z\"",
            "\"2022-03-07T10:00Z\"",
            "\"2022-03-07T10:00:00+01\"",
            "\"2022-03-07T10:00:00+0100\"",
            "\"2022-03-07T10:00:00,5Z\"",
            "\"2022-03-07T10:00:00Z[Europe/Paris]\"",
            "\"+002022-03-07T10:00:00Z\"",
            "\"2022-03-07T10:00:00.Z\"",
        ] {
            assert!(ts(bad).is_err(), "{bad} should be rejected");
        }
    }
}
