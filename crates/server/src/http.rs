//! The HTTP surface of service.md: webhooks (each provider's own
//! authentication), the platform API (bearer keys scoped to WABAs) and
//! operations endpoints. Handlers parse and validate, hand events to the
//! writer and answer once they are durable; reads go to the engine.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wabill_engine::billing::WabaMonth;
use wabill_engine::era::EraClock;
use wabill_engine::event::{Event, TemplateCategory};
use wabill_engine::live::{self, PairLog};
use wabill_engine::market::RegionLookup;
use wabill_engine::quote::{self, Ask, Quote, QuoteError, QuoteInputs};
use wabill_engine::time::Month;
use wabill_engine::{Billing, Incremental, Instant, RateBook, Validator};
use wabill_ingest::{Route, Shape, parse_line};

use crate::config::{ApiKey, Provider, ServiceConfig};
use crate::state::{Applied, Job, JobError, Scope, State};
use crate::store::LogRow;

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
                .map(|m| sha256(m.verify_token.0.as_bytes())),
            route_secrets: service
                .routes
                .iter()
                .map(|(name, r)| (name.clone(), sha256(r.secret.0.as_bytes())))
                .collect(),
            state,
            service,
            validator,
            validators: std::sync::Mutex::default(),
            regions: RegionLookup::new(),
            metrics,
            meters: Meters::new(),
            clocks: std::sync::Mutex::default(),
        }
    }

    /// Runs `f` with a validator of the pool.
    fn validate<R>(&self, f: impl FnOnce(&mut Validator) -> R) -> R {
        let pool = || {
            self.validators
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut validator = pool().pop().unwrap_or_else(|| self.validator.clone());
        let out = f(&mut validator);
        pool().push(validator);
        out
    }
}

fn sha256(bytes: &[u8]) -> digest::Digest {
    digest::digest(&digest::SHA256, bytes)
}

fn same_secret(given: &[u8], expected: &digest::Digest) -> bool {
    sha256(given).as_ref() == expected.as_ref()
}

type Shared = Arc<App>;

/// An error answer: `{"error": {"code", "message"}}` with a stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

type Answer = Result<Response, ApiError>;

/// A request body, or why it could not be read (over the limit).
type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// A body that could not be read (over the limit): one rejected body of
/// `source`, as a refused signature is.
fn too_large(
    source: &'static str,
) -> impl Fn(axum::extract::rejection::BytesRejection) -> ApiError {
    move |e| {
        rejected(source, 1);
        error(e.status(), "body_too_large", e.body_text())
    }
}

fn bad_query(e: QueryRejection) -> ApiError {
    error(StatusCode::BAD_REQUEST, "bad_query", e.body_text())
}

pub fn router(app: Shared) -> Router {
    let limit = app.service.body_limit_bytes;
    Router::new()
        .route(PATHS[0], get(meta_verify).post(meta_webhook))
        .route(PATHS[1], post(dialog_webhook))
        .route(PATHS[2], post(zendesk_webhook))
        .route(PATHS[3], post(post_events))
        .route(PATHS[4], get(get_window))
        .route(PATHS[5], get(get_quote))
        .route(PATHS[6], get(get_invoice))
        .route(PATHS[7], get(get_conversations))
        .route(PATHS[8], get(healthz))
        .route(PATHS[9], get(metrics))
        .route(PATHS[10], get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            observe,
        ))
        .with_state(app)
}

/// Request latency histogram and one structured log line per request.
/// The served paths, as metric labels (no allocation per request).
pub const PATHS: [&str; 11] = [
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
];

const METHODS: [&str; 3] = ["GET", "POST", "other"];
/// Where events come from, as the `source` label of `wabill_events_total`.
const SOURCES: [&str; 4] = ["meta", "360dialog", "zendesk", "api"];

/// Handles of the metrics every request records, registered once: finding
/// a labelled metric by its key costs about as much as a window check's
/// own work.
pub struct Meters {
    /// Per entry of [`PATHS`] and one for unmatched paths, per method;
    /// registered when first used, so that `/metrics` lists only what
    /// was requested.
    latency: Vec<[std::sync::OnceLock<metrics::Histogram>; 3]>,
    /// Per entry of [`SOURCES`]: accepted, duplicate.
    events: [[metrics::Counter; 2]; 4],
}

