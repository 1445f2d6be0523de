//! The HTTP edge harness (docs/fuzzing.md, docs/security.md): any bytes
//! become one request to the real router, in process, of a service with a
//! real event log, and the answer must keep the service's contracts. The
//! `http` fuzz target and the property test `tests/edge.rs` drive it.
//!
//! The bytes: a method, a path (of the served ones, or not), flags that
//! add valid credentials (Meta's signature over the body, a bearer key (a
//! customer's too), a route's secret), then the query, header lines and body, separated by
//! NUL bytes. Credentials are the harness's to add, so that arbitrary
//! bodies reach the parsers instead of stopping at authentication.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use tower::ServiceExt;
use wabill_engine::{EngineConfig, RateBook};

use crate::http::{App, ErrorCode, router};
use crate::state::State;

pub const META_SECRET: &str = "edge-meta-secret";
pub const ROUTE_SECRET: &str = "edge-route-secret";
/// Bearer tokens: every WABA, W1 only, and customer C1's.
pub const TOKENS: [&str; 3] = ["edge-token-all", "edge-token-w1", "edge-token-c1"];

/// The paths a request may take (byte 1 chooses), served or not.
pub const PATHS: [&str; 20] = [
    "/webhooks/meta",
    "/webhooks/360dialog/acme",
    "/webhooks/zendesk/zd",
    "/v1/events",
    "/v1/window",
    "/v1/quote",
    "/v1/invoices/W1/2025-07",
    "/v1/conversations",
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/v1/quarantine",
    "/v1/quarantine/reprocess",
    "/v1/reconciliation/W1/2025-07",
    "/v1/nothing",
    "/v1/customers/C1/invoices/2025-07",
    "/v1/customers/C2/invoices/2025-07",
    "/v1/invoices/W2/9999-12",
];

const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::DELETE];

/// Flags of byte 2.
const SIGN: u8 = 1;
const BEARER_ALL: u8 = 2;
const BEARER_W1: u8 = 4;
const ROUTE: u8 = 8;
const BEARER_C1: u8 = 16;

fn configuration() -> String {
    let sha = |t: &str| hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()));
    format!(
        r#"
[meta]
app_secret = "{META_SECRET}"
verify_token = "edge-verify"

[[route]]
name = "acme"
provider = "360dialog"
header = "D360-Secret"
secret = "{ROUTE_SECRET}"
waba = "W1"
phone = "P1"

[[route]]
name = "zd"
provider = "zendesk"
secret = "{ROUTE_SECRET}"
waba = "W1"
phone = "P1"
users = {{ "5963c0d619a30a2e00de36b8" = "+16505551234" }}

[[api_key]]
sha256 = "{all}"
wabas = ["*"]

[[api_key]]
sha256 = "{w1}"
wabas = ["W1"]

[[api_key]]
sha256 = "{c1}"
customers = ["C1"]
"#,
        all = sha(TOKENS[0]),
        w1 = sha(TOKENS[1]),
        c1 = sha(TOKENS[2]),
    )
}

/// The engine's configuration: phone P1 moves from W1 (Zendesk) to W2
/// (360dialog) on 2025-07-10 (rules P6); customer C1 has W1 and W2 until
/// 2025-07-20, C2 has W3 (section 8); W3 is billed in EUR from August
/// (D7).
fn engine_configuration() -> EngineConfig {
    use wabill_engine::carriers::{Carrier, PhoneHistory, Provider};
    use wabill_engine::customers::{
        Customer, Customers, Membership, Period, Plan, PlanVersion, Span, Subscription,
    };
    let mut config = EngineConfig::new();
    let date = |y, m, d| jiff::civil::Date::new(y, m, d).unwrap_or_default();
    let carriers = vec![
        Carrier {
            from: None,
            provider: Provider::Zendesk,
            waba: "W1".into(),
        },
        Carrier {
            from: Some(date(2025, 7, 10)),
            provider: Provider::Dialog360,
            waba: "W2".into(),
        },
    ];
    config.phones.insert("P1".into(), PhoneHistory { carriers });
    let mut w3 = config.waba("W3").clone();
    w3.currencies = vec![(date(2025, 8, 1), "EUR".into())];
    config.set_waba("W3", w3);
    let member = |waba: &str, to| Membership {
        waba: waba.into(),
        span: Span { from: None, to },
    };
    let customer = |id: &str, wabas| Customer {
        id: id.into(),
        name: None,
        currency: "USD".into(),
        minor_unit_digits: 2,
        wabas,
        subscriptions: vec![Subscription {
            plan: "p".into(),
            from: date(2025, 1, 1),
            to: None,
        }],
    };
    config.customers = Customers {
        plans: vec![Plan {
            id: "p".into(),
            period: Period::Month,
            spread: false,
            versions: vec![PlanVersion {
                from: date(2025, 1, 1),
                price: rust_decimal::Decimal::new(1000, 2),
                included: 1,
                pooled: false,
                unit_price: rust_decimal::Decimal::new(1, 2),
                by_category: Vec::new(),
                markup: rust_decimal::Decimal::new(1, 1),
                applies_to: wabill_engine::config::FeeAppliesTo::Paid,
            }],
        }],
        customers: vec![
            customer(
                "C1",
                vec![
                    member("W1", Some(date(2025, 7, 20))),
                    member("W2", Some(date(2025, 7, 20))),
                ],
            ),
            customer("C2", vec![member("W3", None)]),
        ],
        rates: Vec::new(),
    };
    config
}

