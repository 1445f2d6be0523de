//! The platform API (service.md), behind bearer keys scoped to WABAs:
//! `POST /v1/events`, the window, invoices and conversation records.
//! (`/v1/quote` is in [`super::quote`].)

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use wabill_engine::billing::Record;
use wabill_engine::era::EraClock;
use wabill_engine::live::{self, PairLog, TimelineEntry};
use wabill_engine::time::Month;
use wabill_engine::{Billing, Incremental, Instant, RateBook};
use wabill_ingest::{Parsed, Route, Shape, parse_line};
use wabill_report::MetaJson;

use super::auth::{api_key, scope, scope_event, scope_month};
use super::error::{ApiError, ErrorCode};
use super::query::{PairQuery, bad_path, bad_query, pair_request, parse_month, user_digits};
use super::webhooks::commit;
use super::{Answer, App, MAX_EVENTS_PER_REQUEST, Shared, bad_body, not_empty, rejected, utf8};
use crate::state::{Settled, Write};
use crate::store::LogRow;

/// `POST /v1/events`' answer (service.md), keys in byte order.
#[derive(Serialize)]
pub(super) struct EventsAnswer {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<Refused>,
}

/// An item of `POST /v1/events` that was not stored, and why.
#[derive(Serialize)]
pub(super) struct Refused {
    pub index: usize,
    pub reason: String,
}