impl Meters {
    fn new() -> Meters {
        Meters {
            latency: (0..=PATHS.len()).map(|_| Default::default()).collect(),
            events: SOURCES.map(|source| {
                ["accepted", "duplicate"].map(|outcome| {
                    metrics::counter!("wabill_events_total", "source" => source, "outcome" => outcome)
                })
            }),
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
        .and_then(|m| PATHS.iter().position(|p| *p == m.as_str()))
        .unwrap_or(PATHS.len());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let slot = app.meters.latency.get(path).and_then(|h| h.get(method));
    let (method, path) = (
        METHODS[method],
        PATHS.get(path).copied().unwrap_or("unmatched"),
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

// ---------------------------------------------------------------- webhooks

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn meta_verify(AxState(app): AxState<Shared>, Query(q): Query<Handshake>) -> Answer {
    let Some(expected) = &app.meta_verify_token else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_configured",
            "no [meta] table is configured",
        ));
    };
    let ok = q.mode.as_deref() == Some("subscribe")
        && q.verify_token
            .as_deref()
            .is_some_and(|t| same_secret(t.as_bytes(), expected));
    match (ok, q.challenge) {
        (true, Some(challenge)) => Ok((StatusCode::OK, challenge).into_response()),
        _ => Err(error(
            StatusCode::FORBIDDEN,
            "verify_token_mismatch",
            "hub.mode or hub.verify_token does not match",
        )),
    }
}

/// `X-Hub-Signature-256: sha256=<hex>` over the raw body, verified in
/// constant time by ring.
fn signature_ok(app: &App, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(meta) = &app.service.meta else {
        return false;
    };
    let Some(given) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, meta.app_secret.0.as_bytes());
    ring::hmac::verify(&key, body, &given).is_ok()
}

async fn meta_webhook(AxState(app): AxState<Shared>, headers: HeaderMap, body: Body) -> Answer {
    let body = body.map_err(too_large("meta"))?;
    if !signature_ok(&app, &headers, &body) {
        rejected("meta", 1);
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "X-Hub-Signature-256 is missing or does not match the body",
        ));
    }
    let text = utf8(&body, "meta")?;
    let mut events = Vec::new();
    match parse_line(text, Route::default(), &mut events) {
        Ok(Shape::CloudApi | Shape::Blank) => {}
        Ok(_) => {
            return Err(bad_body(
                "meta",
                "not a WhatsApp Cloud API webhook body (`object` missing)",
            ));
        }
        Err(e) => return Err(bad_body("meta", e.to_string())),
    }
    store_group(&app, &events, "meta", Scope::All).await
}

/// The route's static secret header must match.
fn route_of<'a>(
    app: &'a App,
    name: &str,
    provider: Provider,
    headers: &HeaderMap,
) -> Result<&'a crate::config::RouteConfig, ApiError> {
    let route = app
        .service
        .routes
        .get(name)
        .filter(|r| r.provider == provider)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "unknown_route",
                format!("no {} route named {name:?}", provider.as_str()),
            )
        })?;
    let given = headers.get(route.header.as_str()).map(|v| v.as_bytes());
    let expected = app.route_secrets.get(name);
    if !given
        .zip(expected)
        .is_some_and(|(g, expected)| same_secret(g, expected))
    {
        rejected(provider.as_str(), 1);
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "bad_secret",
            format!("header {} is missing or does not match", route.header),
        ));
    }
    Ok(route)
}

async fn dialog_webhook(
    AxState(app): AxState<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    route_webhook(&app, &name, Provider::Dialog360, &headers, body).await
}

