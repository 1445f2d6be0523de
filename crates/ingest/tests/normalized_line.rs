//! The service logs every event as its normalized line and rebuilds its
//! state by parsing those lines: the round trip must give the same event.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use wabill_engine::Instant;
use wabill_engine::event::{Event, EventBody, Status, TemplateCategory};
use wabill_ingest::{Parsed, Route, Shape, normalized_line, parse_line};

fn event(body: EventBody<'static>, nanos: i64) -> Event<'static> {
    Event {
        ts: Instant(nanos),
        waba: Cow::Borrowed("W \"1\""),
        phone: Cow::Borrowed("P1"),
        user: Cow::Borrowed("5511999990001"),
        id: Cow::Borrowed("wamid.ä\\x"),
        body,
        verdict: None,
        also: None,
    }
}

#[test]
fn every_kind_of_event_survives_the_round_trip_to_the_nanosecond() {
    let at = 1_750_000_000_123_456_789;
    let events = [
        event(EventBody::Inbound { referral: true }, at),
        event(EventBody::Inbound { referral: false }, at),
        event(EventBody::Outbound { template: None }, at),
        event(
            EventBody::Outbound {
                template: Some(TemplateCategory::Authentication),
            },
            at,
        ),
        event(EventBody::Status(Status::Read), 1_750_000_000_000_000_000),
        event(
            EventBody::Status(Status::Other(Cow::Borrowed("deleted"))),
            at,
        ),
    ];
    // Rules F9: a user named by both ids, and one named by the id alone.
    let mut linked = event(EventBody::Inbound { referral: false }, at);
    linked.also =
        wabill_engine::event::Also::boxed(Some(Cow::Borrowed("BR.1502576394655843")), None);
    let mut withheld = event(EventBody::Status(Status::Delivered), at);
    withheld.user = Cow::Borrowed("US.ENT.11815799212886844830");
    for e in events.into_iter().chain([linked, withheld]) {
        let line = normalized_line(&e);
        let mut out = Parsed::default();
        assert_eq!(
            parse_line(&line, Route::default(), &mut out),
            Ok(Shape::Normalized),
            "{line}"
        );
        assert_eq!(out.events, vec![e], "{line}");
    }
}

#[test]
fn lines_keep_their_keys_in_byte_order_as_logs_already_hold_them() {
    let at = 1_750_000_000_500_000_000;
    let referral = event(EventBody::Inbound { referral: true }, at);
    assert_eq!(
        normalized_line(&referral),
        r#"{"id":"wamid.ä\\x","phone":"P1","referral":{},"ts":"2025-06-15T15:06:40.5Z","type":"inbound","user":"5511999990001","waba":"W \"1\""}"#
    );
    let template = event(
        EventBody::Outbound {
            template: Some(TemplateCategory::Marketing),
        },
        at,
    );
    assert_eq!(
        normalized_line(&template),
        r#"{"id":"wamid.ä\\x","phone":"P1","template":{"category":"marketing"},"ts":"2025-06-15T15:06:40.5Z","type":"outbound","user":"5511999990001","waba":"W \"1\""}"#
    );
    let status = event(EventBody::Status(Status::Delivered), at);
    assert!(
        normalized_line(&status).contains(r#""status":"delivered","ts""#),
        "{}",
        normalized_line(&status)
    );
}

/// Issue 16: a status's verdict travels whole through the service's log: the
/// objects as received and every field (flat keys for a normalized `meta`).
#[test]
fn a_verdict_survives_the_normalized_line_whole() {
    let bodies = [
        // 2026 real traffic (webhook-shapes-2026.md 3e), with `pricing.cost`
        // and an unknown field added.
        r#"{"object":"whatsapp_business_account","entry":[{"id":"751624234418652","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"5521983691497","phone_number_id":"756775060860079"},"contacts":[{"wa_id":"554196311412","user_id":"BR.3949508488519420"}],"statuses":[{"id":"wamid.HBgMNTU0MTk2MzExNDEyFQIAERgSRUY5ODkxRkQyMDYzMEZGNkY2AA==","status":"sent","timestamp":"1778238932","recipient_id":"554196311412","recipient_user_id":"BR.3949508488519420","conversation":{"id":"bed2de89093e953b76c68fc93131560b","expiration_timestamp":"1778238932","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular","cost":{"amount":0.035,"currency":"USD"},"new_field":[1,2]}}]},"field":"messages"}]}]}"#,
        // Meta's defect: `pricing` inside `conversation`, `billable` a string.
        r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"wamid.G","status":"delivered","timestamp":"1750000000","recipient_id":"16505551234","conversation":{"id":"CONVERSATION_ID","origin":{"type":"group_marketing"},"pricing":{"billable":"true","pricing_model":"PMP","category":"group_marketing"}}}]},"field":"messages"}]}]}"#,
        // A normalized status with flat keys.
        r#"{"type":"status","id":"wamid.N","waba":"W1","phone":"P1","user":"5511999990001","ts":1750000000,"status":"delivered","meta":{"billable":false,"category":"service","pricing_model":"PMP","pricing_type":"free_customer_service","conversation_id":"c1","origin":"service","expires":"2025-06-16T15:06:40Z"}}"#,
    ];
    for body in bodies {
        let mut first = Parsed::default();
        assert!(parse_line(body, Route::default(), &mut first).is_ok());
        assert_eq!(first.events.len(), 1, "{body}");
        let event = &first.events[0];
        let verdict = event.verdict.as_deref().unwrap_or_else(|| panic!("{body}"));
        assert!(verdict.category.is_some(), "{verdict:?}");
        let line = normalized_line(event);
        let mut again = Parsed::default();
        assert_eq!(
            parse_line(&line, Route::default(), &mut again),
            Ok(Shape::Normalized),
            "{line}"
        );
        assert_eq!(again.events, first.events, "{line}");
        // The objects as received are in the line, untouched.
        if let Some(pricing) = &verdict.pricing_json {
            assert!(line.contains(&**pricing), "{line}");
        }
    }
}
