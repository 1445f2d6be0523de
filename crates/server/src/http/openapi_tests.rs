//! The OpenAPI document (`openapi.json`, served at `/openapi.json`) is
//! written by hand; these tests fail when it and the code disagree: the
//! router's paths and methods, the query parameters the handlers read, the
//! keys of every JSON answer, and the error codes.

mod customer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::http::{Method, Request, header};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;
use wabill_engine::live::TimelineEntry;
use wabill_engine::{EngineConfig, Instant, RateBook};

use super::api::{
    ConversationsPage, ConversationsQuery, EventsAnswer, OpenConversation, Refused, WindowAnswer,
    conversation_item, encode_cursor,
};
use super::error::{ApiError, ErrorCode};
use super::quarantine::{QuarantinePage, QuarantineQuery, ReprocessAnswer, StillHeld, held_item};
use super::query::PairQuery;
use super::quote::QuoteAnswer;
use super::webhooks::{BodyAnswer, Handshake, Spot};
use super::{App, OPENAPI, PATHS, router};

mod reconciliation;
use crate::state::State;
use reconciliation::reconciliation;

fn document() -> Value {
    serde_json::from_str(OPENAPI).unwrap_or_else(|e| panic!("openapi.json: {e}"))
}

/// `schema`, or the schema its `$ref` names.
fn resolve<'d>(doc: &'d Value, schema: &'d Value) -> &'d Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

// ------------------------------------------------------------- the router

/// A router over an empty log, with Meta configured and the API key `k`.
fn service() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = hex::encode(super::auth::sha256(b"k"));
    let text = format!(
        "[server]\ndata_dir = {:?}\n[meta]\napp_secret = \"s\"\nverify_token = \"t\"\n\
         [[api_key]]\nsha256 = \"{key}\"\nwabas = [\"*\"]\n",
        dir.path().display().to_string()
    );
    let config = crate::config::parse(&text, None, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let (state, _writer) = State::open(&config.store, EngineConfig::new(), RateBook::new())
        .unwrap_or_else(|e| panic!("{e}"));
    (router(Arc::new(App::new(state, config, None))), dir)
}

/// The answer's status and, for a JSON error, its code and message.
async fn send(router: &axum::Router, method: Method, uri: &str) -> (u16, String, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, "Bearer k")
        .body(HttpBody::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let response = router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |key: &str| json["error"][key].as_str().unwrap_or_default().to_owned();
    (status, text("code"), text("message"))
}

/// A path of the document with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{waba}", "W1")
        .replace("{month}", "2025-06")
        .replace("{name}", "acme")
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// Every path and method the router serves is documented, and every
/// documented one is served. (HEAD is served wherever GET is, by axum.)
#[tokio::test]
async fn the_document_lists_exactly_the_routed_paths_and_methods() {
    let doc = document();
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let served: BTreeSet<&str> = PATHS.into_iter().collect();
    assert_eq!(documented, served, "documented paths, served paths");
    let (router, _dir) = service();
    for path in PATHS {
        for method in METHODS {
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            let (status, code, message) = send(&router, http_method, &concrete(path)).await;
            let routed = !(code == "method_not_allowed"
                || code == "not_found" && message.starts_with("no endpoint at"));
            let documented = doc["paths"][path].get(method).is_some();
            assert_eq!(
                routed, documented,
                "{method} {path}: routed (answered {status} {code}), documented"
            );
        }
    }
    let (status, code, _) = send(&router, Method::GET, "/v1/nothing").await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

/// Path parameters: the names between braces are the documented ones.
#[test]
fn path_parameters_are_documented() {
    let doc = document();
    for path in PATHS {
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for method in METHODS {
            if doc["paths"][path].get(method).is_some() {
                let documented = parameters(&doc, path, method, "path");
                let names: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
                assert_eq!(names, in_path, "{method} {path}");
            }
        }
    }
}

/// The documented parameters of a path's method that are `in` there,
/// with whether each is required.
fn parameters(doc: &Value, path: &str, method: &str, r#in: &str) -> BTreeMap<String, bool> {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == r#in)
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_owned();
            (name, p["required"].as_bool().unwrap_or(false))
        })
        .collect()
}