async fn zendesk_webhook(
    AxState(app): AxState<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
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
    body: Body,
) -> Answer {
    let route = route_of(app, name, provider, headers)?;
    let source = provider.as_str();
    let body = body.map_err(too_large(source))?;
    let text = utf8(&body, source)?;
    let mut events = Vec::new();
    match provider {
        Provider::Dialog360 => {
            let r = Route {
                waba: Some(&route.waba),
                phone: Some(&route.phone),
            };
            match parse_line(text, r, &mut events) {
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
            wabill_ingest::parse_sunshine(text, &map, &mut events)
                .map_err(|e| bad_body(source, e.to_string()))?;
        }
    }
    let scope = Scope::Wabas(vec![route.waba.clone()]);
    store_group(app, &events, source, scope).await
}

fn utf8<'b>(body: &'b [u8], source: &'static str) -> Result<&'b str, ApiError> {
    std::str::from_utf8(body).map_err(|_| bad_body(source, "body is not UTF-8"))
}

fn bad_body(source: &'static str, reason: impl Into<String>) -> ApiError {
    rejected(source, 1);
    error(StatusCode::BAD_REQUEST, "bad_body", reason)
}

fn rejected(source: &'static str, n: u64) {
    metrics::counter!("wabill_events_total", "source" => source, "outcome" => "rejected")
        .increment(n);
}

/// Validates a body's events as one group (accepted or rejected whole),
/// logs them durably and folds them in.
async fn store_group(
    app: &App,
    events: &[Event<'_>],
    source: &'static str,
    scope: Scope,
) -> Answer {
    let mut facts = Vec::new();
    app.validate(|v| v.check_group(events, &mut facts))
        .map_err(|e| bad_body(source, e.to_string()))?;
    let rows = events.iter().zip(facts).map(LogRow::of).collect();
    let applied = commit(app, rows, source, scope).await?;
    Ok(axum::Json(applied).into_response())
}

/// Hands rows to the writer and waits until they are durable.
async fn commit(
    app: &App,
    rows: Vec<LogRow>,
    source: &'static str,
    scope: Scope,
) -> Result<Applied, ApiError> {
    let (reply, done) = tokio::sync::oneshot::channel();
    let unavailable = || {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is shutting down",
        )
    };
    if rows.is_empty() {
        return Ok(Applied::default());
    }
    let job = Job {
        rows,
        source,
        scope,
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
            JobError::Forbidden(id) => error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("message {id:?} belongs to a WABA this request may not write"),
            ),
            JobError::Store(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store_failed", e),
        })?;
    app.meters.applied(source, applied);
    Ok(applied)
}

// ------------------------------------------------------------ platform API

fn api_key<'a>(app: &'a App, headers: &HeaderMap) -> Result<&'a ApiKey, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing `Authorization: Bearer <token>`",
            )
        })?;
    let hash = sha256(token.as_bytes());
    app.service
        .api_keys
        .iter()
        .find(|k| k.sha256 == hash.as_ref())
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key"))
}

fn scope(key: &ApiKey, waba: &str) -> Result<(), ApiError> {
    if key.allows(waba) {
        Ok(())
    } else {
        Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key may not access WABA {waba:?}"),
        ))
    }
}

