//! The HTTP surface of service.md: webhooks (each provider's own
//! authentication, [`webhooks`], [`auth`]), the platform API (bearer keys
//! scoped to WABAs, [`api`], [`quote`]) and operations endpoints ([`ops`]).
//! Handlers parse and validate, hand events to the writer and answer once
//! they are durable; reads go to the engine. Errors are the table of
//! [`error::ErrorCode`].

mod api;
pub(crate) mod auth;
mod customers;
pub mod error;
mod ops;
mod quarantine;
mod query;
mod quote;
mod reconcile;
pub(crate) mod webhooks;

#[cfg(test)]
mod openapi_tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State as AxState};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use ring::digest;
use wabill_engine::Validator;
use wabill_engine::era::EraClock;
use wabill_engine::market::RegionLookup;

use crate::config::ServiceConfig;
use crate::state::{Applied, State};
pub use error::{ApiError, ErrorCode};
pub use ops::OPENAPI;

/// Most events one `POST /v1/events` may carry (service.md).
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;

pub struct App {
    pub state: Arc<State>,
    pub service: ServiceConfig,
    validator: Validator,
    /// Validators whose caches (WABA era starts, user regions) are warm,
    /// one lent to each request that validates: a fresh clone would copy
    /// the engine configuration and start cold. As many as validate at
    /// once (a validation never awaits), so about one per worker thread.
    validators: std::sync::Mutex<Vec<Validator>>,
    pub regions: RegionLookup,
    pub metrics: Option<PrometheusHandle>,
    meters: Meters,
    clocks: std::sync::Mutex<std::collections::HashMap<String, Arc<EraClock>>>,
    /// SHA-256 of each configured secret, compared digest to digest so that
    /// the comparison takes the same time wherever the secrets differ.
    meta_verify_token: Option<digest::Digest>,
    /// Per route name, its secret's SHA-256.
    route_secrets: std::collections::BTreeMap<String, digest::Digest>,
    /// The last readiness probe: when, and its answer ([`ops::readyz`]).
    probed: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), &'static str>)>>,
}

impl App {
    pub fn new(
        state: Arc<State>,
        service: ServiceConfig,
        metrics: Option<PrometheusHandle>,
    ) -> App {
        let validator = state.read().ledger().validator();
        App {
            meta_verify_token: service
                .meta
                .as_ref()
                .map(|m| auth::sha256(m.verify_token.0.as_bytes())),
            route_secrets: service
                .routes
                .iter()
                .map(|(name, r)| (name.clone(), auth::sha256(r.secret.0.as_bytes())))
                .collect(),
            state,
            service,
            validator,
            validators: std::sync::Mutex::default(),
            regions: RegionLookup::new(),
            metrics,
            meters: Meters::new(),
            clocks: std::sync::Mutex::default(),
            probed: tokio::sync::Mutex::default(),
        }
    }

