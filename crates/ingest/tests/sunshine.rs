//! Zendesk Sunshine Conversations webhook bodies (events.md section 4):
//! golden bodies in tests/golden/sunshine/ (provenance in
//! tests/golden/README.md) and focused tests of the decisions and of bad
//! input (section 5).
//!
//! Every `tests/golden/sunshine/<name>.json` is one webhook body, parsed as
//! sent (HTTP bodies are not split into lines) with the route of `users()`
//! below; `<name>.expected` holds what `parse_sunshine` must make of it, in
//! the format of the other goldens. `UPDATE_GOLDEN=1 cargo test -p
//! wabill-ingest --test sunshine` rewrites the `.expected` files: review every
//! change against events.md and the sources before keeping it. The bodies
//! live in a subdirectory because `tests/golden.rs` parses every
//! `tests/golden/*.json` as a line of the other shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{check_goldens, render, render_event};
use wabill_engine::event::{EventBody, Status};
use wabill_ingest::{Parsed, SunshineMap, parse_sunshine};

/// The route every test uses: the Sunshine user id is the example `userId`
/// of Sunshine's `authorWebhook` schema (Z1).
fn users() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "5963c0d619a30a2e00de36b8".to_owned(),
        "+16505551234".to_owned(),
    )])
}

fn route(users: &BTreeMap<String, String>) -> SunshineMap<'_> {
    SunshineMap {
        waba: "W1",
        phone: "P1",
        users,
    }
}

/// Parses one body with `users`: its events, or why it was refused whole,
/// or (as `path: reason`) why its first quarantined item was.
fn parse_with(body: &str, users: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let mut out = Parsed::default();
    parse_sunshine(body, &route(users), &mut out).map_err(|e| e.to_string())?;
    if let Some(q) = out.quarantined.first() {
        return Err(format!("{}: {}", q.path, q.reason));
    }
    Ok(out.events.iter().map(render_event).collect())
}

/// As [`parse_with`] with the test route.
fn parse(body: &str) -> Result<Vec<String>, String> {
    parse_with(body, &users())
}

fn rejected(body: &str) -> String {
    match parse(body) {
        Err(e) => e,
        Ok(events) => panic!("accepted, expected a rejection: {events:?}"),
    }
}

// ---------------------------------------------------------------------------
// The golden test
// ---------------------------------------------------------------------------

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sunshine")
}

#[test]
fn sunshine_golden_bodies() {
    let users = users();
    let map = route(&users);
    check_goldens(&golden_dir(), 12, |name, body, failures| {
        let mut out = Parsed::default();
        let result = parse_sunshine(body, &map, &mut out);
        if result.is_err() && !(out.events.is_empty() && out.quarantined.is_empty()) {
            failures.push(format!("{name}: refused but events or items kept"));
        }
        render(&result, &out)
    });
}

// ---------------------------------------------------------------------------
// Focused tests
// ---------------------------------------------------------------------------

