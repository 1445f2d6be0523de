//! `GET /v1/reconciliation/{waba}/{month}` (service.md): what `wabill
//! reconcile` prints for one WABA-month, on the service's events.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use wabill_engine::Ledger;
use wabill_engine::event::Event;
use wabill_engine::reconcile::reconcile;

use super::auth::{api_key, scope, scope_month};
use super::error::{ApiError, ErrorCode};
use super::query::{bad_path, parse_month};
use super::{Answer, Shared};
use crate::state::State;

/// Messages copied out of the engine per hold of its read lock.
const COPY_CHUNK: u32 = 4096;

pub(super) async fn get_reconciliation(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let Path((waba, month)) = path.map_err(bad_path)?;
    scope(key, &waba)?;
    let month = parse_month(&month)?;
    scope_month(key, &waba, month)?;
    let (config, book, key) = (
        app.state.config.clone(),
        Arc::clone(&app.state.book),
        app.state.key,
    );
    // Rules P6: a moved phone's messages are kept under its first WABA.
    let mut sources = vec![waba.clone()];
    for history in config.phones.values() {
        if let Some(first) = history.identity()
            && history.names_waba(&waba)
            && !sources.iter().any(|s| s == first)
        {
            sources.push(first.to_owned());
        }
    }
    let answer = app
        .state
        .copied_then(
            move |state| {
                let mut events = Vec::new();
                for name in &sources {
                    events.extend(copy_waba(state, name));
                }
                events
            },
            move |events| {
                // Billed twice (both bases) on a reading thread, holding
                // no lock: the copy is the answer's own.
                let mut copy = Ledger::new(config.clone(), key);
                copy.ingest(&events)
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
                let found = reconcile(&copy, &book, &config)
                    .into_iter()
                    .find(|r| r.waba == waba && r.month == month);
                let r = found.ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::NotFound,
                        format!(
                            "nothing to reconcile for WABA {waba:?} in {month}: no delivery or verdict (yet)"
                        ),
                    )
                })?;
                serde_json::to_vec(&wabill_report::reconciliation_json(&r))
                    .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
            },
        )
        .await
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "reconciliation failed"))??;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        answer,
    )
        .into_response())
}

/// The WABA's canonical events, a range of messages per short hold of the
/// engine's read lock (the writer folds in between, so the copy is of the
/// moments it was taken in, not one instant: a message folded meanwhile
/// may show in part).
fn copy_waba(state: &State, waba: &str) -> Vec<Event<'static>> {
    let mut events = Vec::new();
    let mut start = 0u32;
    loop {
        let engine = state.read();
        let ledger = engine.ledger();
        let Some(w) = ledger.waba_index(waba) else {
            return events;
        };
        let end = start.saturating_add(COPY_CHUNK);
        events.extend(ledger.canonical_events(w, start..end));
        if end as usize >= ledger.n_messages() {
            return events;
        }
        start = end;
    }
}
