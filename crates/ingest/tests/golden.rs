//! Golden files for real webhook payloads (tests/golden/, see its README.md)
//! and focused tests of bad input (events.md section 5).
//!
//! Every `tests/golden/<name>.json` is one webhook body, stored pretty-printed
//! as in the reference (docs/reference/meta-pricing.md section 6); the test
//! minifies it to one line (as bodies travel in files) and compares what
//! `parse_line` makes of it with `<name>.expected`.
//! `UPDATE_GOLDEN=1 cargo test -p wabill-ingest --test golden` rewrites the
//! `.expected` files instead: read every change against events.md and the
//! reference before keeping it.
//!
//! Bodies whose name starts with `onprem_` are On-Premises bodies and are
//! parsed with the route W1/P1 (they carry no WABA or phone); the others get
//! no route. Where the reference shows only a `statuses` array (6.5 c/d/f, 6.6,
//! 6.7), the file wraps it in the standard Cloud API envelope, as section 6.5
//! says real traffic does; the README lists every file's provenance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{check_goldens, render};
use wabill_engine::event::{EventBody, Status};
use wabill_ingest::{InputError, Parsed, Route, Shape, parse_line};

const ONPREM_ROUTE: Route<'static> = Route {
    waba: Some("W1"),
    phone: Some("P1"),
    provider: None,
};