async fn post_events(AxState(app): AxState<Shared>, headers: HeaderMap, body: Body) -> Answer {
    let key = api_key(&app, &headers)?;
    let body = body.map_err(too_large("api"))?;
    let text = utf8(&body, "api")?;
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
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            format!(
                "{} events; at most {MAX_EVENTS_PER_REQUEST} per request",
                items.len()
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    let mut events = Vec::new();
    let mut facts = Vec::new();
    app.validate(|validator| {
        for (index, item) in items.iter().enumerate() {
            events.clear();
            facts.clear();
            let outcome = match parse_line(item, Route::default(), &mut events) {
                Ok(Shape::Normalized) => validator
                    .check_group(&events, &mut facts)
                    .map_err(|e| e.to_string()),
                Ok(_) => Err("not a normalized event (events.md section 1)".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => {
                    for (e, f) in events.iter().zip(&facts) {
                        scope(key, &e.waba)?;
                        rows.push(LogRow::of((e, *f)));
                    }
                }
                Err(reason) => refused.push(json!({"index": index, "reason": reason})),
            }
        }
        Ok(())
    })?;
    rejected("api", refused.len() as u64);
    let scope = match &key.wabas {
        None => Scope::All,
        Some(list) => Scope::Wabas(list.clone()),
    };
    let applied = commit(&app, rows, "api", scope).await?;
    Ok(axum::Json(json!({
        "accepted": applied.accepted,
        "duplicates": applied.duplicates,
        "rejected": refused,
    }))
    .into_response())
}

/// The query of `/v1/window` and `/v1/quote`, borrowed from the request's
/// URI where it needs no percent-decoding (these are answered before every
/// message, so they are parsed without a generic deserializer).
struct PairQuery<'q> {
    waba: Cow<'q, str>,
    phone: Cow<'q, str>,
    user: Cow<'q, str>,
    at: Option<Cow<'q, str>>,
    kind: Option<Cow<'q, str>>,
    category: Option<Cow<'q, str>>,
}

impl<'q> PairQuery<'q> {
    /// `waba`, `phone` and `user` are required; a parameter given twice is
    /// refused; parameters of other names are ignored.
    fn parse(query: Option<&'q str>) -> Result<PairQuery<'q>, ApiError> {
        let mut fields: [Option<Cow<'q, str>>; 6] = Default::default();
        const NAMES: [&str; 6] = ["waba", "phone", "user", "at", "kind", "category"];
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
            let Some(i) = NAMES.iter().position(|n| *n == name) else {
                continue;
            };
            if fields[i].replace(value).is_some() {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!("`{name}` is given more than once"),
                ));
            }
        }
        let [waba, phone, user, at, kind, category] = fields;
        let required = |value: Option<Cow<'q, str>>, name: &str| {
            value.ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!("missing `{name}` in the query"),
                )
            })
        };
        Ok(PairQuery {
            waba: required(waba, "waba")?,
            phone: required(phone, "phone")?,
            user: required(user, "user")?,
            at,
            kind,
            category,
        })
    }
}

fn parse_at(at: Option<&str>) -> Result<Instant, ApiError> {
    let Some(at) = at else {
        return Instant::from_timestamp(jiff::Timestamp::now()).ok_or_else(|| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "clock",
                "the clock is out of range",
            )
        });
    };
    wabill_ingest::parse_timestamp_str(at)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "bad_query", format!("`at` {e}")))
}

/// The era timeline resolved in a WABA's zone, computed once per WABA.
fn clock_of(app: &App, waba: &str) -> Arc<EraClock> {
    let mut clocks = app
        .clocks
        .lock()
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

fn user_digits(user: &str) -> &str {
    user.strip_prefix('+').unwrap_or(user)
}

/// Runs `f` on the pair's log (empty when the pair has no traffic) under
/// the engine's read lock.
fn with_pair<R>(app: &App, q: &PairQuery, f: impl FnOnce(&PairLog) -> R) -> R {
    let engine = app.state.read();
    let log = engine
        .ledger()
        .pair_index(&q.waba, &q.phone, user_digits(&q.user))
        .and_then(|pair| engine.pair_log(pair));
    match log {
        Some(log) => f(log),
        None => f(&PairLog::default()),
    }
}

async fn get_window(AxState(app): AxState<Shared>, headers: HeaderMap, uri: Uri) -> Answer {
    let key = api_key(&app, &headers)?;
    let q = PairQuery::parse(uri.query())?;
    scope(key, &q.waba)?;
    let at = parse_at(q.at.as_deref())?;
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
struct WindowAnswer {
    csw_expires_at: Option<String>,
    csw_open: bool,
    free_entry_point_until: Option<String>,
    freeform_allowed: bool,
    open_conversations: Vec<OpenConversation>,
    template_required: bool,
}

#[derive(Serialize)]
struct OpenConversation {
    category: &'static str,
    era: &'static str,
    expires_at: String,
    started_at: String,
}

/// The message a quote asks about: `kind=freeform`, or `kind=template`
/// with its `category`.
fn template_of(
    kind: Option<&str>,
    category: Option<&str>,
) -> Result<Option<TemplateCategory>, ApiError> {
    Ok(match (kind, category) {
        (Some("freeform"), None) => None,
        (Some("template"), Some(c)) => Some(TemplateCategory::parse(c).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("category {c:?} is not marketing, utility or authentication"),
            )
        })?),
        (Some("template"), None) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "kind=template needs `category`",
            ));
        }
        (Some("freeform"), Some(_)) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "kind=freeform takes no `category`",
            ));
        }
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "`kind` must be freeform or template",
            ));
        }
    })
}

