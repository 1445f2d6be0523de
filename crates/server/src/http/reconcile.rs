//! `GET /v1/reconciliation/{waba}/{month}` (service.md): what `wabill
//! reconcile` prints for one WABA-month, on the service's events.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use wabill_engine::reconcile::reconcile;
use wabill_engine::{HashKey, Ledger};

use super::api::settled_json;
use super::auth::{api_key, scope};
use super::error::{ApiError, ErrorCode};
use super::query::parse_month;
use super::{Answer, Shared};

/// Messages copied out of the engine per hold of its read lock.
const COPY_CHUNK: u32 = 4096;

pub(super) async fn get_reconciliation(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path((waba, month)): Path<(String, String)>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    scope(key, &waba)?;
    let month = parse_month(&month)?;
    let (config, book) = (app.state.config.clone(), Arc::clone(&app.state.book));
    settled_json(&app, move |settled| {
        // The WABA's canonical events, a range of messages per short hold
        // of the engine's lock, into a ledger of the answer's own: billing
        // it twice (both bases) then holds no lock.
        let mut copy = Ledger::new(config.clone(), HashKey::drawn_from(&std::hash::RandomState::new()));
        let mut start = 0u32;
        loop {
            let (events, more) = {
                let engine = settled.engine();
                let ledger = engine.ledger();
                let Some(w) = ledger.waba_index(&waba) else {
                    break;
                };
                let end = start.saturating_add(COPY_CHUNK);
                (ledger.canonical_events(w, start..end), (end as usize) < ledger.n_messages())
            };
            copy.ingest(&events)
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            if !more {
                break;
            }
            start += COPY_CHUNK;
        }
        let found = reconcile(&copy, &book, &config)
            .into_iter()
            .find(|r| r.waba == waba && r.month == month);
        match found {
            Some(r) => Ok(wabill_report::reconciliation_json(&r)),
            None => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("nothing to reconcile for WABA {waba:?} in {month}: no delivery or verdict (yet)"),
            )),
        }
    })
    .await
}