    /// Runs `f` with a validator of the pool.
    fn validate<R>(&self, f: impl FnOnce(&mut Validator) -> R) -> R {
        let pool = || {
            self.validators
                .lock()
                // A pool of whole validators: a panic elsewhere leaves it usable.
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut validator = pool().pop().unwrap_or_else(|| self.validator.clone());
        let out = f(&mut validator);
        pool().push(validator);
        out
    }
}

type Shared = Arc<App>;

type Answer = Result<Response, ApiError>;

pub fn router(app: Shared) -> Router {
    // Bodies are read, within their limit and deadline, by `bounded_body`,
    // on the routes served with POST only (a GET costs no extra layer),
    // each layer told its path.
    let read =
        |path: usize| axum::middleware::from_fn_with_state((Arc::clone(&app), path), bounded_body);
    Router::new()
        .route(PATHS[0], get(webhooks::meta_verify))
        .route(PATHS[0], post(webhooks::meta_webhook).layer(read(0)))
        .route(PATHS[1], post(webhooks::dialog_webhook).layer(read(1)))
        .route(PATHS[2], post(webhooks::zendesk_webhook).layer(read(2)))
        .route(PATHS[3], post(api::post_events).layer(read(EVENTS_PATH)))
        .route(PATHS[4], get(api::get_window))
        .route(PATHS[5], get(quote::get_quote))
        .route(PATHS[6], get(api::get_invoice))
        .route(PATHS[7], get(api::get_conversations))
        .route(PATHS[8], get(ops::readyz))
        .route(PATHS[9], get(ops::metrics))
        .route(PATHS[10], get(ops::openapi))
        .route(PATHS[11], get(quarantine::get_quarantine))
        .route(PATHS[12], post(quarantine::reprocess).layer(read(12)))
        .route(PATHS[13], get(reconcile::get_reconciliation))
        .route(PATHS[14], get(ops::readyz))
        .route(PATHS[15], get(ops::livez))
        .route(PATHS[16], get(customers::get_customer_invoice))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            observe,
        ))
        .with_state(app)
}

/// The served paths, as metric labels (no allocation per request).
pub const PATHS: [&str; 17] = [
    "/webhooks/meta",
    "/webhooks/360dialog/{name}",
    "/webhooks/zendesk/{name}",
    "/v1/events",
    "/v1/window",
    "/v1/quote",
    "/v1/invoices/{waba}/{month}",
    "/v1/conversations",
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/v1/quarantine",
    "/v1/quarantine/reprocess",
    "/v1/reconciliation/{waba}/{month}",
    "/readyz",
    "/livez",
    "/v1/customers/{id}/invoices/{month}",
];

const METHODS: [&str; 3] = ["GET", "POST", "other"];
/// Where events come from, as the `source` label of `wabill_events_total`.
const SOURCES: [&str; 5] = ["meta", "360dialog", "zendesk", "api", "quarantine"];

/// The kinds of ignored items `wabill_ignored_items_total` names; others
/// (a kind is a field name a body chose) count as `other`.
const IGNORED_KINDS: [&str; 20] = [
    "payment",
    "group_status",
    "system",
    "errors",
    "calls",
    "smb_message_echoes",
    "user_preferences",
    "account_update",
    "message_template_status_update",
    "template_category_update",
    "group_lifecycle_update",
    "group_participants_update",
    "group_settings_update",
    "group_status_update",
    "user_id_update",
    "business_or_other_channel_message",
    "other_channel_delivery",
    "conversation_event",
    "other_sunshine_event",
    "unnamed_field",
];

/// A latency histogram per method, registered when first used, so that
/// `/metrics` lists only what was requested.
type Latency = [std::sync::OnceLock<metrics::Histogram>; 3];

/// Handles of the metrics every request records, registered once: finding
/// a labelled metric by its key costs about as much as a window check's
/// own work.
pub struct Meters {
    /// Per entry of [`PATHS`].
    latency: [Latency; PATHS.len()],
    /// Requests that matched no path.
    unmatched: Latency,
    /// Per entry of [`SOURCES`]: accepted, duplicate.
    events: [[metrics::Counter; 2]; SOURCES.len()],
}

impl Meters {
    fn new() -> Meters {
        Meters {
            latency: Default::default(),
            unmatched: Default::default(),
            events: SOURCES.map(|source| {
                ["accepted", "duplicate"].map(|outcome| {
                    metrics::counter!("wabill_events_total", "source" => source, "outcome" => outcome)
                })
            }),
        }
    }

    /// The histograms of the entry `path` of [`PATHS`], or of unmatched
    /// requests.
    fn latency(&self, path: Option<usize>) -> Option<&Latency> {
        match path {
            Some(i) => self.latency.get(i),
            None => Some(&self.unmatched),
        }
    }

