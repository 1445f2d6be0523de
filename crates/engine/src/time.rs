//! Instants and local calendar arithmetic.
//!
//! The engine keeps event time as nanoseconds since the Unix epoch (UTC):
//! cheap to compare and to store for millions of events. Local time (the
//! WABA's zone) is used only for month and era boundaries.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// A point in time, nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub i64);

pub const NANOS_PER_SEC: i64 = 1_000_000_000;
/// F7: a 24 h window is exactly 86 400 s.
pub const HOURS_24: i64 = 86_400 * NANOS_PER_SEC;
/// F7: a 72 h window is exactly 259 200 s.
pub const HOURS_72: i64 = 259_200 * NANOS_PER_SEC;

impl Instant {
    pub fn from_timestamp(ts: Timestamp) -> Option<Instant> {
        i64::try_from(ts.as_nanosecond()).ok().map(Instant)
    }

    pub fn timestamp(self) -> Timestamp {
        Timestamp::from_nanosecond(i128::from(self.0))
            .expect("i64 nanoseconds (years 1677-2262) lie inside jiff's range")
    }

    pub fn plus(self, nanos: i64) -> Instant {
        Instant(self.0.saturating_add(nanos))
    }

    /// The local calendar date of this instant in `tz`.
    pub fn local_date(self, tz: &TimeZone) -> Date {
        self.timestamp().to_zoned(tz.clone()).date()
    }

    /// RFC 3339 in UTC, seconds precision unless sub-second digits are present.
    pub fn rfc3339(self) -> String {
        self.timestamp().to_string()
    }
}

/// The instant of local midnight starting `date` in `tz`. Where midnight does
/// not exist (a DST gap at 00:00), the first instant of that day. A date
/// outside the years an [`Instant`] holds (1677-2262) gives its first or
/// last instant: every event lies after (or before) it.
pub fn local_midnight(date: Date, tz: &TimeZone) -> Instant {
    let zoned: Option<Zoned> = date.to_zoned(tz.clone()).ok();
    match zoned.and_then(|z| Instant::from_timestamp(z.timestamp())) {
        Some(at) => at,
        None if date.year() < 1970 => Instant(i64::MIN),
        None => Instant(i64::MAX),
    }
}

/// A local calendar month, e.g. 2022-03.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i16,
    month: i8,
}

impl Month {
    pub fn of(date: Date) -> Month {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> Date {
        Date::new(self.year, self.month, 1)
            .expect("a Month is made from a date or parsed as one, in years an Instant holds")
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i16 = y.parse().ok()?;
        let month: i8 = m.parse().ok()?;
        Date::new(year, month, 1).ok()?;
        // A month whose end a date cannot hold (9999-12) is no month to bill.
        if (year, month) == (9999, 12) {
            return None;
        }
        Some(Month { year, month })
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_parses_only_when_its_end_is_a_date() {
        assert_eq!(
            Month::parse("9999-11").map(|m| m.next().to_string()),
            Some("9999-12".into())
        );
        assert_eq!(Month::parse("9999-12"), None);
        assert_eq!(Month::parse("2026-13"), None);
    }
}
