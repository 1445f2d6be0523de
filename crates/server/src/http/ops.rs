//! Operations endpoints (health, metrics, this API's document) and the
//! answers for what is not served.

use axum::extract::State as AxState;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;

use super::Shared;
use super::error::{ApiError, ErrorCode};

/// The OpenAPI document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How long a readiness answer is reused: callers in a loop cost one
/// fsynced probe a second at most.
const PROBE_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// How long readiness waits for the writer to take its probe.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness (`/healthz`, `/readyz`): ok when the event log takes a write
/// now, probed by the writer with one durable transaction (or shown by a
/// commit in the last second; never inferred from an older request's
/// fate), and the data directory's file system has
/// `server.min_free_bytes` free. A full disk shows here before a
/// webhook fails, and space freed shows without any traffic.
pub(super) async fn readyz(AxState(app): AxState<Shared>) -> Response {
    let mut last = app.probed.lock().await;
    let ready = match *last {
        Some((at, ready)) if at.elapsed() < PROBE_FRESH => ready,
        _ => {
            let ready = probe(&app).await;
            *last = Some((std::time::Instant::now(), ready));
            ready
        }
    };
    drop(last);
    match ready {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(why) => ApiError::new(ErrorCode::StoreUnwritable, why).into_response(),
    }
}

async fn probe(app: &super::App) -> Result<(), &'static str> {
    // PostgreSQL's disk is its own to watch; the probe write tells.
    if let Some(dir) = app.service.store.data_dir() {
        let free = wabill_store::sqlite::free_bytes(dir);
        if free.is_none_or(|free| free < app.service.min_free_bytes) {
            return Err("the data directory's disk has less than server.min_free_bytes free");
        }
    }
    // Under traffic the writer's last commit already says it: no probe
    // waits behind the batches (after a failed one, the probe tries).
    let recent = app
        .state
        .last_commit
        .lock()
        .ok()
        .and_then(|last| *last)
        .is_some_and(|(at, ok)| ok && at.elapsed() < PROBE_FRESH);
    if recent {
        return Ok(());
    }
    let write = crate::state::Write {
        probe: true,
        ..Default::default()
    };
    let committed =
        tokio::time::timeout(PROBE_WAIT, super::webhooks::commit(app, write, "probe")).await;
    match committed {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err("the event log does not take writes"),
        Err(_) => Err("the event log did not take a write within 2 s"),
    }
}

/// Liveness (`/livez`): the process answers HTTP. It says nothing of the
/// store, so that a full disk takes the service out of rotation
/// (readiness) without a supervisor restarting it in a loop.
pub(super) async fn livez() -> Response {
    (StatusCode::OK, "ok").into_response()
}

/// Errors are JSON everywhere (service.md), unknown paths too.
pub(super) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no endpoint at {}", uri.path()),
    )
}

pub(super) async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not served at {}", uri.path()),
    )
}

pub(super) async fn metrics(AxState(app): AxState<Shared>) -> Response {
    if let Some(dir) = app.service.store.data_dir() {
        let bytes = wabill_store::sqlite::log_bytes(dir);
        metrics::gauge!("wabill_log_bytes").set(bytes as f64);
    }
    let text = app
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
