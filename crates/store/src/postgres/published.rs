//! What the published tables need of PostgreSQL: a month's records
//! written again, and the text PostgreSQL cannot hold made so that it can
//! (a NUL, nanoseconds).

use postgres::types::ToSql;

use crate::PublishedMonth;

/// A month's records, replacing those it had.
pub(super) fn replace_records(
    tx: &mut postgres::Transaction<'_>,
    m: &PublishedMonth,
    revision: i32,
) -> Result<(), postgres::Error> {
    tx.execute(
        "DELETE FROM conversation_records WHERE waba = $1 AND month = $2",
        &[&no_nul(&m.waba), &no_nul(&m.month)],
    )?;
    let insert = tx.prepare(
        "INSERT INTO conversation_records
         (waba, month, n, phone, user_id, start_at, end_at, era, category, market,
          free, unit_price, opened_by, messages, revision, record)
         VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz, $7::text::timestamptz,
                 $8, $9, $10, $11, $12::text::numeric, $13, $14, $15, $16::text::jsonb)",
    )?;
    for (n, r) in m.records.iter().enumerate() {
        let (start, end) = (micros(&r.start), micros(&r.end));
        let text = [
            &m.waba,
            &m.month,
            &r.phone,
            &r.user,
            &r.era,
            &r.category,
            &r.market,
            &r.free,
            &r.opened_by,
        ]
        .map(|t| no_nul(t));
        let json = no_nul_json(&r.json);
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        let messages = i32::try_from(r.messages).unwrap_or(i32::MAX);
        let params: [&(dyn ToSql + Sync); 16] = [
            &text[0],
            &text[1],
            &n,
            &text[2],
            &text[3],
            &start,
            &end,
            &text[4],
            &text[5],
            &text[6],
            &text[7],
            &r.unit_price,
            &text[8],
            &messages,
            &revision,
            &json,
        ];
        tx.execute(&insert, &params)?;
    }
    Ok(())
}

/// PostgreSQL's text holds no NUL character (an id may, in a JSON escape):
/// in its tables one shows as U+FFFD; the log keeps the exact line.
pub(super) fn no_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// [`no_nul`] for JSON text, which `jsonb` refuses with `\u0000` in it.
pub(super) fn no_nul_json(json: &str) -> std::borrow::Cow<'_, str> {
    if json.contains("\\u0000") {
        std::borrow::Cow::Owned(json.replace("\\u0000", "\\ufffd"))
    } else {
        std::borrow::Cow::Borrowed(json)
    }
}

/// An RFC 3339 time cut to microseconds, the most `TIMESTAMPTZ` keeps:
/// PostgreSQL would round the nanoseconds, and a time a moment before
/// midnight would land in the next day (and month). The record's JSON
/// keeps the exact time.
fn micros(ts: &str) -> String {
    let Some(dot) = ts.find('.') else {
        return ts.to_owned();
    };
    let digits = ts[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(ts.len() - dot - 1);
    if digits <= 6 {
        return ts.to_owned();
    }
    format!("{}{}", &ts[..dot + 7], &ts[dot + 1 + digits..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_time_is_cut_to_microseconds_never_rounded() {
        assert_eq!(
            super::micros("2025-07-31T23:59:59.9999996Z"),
            "2025-07-31T23:59:59.999999Z"
        );
        assert_eq!(
            super::micros("2025-07-31T23:59:59.5Z"),
            "2025-07-31T23:59:59.5Z"
        );
        assert_eq!(
            super::micros("2025-07-31T23:59:59Z"),
            "2025-07-31T23:59:59Z"
        );
        assert_eq!(
            super::micros("2025-07-31T23:59:59.123456789+02:00"),
            "2025-07-31T23:59:59.123456+02:00"
        );
    }
}