/// The field names a `Deserialize` struct reads (as renamed), taken from
/// what its derived code tells a deserializer.
fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Fields<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// A valid value of each query parameter, for the checks below.
fn valid(name: &str) -> String {
    match name {
        "waba" => "W1".to_owned(),
        "phone" => "P1".to_owned(),
        "user" => "%2B5511999990001".to_owned(),
        "at" => "2025-06-01T10:00:00Z".to_owned(),
        "kind" => "freeform".to_owned(),
        "month" => "2025-06".to_owned(),
        "limit" => "10".to_owned(),
        "cursor" => encode_cursor(&(0, "P1".into(), "u".into(), "m".into())),
        "hub.mode" => "subscribe".to_owned(),
        "hub.verify_token" => "t".to_owned(),
        "hub.challenge" => "c".to_owned(),
        other => panic!("no valid value for query parameter {other:?}"),
    }
}

/// Refused for its query: the code a missing or bad parameter answers.
fn refused_for_query(code: &str) -> bool {
    code == "bad_query" || code == "verify_token_mismatch"
}

/// Query parameters: the documented names are those the handler reads;
/// without a documented-required one the request is refused for its
/// query, and with only the required ones it is not.
#[tokio::test]
async fn query_parameters_are_the_ones_the_handlers_read() {
    // `/v1/window` reads the pair query's waba, phone, user and at.
    let window: Vec<&str> = PairQuery::NAMES
        .into_iter()
        .filter(|n| !["kind", "category"].contains(n))
        .collect();
    let read: [(&str, Vec<&str>); 5] = [
        ("/webhooks/meta", struct_fields::<Handshake>().to_vec()),
        ("/v1/window", window),
        ("/v1/quote", PairQuery::NAMES.to_vec()),
        (
            "/v1/conversations",
            struct_fields::<ConversationsQuery>().to_vec(),
        ),
        (
            "/v1/quarantine",
            struct_fields::<QuarantineQuery>().to_vec(),
        ),
    ];
    let doc = document();
    for path in PATHS {
        let handled = read.iter().find(|(p, _)| *p == path).map(|(_, n)| n);
        let documented = parameters(&doc, path, "get", "query");
        let names: BTreeSet<&str> = documented.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = handled.into_iter().flatten().copied().collect();
        assert_eq!(names, expected, "GET {path}: documented, read");
    }
    let (router, _dir) = service();
    for (path, _) in &read {
        let documented = parameters(&doc, path, "get", "query");
        let query = |names: &mut dyn Iterator<Item = &String>| {
            let pairs: Vec<String> = names.map(|n| format!("{n}={}", valid(n))).collect();
            format!("{path}?{}", pairs.join("&"))
        };
        let required: Vec<&String> = documented
            .iter()
            .filter(|(_, r)| **r)
            .map(|(n, _)| n)
            .collect();
        let (_, code, message) =
            send(&router, Method::GET, &query(&mut required.iter().copied())).await;
        assert!(
            !refused_for_query(&code),
            "{path} with its required parameters: {code} {message}"
        );
        for missing in &required {
            let mut rest = required.iter().copied().filter(|n| n != missing);
            let (_, code, _) = send(&router, Method::GET, &query(&mut rest)).await;
            assert!(refused_for_query(&code), "{path} without {missing}: {code}");
        }
    }
}

// --------------------------------------------------------------- answers

/// Checks that the JSON `samples` have exactly the properties `schema`
/// lists (over all samples, as an array's items may differ in which
/// optional keys they carry), recursively; collects what differs.
fn compare(doc: &Value, schema: &Value, samples: &[&Value], at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    let objects: Vec<&serde_json::Map<String, Value>> =
        samples.iter().filter_map(|s| s.as_object()).collect();
    // A map (`ignored`): every value as `additionalProperties` says.
    if !objects.is_empty()
        && schema["properties"].is_null()
        && schema["additionalProperties"].is_object()
    {
        let values: Vec<&Value> = objects.iter().flat_map(|o| o.values()).collect();
        compare(
            doc,
            &schema["additionalProperties"],
            &values,
            &format!("{at}.*"),
            errors,
        );
        return;
    }
    // An object given as is (a quarantined item's JSON).
    if !objects.is_empty() && schema["properties"].is_null() && schema["type"] == "object" {
        return;
    }
    if !objects.is_empty() {
        let Some(properties) = schema["properties"].as_object() else {
            errors.push(format!("{at}: the schema lists no properties"));
            return;
        };
        let keys: BTreeSet<&str> = objects
            .iter()
            .flat_map(|o| o.keys())
            .map(String::as_str)
            .collect();
        let listed: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
        if keys != listed {
            errors.push(format!("{at}: answered {keys:?}, documented {listed:?}"));
        }
        for (name, property) in properties {
            let values: Vec<&Value> = objects.iter().filter_map(|o| o.get(name)).collect();
            compare(doc, property, &values, &format!("{at}.{name}"), errors);
        }
    }
    let items: Vec<&Value> = samples
        .iter()
        .filter_map(|s| s.as_array())
        .flatten()
        .collect();
    if !items.is_empty() {
        compare(doc, &schema["items"], &items, &format!("{at}[]"), errors);
    }
}