/// Removes the whitespace outside strings: the body becomes one line, with
/// its keys, order and escapes exactly as written.
fn minify(pretty: &str) -> String {
    let mut out = String::with_capacity(pretty.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in pretty.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

// ---------------------------------------------------------------------------
// The golden test
// ---------------------------------------------------------------------------

#[test]
fn golden_webhook_bodies() {
    check_goldens(&golden_dir(), 20, |name, pretty, failures| {
        let line = minify(pretty);
        assert!(!line.contains('\n'), "{name}: minified body has a newline");
        let on_premises = name.starts_with("onprem_");
        let route = if on_premises {
            ONPREM_ROUTE
        } else {
            Route::default()
        };
        let mut parsed = Parsed::default();
        let result = parse_line(&line, route, &mut parsed);
        if let Ok(shape) = result {
            let want = if on_premises {
                Shape::OnPremises
            } else {
                Shape::CloudApi
            };
            if shape != want {
                failures.push(format!("{name}: detected as {shape:?}, expected {want:?}"));
            }
        }
        if result.is_err() && !(parsed.events.is_empty() && parsed.quarantined.is_empty()) {
            failures.push(format!("{name}: rejected but events or items kept"));
        }
        for q in &parsed.quarantined {
            check_reread(name, route, q, failures);
        }
        render(&result, &parsed)
    });
}

#[test]
fn minify_keeps_strings_verbatim() {
    assert_eq!(
        minify("{ \"a b\" : [ 1, \"x \\\" y\" ],\n  \"c\": \"\\\\\" }"),
        "{\"a b\":[1,\"x \\\" y\"],\"c\":\"\\\\\"}"
    );
}

// ---------------------------------------------------------------------------
// Focused tests of bad input (events.md section 5) and of the rules of
// section 1 that decide acceptance
// ---------------------------------------------------------------------------

/// A quarantined item's body, read again with the same route, quarantines
/// the same item (re-processing finds what it held).
fn check_reread(
    name: &str,
    route: Route<'_>,
    q: &wabill_ingest::Quarantined,
    failures: &mut Vec<String>,
) {
    if q.body.is_empty() {
        return;
    }
    let mut again = Parsed::default();
    let result = parse_line(&q.body, route, &mut again);
    let same = again.quarantined.first().map(|r| &r.item);
    if result.is_err() || !again.events.is_empty() || same != Some(&q.item) {
        failures.push(format!(
            "{name}: the quarantined item {} does not read again the same from its body {}: {result:?} {:?}",
            q.path, q.body, again.quarantined
        ));
    }
}

/// Parses one line with no route; the events are rendered as in the
/// goldens, then the ignored and quarantined items.
fn parse(line: &str) -> Result<Vec<String>, InputError> {
    parse_with(line, Route::default())
}

fn parse_with(line: &str, route: Route<'_>) -> Result<Vec<String>, InputError> {
    let mut out = Parsed::default();
    match parse_line(line, route, &mut out) {
        Ok(_) => Ok(common::render_items(&out)
            .lines()
            .map(str::to_owned)
            .collect()),
        Err(e) => {
            assert!(out.events.is_empty(), "rejected but appended: {out:?}");
            Err(e)
        }
    }
}

/// The reason a line is refused whole, or its one item quarantined (as
/// `path: reason`); panics when it is accepted.
fn rejected(line: &str) -> String {
    let mut out = Parsed::default();
    match parse_line(line, Route::default(), &mut out) {
        Err(e) => e.to_string(),
        Ok(_) if out.quarantined.len() == 1 && out.events.is_empty() => {
            let q = &out.quarantined[0];
            format!("{}: {}", q.path, q.reason)
        }
        Ok(_) => panic!("accepted, expected a rejection: {line}\n  -> {out:?}"),
    }
}

fn accepted(line: &str) -> Vec<String> {
    match parse(line) {
        Ok(events) => events,
        Err(e) => panic!("rejected ({e}), expected acceptance: {line}"),
    }
}

const INBOUND_OK: &str = r#"{"type":"inbound","id":"wamid.in1","waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:00:00Z"}"#;

#[test]
fn the_baseline_line_is_accepted() {
    assert_eq!(
        accepted(INBOUND_OK),
        [
            "inbound wamid.in1 waba=W1 phone=P1 user=2348031234567 ts=2022-03-07T10:00:00Z referral=false"
        ]
    );
}

#[test]
fn events_md_example_is_accepted() {
    let lines = [
        r#"{"type":"inbound","id":"wamid.in1","waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:00:00Z","referral":{"source_type":"ad","source_id":"120226305854810726"}}"#,
        r#"{"type":"outbound","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:02:00Z"}"#,
        r#"{"type":"status","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":1646647322,"status":"delivered"}"#,
    ];
    let got: Vec<String> = lines.iter().flat_map(|l| accepted(l)).collect();
    assert_eq!(
        got,
        [
            "inbound wamid.in1 waba=W1 phone=P1 user=2348031234567 ts=2022-03-07T10:00:00Z referral=true",
            "outbound wamid.out1 waba=W1 phone=P1 user=2348031234567 ts=2022-03-07T10:02:00Z template=none",
            "status wamid.out1 waba=W1 phone=P1 user=2348031234567 ts=2022-03-07T10:02:02Z status=delivered",
        ]
    );
}

#[test]
fn not_valid_json_is_rejected() {
    for line in [
        r#"{"type":"inbound","id":"wamid.in1""#,
        "hello",
        r#"{"type":"inbound",}"#,
        "{'type':'inbound'}",
    ] {
        match parse(line) {
            Err(InputError::Json(_)) => {}
            other => panic!("{line}: expected InputError::Json, got {other:?}"),
        }
        assert!(rejected(line).starts_with("not valid JSON"), "{line}");
    }
}

#[test]
fn missing_required_field_is_rejected() {
    let full: serde_json::Value = serde_json::from_str(INBOUND_OK).unwrap();
    let without = |field: &str| {
        let mut v = full.clone();
        v.as_object_mut().unwrap().remove(field);
        v.to_string()
    };
    // Without its `type` the line is no normalized event: its shape is unknown.
    let line = without("type");
    match parse(&line) {
        Err(InputError::Shape(reason)) => assert!(
            reason.starts_with("unknown shape: ") && reason.contains("(`type`)"),
            "missing type: {reason}"
        ),
        other => panic!("missing type: expected InputError::Shape, got {other:?}"),
    }
    for field in ["id", "waba", "phone", "user", "ts"] {
        let reason = rejected(&without(field));
        assert_eq!(
            reason,
            format!("event: missing `{field}`"),
            "missing {field}"
        );
    }
    // A status needs its status.
    let reason = rejected(
        r#"{"type":"status","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":1646647322}"#,
    );
    assert_eq!(reason, "event: missing `status`");
    match parse(
        r#"{"type":"status","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":1646647322}"#,
    ) {
        Err(InputError::Missing { field, .. }) => assert_eq!(field, "status"),
        other => panic!("expected Missing status, got {other:?}"),
    }
    // A Cloud status without its recipient.
    let reason = rejected(
        r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.X","status":"sent","timestamp":"1668595349"}]},"field":"messages"}]}]}"#,
    );
    assert_eq!(
        reason,
        "entry[0].changes[0].value.statuses[0]: missing `recipient_id`"
    );
}

#[test]
fn unparseable_timestamp_is_rejected() {
    for ts in [
        r#""2022-03-07T10:00:00""#, // no offset
        r#""2022-03-07""#,          // a date alone
        r#""yesterday""#,           // words
        r#""TIMESTAMP""#,           // Meta's placeholder
        r#""""#,
        "-1646647322",
        "null",
        "true",
    ] {
        let line = INBOUND_OK.replace(r#""2022-03-07T10:00:00Z""#, ts);
        let reason = rejected(&line);
        // A JSON null is an absent `ts`.
        assert!(
            reason.starts_with("event: `ts` ") || reason == "event: missing `ts`",
            "ts {ts}: {reason}"
        );
    }
}

#[test]
fn timestamp_forms_of_events_md_are_accepted() {
    for (ts, want) in [
        (r#""2022-03-07T10:00:00Z""#, "2022-03-07T10:00:00Z"),
        (r#""2022-03-07T13:00:00+03:00""#, "2022-03-07T10:00:00Z"),
        (
            r#""2022-03-07T10:00:00.123456789Z""#,
            "2022-03-07T10:00:00.123456789Z",
        ),
        ("1646647200", "2022-03-07T10:00:00Z"),
        ("1646647200.5", "2022-03-07T10:00:00.5Z"),
        (r#""1646647200""#, "2022-03-07T10:00:00Z"),
    ] {
        let line = INBOUND_OK.replace(r#""2022-03-07T10:00:00Z""#, ts);
        let events = accepted(&line);
        assert_eq!(events.len(), 1);
        assert!(
            events[0].contains(&format!(" ts={want} ")),
            "ts {ts}: {events:?}"
        );
    }
}

#[test]
fn user_with_dashes_spaces_or_letters_is_rejected() {
    for user in [
        r#""1-650-555-1234""#,
        r#""+1 650 555 1234""#,
        r#""1650555123x""#,
        r#""16505551234 ""#,
        r#""++16505551234""#,
        r#""+""#,
        r#""""#,
        "-16505551234",
    ] {
        let line = INBOUND_OK.replace(r#""2348031234567""#, user);
        let reason = rejected(&line);
        assert!(
            reason.starts_with("event: `user` "),
            "user {user}: {reason}"
        );
    }
}

#[test]
fn unknown_shape_is_rejected() {
    for line in [
        r#"{"foo":1}"#,
        "{}",
        r#"{"type":"message","id":"x"}"#,
        r#"{"object":"page","entry":[]}"#,
        "[1,2,3]",
        r#""a string""#,
        "42",
    ] {
        match parse(line) {
            Err(InputError::Shape(_)) => {}
            other => panic!("{line}: expected InputError::Shape, got {other:?}"),
        }
    }
}

#[test]
fn a_bad_status_is_quarantined_and_the_rest_of_its_body_kept() {
    let good = r#"{"id":"wamid.A","status":"sent","timestamp":"1668595349","recipient_id":"923036547188"}"#;
    for (bad, reason) in [
        (
            r#"{"id":"wamid.B","status":"delivered","timestamp":"TIMESTAMP","recipient_id":"923036547188"}"#,
            "`timestamp` \"TIMESTAMP\" is not an RFC 3339 time",
        ),
        (
            r#"{"id":"wamid.B","status":"delivered","timestamp":"1668595400","recipient_id":"PHONE_NUMBER"}"#,
            "`recipient_id` must be the user's number as digits (an optional leading +)",
        ),
        (
            r#"{"status":"delivered","timestamp":"1668595400","recipient_id":"923036547188"}"#,
            "missing `id`",
        ),
        (
            r#"{"id":"wamid.B","timestamp":"1668595400","recipient_id":"923036547188"}"#,
            "missing `status`",
        ),
    ] {
        for (statuses, at) in [
            (format!("[{good},{bad}]"), 1),
            (format!("[{bad},{good}]"), 0),
        ] {
            let body = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"923036547188","id":"wamid.in","timestamp":"1668595300","type":"text"}}],"statuses":{statuses}}},"field":"messages"}}]}}]}}"#
            );
            let got = accepted(&body);
            assert_eq!(got.len(), 3, "{body}: {got:?}");
            assert!(got[0].starts_with("inbound wamid.in "), "{got:?}");
            assert!(got[1].starts_with("status wamid.A "), "{got:?}");
            let path = format!("entry[0].changes[0].value.statuses[{at}]");
            let want = format!("QUARANTINED {path}: ");
            assert!(got[2].starts_with(&want), "{got:?}");
            assert!(got[2].contains(reason), "{got:?} should say {reason}");
            // The item is kept whole, with a body that reads it again.
            let mut out = Parsed::default();
            assert!(parse_line(&body, Route::default(), &mut out).is_ok());
            let q = &out.quarantined[0];
            assert_eq!(q.item, bad);
            assert_eq!(q.waba.as_deref(), Some("W"));
            assert!(
                q.body.contains(bad) && !q.body.contains("wamid.A"),
                "{}",
                q.body
            );
        }
    }
    // Across entries too: a bad second entry leaves the first one's events.
    let body = r#"{"object":"whatsapp_business_account","entry":[
        {"id":"W1","changes":[{"value":{"metadata":{"phone_number_id":"P1"},"statuses":[{"id":"wamid.A","status":"sent","timestamp":"1668595349","recipient_id":"923036547188"}]},"field":"messages"}]},
        {"id":"W2","changes":[{"value":{"metadata":{"phone_number_id":"P2"},"statuses":[{"id":"wamid.B","status":"sent","timestamp":"soon","recipient_id":"923036547188"}]},"field":"messages"}]}]}"#
        .replace('\n', "");
    let got = accepted(&body);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[1].starts_with("QUARANTINED entry[1].changes[0].value.statuses[0]: `timestamp`"),
        "{got:?}"
    );
}

