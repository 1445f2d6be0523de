//! Reconciliation (issue 16 point 6): wabill's derivation beside Meta's
//! verdict, one planted disagreement of each class.

mod common;

use std::borrow::Cow;

use common::*;
use wabill_engine::TemplateCategory::{Authentication, Marketing, Utility};
use wabill_engine::billing::Free;
use wabill_engine::reconcile::{Class, Reconciliation, reconcile};
use wabill_engine::{HashKey, Ledger, Status, Verdict};

fn verdict(
    model: Option<&'static str>,
    category: &'static str,
    kind: Option<&'static str>,
) -> Verdict<'static> {
    Verdict {
        billable: Some(kind != Some("free_customer_service")),
        pricing_model: model.map(Cow::Borrowed),
        category: Some(Cow::Borrowed(category)),
        pricing_type: kind.map(Cow::Borrowed),
        ..Verdict::default()
    }
}

fn conversation(id: &'static str, origin: &'static str, expires: &str) -> Verdict<'static> {
    Verdict {
        billable: Some(true),
        pricing_model: Some(Cow::Borrowed("CBP")),
        category: Some(Cow::Borrowed(origin)),
        origin: Some(Cow::Borrowed(origin)),
        conversation_id: Some(Cow::Borrowed(id)),
        expires: Some(t(expires)),
        ..Verdict::default()
    }
}

/// A `sent` status of `id` at `at` carrying `v`.
fn sent_with(tr: &mut Traffic, user: &str, id: &str, at: &str, v: Verdict<'static>) {
    tr.status(user, id, at, Status::Sent);
    if let Some(e) = tr.events.last_mut() {
        e.verdict = Some(Box::new(v));
    }
}

fn run(tr: &Traffic) -> Vec<Reconciliation> {
    let mut ledger = Ledger::new(tr.config.clone(), HashKey::fixed());
    for e in &tr.events {
        assert!(ledger.ingest(std::slice::from_ref(e)).is_ok(), "{e:?}");
    }
    reconcile(&ledger, &tr.book, &tr.config)
}

fn classes(out: &[Reconciliation]) -> Vec<(String, Class)> {
    out.iter()
        .flat_map(|r| r.disagreements.iter().map(|d| (d.message.clone(), d.class)))
        .collect()
}

#[test]
fn verdicts_that_say_what_wabill_derives_agree() {
    let mut tr = Traffic::new();
    let id = tr.template(INDIA, "2025-08-04T10:00:00", Marketing);
    sent_with(
        &mut tr,
        INDIA,
        &id,
        "2025-08-04T09:59:00",
        verdict(Some("PMP"), "marketing", Some("regular")),
    );
    tr.reply(INDIA, "2025-08-04T11:00:00");
    let out = run(&tr);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert!(r.agrees(), "{r:?}");
    assert_eq!((r.compared, r.without_verdict), (1, 1));
    assert_eq!(r.wabill_total, r.meta_total);
}

#[test]
fn a_template_meta_recategorized_is_listed_with_its_rule_and_timeline() {
    let mut tr = Traffic::new();
    tr.user_writes(INDIA, "2025-08-04T09:00:00");
    let id = tr.template(INDIA, "2025-08-04T10:00:00", Utility);
    sent_with(
        &mut tr,
        INDIA,
        &id,
        "2025-08-04T09:59:00",
        verdict(Some("PMP"), "marketing", Some("regular")),
    );
    let out = run(&tr);
    let r = &out[0];
    assert!(!r.agrees());
    assert_eq!(classes(&out), [(id.clone(), Class::Recategorized)]);
    let d = &r.disagreements[0];
    let (wabill, meta) = (d.wabill.as_ref().unwrap(), d.meta.as_ref().unwrap());
    assert_eq!(
        (wabill.category.as_str(), wabill.free),
        ("utility", Free::FreeCustomerService)
    );
    assert!(wabill.rule.starts_with("C2"), "{}", wabill.rule);
    assert_eq!(
        (meta.category.as_str(), meta.free),
        ("marketing", Free::None)
    );
    assert_eq!(
        d.timeline.iter().map(|e| e.kind).collect::<Vec<_>>(),
        ["inbound", "outbound", "delivered"]
    );
    // Side by side: a free utility message against a paid marketing one.
    let sides: Vec<(&str, u64, u64)> = r
        .lines
        .iter()
        .map(|l| (l.category.as_str(), l.wabill.quantity, l.meta.quantity))
        .collect();
    assert_eq!(sides, [("marketing", 0, 1), ("utility", 1, 0)]);
    assert_eq!(r.meta_total.to_string(), "0.0107");
}