    /// Counts a body's ignored items (quarantined ones are counted by the
    /// writer, once held).
    fn ignored(&self, source: &'static str, ignored: &std::collections::BTreeMap<String, u64>) {
        for (kind, n) in ignored {
            let kind = IGNORED_KINDS
                .into_iter()
                .find(|k| k == kind)
                .unwrap_or("other");
            metrics::counter!("wabill_ignored_items_total", "source" => source, "kind" => kind)
                .increment(*n);
        }
    }

    fn applied(&self, source: &str, applied: Applied) {
        if let Some([accepted, duplicate]) = SOURCES
            .iter()
            .position(|s| *s == source)
            .and_then(|i| self.events.get(i))
        {
            accepted.increment(applied.accepted);
            duplicate.increment(applied.duplicates);
        }
    }
}

/// Request latency histogram and one structured log line per request.
async fn observe(AxState(app): AxState<Shared>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = match *request.method() {
        axum::http::Method::GET => 0,
        axum::http::Method::POST => 1,
        _ => 2,
    };
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| PATHS.iter().position(|p| *p == m.as_str()));
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let slot = app.meters.latency(path).and_then(|h| h.get(method));
    let (method, path) = (
        METHODS[method],
        path.and_then(|i| PATHS.get(i))
            .copied()
            .unwrap_or("unmatched"),
    );
    if let Some(slot) = slot {
        slot.get_or_init(|| {
            metrics::histogram!("wabill_request_duration_seconds", "path" => path, "method" => method)
        })
        .record(elapsed.as_secs_f64());
    }
    // Every request at debug (`WABILL_LOG=debug`); at the default level only
    // refusals and failures, so logging does not cost more than answering.
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if status >= 500 {
        tracing::error!(method, path, status, micros, "request failed");
    } else if status >= 400 {
        tracing::info!(method, path, status, micros, "request refused");
    } else {
        tracing::debug!(method, path, status, micros, "request");
    }
    response
}

// ------------------------------------------------------- request bodies