#[test]
fn a_body_whose_entries_are_not_an_array_is_refused_whole() {
    let reason = rejected(r#"{"object":"whatsapp_business_account","entry":{"id":"W"}}"#);
    assert_eq!(reason, "entry: must be an array");
    let reason = rejected(r#"{"object":"whatsapp_business_account","entry":[42]}"#);
    assert_eq!(
        reason,
        "entry[0]: invalid type: integer `42`, expected an object"
    );
}

#[test]
fn on_premises_body_without_route_is_rejected() {
    let body = r#"{"statuses":[{"id":"gBGGFlB5cXsCAglQR2CjVYlJ0J0","recipient_id":"16315551234","status":"sent","timestamp":"1643900100","type":"message"}]}"#;
    for route in [
        Route::default(),
        Route {
            waba: Some("W1"),
            phone: None,
            provider: None,
        },
        Route {
            waba: None,
            phone: Some("P1"),
            provider: None,
        },
    ] {
        let reason = match parse_with(body, route) {
            Ok(events) => panic!("accepted without a full route: {events:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            reason.contains("On-Premises") && reason.contains("WABA") && reason.contains("phone"),
            "the message should say the route is missing: {reason}"
        );
    }
    assert_eq!(
        parse_with(body, ONPREM_ROUTE).unwrap(),
        [
            "status gBGGFlB5cXsCAglQR2CjVYlJ0J0 waba=W1 phone=P1 user=16315551234 ts=2022-02-03T14:55:00Z status=sent"
        ]
    );
    // Inbound too.
    let inbound = r#"{"contacts":[{"wa_id":"16315551234"}],"messages":[{"from":"16315551234","id":"ABGG","timestamp":"1643900000","type":"text"}]}"#;
    assert!(rejected(inbound).contains("On-Premises"));
}

#[test]
fn on_premises_body_without_items_needs_no_route() {
    // contacts only, or empty arrays: no events, not an error.
    for body in [
        r#"{"contacts":[{"wa_id":"16315551234"}]}"#,
        r#"{"statuses":[]}"#,
        r#"{"messages":[],"contacts":[]}"#,
    ] {
        assert_eq!(accepted(body), Vec::<String>::new(), "{body}");
    }
}

#[test]
fn cloud_body_ignores_the_route() {
    let body = minify(include_str!("golden/cloud_6.5e_failed_with_errors.json"));
    assert_eq!(
        parse_with(&body, ONPREM_ROUTE).unwrap(),
        [
            "status wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA waba=102290129340398 phone=106540352242922 user=16505551234 ts=2025-06-28T20:34:48Z status=failed"
        ]
    );
}

#[test]
fn template_category_outside_the_three_is_rejected() {
    let line = |template: &str| {
        format!(
            r#"{{"type":"outbound","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:02:00Z","template":{template}}}"#
        )
    };
    for (bad, want) in [
        (
            r#"{"name":"t","category":"service"}"#,
            r#"event: template category "service" is not marketing, utility or authentication"#,
        ),
        (
            r#"{"name":"t","category":"transactional"}"#,
            r#"event: template category "transactional" is not marketing, utility or authentication"#,
        ),
        (
            r#"{"name":"t","category":"business_initiated"}"#,
            r#"event: template category "business_initiated" is not marketing, utility or authentication"#,
        ),
        (
            r#"{"name":"t","category":""}"#,
            r#"event: template category "" is not marketing, utility or authentication"#,
        ),
        (r#"{"name":"t"}"#, "event.template: missing `category`"),
    ] {
        assert_eq!(rejected(&line(bad)), want, "{bad}");
    }
    // A template that is not an object: serde's wording follows the field.
    let reason = rejected(&line(r#""marketing""#));
    assert!(
        reason.starts_with("event: `template`: invalid type: string \"marketing\""),
        "{reason}"
    );
    for (ok, want) in [
        (r#"{"name":"t","category":"marketing"}"#, "marketing"),
        (r#"{"name":"t","category":"UTILITY"}"#, "utility"),
        (
            r#"{"name":"t","category":"Authentication"}"#,
            "authentication",
        ),
        ("null", "none"),
    ] {
        let events = accepted(&line(ok));
        assert!(
            events[0].ends_with(&format!(" template={want}")),
            "{ok}: {events:?}"
        );
    }
}

#[test]
fn numeric_ids_become_decimal_strings() {
    let events = accepted(
        r#"{"type":"status","id":123456789,"waba":102290129340398,"phone":106540352242922,"user":"16505551234","ts":1751142888,"status":"read"}"#,
    );
    assert_eq!(
        events,
        [
            "status 123456789 waba=102290129340398 phone=106540352242922 user=16505551234 ts=2025-06-28T20:34:48Z status=read"
        ]
    );
    let events = accepted(
        r#"{"object":"whatsapp_business_account","entry":[{"id":102290129340398,"changes":[{"value":{"metadata":{"phone_number_id":106540352242922},"messages":[{"from":16505551234,"id":"wamid.in","timestamp":1749416383,"type":"text"}]},"field":"messages"}]}]}"#,
    );
    assert_eq!(
        events,
        [
            "inbound wamid.in waba=102290129340398 phone=106540352242922 user=16505551234 ts=2025-06-08T20:59:43Z referral=false"
        ]
    );
}

#[test]
fn user_as_json_integer_is_accepted() {
    let line = INBOUND_OK.replace(r#""2348031234567""#, "2348031234567");
    assert_eq!(
        accepted(&line),
        [
            "inbound wamid.in1 waba=W1 phone=P1 user=2348031234567 ts=2022-03-07T10:00:00Z referral=false"
        ]
    );
}

#[test]
fn leading_plus_is_dropped() {
    let line = INBOUND_OK.replace(r#""2348031234567""#, r#""+2348031234567""#);
    assert_eq!(
        accepted(&line),
        [
            "inbound wamid.in1 waba=W1 phone=P1 user=2348031234567 ts=2022-03-07T10:00:00Z referral=false"
        ]
    );
    // Also with an escape in the string (the owned path).
    let line = INBOUND_OK.replace(r#""2348031234567""#, r#""\u002b2348031234567""#);
    assert_eq!(
        accepted(&line),
        [
            "inbound wamid.in1 waba=W1 phone=P1 user=2348031234567 ts=2022-03-07T10:00:00Z referral=false"
        ]
    );
}

#[test]
fn blank_lines_are_skipped() {
    for line in ["", " ", "\t", "   \t  ", "\r"] {
        let mut out = Parsed::default();
        assert_eq!(
            parse_line(line, Route::default(), &mut out),
            Ok(Shape::Blank),
            "{line:?}"
        );
        assert!(out.events.is_empty() && out.is_clean());
    }
}

#[test]
fn referral_null_is_not_an_entry_point() {
    let line = INBOUND_OK.replace('}', r#","referral":null}"#);
    assert!(accepted(&line)[0].ends_with(" referral=false"));
    let line = INBOUND_OK.replace('}', r#","referral":{}}"#);
    assert!(accepted(&line)[0].ends_with(" referral=true"));
}

#[test]
fn unknown_status_values_are_kept() {
    for status in ["deleted", "warning", "played"] {
        let line = format!(
            r#"{{"type":"status","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":1646647322,"status":"{status}"}}"#
        );
        let mut out = Parsed::default();
        assert_eq!(
            parse_line(&line, Route::default(), &mut out),
            Ok(Shape::Normalized)
        );
        assert_eq!(
            out.events[0].body,
            EventBody::Status(Status::Other(status.into())),
            "{status}"
        );
    }
}

#[test]
fn account_update_yields_no_events_and_is_counted_as_ignored() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","time":1751142888,"changes":[{"value":{"phone_number":"15550783881","event":"VERIFIED_ACCOUNT"},"field":"account_update"}]}]}"#;
    let mut out = Parsed::default();
    assert_eq!(
        parse_line(body, Route::default(), &mut out),
        Ok(Shape::CloudApi)
    );
    assert!(out.events.is_empty() && out.quarantined.is_empty());
    assert_eq!(out.ignored.get("account_update"), Some(&1));
}

// ---------------------------------------------------------------------------
// Where the parser once disagreed with events.md (golden tests on Meta's
// payloads found these cases; the parser was changed to follow the spec, and
// these tests keep it so)
// ---------------------------------------------------------------------------

/// events.md section 2: a status's `conversation` and `pricing` become `meta`,
/// and `expiration_timestamp` is parsed like the other timestamps ("Accept
/// timestamps as strings or numbers, `expiration_timestamp` likewise");
/// section 5: a body with an unparseable timestamp is rejected. Meta's
/// `"TIMESTAMP"` placeholder is not among the tolerated sample defects.
#[test]
fn spec_cloud_status_with_unparseable_expiration_timestamp_is_rejected() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.ID","status":"sent","timestamp":"1668600000","recipient_id":"16505551234","conversation":{"id":"CONVERSATION_ID","expiration_timestamp":"TIMESTAMP","origin":{"type":"business_initiated"}},"pricing":{"pricing_model":"CBP","billable":true,"category":"business_initiated"}}]},"field":"messages"}]}]}"#;
    let reason = rejected(body);
    assert!(reason.contains("expiration_timestamp"), "{reason}");
}

/// events.md section 1: `meta.expires` is a `ts`; section 5: an unparseable
/// timestamp rejects the line.
#[test]
fn spec_normalized_meta_with_unparseable_expires_is_rejected() {
    let line = r#"{"type":"status","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":1646647322,"status":"sent","meta":{"conversation_id":"c1","origin":"user_initiated","expires":"yesterday","billable":true,"category":"user_initiated","pricing_model":"CBP"}}"#;
    let reason = rejected(line);
    assert!(reason.contains("expires"), "{reason}");
}

/// events.md section 5: the error names the reason. A field of the wrong JSON
/// type is valid JSON: "not valid JSON" is the wrong reason, and the field
/// should be named.
#[test]
fn spec_wrong_field_type_is_not_called_invalid_json() {
    for (line, field) in [
        (
            r#"{"type":"inbound","id":true,"waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:00:00Z"}"#,
            "id",
        ),
        (
            r#"{"type":"inbound","id":"wamid.in1","waba":"W1","phone":"P1","user":16505551234.0,"ts":"2022-03-07T10:00:00Z"}"#,
            "user",
        ),
    ] {
        let reason = rejected(line);
        assert!(
            !reason.starts_with("not valid JSON")
                && reason.starts_with(&format!("event: `{field}`: ")),
            "{line}: {reason}"
        );
    }
}

/// A body whose structure the one typed pass refuses (an entry, value or
/// item of the wrong JSON type) is read part by part: each bad part is
/// quarantined at its own path and the good ones are kept, exactly as in
/// the typed pass.
#[test]
fn a_body_of_the_wrong_json_types_is_read_part_by_part() {
    let good = r#"{"id":"wamid.A","status":"sent","timestamp":"1668595349","recipient_id":"923036547188"}"#;
    let typed_wrong =
        r#"{"id":"wamid.B","status":5,"timestamp":"1668595400","recipient_id":"923036547188"}"#;
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[42,{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"statuses":[{good},{typed_wrong}]}}}},{{"field":"messages","value":"oops"}},{{"field":"calls","value":{{"calls":[1]}}}}]}}]}}"#
    );
    let mut out = Parsed::default();
    assert_eq!(
        parse_line(&body, Route::default(), &mut out),
        Ok(Shape::CloudApi)
    );
    let lines: Vec<String> = common::render_items(&out)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "status wamid.A waba=W phone=P user=923036547188 ts=2022-11-16T10:42:29Z status=sent",
            "IGNORED calls 1",
            "QUARANTINED entry[0]: invalid type: integer `42`, expected an object",
            "QUARANTINED entry[1].changes[0].value.statuses[1]: status: invalid type: integer `5`, expected a string",
            "QUARANTINED entry[1].changes[1].value: invalid type: string \"oops\", expected an object",
        ]
    );
    let item = &out.quarantined[1];
    assert_eq!(item.item, typed_wrong);
    assert_eq!(item.waba.as_deref(), Some("W"));
    let mut failures = Vec::new();
    check_reread("part by part", Route::default(), item, &mut failures);
    assert!(failures.is_empty(), "{failures:?}");
    // A part that is no item has no body to read it again.
    assert_eq!(
        (
            out.quarantined[0].item.as_str(),
            out.quarantined[0].body.as_str()
        ),
        ("42", "")
    );
    // The same good status in a body the typed pass takes gives the same event.
    let typed = body.replace(typed_wrong, good).replace("42,", "");
    let mut again = Parsed::default();
    assert!(parse_line(&typed, Route::default(), &mut again).is_ok());
    assert_eq!(again.events[0], out.events[0]);
}

