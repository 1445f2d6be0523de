//! Rules G1: group messages. A delivery to a group is billed once per
//! participant it was delivered to, in the participant's market, under
//! the per-message eras; a participant writing opens the window for the
//! whole group.

mod common;

use std::borrow::Cow;

use common::*;
use wabill_engine::billing::Free;
use wabill_engine::{EventBody, Status, Verdict};

const GROUP: &str = "120363025246125486@g.us";

fn group_verdict(category: &'static str) -> Option<Box<Verdict<'static>>> {
    Some(Box::new(Verdict {
        billable: Some(true),
        pricing_model: Some(Cow::Borrowed("PMP")),
        category: Some(Cow::Borrowed(category)),
        ..Verdict::default()
    }))
}

/// Message `wamid` delivered in the group to `participant` at `at`, its
/// status carrying Meta's `category` (as ingest names it: one event per
/// message and participant).
fn delivered_to(
    tr: &mut Traffic,
    wamid: &str,
    participant: &str,
    at: &str,
    category: &'static str,
) -> String {
    let id = format!("{wamid}#{participant}");
    tr.push(
        t(at),
        W,
        P,
        participant,
        &id,
        EventBody::Status(Status::Delivered),
    );
    if let Some(e) = tr.events.last_mut() {
        e.also = wabill_engine::event::Also::boxed(None, Some(Cow::Borrowed(GROUP)));
        e.verdict = group_verdict(category);
    }
    id
}

fn writes_in_group(tr: &mut Traffic, participant: &str, at: &str) {
    let id = tr.user_writes(participant, at);
    if let Some(e) = tr.events.iter_mut().find(|e| e.id == id) {
        e.also = wabill_engine::event::Also::boxed(None, Some(Cow::Borrowed(GROUP)));
    }
}

#[test]
fn g1_a_group_delivery_is_billed_once_per_participant_in_the_participant_s_market() {
    let mut tr = Traffic::new();
    let india = delivered_to(
        &mut tr,
        "wamid.g1",
        INDIA,
        "2025-08-04T10:00:00",
        "group_marketing",
    );
    let brazil = delivered_to(
        &mut tr,
        "wamid.g1",
        BRAZIL,
        "2025-08-04T10:00:01",
        "group_marketing",
    );
    // Meta's aggregated webhook repeats a participant: billed once.
    delivered_to(
        &mut tr,
        "wamid.g1",
        INDIA,
        "2025-08-04T10:00:00",
        "group_marketing",
    );
    let out = tr.bill();
    assert_eq!(out.conversations.len(), 2, "{:?}", out.conversations);
    let (i, b) = (record(&out, &india), record(&out, &brazil));
    assert_eq!(
        (i.market.as_str(), i.category, i.unit_price.as_str()),
        ("India", "marketing", "0.0107")
    );
    assert_eq!((b.market.as_str(), b.user.as_str()), ("Brazil", BRAZIL));
}

#[test]
fn g1_a_participant_writing_opens_the_window_for_the_whole_group() {
    // Brazil's utility delivery in the group, at 11:00.
    let brazil_utility = |tr: &mut Traffic| {
        delivered_to(
            tr,
            "wamid.u",
            BRAZIL,
            "2025-08-04T11:00:00",
            "group_utility",
        );
    };
    let mut tr = Traffic::new();
    brazil_utility(&mut tr);
    let closed = tr.bill();
    assert_eq!(closed.conversations[0].free, Free::None);
    // India writes in the group: Brazil's utility delivery an hour later is
    // inside the group's window (C2).
    writes_in_group(&mut tr, INDIA, "2025-08-04T10:00:00");
    let open = tr.bill();
    assert_eq!(
        priced(&open),
        [p(
            "pmp-2025",
            "utility",
            Free::FreeCustomerService,
            "0.0068"
        )]
    );
    // India writing outside the group opens only India's own window.
    let mut tr = Traffic::new();
    brazil_utility(&mut tr);
    tr.user_writes(INDIA, "2025-08-04T10:00:00");
    assert_eq!(tr.bill().conversations[0].free, Free::None);
}

/// Review finding: a participant's own delivery and a group's delivery to
/// them in the same second made the service's rating ask for a message
/// id it had not copied, and stop. Incremental billing now orders them by
/// the pair each was derived with, as batch billing does.
#[test]
fn g1_a_group_delivery_and_a_participant_s_own_in_the_same_second_bill_alike_live_and_in_batch() {
    use std::sync::Arc;
    use wabill_engine::{Billed, HashKey, Incremental, Ledger};
    let mut tr = Traffic::new();
    tr.template(
        BRAZIL,
        "2025-08-04T11:00:00",
        wabill_engine::TemplateCategory::Marketing,
    );
    delivered_to(
        &mut tr,
        "wamid.g",
        BRAZIL,
        "2025-08-04T11:00:00",
        "group_marketing",
    );
    let batch = tr.bill();
    let mut live = Incremental::new(Ledger::new(tr.config.clone(), HashKey::fixed()));
    let mut billed = Billed::new(tr.config.clone(), Arc::new(tr.book.clone()));
    for e in &tr.events {
        assert!(live.ingest(std::slice::from_ref(e)).is_ok());
        billed.settle(&mut live);
    }
    let invoices: Vec<_> = billed
        .months()
        .filter_map(|m| m.invoice.clone().ok())
        .collect();
    assert_eq!(invoices, batch.invoices);
    assert_eq!(batch.conversations.len(), 2);
}