fn json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| panic!("{e}"))
}

fn invoice() -> wabill_report::InvoiceJson {
    let counts = || wabill_report::CountsJson {
        total: 1,
        free_tier: 0,
        free_entry_point: 0,
        free_customer_service: 0,
        paid: 1,
    };
    wabill_report::InvoiceJson {
        waba: "W1".into(),
        month: "2025-06".into(),
        timezone: "UTC".into(),
        currency: "USD".into(),
        conversations: counts(),
        messages: counts(),
        lines: vec![wabill_report::LineJson {
            era: "pmp",
            market: "Brazil".into(),
            category: "marketing",
            tier: Some(wabill_report::TierJson { from: 1, to: None }),
            provider: Some("360dialog"),
            quantity: 1,
            free_tier: 0,
            free_entry_point: 0,
            free_customer_service: 0,
            paid: 1,
            unit_price: "0.0625".into(),
            meta_amount: "0.0625".into(),
        }],
        meta_total: "0.0625".into(),
        platform_fee: wabill_report::PlatformFeeJson {
            unit: "0".into(),
            quantity: 0,
            amount: "0".into(),
        },
        total: "0.0625".into(),
        amount_due: "0.0625".into(),
        off_period_events: Some(0),
    }
}

/// A verdict with every field, as Meta's 2026 statuses carry them.
fn meta() -> wabill_report::MetaJson<'static> {
    wabill_report::MetaJson {
        billable: Some(true),
        category: Some("marketing".into()),
        conversation_id: Some("72b14d6bd5407799e66f64d1b338e567".into()),
        cost: Some("0.035 USD".into()),
        expires: Some("2025-06-02T10:00:00Z".into()),
        origin: Some("marketing".into()),
        pricing_model: Some("PMP".into()),
        pricing_type: Some("regular".into()),
    }
}

fn conversations() -> ConversationsPage {
    let record = wabill_report::ConversationJson {
        waba: "W1",
        phone: "P1",
        user: "5511999990001",
        start: "2025-06-01T10:00:00Z".into(),
        end: "2025-06-02T10:00:00Z".into(),
        era: "cbp",
        category: "marketing",
        market: "Brazil",
        free: "none",
        unit_price: "0.0625".into(),
        opened_by: "m1",
        messages: 2,
        meta: Some(meta()),
    };
    let entry = |kind, id: &str, detail_key, detail: Option<&str>| TimelineEntry {
        at: Instant(0),
        kind,
        id: id.to_owned(),
        detail_key,
        detail: detail.map(str::to_owned),
    };
    let timeline = [
        entry("inbound", "m0", "referral", Some("entry_point")),
        entry("outbound", "m1", "template", Some("marketing")),
        entry("delivered", "m1", "", None),
    ];
    ConversationsPage {
        conversations: vec![conversation_item(&record, &timeline, |_| Some(meta()))],
        next_cursor: Some("00".into()),
    }
}

