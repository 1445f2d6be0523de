//! The providers' webhooks (Meta's Cloud API with its verification
//! handshake, 360dialog and Zendesk routes), and what every write shares:
//! a body read item by item (events.md section 5), its good events and its
//! quarantined items handed to the writer, answered once durable.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use wabill_engine::ledger::Rejection;
use wabill_engine::{Facts, Validator};
use wabill_ingest::{Parsed, Route, Shape, parse_line};

use super::auth::{route_of, same_secret, signature_ok};
use super::error::{ApiError, ErrorCode};
use super::query::{bad_path, bad_query};
use super::{Answer, App, Shared, bad_body, not_empty, utf8};
use crate::config::Provider;
use crate::state::{Applied, Job, JobError, Write};
use crate::store::{Held, LogRow};

/// Meta's verification handshake (`GET /webhooks/meta`).
#[derive(Deserialize)]
pub(super) struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

pub(super) async fn meta_verify(
    AxState(app): AxState<Shared>,
    query: Result<Query<Handshake>, QueryRejection>,
) -> Answer {
    let Query(q) = query.map_err(bad_query)?;
    let Some(expected) = &app.meta_verify_token else {
        return Err(ApiError::new(
            ErrorCode::NotConfigured,
            "no [meta] table is configured",
        ));
    };
    let ok = q.mode.as_deref() == Some("subscribe")
        && q.verify_token
            .as_deref()
            .is_some_and(|t| same_secret(t.as_bytes(), expected));
    match (ok, q.challenge) {
        (true, Some(challenge)) => Ok((StatusCode::OK, challenge).into_response()),
        _ => Err(ApiError::new(
            ErrorCode::VerifyTokenMismatch,
            "hub.mode or hub.verify_token does not match",
        )),
    }
}

pub(super) async fn meta_webhook(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    if !signature_ok(&app, &headers, &body) {
        super::rejected("meta", 1);
        return Err(ApiError::new(
            ErrorCode::BadSignature,
            "X-Hub-Signature-256 is missing or does not match the body",
        ));
    }
    let text = not_empty(utf8(&body, "meta")?, "meta")?;
    let mut parsed = Parsed::default();
    match parse_line(text, Route::default(), &mut parsed) {
        Ok(Shape::CloudApi | Shape::Blank) => {}
        Ok(_) => {
            return Err(bad_body(
                "meta",
                "not a WhatsApp Cloud API webhook body (`object` missing)",
            ));
        }
        Err(e) => return Err(bad_body("meta", e.to_string())),
    }
    store_body(&app, parsed, "meta", "").await
}

pub(super) async fn dialog_webhook(
    AxState(app): AxState<Shared>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let Path(name) = name.map_err(bad_path)?;
    route_webhook(&app, &name, Provider::Dialog360, &headers, body).await
}

pub(super) async fn zendesk_webhook(
    AxState(app): AxState<Shared>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let Path(name) = name.map_err(bad_path)?;
    route_webhook(&app, &name, Provider::Zendesk, &headers, body).await
}

/// A provider route's body: its static secret checked, parsed with the
/// route's WABA and phone (and, for Zendesk, its user mapping), then stored
/// as one group within the route's WABA.
async fn route_webhook(
    app: &App,
    name: &str,
    provider: Provider,
    headers: &HeaderMap,
    body: Bytes,
) -> Answer {
    let route = route_of(app, name, provider, headers)?;
    let source = provider.as_str();
    let text = not_empty(utf8(&body, source)?, source)?;
    let mut parsed = Parsed::default();
    match provider {
        Provider::Dialog360 => {
            let r = Route {
                waba: Some(&route.waba),
                phone: Some(&route.phone),
                provider: None,
            };
            match parse_line(text, r, &mut parsed) {
                Ok(Shape::OnPremises | Shape::Blank) => {}
                Ok(_) => {
                    return Err(bad_body(
                        source,
                        "not an On-Premises webhook body (`messages` or `statuses`)",
                    ));
                }
                Err(e) => return Err(bad_body(source, e.to_string())),
            }
        }
        Provider::Zendesk => {
            let map = wabill_ingest::SunshineMap {
                waba: &route.waba,
                phone: &route.phone,
                users: &route.users,
            };
            wabill_ingest::parse_sunshine(text, &map, &mut parsed)
                .map_err(|e| bad_body(source, e.to_string()))?;
        }
    }
    store_body(app, parsed, source, name).await
}

/// Most items of one body the service quarantines: a body with more bad
/// items is refused whole (it is no provider's real traffic, and holding
/// them would cost the log more than the body).
pub const MAX_QUARANTINED_PER_BODY: usize = 1000;

/// A webhook's answer (service.md), keys in byte order.
#[derive(Debug, Default, Serialize)]
pub(super) struct BodyAnswer {
    pub accepted: u64,
    pub duplicates: u64,
    /// Items that are no billing events, per kind.
    pub ignored: BTreeMap<String, u64>,
    pub quarantined: Vec<Spot>,
}

/// A quarantined item: where it was in its body, and why.
#[derive(Debug, Serialize)]
pub(super) struct Spot {
    pub path: String,
    pub reason: String,
}