#[test]
fn an_on_premises_item_of_the_wrong_json_type_is_quarantined_and_the_rest_kept() {
    let bad =
        r#"{"id":"gB2","recipient_id":"16315551234","status":["sent"],"timestamp":"1643900100"}"#;
    let body = format!(
        r#"{{"contacts":[{{"wa_id":"16315551234"}}],"statuses":[{{"id":"gB1","recipient_id":"16315551234","status":"sent","timestamp":"1643900100","type":"message"}},{bad}]}}"#
    );
    let got = parse_with(&body, ONPREM_ROUTE).unwrap();
    assert_eq!(
        got,
        [
            "status gB1 waba=W1 phone=P1 user=16315551234 ts=2022-02-03T14:55:00Z status=sent",
            "QUARANTINED statuses[1]: status: invalid type: sequence, expected a string",
        ]
    );
    let mut out = Parsed::default();
    assert!(parse_line(&body, ONPREM_ROUTE, &mut out).is_ok());
    let q = &out.quarantined[0];
    assert_eq!((q.item.as_str(), q.waba.as_deref()), (bad, Some("W1")));
    assert_eq!(
        q.body,
        format!(r#"{{"contacts":[{{"wa_id":"16315551234"}}],"statuses":[{bad}]}}"#)
    );
}

/// A quarantined item's body copies only its own user's `contacts` entry,
/// and is built from lists parsed once per body (reviewed: a body of many
/// bad items cost its size squared, and copied every contact per item).
#[test]
fn a_quarantined_item_s_body_carries_its_own_contact_only() {
    let contacts: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"wa_id":"55119999{i:05}","profile":{{"name":"n{i}"}}}}"#))
        .collect();
    let statuses: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"id":"wamid.{i}","status":"sent","timestamp":"soon","recipient_id":"55119999{i:05}"}}"#))
        .collect();
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"contacts":[{}],"statuses":[{}]}}}}]}}]}}"#,
        contacts.join(","),
        statuses.join(",")
    );
    let mut out = Parsed::default();
    assert!(parse_line(&body, Route::default(), &mut out).is_ok());
    assert_eq!(out.quarantined.len(), 50);
    for (i, q) in out.quarantined.iter().enumerate() {
        assert_eq!(q.item, statuses[i]);
        assert!(
            q.body.contains(&format!(r#""contacts":[{}]"#, contacts[i])),
            "{}",
            q.body
        );
        assert_eq!(q.body.matches("wa_id").count(), 1, "{}", q.body);
    }
}

/// Review findings: a repeated `contacts` key, a list that is no array, and
/// items that are no billing events in a change with no readable envelope.
#[test]
fn odd_envelopes_lose_no_item() {
    // `contacts` twice (the typed pass ignores it): the bad item is still
    // found again whole.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"contacts":[1],"contacts":[2],"statuses":[{"id":"wamid.A","status":"sent","timestamp":"1668595349","recipient_id":"923036547188"},{"id":"wamid.B","status":"sent","timestamp":"soon","recipient_id":"923036547188"}]}}]}]}"#;
    let mut out = Parsed::default();
    assert!(parse_line(body, Route::default(), &mut out).is_ok());
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.quarantined.len(), 1);
    assert!(
        out.quarantined[0].item.contains("wamid.B"),
        "{:?}",
        out.quarantined
    );
    assert!(!out.quarantined[0].body.is_empty());
    // `messages` that is no array: held alone, the statuses still read.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"messages":{},"statuses":[{"id":"wamid.A","status":"sent","timestamp":"1668595349","recipient_id":"923036547188"}]}}]}]}"#;
    let got = accepted(body);
    assert_eq!(
        got,
        [
            "status wamid.A waba=W phone=P user=923036547188 ts=2022-11-16T10:42:29Z status=sent",
            "QUARANTINED entry[0].changes[0].value.messages: must be an array",
        ]
    );
    // No `metadata`: a payment status and a system notice are still
    // ignored; the message is held for want of its phone.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"statuses":[{"id":"p1","status":"captured","timestamp":"1668595349","type":"payment"}],"messages":[{"id":"s1","timestamp":"1668595349","type":"system","system":{"body":"changed"}},{"id":"m1","from":"923036547188","timestamp":"1668595349","type":"text"}]}}]}]}"#;
    let got = accepted(body);
    assert_eq!(
        got,
        [
            "IGNORED payment 1",
            "IGNORED system 1",
            "QUARANTINED entry[0].changes[0].value.messages[1]: entry[0].changes[0].value.metadata: missing `phone_number_id`",
        ]
    );
}

