//! The quarantine (events.md section 5): items of webhook bodies that gave
//! no event, listed (`GET /v1/quarantine`) and read again under today's
//! configuration (`POST /v1/quarantine/reprocess`), scoped by API key like
//! every other read and write.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxState};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use wabill_engine::Validator;
use wabill_ingest::{Parsed, Route, Shape, parse_line};

use super::auth::{api_key, key_scope, scope, scope_event};
use super::error::{ApiError, ErrorCode};
use super::query::bad_query;
use super::webhooks::{check_items, commit};
use super::{Answer, App, Shared};
use crate::config::ApiKey;
use crate::config::Provider;
use crate::state::Write;
use crate::store::{Held, LogRow};

#[derive(Deserialize)]
pub(super) struct QuarantineQuery {
    waba: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ReprocessQuery {
    waba: Option<String>,
    cursor: Option<String>,
}

const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Most items one re-processing request reads again; `more` says whether
/// others wait.
const MAX_REPROCESS: usize = 10_000;

/// A held item as `GET /v1/quarantine` shows it, keys in byte order.
#[derive(Serialize)]
pub(super) struct HeldItem {
    pub id: i64,
    /// The item's JSON as received.
    pub item: Box<RawValue>,
    pub path: String,
    pub reason: String,
    pub received_at: String,
    pub route: Option<String>,
    pub source: &'static str,
    pub waba: Option<String>,
}

#[derive(Serialize)]
pub(super) struct QuarantinePage {
    pub items: Vec<HeldItem>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/quarantine/reprocess`' answer, keys in byte order.
#[derive(Serialize)]
pub(super) struct ReprocessAnswer {
    /// Events of released items stored now, and those stored before.
    pub accepted: u64,
    pub duplicates: u64,
    /// Whether more held items in scope wait for another request.
    pub more: bool,
    /// Where the next request starts (`?cursor=`), when more wait.
    pub next_cursor: Option<String>,
    /// Items that now read and left the quarantine.
    pub released: usize,
    pub reprocessed: usize,
    /// Items still held, with today's reason.
    pub still_quarantined: Vec<StillHeld>,
}

#[derive(Serialize)]
pub(super) struct StillHeld {
    pub id: i64,
    pub path: String,
    pub reason: String,
}

pub(super) fn held_item(h: Held) -> HeldItem {
    let item = RawValue::from_string(h.item.item.clone())
        .or_else(|_| serde_json::value::to_raw_value(&h.item.item))
        .unwrap_or_default();
    HeldItem {
        id: h.id,
        item,
        path: h.item.path,
        reason: h.item.reason,
        received_at: h.received_at,
        route: Some(h.route).filter(|r| !r.is_empty()),
        source: h.source,
        waba: h.item.waba,
    }
}

/// The key after which a page starts (a `next_cursor` this service gave).
fn cursor_after(cursor: Option<&str>) -> Result<i64, ApiError> {
    cursor.map_or(Ok(0), |c| {
        c.parse::<i64>().map_err(|_| {
            ApiError::new(ErrorCode::BadQuery, "`cursor` is not one this service gave")
        })
    })
}

pub(super) async fn get_quarantine(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    query: Result<Query<QuarantineQuery>, QueryRejection>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let Query(q) = query.map_err(bad_query)?;
    if let Some(waba) = &q.waba {
        scope(key, waba)?;
    }
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let after = cursor_after(q.cursor.as_deref())?;
    let (page, more) = app
        .state
        .quarantine
        .page(&key_scope(key), q.waba.as_deref(), after, limit);
    let next_cursor = page.last().filter(|_| more).map(|h| h.id.to_string());
    let items = page.into_iter().map(held_item).collect();
    Ok(axum::Json(QuarantinePage { items, next_cursor }).into_response())
}

/// Reads a held item's body again, as its route is configured today.
fn reread<'b>(app: &App, held: &'b Held, out: &mut Parsed<'b>) -> Result<(), String> {
    let body = held.item.body.as_str();
    if body.is_empty() {
        return Err(format!(
            "{} (a malformed entry or change: it cannot be read again on its own)",
            held.item.reason
        ));
    }
    let route = || {
        app.service
            .routes
            .get(&held.route)
            .ok_or_else(|| format!("route {:?} is no longer configured", held.route))
    };
    match held.source {
        "meta" => match parse_line(body, Route::default(), out) {
            Ok(Shape::CloudApi | Shape::Blank) => Ok(()),
            Ok(_) => Err("not a Cloud API body".to_owned()),
            Err(e) => Err(e.to_string()),
        },
        "360dialog" => {
            let r = route().and_then(|r| {
                (r.provider == Provider::Dialog360)
                    .then_some(r)
                    .ok_or_else(|| format!("route {:?} is not a 360dialog route", held.route))
            })?;
            let route = Route {
                waba: Some(&r.waba),
                phone: Some(&r.phone),
                provider: None,
            };
            parse_line(body, route, out)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        "zendesk" => {
            let r = route().and_then(|r| {
                (r.provider == Provider::Zendesk)
                    .then_some(r)
                    .ok_or_else(|| format!("route {:?} is not a zendesk route", held.route))
            })?;
            let map = wabill_ingest::SunshineMap {
                waba: &r.waba,
                phone: &r.phone,
                users: &r.users,
            };
            wabill_ingest::parse_sunshine(body, &map, out).map_err(|e| e.to_string())
        }
        other => Err(format!("items of source {other:?} cannot be read again")),
    }
}

/// What re-reading the held items gave: what to write (the released
/// items' events), and the items still held.
#[derive(Default)]
struct Reread {
    write: Write,
    still: Vec<StillHeld>,
}

fn reread_all(app: &App, held: &[Held], key: &ApiKey, v: &mut Validator) -> Reread {
    let mut out = Reread::default();
    for h in held {
        let mut parsed = Parsed::default();
        let mut facts = Vec::new();
        v.set_provider(wabill_engine::carriers::Provider::parse(h.source));
        let read =
            reread(app, h, &mut parsed).and_then(|()| check_items(&mut parsed, v, &mut facts));
        let reason = match read {
            Err(reason) => Some(reason),
            Ok(()) => parsed.quarantined.first().map(|q| q.reason.clone()),
        };
        let key_scope = key_scope(key);
        let foreign = parsed.events.iter().find(|e| !key_scope.allows(&e.waba));
        let reason = reason
            .or_else(|| {
                foreign.map(|e| format!("its events are of WABA {:?}, outside this key", e.waba))
            })
            .or_else(|| {
                let mut events = parsed.events.iter();
                let refused = events.find_map(|e| scope_event(key, &app.state.config, e).err());
                refused.map(|e| format!("its events are outside this key: {}", e.message))
            });
        match reason {
            Some(reason) => out.still.push(StillHeld {
                id: h.id,
                path: h.item.path.clone(),
                reason,
            }),
            None => {
                let rows = parsed.events.iter().zip(facts).map(LogRow::of);
                // Logged as its provider's: a replay flags it alike (rules P6).
                out.write.rows.extend(rows.map(|row| LogRow {
                    source: Some(h.source),
                    ..row
                }));
                out.write.released.push(h.id);
            }
        }
    }
    out
}

pub(super) async fn reprocess(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    query: Result<Query<ReprocessQuery>, QueryRejection>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let Query(q) = query.map_err(bad_query)?;
    if let Some(waba) = &q.waba {
        scope(key, waba)?;
    }
    let key_scope = key_scope(key);
    let after = cursor_after(q.cursor.as_deref())?;
    let (held, more) =
        app.state
            .quarantine
            .page(&key_scope, q.waba.as_deref(), after, MAX_REPROCESS);
    let next_cursor = held.last().filter(|_| more).map(|h| h.id.to_string());
    let reread = app.validate(|v| reread_all(&app, &held, key, v));
    let released = reread.write.released.len();
    let applied = commit(&app, reread.write, "quarantine").await?;
    Ok(axum::Json(ReprocessAnswer {
        accepted: applied.accepted,
        duplicates: applied.duplicates,
        more,
        next_cursor,
        released,
        reprocessed: held.len(),
        still_quarantined: reread.still,
    })
    .into_response())
}
