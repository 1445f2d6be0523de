//! Query parameters of the platform API: the pair query of `/v1/window`
//! and `/v1/quote`, instants and months.

use std::borrow::Cow;

use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, Uri};
use wabill_engine::Instant;
use wabill_engine::time::Month;

use super::App;
use super::auth::api_key;
use super::error::{ApiError, ErrorCode};

pub(super) fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(ErrorCode::BadQuery, e.body_text())
}

/// A query parameter over its limit (events.md section 1) is refused as
/// the same string in an event would be.
pub(super) fn query_length(field: &'static str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        let e = wabill_engine::ledger::Rejection::TooLong {
            field,
            bytes: value.len(),
            max,
        };
        return Err(ApiError::new(ErrorCode::BadQuery, e.to_string()));
    }
    Ok(())
}

/// A path parameter axum could not read (not UTF-8 once decoded, …): the
/// same JSON error as a bad query, not axum's text.
pub(super) fn bad_path(e: axum::extract::rejection::PathRejection) -> ApiError {
    ApiError::new(ErrorCode::BadQuery, e.body_text())
}

/// The query of `/v1/window` and `/v1/quote`, borrowed from the request's
/// URI where it needs no percent-decoding (these are answered before every
/// message, so they are parsed without a generic deserializer).
pub(super) struct PairQuery<'q> {
    pub waba: Cow<'q, str>,
    pub phone: Cow<'q, str>,
    pub user: Cow<'q, str>,
    pub at: Option<Cow<'q, str>>,
    pub kind: Option<Cow<'q, str>>,
    pub category: Option<Cow<'q, str>>,
}

impl<'q> PairQuery<'q> {
    /// The parameters it reads, in the order of its fields.
    pub(super) const NAMES: [&'static str; 6] = ["waba", "phone", "user", "at", "kind", "category"];

    /// `waba`, `phone` and `user` are required; a parameter given twice is
    /// refused; parameters of other names are ignored.
    pub(super) fn parse(query: Option<&'q str>) -> Result<PairQuery<'q>, ApiError> {
        let mut fields: [Option<Cow<'q, str>>; 6] = Default::default();
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Most values need no decoding: borrow them.
            let (name, value) = if pair.contains(['%', '+']) {
                form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .unwrap_or_default()
            } else {
                (Cow::Borrowed(name), Cow::Borrowed(value))
            };
            let Some(i) = Self::NAMES.iter().position(|n| *n == name) else {
                continue;
            };
            if fields[i].replace(value).is_some() {
                return Err(ApiError::new(
                    ErrorCode::BadQuery,
                    format!("`{name}` is given more than once"),
                ));
            }
        }
        let [waba, phone, user, at, kind, category] = fields;
        let required = |value: Option<Cow<'q, str>>, name: &str| {
            value.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadQuery,
                    format!("missing `{name}` in the query"),
                )
            })
        };
        let (waba, phone) = (required(waba, "waba")?, required(phone, "phone")?);
        let name = wabill_engine::ledger::limits::NAME;
        query_length("waba", &waba, name)?;
        query_length("phone", &phone, name)?;
        Ok(PairQuery {
            waba,
            phone,
            user: required(user, "user")?,
            at,
            kind,
            category,
        })
    }
}

/// `at` as RFC 3339 or Unix seconds; now when absent.
pub(super) fn parse_at(at: Option<&str>) -> Result<Instant, ApiError> {
    let Some(at) = at else {
        return Instant::from_timestamp(jiff::Timestamp::now())
            .ok_or_else(|| ApiError::new(ErrorCode::Clock, "the clock is out of range"));
    };
    wabill_ingest::parse_timestamp_str(at)
        .map_err(|e| ApiError::new(ErrorCode::BadQuery, format!("`at` {e}")))
}

pub(super) fn parse_month(s: &str) -> Result<Month, ApiError> {
    Month::parse(s)
        .ok_or_else(|| ApiError::new(ErrorCode::BadQuery, format!("month {s:?} is not YYYY-MM")))
}

/// A user's number without its `+`, as the ledger keeps it.
pub(super) fn user_digits(user: &str) -> &str {
    user.strip_prefix('+').unwrap_or(user)
}

/// The window's and the quote's common start: a key allowed the pair's
/// WABA, the pair query, and its instant (`at`, default now).
pub(super) fn pair_request<'q>(
    app: &App,
    headers: &HeaderMap,
    uri: &'q Uri,
) -> Result<(PairQuery<'q>, Instant), ApiError> {
    let key = api_key(app, headers)?;
    let q = PairQuery::parse(uri.query())?;
    super::auth::scope(key, &q.waba)?;
    let at = parse_at(q.at.as_deref())?;
    let config = &app.state.config;
    super::auth::scope_at(key, config, &q.waba, at)?;
    // Rules P6: a moved number's state at `at` is the WABA's that carries
    // it then; the key must reach that one too.
    if let Some(c) = config.carrier_at(&q.waba, &q.phone, at)
        && c.waba != *q.waba
    {
        super::auth::scope_at(key, config, &c.waba, at)?;
    }
    Ok((q, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_queries_decode_their_values_and_refuse_missing_or_repeated_names() {
        let q = PairQuery::parse(Some(
            "waba=W1&phone=P1&user=%2B5511999990001&x=1&at=2025-06-01T10%3A00%3A00Z",
        ))
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(
            (&*q.waba, &*q.phone, &*q.user),
            ("W1", "P1", "+5511999990001")
        );
        assert_eq!(q.at.as_deref(), Some("2025-06-01T10:00:00Z"));
        assert!(q.kind.is_none() && q.category.is_none());
        let missing = PairQuery::parse(Some("waba=W1&user=1"))
            .err()
            .map(|e| e.message);
        assert_eq!(missing.as_deref(), Some("missing `phone` in the query"));
        let twice = PairQuery::parse(Some("waba=W1&waba=W2&phone=P&user=1"))
            .err()
            .map(|e| e.message);
        assert_eq!(twice.as_deref(), Some("`waba` is given more than once"));
        assert!(PairQuery::parse(None).is_err());
    }
}
