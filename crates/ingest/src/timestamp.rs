use std::str::FromStr;

use serde_json::value::RawValue;
use wabill_engine::Instant;
use wabill_engine::time::NANOS_PER_SEC;

/// events.md: an RFC 3339 string with an offset (sub-second digits kept to
/// the nanosecond), or Unix seconds as a JSON number (integer or decimal) or
/// a string of digits. Anything else is rejected; the error completes the
/// sentence "`ts` …".
pub fn parse_timestamp(raw: &RawValue) -> Result<Instant, String> {
    let text = raw.get();
    if text.starts_with('"') {
        // A string without escapes is its raw text between the quotes.
        let s: std::borrow::Cow<'_, str> = match text.get(1..text.len() - 1) {
            Some(inner) if !inner.contains(['\\', '"']) => std::borrow::Cow::Borrowed(inner),
            _ => serde_json::from_str(text).map_err(|e| format!("is not a valid string: {e}"))?,
        };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return unix_seconds(&s, "").ok_or_else(|| format!("{s:?} is out of range"));
        }
        let ts = jiff::Timestamp::from_str(&s).map_err(|_| {
            format!("{s:?} is not an RFC 3339 time with an offset, nor Unix seconds")
        })?;
        return Instant::from_timestamp(ts).ok_or_else(|| format!("{s:?} is out of range"));
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
        ] {
            assert!(ts(bad).is_err(), "{bad} should be rejected");
        }
    }
}