/// Now, for the quarantine's `received_at` (people's information: billing
/// never reads the clock).
pub(super) fn received_now() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Second).unwrap_or(now).to_string()
}

/// Validates a body's events one by one ([`Parsed::check_items`]): an
/// item whose event the validator refuses is quarantined, unless a string
/// of it is over its limit (events.md section 1): such an item is no real
/// traffic, and holding it would keep the string after all, so the body is
/// refused whole (the error names the field and the limit).
pub(crate) fn check_items(
    parsed: &mut Parsed<'_>,
    v: &mut Validator,
    facts: &mut Vec<Facts>,
) -> Result<(), String> {
    let mut too_long = None;
    parsed.check_items(
        |e| {
            v.check_event(e).map_err(|r| {
                if matches!(r, Rejection::TooLong { .. }) {
                    too_long.get_or_insert_with(|| r.to_string());
                }
                r.to_string()
            })
        },
        facts,
    )?;
    match too_long {
        Some(reason) => Err(format!(
            "an item of the body is refused, nothing stored: {reason}"
        )),
        None => Ok(()),
    }
}

/// The largest item the quarantine holds (its JSON as received): far above
/// a real message or status, so that held items cannot fill memory and
/// disk a megabyte at a time.
const MAX_HELD_ITEM_BYTES: usize = 64 * 1024;

/// Whether the quarantine may hold a body's unreadable items: each within
/// [`MAX_HELD_ITEM_BYTES`], at most [`MAX_QUARANTINED_PER_BODY`] of them;
/// else why the body is refused whole (the service's webhooks and `wabill
/// import` alike).
pub(crate) fn holdable(parsed: &Parsed<'_>) -> Result<(), String> {
    if let Some(big) = parsed
        .quarantined
        .iter()
        .find(|q| q.item.len() > MAX_HELD_ITEM_BYTES)
    {
        return Err(format!(
            "item {} of the body cannot be read and is {} bytes long, over the {MAX_HELD_ITEM_BYTES} the quarantine holds; nothing stored",
            big.path,
            big.item.len()
        ));
    }
    if parsed.quarantined.len() > MAX_QUARANTINED_PER_BODY {
        return Err(format!(
            "{} items of the body cannot be read (at most {MAX_QUARANTINED_PER_BODY} are held per body); nothing stored",
            parsed.quarantined.len()
        ));
    }
    Ok(())
}

/// Validates a body's events one by one (an item whose event is refused is
/// quarantined, as a malformed one is), then logs the good events and the
/// quarantined items durably and folds the events in.
async fn store_body(
    app: &App,
    mut parsed: Parsed<'_>,
    source: &'static str,
    route: &str,
) -> Answer {
    let mut facts = Vec::new();
    app.validate(|v| {
        // Rules P6: the provider is the webhook's.
        v.set_provider(wabill_engine::carriers::Provider::parse(source));
        check_items(&mut parsed, v, &mut facts)
    })
    .map_err(|e| bad_body(source, e))?;
    holdable(&parsed).map_err(|e| bad_body(source, e))?;
    let rows = parsed.events.iter().zip(facts).map(LogRow::of).collect();
    // The clock only when something is held.
    let received_at = (!parsed.quarantined.is_empty())
        .then(received_now)
        .unwrap_or_default();
    let held = parsed
        .quarantined
        .iter()
        .map(|q| Held {
            id: 0,
            received_at: received_at.clone(),
            source,
            route: route.to_owned(),
            item: q.clone(),
        })
        .collect();
    let ignored = std::mem::take(&mut parsed.ignored);
    let quarantined: Vec<Spot> = parsed
        .quarantined
        .drain(..)
        .map(|q| Spot {
            path: q.path,
            reason: q.reason,
        })
        .collect();
    drop(parsed);
    let write = Write {
        rows,
        held,
        ..Write::default()
    };
    let applied = commit(app, write, source).await?;
    app.meters.ignored(source, &ignored);
    Ok(axum::Json(BodyAnswer {
        accepted: applied.accepted,
        duplicates: applied.duplicates,
        ignored,
        quarantined,
    })
    .into_response())
}

/// Hands a write to the writer and waits until it is durable.
pub(super) async fn commit(
    app: &App,
    write: Write,
    source: &'static str,
) -> Result<Applied, ApiError> {
    let (reply, done) = tokio::sync::oneshot::channel();
    let unavailable = || ApiError::new(ErrorCode::Unavailable, "the service is shutting down");
    if write.is_empty() {
        return Ok(Applied::default());
    }
    let job = Job {
        write,
        source,
        reply,
    };
    let sent = app.state.submit(job).await;
    if !sent {
        return Err(unavailable());
    }
    let applied = done
        .await
        .map_err(|_| unavailable())?
        .map_err(|e| match e {
            // The cause (a path on the server, the disk's state) is in the
            // service's log, not for the caller.
            JobError::Store(_) => ApiError::new(
                ErrorCode::StoreFailed,
                "the events could not be made durable now; retry later (those already taken count as duplicates)",
            ),
        })?;
    app.meters.applied(source, applied);
    Ok(applied)
}