async fn get_quote(AxState(app): AxState<Shared>, headers: HeaderMap, uri: Uri) -> Answer {
    let key = api_key(&app, &headers)?;
    let q = PairQuery::parse(uri.query())?;
    scope(key, &q.waba)?;
    let at = parse_at(q.at.as_deref())?;
    let template = template_of(q.kind.as_deref(), q.category.as_deref())?;
    let user = user_digits(&q.user).to_owned();
    let region = app.regions.region_of(&user).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("user {user:?} is not an international number whose country can be determined"),
        )
    })?;
    let clock = clock_of(&app, &q.waba);
    let state = Arc::clone(&app.state);
    let (waba, phone) = (q.waba.to_string(), q.phone.to_string());
    let answer = settled(&app, move |engine| {
        let pair = engine.ledger().pair_index(&waba, &phone, &user);
        let empty = PairLog::default();
        let config = &state.config;
        let inputs = QuoteInputs {
            book: &state.book,
            config,
            clock: &clock,
            log: pair.and_then(|p| engine.pair_log(p)).unwrap_or(&empty),
            month: engine
                .month(&waba, quote::month_of(config, &waba, at))
                .map(|m| &**m),
        };
        let ask = Ask {
            waba: &waba,
            phone: &phone,
            user: &user,
            region,
            at,
            template,
        };
        quote::quote(&inputs, &ask).map(|quote| QuoteAnswer::new(&quote, &state.book))
    })
    .await?;
    match answer {
        Ok(answer) => Ok(axum::Json(answer).into_response()),
        Err(e) => {
            let code = match e {
                QuoteError::NoEra => "no_era",
                QuoteError::NoCard { .. } => "no_card",
                QuoteError::NoRate { .. } => "no_rate",
            };
            Err(error(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string()))
        }
    }
}

/// `GET /v1/quote`'s answer (service.md), keys in byte order.
#[derive(Serialize)]
struct QuoteAnswer {
    allowed: bool,
    category: &'static str,
    era: &'static str,
    free: &'static str,
    free_tier_left: u64,
    market: String,
    meta_price: String,
    opens_conversation: bool,
    platform_fee: String,
}

impl QuoteAnswer {
    fn new(q: &Quote, book: &RateBook) -> QuoteAnswer {
        QuoteAnswer {
            allowed: q.allowed,
            category: q.category.as_str(),
            era: q.era.as_str(),
            free: q.free.as_str(),
            free_tier_left: q.free_tier_left,
            market: book.market_name(q.market).to_owned(),
            meta_price: q.meta_price.to_string(),
            opens_conversation: q.opens_conversation,
            platform_fee: q.platform_fee.to_string(),
        }
    }
}

fn parse_month(s: &str) -> Result<Month, ApiError> {
    Month::parse(s).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("month {s:?} is not YYYY-MM"),
        )
    })
}

