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
    for e in events {
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