/// A service on `data_dir` with its router, driven by one runtime.
pub struct Edge {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    state: Arc<State>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// What the service holds: events folded, items quarantined.
fn held(state: &State) -> (u64, usize) {
    (state.read().ledger().accepted(), state.quarantine.len())
}

impl Edge {
    pub fn new(data_dir: &Path, book: RateBook) -> anyhow::Result<Edge> {
        let mut service = crate::config::parse(&configuration(), None, &|_| None)?;
        service.store = crate::store::Location::Embedded(data_dir.to_owned());
        let engine = engine_configuration();
        service.resolve_customers(&engine)?;
        // One key per process: a key keeps 48 bytes for good.
        static KEY: std::sync::OnceLock<wabill_engine::HashKey> = std::sync::OnceLock::new();
        let key =
            *KEY.get_or_init(|| wabill_engine::HashKey::drawn_from(&std::hash::RandomState::new()));
        let (state, writer) = State::open_keyed(&service.store, engine, book, key)?;
        let app = App::new(Arc::clone(&state), service, None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Edge {
            runtime,
            router: router(Arc::new(app)),
            state,
            writer: Some(writer),
        })
    }

    /// Events folded and items quarantined so far.
    pub fn held(&self) -> (u64, usize) {
        held(&self.state)
    }

    /// The request `data` makes; None when its bytes make no valid URI or
    /// header.
    pub fn request(data: &[u8]) -> Option<Request<Body>> {
        let [method, path, flags, rest @ ..] = data else {
            return None;
        };
        let mut parts = rest.splitn(3, |b| *b == 0);
        let query = std::str::from_utf8(parts.next().unwrap_or_default()).ok()?;
        let headers = std::str::from_utf8(parts.next().unwrap_or_default()).ok()?;
        let body = parts.next().unwrap_or_default().to_vec();
        let path = PATHS[usize::from(*path) % PATHS.len()];
        let uri = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let mut builder = Request::builder()
            .method(METHODS[usize::from(*method) % METHODS.len()].clone())
            .uri(uri);
        for line in headers.lines() {
            let (name, value) = line.split_once(':')?;
            builder = builder.header(name.trim(), value.trim());
        }
        if flags & SIGN != 0 {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, META_SECRET.as_bytes());
            let signature = hex::encode(ring::hmac::sign(&key, &body));
            builder = builder.header("X-Hub-Signature-256", format!("sha256={signature}"));
        }
        for (flag, token) in [
            (BEARER_ALL, TOKENS[0]),
            (BEARER_W1, TOKENS[1]),
            (BEARER_C1, TOKENS[2]),
        ] {
            if flags & flag != 0 {
                builder = builder.header("Authorization", format!("Bearer {token}"));
            }
        }
        if flags & ROUTE != 0 {
            builder = builder
                .header("D360-Secret", ROUTE_SECRET)
                .header("X-API-Key", ROUTE_SECRET);
        }
        builder.body(Body::from(body)).ok()
    }

    /// Sends the request `data` makes and checks the answer: never a 500;
    /// every other error a JSON `{"error": {"code", "message"}}` whose code
    /// is the table's, with the table's status; nothing stored or held on
    /// any answer but a 2xx. The answer's status, or None when `data` makes
    /// no request; a broken contract is an `Err` naming it.
    pub fn check(&self, data: &[u8]) -> Result<Option<u16>, String> {
        let Some(request) = Edge::request(data) else {
            return Ok(None);
        };
        let what = format!("{} {}", request.method(), request.uri());
        let before = held(&self.state);
        let (status, body) = self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .unwrap_or_else(|e| match e {});
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            (status, body)
        });
        let after = held(&self.state);
        let text = String::from_utf8_lossy(&body);
        if status == 500 {
            return Err(format!("{what}: 500 {text}"));
        }
        if status >= 400 {
            let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                format!("{what}: {status} with a body that is no JSON ({e}): {text}")
            })?;
            let code = json["error"]["code"].as_str().unwrap_or_default();
            let known = ErrorCode::ALL.iter().find(|c| c.code() == code);
            match known {
                Some(c)
                    if c.status().as_u16() == status && json["error"]["message"].is_string() => {}
                _ => return Err(format!("{what}: {status} answered with {text}")),
            }
            if after != before {
                return Err(format!(
                    "{what}: {status} {code}, yet held (events, quarantined) went {before:?} → {after:?}"
                ));
            }
        }
        Ok(Some(status))
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.state.close();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}