#[test]
fn each_cause_of_a_disagreement_is_classified() {
    let mut tr = Traffic::new();
    // A message Meta's verdict calls billable that never arrived.
    let lost = tr.sent(INDIA, "2025-08-05T10:00:00", Some(Marketing));
    sent_with(
        &mut tr,
        INDIA,
        &lost,
        "2025-08-05T10:00:01",
        verdict(Some("PMP"), "marketing", Some("regular")),
    );
    // Authentication priced abroad by Meta; no business country here.
    let otp = tr.template(INDIA, "2025-08-06T10:00:00", Authentication);
    sent_with(
        &mut tr,
        INDIA,
        &otp,
        "2025-08-06T09:59:00",
        verdict(Some("PMP"), "authentication-international", Some("regular")),
    );
    // A category wabill does not know.
    let odd = tr.template(INDIA, "2025-08-07T10:00:00", Marketing);
    sent_with(
        &mut tr,
        INDIA,
        &odd,
        "2025-08-07T09:59:00",
        verdict(Some("PMP"), "marketing_premium", Some("regular")),
    );
    // Meta frees a message wabill charges, for no reason wabill can see.
    let free = tr.template(INDIA, "2025-08-08T10:00:00", Marketing);
    sent_with(
        &mut tr,
        INDIA,
        &free,
        "2025-08-08T09:59:00",
        verdict(Some("PMP"), "marketing", Some("free_customer_service")),
    );
    // No outbound record, and a verdict whose category and origin say
    // different things (read as F3 and V3 read them).
    tr.status(UK, "wamid.bare", "2023-07-03T10:00:00", Status::Delivered);
    let mut bare = conversation("c-bare", "marketing", "2023-07-04T10:00:00");
    bare.pricing_model = None;
    bare.category = Some(Cow::Borrowed("utility"));
    sent_with(&mut tr, UK, "wamid.bare", "2023-07-03T09:59:00", bare);
    let whole = run(&tr);
    // The service copies a WABA's canonical events into a ledger of its
    // own, a range of messages at a time: the same reconciliation.
    let mut ledger = Ledger::new(tr.config.clone(), HashKey::fixed());
    for e in &tr.events {
        assert!(ledger.ingest(std::slice::from_ref(e)).is_ok());
    }
    let mut copy = Ledger::new(tr.config.clone(), HashKey::fixed());
    let w = ledger.waba_index(W).unwrap();
    for start in (0..ledger.n_messages() as u32).step_by(2) {
        let events = ledger.canonical_events(w, start..start + 2);
        assert!(copy.ingest(&events).is_ok());
    }
    assert_eq!(reconcile(&copy, &tr.book, &tr.config), whole);
    let mut out = classes(&whole);
    out.sort();
    let mut expected = vec![
        (lost, Class::StatusMissing),
        (otp, Class::AuthenticationInternational),
        (odd, Class::UnknownValue),
        (free, Class::Unexplained),
        ("wamid.bare".to_owned(), Class::OutboundMissing),
    ];
    expected.sort();
    assert_eq!(out, expected);
}

#[test]
fn a_conversation_meta_started_at_send_ends_before_a_later_message_wabill_adds_to_it() {
    let mut tr = Traffic::new();
    // Sent at 08:00, delivered at 10:00: Meta's conversation runs to 08:00
    // the next day, wabill's to 10:00.
    let first = tr.template(US, "2023-07-03T10:00:00", Marketing);
    sent_with(
        &mut tr,
        US,
        &first,
        "2023-07-03T08:00:00",
        conversation("c1", "marketing", "2023-07-04T08:00:00"),
    );
    let second = tr.template(US, "2023-07-04T09:00:00", Marketing);
    sent_with(
        &mut tr,
        US,
        &second,
        "2023-07-04T08:59:00",
        conversation("c2", "marketing", "2023-07-05T08:59:00"),
    );
    let out = run(&tr);
    assert_eq!(classes(&out), [(second, Class::StartAtSend)]);
    let sides: Vec<(u64, u64)> = out[0]
        .lines
        .iter()
        .map(|l| (l.wabill.quantity, l.meta.quantity))
        .collect();
    assert_eq!(sides, [(1, 2)]);
}

/// Review findings: a difference the outbound record does not explain is
/// not called a recategorization; a conversation verdict without an id
/// is no disagreement; a message without a verdict that the two sides
/// bill differently is listed.
#[test]
fn only_what_differs_is_listed_and_only_a_template_meta_renamed_is_recategorized() {
    let mut tr = Traffic::new();
    // An entry point wabill sees, Meta does not: free_entry_point against
    // marketing, though the outbound record says marketing as Meta does.
    tr.user_writes_from_ad(INDIA, "2023-07-03T09:00:00");
    let fep = tr.template(INDIA, "2023-07-03T10:00:00", Marketing);
    sent_with(
        &mut tr,
        INDIA,
        &fep,
        "2023-07-03T09:59:00",
        conversation("c-fep", "marketing", "2023-07-04T09:59:00"),
    );
    // A conversation verdict without a conversation id: both sides derive.
    let no_id = tr.template(UK, "2023-07-03T10:00:00", Marketing);
    let mut v = conversation("c-x", "marketing", "2023-07-04T10:00:00");
    v.conversation_id = None;
    sent_with(&mut tr, UK, &no_id, "2023-07-03T09:59:00", v);
    // Meta calls a marketing template utility; a later marketing template
    // without a verdict then opens a marketing conversation on Meta's side
    // but joins the first on wabill's.
    let renamed = tr.template(US, "2023-07-05T10:00:00", Marketing);
    sent_with(
        &mut tr,
        US,
        &renamed,
        "2023-07-05T09:59:00",
        conversation("c-u", "utility", "2023-07-06T09:59:00"),
    );
    let follower = tr.template(US, "2023-07-05T11:00:00", Marketing);
    let mut out = classes(&run(&tr));
    out.sort();
    let mut expected = vec![
        (fep, Class::Unexplained),
        (renamed, Class::Recategorized),
        (follower, Class::Unexplained),
    ];
    expected.sort();
    assert_eq!(out, expected);
}