/// A sample of each JSON answer, built from the types the handlers answer.
// Long: one sample per documented answer, in one list.
// Long: one sample answer per served path, read as a table.
fn samples() -> Vec<(&'static str, &'static str, Value)> {
    let stored = || {
        json(BodyAnswer {
            accepted: 1,
            duplicates: 0,
            ignored: [("payment".to_owned(), 1)].into(),
            quarantined: vec![Spot {
                path: "entry[0].changes[0].value.statuses[1]".into(),
                reason: "missing `id`".into(),
            }],
        })
    };
    vec![
        ("/webhooks/meta", "post", stored()),
        ("/webhooks/360dialog/{name}", "post", stored()),
        ("/webhooks/zendesk/{name}", "post", stored()),
        (
            "/v1/events",
            "post",
            json(EventsAnswer {
                accepted: 1,
                duplicates: 0,
                rejected: vec![Refused {
                    index: 1,
                    reason: "why".into(),
                }],
            }),
        ),
        (
            "/v1/window",
            "get",
            json(WindowAnswer {
                csw_expires_at: Some("2025-06-02T10:00:00Z".into()),
                csw_open: true,
                free_entry_point_until: None,
                freeform_allowed: true,
                open_conversations: vec![OpenConversation {
                    category: "service",
                    era: "cbp",
                    expires_at: "2025-06-02T10:00:00Z".into(),
                    started_at: "2025-06-01T10:00:00Z".into(),
                }],
                template_required: false,
            }),
        ),
        (
            "/v1/quote",
            "get",
            json(QuoteAnswer {
                allowed: true,
                category: "marketing",
                customer: Some(customer::quote()),
                era: "pmp",
                free: "none",
                free_tier_left: 0,
                market: "Brazil",
                meta_price: "0.0625".into(),
                opens_conversation: true,
                platform_fee: "0".into(),
            }),
        ),
        ("/v1/invoices/{waba}/{month}", "get", json(invoice())),
        (
            "/v1/customers/{id}/invoices/{month}",
            "get",
            json(wabill_report::CustomerInvoiceJson::from(&customer::sample())),
        ),
        (
            "/v1/reconciliation/{waba}/{month}",
            "get",
            json(reconciliation()),
        ),
        ("/v1/conversations", "get", json(conversations())),
        (
            "/v1/quarantine",
            "get",
            json(QuarantinePage {
                items: vec![held_item(crate::store::Held {
                    id: 1,
                    received_at: "2026-12-07T10:00:00Z".into(),
                    source: "meta",
                    route: String::new(),
                    item: wabill_ingest::Quarantined {
                        path: "entry[0].changes[0].value.statuses[1]".into(),
                        reason: "missing `id`".into(),
                        item: r#"{"status":"sent"}"#.into(),
                        body: String::new(),
                        waba: Some("W1".into()),
                    },
                })],
                next_cursor: Some("1".into()),
            }),
        ),
        (
            "/v1/quarantine/reprocess",
            "post",
            json(ReprocessAnswer {
                accepted: 1,
                duplicates: 0,
                more: true,
                next_cursor: Some("2".into()),
                released: 1,
                reprocessed: 2,
                still_quarantined: vec![StillHeld {
                    id: 2,
                    path: "events[0]".into(),
                    reason: "why".into(),
                }],
            }),
        ),
    ]
}

/// Every JSON answer has exactly the keys its schema lists; every error
/// answer is the `Error` schema.
#[test]
fn every_answer_has_the_properties_its_schema_lists() {
    let doc = document();
    let samples = samples();
    let error = json(ApiError::new(ErrorCode::BadQuery, "why").body());
    let mut errors = Vec::new();
    for path in PATHS {
        for method in METHODS {
            let Some(responses) = doc["paths"][path][method]["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                let Some(schema) = response["content"]
                    .get("application/json")
                    .map(|c| &c["schema"])
                else {
                    continue;
                };
                let at = format!("{method} {path} {status}");
                if status.starts_with('2') {
                    let sample = samples
                        .iter()
                        .find(|(p, m, _)| *p == path && *m == method)
                        .map(|(_, _, v)| v);
                    match sample {
                        Some(sample) => compare(&doc, schema, &[sample], &at, &mut errors),
                        // The document itself: its shape is OpenAPI's.
                        None if path == "/openapi.json" => {}
                        None => errors.push(format!("{at}: no sample answer to check")),
                    }
                } else {
                    if schema["$ref"] != "#/components/schemas/Error" {
                        errors.push(format!("{at}: not the Error schema"));
                    }
                    compare(&doc, schema, &[&error], &at, &mut errors);
                }
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The `Error` schema's codes are exactly [`ErrorCode`]'s.
#[test]
fn the_documented_error_codes_are_the_table() {
    let doc = document();
    let documented: Vec<&str> =
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
    let table: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(documented, table);
}
