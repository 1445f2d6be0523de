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

/// Ok when the last commit succeeded and the data directory takes a write
/// now (a full or read-only disk shows here before a webhook fails).
pub(super) async fn healthz(AxState(app): AxState<Shared>) -> Response {
    let probe = app.service.data_dir.join(".healthz");
    let writable = tokio::fs::write(&probe, b"ok").await.is_ok();
    if writable
        && app
            .state
            .store_writable
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        (StatusCode::OK, "ok").into_response()
    } else {
        ApiError::new(
            ErrorCode::StoreUnwritable,
            "the event log does not take writes",
        )
        .into_response()
    }
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
    let bytes = crate::store::log_bytes(&app.service.data_dir);
    metrics::gauge!("wabill_log_bytes").set(bytes as f64);
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