pub(super) async fn post_events(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let key = api_key(&app, &headers)?;
    // As for webhooks: nothing at all is refused, an empty list is not.
    let text = not_empty(utf8(&body, "api")?, "api")?;
    // Items: the lines of NDJSON, or the elements of a JSON array.
    let items: Vec<&str> = if text.trim_start().starts_with('[') {
        let raw: Vec<&serde_json::value::RawValue> = serde_json::from_str(text)
            .map_err(|e| bad_body("api", format!("not a JSON array of events: {e}")))?;
        raw.into_iter()
            .map(serde_json::value::RawValue::get)
            .collect()
    } else {
        text.lines().filter(|l| !l.trim().is_empty()).collect()
    };
    if items.len() > MAX_EVENTS_PER_REQUEST {
        rejected("api", items.len() as u64);
        return Err(ApiError::new(
            ErrorCode::TooManyEvents,
            format!(
                "{} events; at most {MAX_EVENTS_PER_REQUEST} per request",
                items.len()
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    let mut parsed = Parsed::default();
    let mut facts = Vec::new();
    app.validate(|validator| {
        for (index, item) in items.iter().enumerate() {
            parsed.clear();
            facts.clear();
            let outcome = match parse_line(item, Route::default(), &mut parsed) {
                Ok(Shape::Normalized) => {
                    // The platform's own events have no provider to hold
                    // them to, unless a line names the one it came through
                    // (`wabill export` writes it); the log keeps it as the
                    // line's source.
                    validator.set_provider(parsed.provider);
                    validator
                        .check_group(&parsed.events, &mut facts)
                        .map_err(|e| e.to_string())
                }
                Ok(_) => Err("not a normalized event (events.md section 1)".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => {
                    for (e, f) in parsed.events.iter().zip(&facts) {
                        scope_event(key, &app.state.config, e)?;
                        let mut row = LogRow::of((e, f.clone()));
                        row.source = parsed.provider.map(|p| p.as_str());
                        rows.push(row);
                    }
                }
                Err(reason) => refused.push(Refused { index, reason }),
            }
        }
        Ok(())
    })?;
    rejected("api", refused.len() as u64);
    let applied = commit(&app, Write::rows(rows), "api").await?;
    Ok(axum::Json(EventsAnswer {
        accepted: applied.accepted,
        duplicates: applied.duplicates,
        rejected: refused,
    })
    .into_response())
}

/// The era timeline resolved in a WABA's zone, computed once per WABA.
pub(super) fn clock_of(app: &App, waba: &str) -> Arc<EraClock> {
    let mut clocks = app
        .clocks
        .lock()
        // A cache of clocks computed whole: a panic elsewhere leaves it usable.
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(clock) = clocks.get(waba) {
        return Arc::clone(clock);
    }
    let config = &app.state.config;
    let clock = Arc::new(EraClock::new(&config.timeline, &config.waba(waba).timezone));
    // Bounded: a key for all WABAs may ask about any name.
    if clocks.len() < 100_000 {
        clocks.insert(waba.to_owned(), Arc::clone(&clock));
    }
    clock
}

/// Runs `f` on the pair's log (empty when the pair has no traffic) under
/// the engine's read lock.
pub(super) fn with_pair<R>(app: &App, q: &PairQuery, f: impl FnOnce(&PairLog) -> R) -> R {
    let engine = app.state.read();
    match engine.pair_log_of(&q.waba, &q.phone, user_digits(&q.user)) {
        Some(log) => f(log),
        None => f(&PairLog::default()),
    }
}

pub(super) async fn get_window(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    let (q, at) = pair_request(&app, &headers, &uri)?;
    super::quote::user_of(&app, &q.user)?;
    let clock = clock_of(&app, &q.waba);
    let w = with_pair(&app, &q, |log| live::window(log, &clock, at));
    Ok(axum::Json(WindowAnswer {
        csw_expires_at: w.csw_expires_at.map(Instant::rfc3339),
        csw_open: w.csw_expires_at.is_some(),
        free_entry_point_until: w.free_entry_point_until.map(Instant::rfc3339),
        freeform_allowed: w.freeform_allowed(),
        open_conversations: w
            .open_conversations
            .iter()
            .map(|c| OpenConversation {
                category: c.category.as_str(),
                era: c.era.as_str(),
                expires_at: c.end.rfc3339(),
                started_at: c.start.rfc3339(),
            })
            .collect(),
        template_required: !w.freeform_allowed(),
    })
    .into_response())
}

/// `GET /v1/window`'s answer (service.md), keys in byte order.
#[derive(Serialize)]
pub(super) struct WindowAnswer {
    pub csw_expires_at: Option<String>,
    pub csw_open: bool,
    pub free_entry_point_until: Option<String>,
    pub freeform_allowed: bool,
    pub open_conversations: Vec<OpenConversation>,
    pub template_required: bool,
}

#[derive(Serialize)]
pub(super) struct OpenConversation {
    pub category: &'static str,
    pub era: &'static str,
    pub expires_at: String,
    pub started_at: String,
}

pub(super) async fn get_invoice(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let Path((waba, month)) = path.map_err(bad_path)?;
    scope(key, &waba)?;
    let month = parse_month(&month)?;
    scope_month(key, &waba, month)?;
    settled_json(&app, move |settled| {
        let m = settled.billed.month(&waba, month).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                // cli.md: an invoice exists only where something was billed.
                format!(
                    "no invoice for WABA {waba:?} in {month}: no conversation or priced message (yet)"
                ),
            )
        })?;
        match &m.invoice {
            Ok(invoice) => {
                // Rules P6: counts only where some phone has periods (no
                // engine lock taken otherwise).
                let off = if settled.config().phones.is_empty() {
                    wabill_report::OffPeriod::default()
                } else {
                    wabill_report::OffPeriod::of(settled.engine().ledger())
                };
                Ok(wabill_report::InvoiceJson::from(invoice).flagged(&off, invoice))
            }
            Err(errors) => Err(super::error::cannot_bill(errors)),
        }
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct ConversationsQuery {
    waba: String,
    month: String,
    phone: Option<String>,
    user: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// A record's place in the listing order (cli.md: start, phone, user,
/// then the id of the message that opened it), as the cursor carries it:
/// a page resumes after the last record shown, whatever arrived since.
pub(super) type ListKey = (i64, String, String, String);

fn list_key(ledger: &wabill_engine::Ledger, r: &Record) -> ListKey {
    let (_, phone, user) = ledger.pair_names(r.pair);
    (
        r.start.0,
        phone.to_owned(),
        user.to_owned(),
        ledger.message_id(r.opened_by).to_owned(),
    )
}

pub(super) fn encode_cursor(key: &ListKey) -> String {
    hex::encode(serde_json::to_string(key).unwrap_or_default())
}

fn decode_cursor(cursor: &str) -> Option<ListKey> {
    let bytes = hex::decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(super) async fn get_conversations(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    query: Result<Query<ConversationsQuery>, QueryRejection>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let Query(q) = query.map_err(bad_query)?;
    scope(key, &q.waba)?;
    let month = parse_month(&q.month)?;
    // A customer's key reads the records of the days the WABA was its.
    let dates = if key.allows_month(&q.waba, month) {
        None
    } else {
        let first = month.first_day();
        let whole = wabill_engine::customers::Span {
            from: Some(first),
            to: Some(month.next().first_day()),
        };
        let spans = key.dates_of(&q.waba).unwrap_or_default();
        if !spans.iter().any(|s| s.overlaps(&whole)) {
            scope_month(key, &q.waba, month)?;
        }
        Some(spans)
    };
    if let Some(user) = &q.user {
        super::quote::user_of(&app, user)?;
    }
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let after = match &q.cursor {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::new(ErrorCode::BadQuery, "`cursor` is not one this service gave")
        })?),
    };
    let book = Arc::clone(&app.state.book);
    settled_json(&app, move |settled| {
        Ok(conversations_page(
            settled,
            &book,
            (&q, dates.as_deref()),
            month,
            limit,
            after.as_ref(),
        ))
    })
    .await
}

/// One page of a WABA-month's conversations, each with the timeline of
/// messages that explains it. The records are billed as of the settle the
/// read waited for; each timeline lists the pair's messages as the engine
/// holds them when that item is built (a message folded since the settle
/// may show in a timeline before its record counts it). The engine is
/// read one item at a time, so that the writer folds in between.
fn conversations_page(
    settled: &Settled<'_>,
    book: &RateBook,
    (q, dates): (
        &ConversationsQuery,
        Option<&[wabill_engine::customers::Span]>,
    ),
    month: Month,
    limit: usize,
    after: Option<&ListKey>,
) -> ConversationsPage {
    // A month's records are kept in A5's order, (start, phone, user,
    // opener id) within its WABA: the list's order, so a page starts where
    // the cursor falls and reads no further than it shows.
    let records = settled
        .billed
        .month(&q.waba, month)
        .map_or(&[][..], |m| &m.records[..]);
    let kept: Vec<Record>;
    let records = match dates {
        None => records,
        Some(spans) => {
            let zone = &settled.config().waba(&q.waba).timezone;
            kept = records
                .iter()
                .filter(|r| spans.iter().any(|s| s.contains(r.start.local_date(zone))))
                .cloned()
                .collect();
            &kept[..]
        }
    };
    let (page, more) = page_records(&settled.engine(), records, q, limit, after);
    let items: Vec<ConversationItem> = page
        .iter()
        .map(|r| {
            let engine = settled.engine();
            let billing = Billing {
                ledger: engine.ledger(),
                book,
                months: Vec::new(),
            };
            let timeline = engine
                .pair_log(r.pair)
                .map(|log| log.timeline(r.start, r.end))
                .unwrap_or_default();
            // A pair's messages are its WABA's (rules F6).
            let waba = engine.ledger().pair_names(r.pair).0;
            let verdict_of = |id: &str| {
                let v = engine.ledger().verdict_of(waba, id)?;
                Some(MetaJson::from(v).into_owned())
            };
            conversation_item(
                &wabill_report::conversation_json(&billing, r),
                &timeline,
                verdict_of,
            )
        })
        .collect();
    let next_cursor = page
        .last()
        .filter(|_| more)
        .map(|r| encode_cursor(&list_key(settled.engine().ledger(), r)));
    ConversationsPage {
        conversations: items,
        next_cursor,
    }
}

/// The records of a page (after the cursor, matching the query's phone
/// and user), and whether more follow.
fn page_records<'r>(
    engine: &Incremental,
    records: &'r [Record],
    q: &ConversationsQuery,
    limit: usize,
    after: Option<&ListKey>,
) -> (Vec<&'r Record>, bool) {
    let ledger = engine.ledger();
    let from = after.map_or(0, |after| {
        records.partition_point(|r| {
            let (_, phone, user) = ledger.pair_names(r.pair);
            let key = (r.start.0, phone, user, ledger.message_id(r.opened_by));
            key <= (
                after.0,
                after.1.as_str(),
                after.2.as_str(),
                after.3.as_str(),
            )
        })
    });
    let user = q.user.as_deref().map(user_digits);
    // One pair asked for: compare pair indices, not the names of every
    // record of the month.
    let pair = match (q.phone.as_deref(), user) {
        (Some(phone), Some(user)) => {
            // Rules P6: a moved number's pairs are its first WABA's.
            let config = ledger.config();
            let waba = config.identity_waba(&q.waba, phone).unwrap_or(&q.waba);
            Some(ledger.pair_index(waba, phone, user))
        }
        _ => None,
    };
    let mut records: Vec<&Record> = records[from..]
        .iter()
        .filter(|r| match pair {
            Some(pair) => pair == Some(r.pair),
            None => {
                let (_, phone, u) = ledger.pair_names(r.pair);
                q.phone.as_deref().is_none_or(|p| p == phone) && user.is_none_or(|x| x == u)
            }
        })
        .take(limit + 1)
        .collect();
    let more = records.len() > limit;
    records.truncate(limit);
    (records, more)
}

/// `GET /v1/conversations`' answer (service.md), keys in byte order.
#[derive(Serialize)]
pub(super) struct ConversationsPage {
    pub conversations: Vec<ConversationItem>,
    pub next_cursor: Option<String>,
}

/// A conversation record (cli.md) with the timeline of messages that
/// explains it. Its keys, and its timeline entries', are in byte order, as
/// they have always been answered.
#[derive(Serialize)]
pub(super) struct ConversationItem {
    category: &'static str,
    end: String,
    era: &'static str,
    free: &'static str,
    market: String,
    messages: u32,
    /// Meta's verdict on the opening message (issue 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<MetaJson<'static>>,
    opened_by: String,
    phone: String,
    start: String,
    timeline: Vec<TimelineItem>,
    unit_price: String,
    user: String,
    waba: String,
}

#[derive(Serialize)]
struct TimelineItem {
    id: String,
    /// Meta's verdict on the message, on its delivery (issue 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<MetaJson<'static>>,
    /// `entry_point`, on an inbound message from a free entry point.
    #[serde(skip_serializing_if = "Option::is_none")]
    referral: Option<String>,
    /// The template category, on an outbound template.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    ts: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A record and its timeline as answered; `verdict_of` gives Meta's verdict
/// on a message by id (on its delivery's entry).
pub(super) fn conversation_item(
    record: &wabill_report::ConversationJson<'_>,
    timeline: &[TimelineEntry],
    verdict_of: impl Fn(&str) -> Option<MetaJson<'static>>,
) -> ConversationItem {
    let detail = |e: &TimelineEntry, key: &str| e.detail.clone().filter(|_| e.detail_key == key);
    ConversationItem {
        category: record.category,
        end: record.end.clone(),
        era: record.era,
        free: record.free,
        market: record.market.to_owned(),
        messages: record.messages,
        meta: record.meta.clone().map(MetaJson::into_owned),
        opened_by: record.opened_by.to_owned(),
        phone: record.phone.to_owned(),
        start: record.start.clone(),
        timeline: timeline
            .iter()
            .map(|e| TimelineItem {
                id: e.id.clone(),
                meta: (e.kind == "delivered").then(|| verdict_of(&e.id)).flatten(),
                referral: detail(e, "referral"),
                template: detail(e, "template"),
                ts: e.at.rfc3339(),
                kind: e.kind,
            })
            .collect(),
        unit_price: record.unit_price.clone(),
        user: record.user.to_owned(),
        waba: record.waba.to_owned(),
    }
}

/// Runs `f` with every fold so far billed, off the async workers
/// (settling re-rates what changed since the last read).
pub(super) async fn settled<R: Send + 'static>(
    app: &App,
    f: impl FnOnce(&Settled<'_>) -> R + Send + 'static,
) -> Result<R, ApiError> {
    app.state.settled(f).await.ok_or_else(billing_failed)
}

/// [`settled`] for an answer of JSON, encoded on a reading thread (a large
/// one would hold up the webhooks queued on an async worker), exactly as
/// `axum::Json` would answer it.
pub(super) async fn settled_json<T: Serialize + Send + 'static>(
    app: &App,
    f: impl FnOnce(&Settled<'_>) -> Result<T, ApiError> + Send + 'static,
) -> Answer {
    let json = app
        .state
        .settled_encoded(f, |built| built.map(|value| serde_json::to_vec(&value)))
        .await
        .ok_or_else(billing_failed)??
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response())
}

fn billing_failed() -> ApiError {
    ApiError::new(ErrorCode::Internal, "billing failed")
}