/// Review findings on reading a verdict leniently: one oddly typed field
/// loses only itself.
#[test]
fn an_oddly_typed_verdict_field_loses_only_itself() {
    let status = |conversation: &str, pricing: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"value":{{"metadata":{{"phone_number_id":"P"}},"statuses":[{{"id":"wamid.A","status":"sent","timestamp":"1778238932","recipient_id":"554196311412","conversation":{conversation},"pricing":{pricing}}}]}},"field":"messages"}}]}}]}}"#
        )
    };
    let meta = |conversation: &str, pricing: &str| {
        let line = status(conversation, pricing);
        let mut out = Parsed::default();
        assert!(
            parse_line(&line, Route::default(), &mut out).is_ok(),
            "{line}"
        );
        assert_eq!(out.events.len(), 1, "{line}: {:?}", out.quarantined);
        common::render_verdict(
            out.events[0]
                .verdict
                .as_deref()
                .unwrap_or_else(|| panic!("{line}")),
        )
    };
    let pricing = r#"{"billable":true,"pricing_model":"CBP","category":"marketing"}"#;
    // An id of the wrong type: the rest of the conversation still counts.
    assert_eq!(
        meta(
            r#"{"id":true,"origin":{"type":"utility"},"expiration_timestamp":"1778325332"}"#,
            pricing
        ),
        "billable=true model=CBP category=marketing origin=utility expires=2026-05-09T11:15:32Z"
    );
    // An origin given as a plain string.
    assert_eq!(
        meta(r#"{"id":"c1","origin":"utility"}"#, pricing),
        "billable=true model=CBP category=marketing conversation=c1 origin=utility"
    );
    // A cost whose amount is a string, or empty.
    let cost = |amount: &str| {
        meta(
            r#"{"id":"c1"}"#,
            &format!(
                r#"{{"category":"marketing_lite","cost":{{"amount":{amount},"currency":"USD"}}}}"#
            ),
        )
    };
    assert_eq!(
        cost(r#""0.0\u0033""#),
        "category=marketing_lite conversation=c1 cost=0.03 USD"
    );
    assert_eq!(
        cost("0.035"),
        "category=marketing_lite conversation=c1 cost=0.035 USD"
    );
    assert_eq!(cost(r#""""#), "category=marketing_lite conversation=c1");
    // A bad expiration still holds the status (events.md section 5).
    let line = status(r#"{"id":true,"expiration_timestamp":"soon"}"#, pricing);
    let mut out = Parsed::default();
    assert!(parse_line(&line, Route::default(), &mut out).is_ok());
    assert_eq!((out.events.len(), out.quarantined.len()), (0, 1));
}
