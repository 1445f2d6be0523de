//! The HTTP edge under generated requests (issue 17, docs/security.md):
//! methods, paths, query strings, headers and bodies, some well formed and
//! validly signed so that they reach the parsers and the engine, others
//! not; every answer must keep the contracts `wabill_server::edge` checks.
//! A bounded run for CI; `fuzz/` drives the same harness with libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use wabill_server::edge::Edge;

fn user() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("5511999990001".to_owned()),
        Just("+447400123456".to_owned()),
        Just("BR.1502576394655843".to_owned()),
        "[0-9+]{0,20}",
        ".{0,12}",
    ]
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("wamid.a".to_owned()),
        Just("wamid.b".to_owned()),
        "[a-z.#]{0,12}",
        ".{0,8}",
    ]
}

fn ts() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"2025-07-15T10:00:00Z\"".to_owned()),
        Just("1752574020".to_owned()),
        Just("\"1752574020\"".to_owned()),
        "\"[0-9TZ:.-]{0,24}\"",
        Just("null".to_owned()),
    ]
}

fn normalized() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("inbound"), Just("outbound"), Just("status"), Just("x")],
        id(),
        prop_oneof![Just("W1"), Just("W2"), Just("")],
        user(),
        ts(),
        prop_oneof![
            Just(String::new()),
            Just(r#","status":"delivered""#.to_owned()),
            Just(r#","template":{"name":"t","category":"utility"}"#.to_owned()),
            Just(r#","referral":{"source_type":"ad"}"#.to_owned()),
            Just(r#","meta":{"pricing":{"billable":true,"category":"marketing","pricing_model":"PMP"}}"#.to_owned()),
            ",\"[a-z_]{1,8}\":[0-9a-z\"{}\\[\\],]{0,16}",
        ],
    )
        .prop_map(|(kind, id, waba, user, ts, extra)| {
            format!(
                r#"{{"type":"{kind}","id":"{id}","waba":"{waba}","phone":"P1","user":"{user}","ts":{ts}{extra}}}"#
            )
        })
}

fn cloud() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("W1"), Just("W2"), Just("W3")],
        id(),
        user(),
        ts(),
        prop_oneof![
            Just("delivered".to_owned()),
            Just("read".to_owned()),
            Just("sent".to_owned()),
            "[a-z]{0,6}",
        ],
        any::<bool>(),
    )
        .prop_map(|(waba, id, user, ts, status, message)| {
            let item = if message {
                format!(r#""messages":[{{"from":"{user}","id":"{id}","timestamp":{ts},"type":"text"}}]"#)
            } else {
                format!(
                    r#""statuses":[{{"id":"{id}","status":"{status}","timestamp":{ts},"recipient_id":"{user}","pricing":{{"billable":true,"category":"utility","pricing_model":"PMP"}}}}]"#
                )
            };
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"phone_number_id":"P1"}},{item}}}}}]}}]}}"#
            )
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(normalized(), 0..4).prop_map(|l| l.join("\n").into_bytes()),
        cloud().prop_map(String::into_bytes),
        (user(), id(), ts()).prop_map(|(u, i, t)| format!(
            r#"{{"statuses":[{{"id":"{i}","recipient_id":"{u}","status":"delivered","timestamp":{t}}}]}}"#
        )
        .into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn query() -> impl Strategy<Value = String> {
    // What the window, quote and conversations read, whole, then a few
    // more pairs of any kind.
    let whole = (
        prop_oneof![Just("W1"), Just("W2"), Just("W3")],
        user(),
        prop_oneof![
            Just(""),
            Just("&kind=freeform"),
            Just("&kind=template&category=utility"),
            Just("&at=2025-07-15T11:00:00Z"),
            Just("&month=2025-07&limit=2"),
        ],
    )
        .prop_map(|(waba, user, more)| {
            let user = user.replace('+', "%2B");
            format!("waba={waba}&phone=P1&user={user}&month=2025-07{more}")
        });
    let pair = prop_oneof![
        Just("waba=W1".to_owned()),
        Just("waba=W2".to_owned()),
        Just("waba=W3".to_owned()),
        Just("month=9999-12".to_owned()),
        Just("month=2025-08".to_owned()),
        Just("phone=P1".to_owned()),
        user().prop_map(|u| format!("user={u}")),
        Just("month=2025-07".to_owned()),
        Just("kind=freeform".to_owned()),
        Just("kind=template&category=marketing".to_owned()),
        Just("at=2025-07-15T11:00:00Z".to_owned()),
        "(limit|cursor|at|month|hub\\.mode|hub\\.verify_token)=[0-9a-zA-Z%+:-]{0,10}",
    ];
    (
        prop_oneof![whole, Just(String::new())],
        proptest::collection::vec(pair, 0..4),
    )
        .prop_map(|(whole, pairs)| {
            std::iter::once(whole)
                .chain(pairs)
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("&")
        })
}

fn headers() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("Content-Type: application/x-ndjson".to_owned()),
        Just("Content-Type: application/json".to_owned()),
        "[A-Za-z-]{1,12}: [ -~]{0,24}",
    ]
}