async fn get_invoice(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    Path((waba, month)): Path<(String, String)>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    scope(key, &waba)?;
    let month = parse_month(&month)?;
    let found = settled(&app, {
        let waba = waba.clone();
        move |engine| engine.month(&waba, month).cloned()
    })
    .await?;
    let m = found.ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            // cli.md: an invoice exists only where something was billed.
            format!(
                "no invoice for WABA {waba:?} in {month}: no conversation or priced message (yet)"
            ),
        )
    })?;
    match &m.invoice {
        Ok(invoice) => Ok(axum::Json(wabill_report::InvoiceJson::from(invoice)).into_response()),
        Err(errors) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot_bill",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

#[derive(Deserialize)]
struct ConversationsQuery {
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
type ListKey = (i64, String, String, String);

fn list_key(ledger: &wabill_engine::Ledger, r: &wabill_engine::billing::Record) -> ListKey {
    let (_, phone, user) = ledger.pair_names(r.pair);
    (
        r.start.0,
        phone.to_owned(),
        user.to_owned(),
        ledger.message_id(r.opened_by).to_owned(),
    )
}

fn encode_cursor(key: &ListKey) -> String {
    hex::encode(serde_json::to_string(key).unwrap_or_default())
}

fn decode_cursor(cursor: &str) -> Option<ListKey> {
    let bytes = hex::decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

async fn get_conversations(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    query: Result<Query<ConversationsQuery>, QueryRejection>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let Query(q) = query.map_err(bad_query)?;
    scope(key, &q.waba)?;
    let month = parse_month(&q.month)?;
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let after = match &q.cursor {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                "`cursor` is not one this service gave",
            )
        })?),
    };
    let book = Arc::clone(&app.state.book);
    let page = settled(&app, move |engine| {
        conversations_page(engine, &book, &q, month, limit, after.as_ref())
    })
    .await?;
    Ok(axum::Json(page).into_response())
}

/// One page of a WABA-month's conversations, each with the timeline of
/// messages that explains it.
fn conversations_page(
    engine: &Incremental,
    book: &RateBook,
    q: &ConversationsQuery,
    month: Month,
    limit: usize,
    after: Option<&ListKey>,
) -> Value {
    let ledger = engine.ledger();
    let billing = Billing {
        ledger,
        book,
        months: Vec::new(),
    };
    let months: Vec<&WabaMonth> = engine
        .month(&q.waba, month)
        .map(|m| &**m)
        .into_iter()
        .collect();
    let user = q.user.as_deref().map(user_digits);
    let records: Vec<_> = wabill_report::sorted_records(&billing, &months)
        .into_iter()
        .filter(|r| {
            let (_, phone, u) = ledger.pair_names(r.pair);
            q.phone.as_deref().is_none_or(|p| p == phone) && user.is_none_or(|x| x == u)
        })
        .filter(|r| after.is_none_or(|after| list_key(ledger, r) > *after))
        .take(limit + 1)
        .collect();
    let more = records.len() > limit;
    let page = &records[..records.len().min(limit)];
    let items: Vec<Value> = page
        .iter()
        .map(|r| {
            let mut c = serde_json::to_value(wabill_report::conversation_json(&billing, r))
                .unwrap_or_default();
            let timeline = engine
                .pair_log(r.pair)
                .map(|log| log.timeline(r.start, r.end))
                .unwrap_or_default();
            c["timeline"] = Value::Array(
                timeline
                    .iter()
                    .map(|e| {
                        let mut v = json!({"ts": e.at.rfc3339(), "type": e.kind, "id": e.id});
                        if let Some(d) = &e.detail {
                            v[e.detail_key] = json!(d);
                        }
                        v
                    })
                    .collect(),
            );
            c
        })
        .collect();
    let next_cursor = page
        .last()
        .filter(|_| more)
        .map(|r| encode_cursor(&list_key(ledger, r)));
    json!({"conversations": items, "next_cursor": next_cursor})
}

/// Runs `f` on the engine with every fold so far billed, off the async
/// workers (settling re-rates what changed since the last read).
async fn settled<R: Send + 'static>(
    app: &App,
    f: impl FnOnce(&Incremental) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let state = Arc::clone(&app.state);
    tokio::task::spawn_blocking(move || state.with_settled(f))
        .await
        .map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "billing failed",
            )
        })
}

// -------------------------------------------------------------- operations

/// Ok when the last commit succeeded and the data directory takes a write
/// now (a full or read-only disk shows here before a webhook fails).
async fn healthz(AxState(app): AxState<Shared>) -> Response {
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
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unwritable",
            "the event log does not take writes",
        )
        .into_response()
    }
}

/// Errors are JSON everywhere (service.md), unknown paths too.
async fn not_found(uri: Uri) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint at {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not served at {}", uri.path()),
    )
}

async fn metrics(AxState(app): AxState<Shared>) -> Response {
    let bytes = crate::store::log_bytes(&app.service.data_dir);
    metrics::gauge!("wabill_log_bytes").set(bytes as f64);
    let text = app
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
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