/// Reads a POST's body whole before its handler runs (the layer of the
/// routes served with POST; `path` is the route's entry of [`PATHS`]),
/// within the limit of its path (`POST /v1/events`:
/// `api_body_limit_bytes`; any other: `body_limit_bytes`) and within
/// `body_timeout` (a client that sends its body slowly or not at all is
/// answered 408 and disconnected), and only once its caller is known
/// where that needs no body ([`before_reading`]): no one without a key or
/// a route's secret makes the service hold a body. A refused body counts
/// as one rejected body of its source.
async fn bounded_body(
    AxState((app, path)): AxState<(Shared, usize)>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(e) = before_reading(&app, path, &request) {
        return e.into_response();
    }
    let events = path == EVENTS_PATH;
    let source = BODY_SOURCES.get(path).copied();
    let refuse = |e: ApiError| {
        if let Some(source) = source {
            rejected(source, 1);
        }
        e.into_response()
    };
    let (limit, key) = if events {
        (app.service.api_body_limit_bytes, "api_body_limit_bytes")
    } else {
        (app.service.body_limit_bytes, "body_limit_bytes")
    };
    let over = || {
        ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("the body is over {limit} bytes, this path's limit (server.{key})"),
        )
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return refuse(over());
    }
    let (parts, body) = request.into_parts();
    let capacity = usize::try_from(declared.unwrap_or(0)).unwrap_or(limit);
    let read =
        tokio::time::timeout(app.service.body_timeout, read_body(body, limit, capacity)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::Over)) => return refuse(over()),
        Ok(Err(BodyError::Read(e))) => {
            return refuse(ApiError::new(
                ErrorCode::BadBody,
                format!("the body could not be read: {e}"),
            ));
        }
        Err(_) => {
            return refuse(ApiError::new(
                ErrorCode::BodyTimeout,
                format!(
                    "the body did not arrive within {} s of the request's head (server.body_timeout_secs)",
                    app.service.body_timeout.as_secs()
                ),
            ));
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

enum BodyError {
    Over,
    Read(axum::Error),
}

/// The body's bytes, at most `limit` of them, copied frame by frame into
/// one buffer (`capacity` to start). Copied, not kept: each frame is a
/// slice of the connection's read buffer, and keeping thousands of tiny
/// frames (a body sent a byte per segment) would keep a buffer each, kilobytes
/// of memory per byte sent.
async fn read_body(
    mut body: axum::body::Body,
    limit: usize,
    capacity: usize,
) -> Result<axum::body::Bytes, BodyError> {
    use http_body_util::BodyExt;
    // What the head declares, up to 256 KiB: a declared length is no
    // reason to take memory before the bytes arrive.
    let mut out = Vec::with_capacity(capacity.min(limit).min(256 << 10));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Some(data) = frame.data_ref() {
            let needed = out.len() + data.len();
            if needed > limit {
                return Err(BodyError::Over);
            }
            // Doubling, but never past the limit: the buffer is the body's.
            if needed > out.capacity() {
                let grown = needed.max(out.capacity() * 2).min(limit);
                out.reserve_exact(grown - out.len());
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out.into())
}

/// The entry of [`PATHS`] that takes the platform's events.
const EVENTS_PATH: usize = 3;

/// Who must be known before a POST's body is read: the API's key, a
/// route's secret; for Meta's webhook, whose signature is over the body
/// itself, that it is configured and the request carries a signature.
fn before_reading(app: &App, path: usize, request: &Request) -> Result<(), ApiError> {
    let headers = request.headers();
    let name = || request.uri().path().rsplit('/').next().unwrap_or_default();
    match PATHS.get(path).copied().unwrap_or_default() {
        "/webhooks/meta" => {
            if app.service.meta.is_none() {
                return Err(ApiError::new(
                    ErrorCode::NotConfigured,
                    "no [meta] table is configured",
                ));
            }
            // SHA-256: 32 bytes.
            if auth::given_signature(headers).is_some_and(|s| s.len() == 32) {
                Ok(())
            } else {
                rejected("meta", 1);
                Err(ApiError::new(
                    ErrorCode::BadSignature,
                    "X-Hub-Signature-256 is missing or is not sha256= and 64 hex digits",
                ))
            }
        }
        "/webhooks/360dialog/{name}" => {
            auth::route_of(app, name(), crate::config::Provider::Dialog360, headers).map(|_| ())
        }
        "/webhooks/zendesk/{name}" => {
            auth::route_of(app, name(), crate::config::Provider::Zendesk, headers).map(|_| ())
        }
        p if p.starts_with("/v1/") => auth::api_key(app, headers).map(|_| ()),
        _ => Ok(()),
    }
}

/// The `source` label of a refused body, per entry of [`PATHS`] that takes
/// events.
const BODY_SOURCES: [&str; 4] = ["meta", "360dialog", "zendesk", "api"];

/// A body with nothing in it is refused (400), whoever sent it: it is no
/// webhook and no batch. A JSON body whose list is empty is accepted (200,
/// all counts zero), as service.md says.
fn not_empty<'t>(text: &'t str, source: &'static str) -> Result<&'t str, ApiError> {
    if text.trim().is_empty() {
        return Err(bad_body(source, "the body is empty"));
    }
    Ok(text)
}

fn utf8<'b>(body: &'b [u8], source: &'static str) -> Result<&'b str, ApiError> {
    std::str::from_utf8(body).map_err(|_| bad_body(source, "body is not UTF-8"))
}

fn bad_body(source: &'static str, reason: impl Into<String>) -> ApiError {
    rejected(source, 1);
    ApiError::new(ErrorCode::BadBody, reason)
}

/// Counts `n` events of `source` refused.
fn rejected(source: &'static str, n: u64) {
    metrics::counter!("wabill_events_total", "source" => source, "outcome" => "rejected")
        .increment(n);
}