/// A one-event body.
fn body(event: &str) -> String {
    format!(r#"{{"app":{{"id":"a"}},"webhook":{{"id":"w","version":"v2"}},"events":[{event}]}}"#)
}

/// A `conversation:message` event; `author` and `source` are JSON objects.
fn message(author: &str, source: &str) -> String {
    format!(
        r#"{{"id":"e1","type":"conversation:message","createdAt":"2025-06-08T20:59:44.161Z","payload":{{"conversation":{{"id":"c1"}},"message":{{"id":"m1","received":"2025-06-08T20:59:44.120Z","author":{author},"source":{source}}}}}}}"#
    )
}

const MAPPED_USER: &str = r#"{"type":"user","userId":"5963c0d619a30a2e00de36b8"}"#;
const UNMAPPED_USER: &str = r#"{"type":"user","userId":"cbec0073faeda4dfcd21d0f1"}"#;
const WHATSAPP: &str = r#"{"type":"whatsapp","originalMessageId":"wamid.in1"}"#;

fn delivery(kind: &str, payload: &str) -> String {
    format!(
        r#"{{"id":"e2","type":"conversation:message:delivery:{kind}","createdAt":"2025-06-18T16:22:53Z","payload":{payload}}}"#
    )
}

#[test]
fn a_body_that_is_not_a_sunshine_envelope_is_rejected_with_a_reason() {
    for (bad, want) in [
        (
            "",
            "not valid JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            "{",
            "not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        ("[]", "not a JSON object"),
        ("42", "not a JSON object"),
        ("{}", "body: missing `events`"),
        (r#"{"events":null}"#, "body: missing `events`"),
        (r#"{"events":{}}"#, "body: `events` must be an array"),
        (
            r#"{"events":[42]}"#,
            "events[0]: invalid type: integer `42`, expected an object",
        ),
        (r#"{"events":[{"id":"e"}]}"#, "events[0]: missing `type`"),
    ] {
        assert_eq!(rejected(bad), want, "{bad}");
    }
    assert_eq!(parse(r#"{"events":[]}"#), Ok(vec![]));
}

#[test]
fn a_bad_event_is_quarantined_and_the_good_ones_kept() {
    let users = users();
    let map = route(&users);
    let unmapped = message(UNMAPPED_USER, WHATSAPP);
    let bad = format!(
        r#"{{"events":[{},{unmapped}]}}"#,
        message(MAPPED_USER, WHATSAPP),
    );
    let mut out = Parsed::default();
    parse_sunshine(&bad, &map, &mut out).unwrap();
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.quarantined.len(), 1);
    let q = &out.quarantined[0];
    assert_eq!(q.path, "events[1]");
    assert!(
        q.reason
            .starts_with("payload.message.author.userId: no WhatsApp number mapped"),
        "{}",
        q.reason
    );
    assert_eq!(q.item, unmapped);
    assert_eq!(q.waba.as_deref(), Some("W1"));
    // Its body reads it again alone: quarantined while the route lacks the
    // user, an event once the route maps it.
    let mut again = Parsed::default();
    parse_sunshine(&q.body, &map, &mut again).unwrap();
    assert_eq!((again.events.len(), again.quarantined.len()), (0, 1));
    let mut fixed = users.clone();
    fixed.insert(
        "cbec0073faeda4dfcd21d0f1".to_owned(),
        "14155550000".to_owned(),
    );
    let mut again = Parsed::default();
    parse_sunshine(&q.body, &route(&fixed), &mut again).unwrap();
    assert_eq!((again.events.len(), again.quarantined.len()), (1, 0));
}

#[test]
fn errors_name_the_event_and_the_field() {
    for (event, want) in [
        (
            message(r#"{"userId":"5963c0d619a30a2e00de36b8"}"#, WHATSAPP),
            "events[0]: payload.message.author: missing `type`".to_owned(),
        ),
        (
            r#"{"type":"conversation:message","createdAt":"2025-06-08T20:59:44Z","payload":{"message":{"id":"m1"}}}"#.to_owned(),
            "events[0]: payload.message: missing `author`".to_owned(),
        ),
        (
            r#"{"type":"conversation:message","createdAt":"2025-06-08T20:59:44Z"}"#.to_owned(),
            "events[0]: missing `payload`".to_owned(),
        ),
        (
            delivery("user", r#"{"user":{"id":"5963c0d619a30a2e00de36b8"},"destination":{"type":"whatsapp"}}"#),
            "events[0]: payload.message: missing `id`".to_owned(),
        ),
        (
            message(MAPPED_USER, r#"{"type":"whatsapp","originalMessageTimestamp":"soon"}"#),
            r#"events[0]: payload.message.source: `originalMessageTimestamp` "soon" is not an RFC 3339 time with an offset, nor Unix seconds"#.to_owned(),
        ),
        (
            message(UNMAPPED_USER, r#"{"type":"whatsapp","client":{"type":"whatsapp","externalId":"+1 650 555"}}"#),
            "events[0]: payload.message.source.client: `externalId` must be the user's number as digits (an optional leading +)".to_owned(),
        ),
    ] {
        assert_eq!(rejected(&body(&event)), want, "{event}");
    }
    // A field of the wrong JSON type is named with its full path.
    let reason = rejected(&body(&message(
        MAPPED_USER,
        r#"{"type":"whatsapp","originalMessageId":true}"#,
    )));
    assert!(
        reason.starts_with(
            "events[0]: payload.message.source.originalMessageId: invalid type: boolean `true`"
        ),
        "{reason}"
    );
}

#[test]
fn the_route_map_wins_over_the_client_external_id() {
    let source = r#"{"type":"whatsapp","originalMessageId":"wamid.in1","client":{"type":"whatsapp","externalId":"14155550000"}}"#;
    assert_eq!(
        parse(&body(&message(MAPPED_USER, source))),
        Ok(vec![
            "inbound wamid.in1 waba=W1 phone=P1 user=16505551234 ts=2025-06-08T20:59:44.12Z referral=false".to_owned()
        ])
    );
    assert_eq!(
        parse(&body(&message(UNMAPPED_USER, source))),
        Ok(vec![
            "inbound wamid.in1 waba=W1 phone=P1 user=14155550000 ts=2025-06-08T20:59:44.12Z referral=false".to_owned()
        ])
    );
    // `author.user.id` when `userId` is absent.
    let author = r#"{"type":"user","user":{"id":"5963c0d619a30a2e00de36b8"}}"#;
    assert_eq!(parse(&body(&message(author, WHATSAPP))).unwrap().len(), 1);
}

#[test]
fn a_client_of_another_channel_gives_no_number() {
    // A Messenger PSID is digits too: it must not be taken for a number.
    let source = r#"{"type":"whatsapp","client":{"type":"messenger","externalId":"14155550000"}}"#;
    assert!(rejected(&body(&message(UNMAPPED_USER, source))).contains("no WhatsApp number mapped"));
}

#[test]
fn a_mapped_number_that_is_not_digits_is_rejected() {
    let users = BTreeMap::from([(
        "5963c0d619a30a2e00de36b8".to_owned(),
        "+1 650-555-1234".to_owned(),
    )]);
    let err = parse_with(&body(&message(MAPPED_USER, WHATSAPP)), &users).unwrap_err();
    assert_eq!(
        err,
        r#"events[0]: payload.message.author.userId: the route maps Sunshine user "5963c0d619a30a2e00de36b8" to "+1 650-555-1234", not a WhatsApp number (digits, an optional leading +)"#
    );
}

#[test]
fn business_messages_give_no_event_whatever_their_source() {
    for source in [WHATSAPP, r#"{"type":"api"}"#, "null"] {
        let event = message(r#"{"type":"business","displayName":"Acme"}"#, source);
        assert_eq!(parse(&body(&event)), Ok(vec![]), "{source}");
    }
}

#[test]
fn other_channels_of_the_sunshine_app_give_no_event() {
    // Unmapped users: were these not skipped, the body would be rejected.
    let event = message(UNMAPPED_USER, r#"{"type":"messenger"}"#);
    assert_eq!(parse(&body(&event)), Ok(vec![]));
    let event = delivery(
        "user",
        r#"{"user":{"id":"cbec0073faeda4dfcd21d0f1"},"message":{"id":"m1"},"destination":{"type":"web"}}"#,
    );
    assert_eq!(parse(&body(&event)), Ok(vec![]));
    // No `type` is taken as the route's channel.
    assert_eq!(
        parse(&body(&message(MAPPED_USER, "null"))).unwrap().len(),
        1
    );
}

#[test]
fn other_triggers_give_no_event_and_are_not_checked() {
    for event in [
        r#"{"type":"conversation:typing","payload":42}"#,
        r#"{"type":"conversation:read","createdAt":"yesterday"}"#,
        r#"{"type":"switchboard:passControl","payload":{"conversation":{"id":"c1"}}}"#,
        r#"{"type":"conversation:postback","payload":{"user":{"id":"nobody"}}}"#,
    ] {
        assert_eq!(parse(&body(event)), Ok(vec![]), "{event}");
    }
}

#[test]
fn inbound_time_is_the_channel_s_then_received_then_created_at() {
    let with = |received: &str, original: &str| {
        format!(
            r#"{{"type":"conversation:message","createdAt":"2025-06-08T21:00:03Z","payload":{{"message":{{"id":"m1",{received}"author":{MAPPED_USER},"source":{{"type":"whatsapp"{original}}}}}}}}}"#
        )
    };
    let ts = |event: String| {
        let line = parse(&body(&event)).unwrap().remove(0);
        line.split(" ts=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    let received = r#""received":"2025-06-08T21:00:02Z","#;
    let original = r#","originalMessageTimestamp":"2025-06-08T21:00:01Z""#;
    assert_eq!(ts(with(received, original)), "2025-06-08T21:00:01Z");
    assert_eq!(ts(with(received, "")), "2025-06-08T21:00:02Z");
    assert_eq!(ts(with("", "")), "2025-06-08T21:00:03Z");
    assert_eq!(
        rejected(&body(
            &with("", "").replace(r#""createdAt":"2025-06-08T21:00:03Z","#, "")
        )),
        "events[0]: missing `createdAt`"
    );
}

#[test]
fn inbound_id_is_the_wamid_else_sunshine_s() {
    let first = |source: &str| {
        parse(&body(&message(MAPPED_USER, source)))
            .unwrap()
            .remove(0)
    };
    assert!(first(WHATSAPP).starts_with("inbound wamid.in1 "));
    assert!(first(r#"{"type":"whatsapp","originalMessageId":null}"#).starts_with("inbound m1 "));
    assert!(first(r#"{"type":"whatsapp","originalMessageId":""}"#).starts_with("inbound m1 "));
}

#[test]
fn a_status_carries_sunshine_s_message_id_else_one_per_whatsapp_id() {
    let payload = |message: &str, externals: &str| {
        format!(
            r#"{{"user":{{"id":"5963c0d619a30a2e00de36b8"}},"message":{message},"destination":{{"type":"whatsapp"}},"externalMessages":{externals}}}"#
        )
    };
    let statuses = |message: &str, externals: &str| {
        parse(&body(&delivery("user", &payload(message, externals)))).unwrap()
    };
    let line = |id: &str| {
        format!(
            "status {id} waba=W1 phone=P1 user=16505551234 ts=2025-06-18T16:22:53Z status=delivered"
        )
    };
    // The platform recorded the outbound message under Sunshine's id.
    for externals in ["null", "[]", r#"[{"id":"wamid.b"},{"id":"wamid.a"}]"#] {
        assert_eq!(
            statuses(r#"{"id":"m1"}"#, externals),
            [line("m1")],
            "{externals}"
        );
    }
    // Without it, one status per WhatsApp message, in any order.
    let both = vec![line("wamid.a"), line("wamid.b")];
    assert_eq!(
        statuses(
            "null",
            r#"[{"id":"wamid.b"},{"id":"wamid.a"},{"id":"wamid.b"}]"#
        ),
        both
    );
    assert_eq!(
        statuses("{}", r#"[{"id":"wamid.a"},{"id":"wamid.b"}]"#),
        both
    );
    assert!(parse(&body(&delivery("user", &payload("null", "[]")))).is_err());
    let failed = parse(&body(&delivery(
        "failure",
        &payload(r#"{"id":"m1"}"#, "null"),
    )))
    .unwrap();
    assert!(failed[0].ends_with(" status=failed"));
}

#[test]
fn statuses_are_delivered_and_failed() {
    let users = users();
    let mut out = Parsed::default();
    let payload = r#"{"user":{"id":"5963c0d619a30a2e00de36b8"},"message":{"id":"m1"}}"#;
    let two = format!(
        r#"{{"events":[{},{}]}}"#,
        delivery("user", payload),
        delivery("failure", payload)
    );
    parse_sunshine(&two, &route(&users), &mut out).unwrap();
    let statuses: Vec<_> = out.events.into_iter().map(|e| e.body).collect();
    assert_eq!(
        statuses,
        [
            EventBody::Status(Status::Delivered),
            EventBody::Status(Status::Failed)
        ]
    );
}

#[test]
fn referrals_mark_the_first_user_message_of_their_conversation_only() {
    let create = |referral: &str| {
        format!(
            r#"{{"type":"conversation:create","createdAt":"2025-06-08T20:59:45Z","payload":{{"conversation":{{"id":"c1"}},"creationReason":"message","source":{{"type":"whatsapp"}},"referral":{referral}}}}}"#
        )
    };
    let two = |referral: &str| {
        format!(
            r#"{{"events":[{},{}]}}"#,
            message(MAPPED_USER, WHATSAPP),
            create(referral)
        )
    };
    // Z1's `referral` schema on conversation:create.
    let with = parse(&two(r#"{"code":"sunshine","details":{"source":"ADS","type":"OPEN_THREAD","adId":"6045246247433"}}"#)).unwrap();
    assert!(with[0].ends_with(" referral=true"), "{with:?}");
    let without = parse(&two("null")).unwrap();
    assert!(without[0].ends_with(" referral=false"), "{without:?}");
    assert_eq!(
        rejected(&two(r#""ad""#)),
        "events[1]: payload: `referral` must be an object"
    );
    // Another conversation's referral, or one from another channel, marks nothing.
    let other = two(r#"{"code":"x"}"#).replace(
        r#""conversation":{"id":"c1"},"creationReason""#,
        r#""conversation":{"id":"c2"},"creationReason""#,
    );
    assert!(parse(&other).unwrap()[0].ends_with(" referral=false"));
    let messenger = two(r#"{"code":"x"}"#).replace(
        r#""source":{"type":"whatsapp"},"referral""#,
        r#""source":{"type":"messenger"},"referral""#,
    );
    assert!(parse(&messenger).unwrap()[0].ends_with(" referral=false"));
}

#[test]
fn an_item_whose_one_event_fails_a_check_is_quarantined_with_all_its_events() {
    let users = users();
    let payload = |message: &str, externals: &str| {
        format!(
            r#"{{"user":{{"id":"5963c0d619a30a2e00de36b8"}},"message":{message},"destination":{{"type":"whatsapp"}},"externalMessages":{externals}}}"#
        )
    };
    // events[0] names two WhatsApp messages (two events), events[1] one.
    let two = format!(
        r#"{{"events":[{},{}]}}"#,
        delivery(
            "user",
            &payload("null", r#"[{"id":"wamid.a"},{"id":"wamid.b"}]"#)
        ),
        delivery("user", &payload(r#"{"id":"m2"}"#, "null")),
    );
    let mut out = Parsed::default();
    parse_sunshine(&two, &route(&users), &mut out).unwrap();
    assert_eq!(out.events.len(), 3);
    let mut facts = vec!["earlier"];
    let checked = out.check_items(
        |e| match &*e.id {
            "wamid.b" => Err("no market"),
            id => Ok(if id == "m2" { "m2" } else { "a" }),
        },
        &mut facts,
    );
    assert_eq!(checked, Ok(()));
    // wamid.a passed, but its item failed: it leaves with wamid.b; the
    // facts stay aligned with the events kept.
    let ids: Vec<&str> = out.events.iter().map(|e| &*e.id).collect();
    assert_eq!(ids, ["m2"]);
    assert_eq!(facts, ["earlier", "m2"]);
    assert_eq!(out.origins.len(), 1);
    assert_eq!(out.quarantined.len(), 1);
    assert_eq!(
        (
            out.quarantined[0].path.as_str(),
            out.quarantined[0].reason.as_str()
        ),
        ("events[0]", "no market")
    );
}

/// Review finding: a referral must not pass to a later message because the
/// earliest one was quarantined; the held message's body carries the
/// referral, so that re-reading it marks it.
#[test]
fn a_referral_stays_with_a_quarantined_first_message() {
    let users = users();
    let referral = r#"{"type":"conversation:referral","createdAt":"2025-06-08T20:59:40Z","payload":{"conversation":{"id":"c1"},"referral":{"code":"ad"},"source":{"type":"whatsapp"}}}"#;
    // m1: an unmapped user with a bad number; m2: four days later, mapped.
    let m1 = message(
        UNMAPPED_USER,
        r#"{"type":"whatsapp","originalMessageId":"wamid.m1","client":{"type":"whatsapp","externalId":"+1 650"}}"#,
    );
    let m2 = message(
        MAPPED_USER,
        r#"{"type":"whatsapp","originalMessageId":"wamid.m2","originalMessageTimestamp":"2025-06-12T20:59:44Z"}"#,
    );
    let body = format!(r#"{{"events":[{referral},{m1},{m2}]}}"#);
    let mut out = Parsed::default();
    parse_sunshine(&body, &route(&users), &mut out).unwrap();
    assert_eq!(out.events.len(), 1);
    assert!(
        render_event(&out.events[0]).ends_with(" referral=false"),
        "{:?}",
        out.events
    );
    assert_eq!(out.ignored.get("conversation_event"), Some(&1));
    let held = &out.quarantined[0];
    assert_eq!(held.path, "events[1]");
    // Re-read once the route maps the user: the entry point is m1's.
    let mut fixed = users.clone();
    fixed.insert(
        "cbec0073faeda4dfcd21d0f1".to_owned(),
        "14155550000".to_owned(),
    );
    let fixed_body = held.body.replace("+1 650", "14155550000");
    let mut again = Parsed::default();
    parse_sunshine(&fixed_body, &route(&fixed), &mut again).unwrap();
    assert_eq!(again.events.len(), 1, "{fixed_body}");
    assert!(
        render_event(&again.events[0]).ends_with(" referral=true"),
        "{:?}",
        again.events
    );
}

#[test]
fn every_sunshine_event_is_an_event_ignored_or_quarantined() {
    let other_channel = delivery(
        "user",
        r#"{"user":{"id":"x"},"message":{"id":"m1"},"destination":{"type":"web"}}"#,
    );
    let create = r#"{"type":"conversation:create","createdAt":"2025-06-08T20:59:45Z","payload":{"conversation":{"id":"c1"},"source":{"type":"whatsapp"}}}"#;
    let typing = r#"{"type":"conversation:typing","payload":{}}"#;
    let body = format!(r#"{{"events":[{other_channel},{create},{typing}]}}"#);
    let users = users();
    let mut out = Parsed::default();
    parse_sunshine(&body, &route(&users), &mut out).unwrap();
    let total: u64 = out.ignored.values().sum();
    assert_eq!(total, 3, "{:?}", out.ignored);
    assert_eq!(out.ignored.get("other_channel_delivery"), Some(&1));
}