/// The harness's bytes: method, path, flags, query, headers, body.
fn request() -> impl Strategy<Value = Vec<u8>> {
    // Mostly POSTs to the paths that take events, with every credential,
    // so that most requests reach the parsers; the rest anything.
    let method = prop_oneof![3 => Just(1u8), 1 => any::<u8>()];
    let path = prop_oneof![3 => 0u8..4, 1 => any::<u8>()];
    let flags = prop_oneof![3 => Just(1u8 | 2 | 8), 1 => Just(16u8), 1 => any::<u8>()];
    (method, path, flags, query(), headers(), body()).prop_map(
        |(method, path, flags, query, headers, body)| {
            let mut bytes = vec![method, path, flags];
            bytes.extend_from_slice(query.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(headers.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(&body);
            bytes
        },
    )
}

#[test]
fn every_generated_request_keeps_the_service_s_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let book = wabill_rates::shipped().unwrap();
    let edge = Edge::new(dir.path(), book).unwrap();
    // A fixed seed: CI runs the same 2 000 requests every time (the fuzz
    // target explores further).
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    runner
        .run(&request(), |bytes| {
            edge.check(&bytes).map_err(TestCaseError::fail)?;
            Ok(())
        })
        .unwrap();
    // The generator reaches the engine and the quarantine, not only the
    // refusals at the door.
    let (events, quarantined) = edge.held();
    // (31 and 44 with this seed: the ids repeat, so most events are
    // duplicates.)
    assert!(
        events >= 20 && quarantined >= 20,
        "{events} events, {quarantined} held"
    );
}

/// Reads of a customer's key at the end of the calendar, and of months
/// and WABAs it has only in part, keep the contracts (a month whose end
/// no date holds once made the service panic).
#[test]
fn a_customer_key_at_the_edges_of_its_dates_keeps_the_service_s_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let book = wabill_rates::shipped().unwrap();
    let edge = Edge::new(dir.path(), book).unwrap();
    let path = |p: &str| {
        wabill_server::edge::PATHS
            .iter()
            .position(|x| *x == p)
            .unwrap() as u8
    };
    let request = |path: u8, query: &str| {
        let mut bytes = vec![0u8, path, 16];
        bytes.extend_from_slice(query.as_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes
    };
    let cases = [
        (request(path("/v1/invoices/W2/9999-12"), ""), 400),
        (request(path("/v1/invoices/W1/2025-07"), ""), 403),
        (
            request(path("/v1/conversations"), "waba=W2&month=9999-12"),
            400,
        ),
        (
            request(path("/v1/conversations"), "waba=W2&month=2025-07"),
            200,
        ),
        (request(path("/v1/customers/C2/invoices/2025-07"), ""), 403),
        (request(path("/v1/customers/C1/invoices/2025-07"), ""), 404),
        (
            request(
                path("/v1/window"),
                "waba=W1&phone=P1&user=5511999990001&at=2025-07-25T00:00:00Z",
            ),
            403,
        ),
        (
            request(
                path("/v1/window"),
                "waba=W2&phone=P1&user=5511999990001&at=2025-07-15T00:00:00Z",
            ),
            200,
        ),
    ];
    for (bytes, status) in cases {
        let answered = edge.check(&bytes).unwrap();
        assert_eq!(
            answered,
            Some(status),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
