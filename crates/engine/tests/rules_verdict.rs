//! Rules V1–V3 (invoices on Meta's basis) and D6 (authentication-
//! international), as a user of `[billing] basis` and
//! `[[waba]] business_country` sees them.

mod common;

use std::borrow::Cow;

use common::*;
use wabill_engine::TemplateCategory::{Authentication, Marketing, Utility};
use wabill_engine::billing::Free;
use wabill_engine::config::Basis;
use wabill_engine::market::Region;
use wabill_engine::{Status, Verdict};

/// Meta's verdict under per-message pricing.
fn pmp(category: &'static str, kind: &'static str) -> Verdict<'static> {
    Verdict {
        billable: Some(kind == "regular"),
        pricing_model: Some(Cow::Borrowed("PMP")),
        category: Some(Cow::Borrowed(category)),
        pricing_type: Some(Cow::Borrowed(kind)),
        ..Verdict::default()
    }
}

/// Meta's verdict under conversation pricing: conversation `id`, its
/// origin and its expiration.
fn cbp(id: &'static str, origin: &'static str, expires: &str) -> Verdict<'static> {
    Verdict {
        billable: Some(true),
        pricing_model: Some(Cow::Borrowed("CBP")),
        category: Some(Cow::Borrowed(origin)),
        conversation_id: Some(Cow::Borrowed(id)),
        origin: Some(Cow::Borrowed(origin)),
        expires: Some(t(expires)),
        ..Verdict::default()
    }
}

/// A `sent` status carrying `verdict` for message `id`, at `at`.
fn verdict_on(tr: &mut Traffic, user: &str, id: &str, at: &str, verdict: Verdict<'static>) {
    tr.status(user, id, at, Status::Sent);
    if let Some(e) = tr.events.last_mut() {
        e.verdict = Some(Box::new(verdict));
    }
}

/// A message delivered at `at` with no outbound record, whose `sent`
/// status carried `verdict`.
fn webhook_only(tr: &mut Traffic, user: &str, id: &str, at: &str, verdict: Verdict<'static>) {
    verdict_on(tr, user, id, at, verdict);
    tr.status(user, id, at, Status::Delivered);
}

fn on_meta_basis(mut tr: Traffic) -> (Outcome, Outcome) {
    let derived = tr.bill();
    tr.config.basis = Basis::Meta;
    (derived, tr.bill())
}

#[test]
fn v2_on_meta_basis_a_message_is_priced_in_the_category_meta_charged() {
    let mut tr = Traffic::new();
    // wabill's outbound record says utility; Meta charged marketing.
    let id = tr.template(INDIA, "2025-08-04T10:00:00", Utility);
    verdict_on(
        &mut tr,
        INDIA,
        &id,
        "2025-08-04T10:00:00",
        pmp("marketing", "regular"),
    );
    let (derived, meta) = on_meta_basis(tr);
    assert_eq!(
        priced(&derived),
        [p("pmp-2025", "utility", Free::None, "0.0014")]
    );
    assert_eq!(
        priced(&meta),
        [p("pmp-2025", "marketing", Free::None, "0.0107")]
    );
}

#[test]
fn v2_meta_s_free_type_makes_a_message_free_and_wabill_still_counts_allowances() {
    let mut tr = Traffic::new();
    // A utility template outside the window: wabill charges it, Meta's
    // verdict says free customer service.
    let id = tr.template(INDIA, "2025-08-04T10:00:00", Utility);
    verdict_on(
        &mut tr,
        INDIA,
        &id,
        "2025-08-04T10:00:00",
        pmp("utility", "free_customer_service"),
    );
    // pmp-2026: a service message Meta calls regular takes a slot of the
    // phone's monthly allowance, which wabill counts.
    webhook_only(
        &mut tr,
        INDIA,
        "svc",
        "2026-10-05T10:00:00",
        pmp("service", "regular"),
    );
    let (derived, meta) = on_meta_basis(tr);
    assert_eq!(record(&derived, &id).free, Free::None);
    assert_eq!(record(&meta, &id).free, Free::FreeCustomerService);
    assert_eq!(record(&meta, "svc").free, Free::FreeTier);
    assert_eq!(record(&meta, "svc").category, "service");
}

#[test]
fn v1_a_verdict_wabill_cannot_read_leaves_the_message_to_its_own_rules() {
    let mut tr = Traffic::new();
    let id = tr.template(INDIA, "2025-08-04T10:00:00", Utility);
    verdict_on(
        &mut tr,
        INDIA,
        &id,
        "2025-08-04T10:00:00",
        pmp("a_category_meta_adds", "regular"),
    );
    let odd_type = tr.template(INDIA, "2025-08-05T10:00:00", Marketing);
    verdict_on(
        &mut tr,
        INDIA,
        &odd_type,
        "2025-08-05T10:00:00",
        pmp("utility", "a_type_meta_adds"),
    );
    let (derived, meta) = on_meta_basis(tr);
    assert_eq!(priced(&meta), priced(&derived));
    assert_eq!(record(&meta, &odd_type).category, "marketing");
}

#[test]
fn v3_on_meta_basis_messages_naming_one_conversation_are_billed_as_one() {
    let mut tr = Traffic::new();
    // cbp-2023: a marketing and then a utility template, an hour apart,
    // are two conversations to wabill (B2); Meta put both in its
    // marketing conversation, which expires 24 h after it opened.
    let conversation = "72b14d6bd5407799e66f64d1b338e567";
    let expires = "2023-07-04T10:00:00";
    let first = tr.template(INDIA, "2023-07-03T10:00:00", Marketing);
    verdict_on(
        &mut tr,
        INDIA,
        &first,
        "2023-07-03T10:00:00",
        cbp(conversation, "marketing", expires),
    );
    let second = tr.template(INDIA, "2023-07-03T11:00:00", Utility);
    verdict_on(
        &mut tr,
        INDIA,
        &second,
        "2023-07-03T11:00:00",
        cbp(conversation, "marketing", expires),
    );
    let (derived, meta) = on_meta_basis(tr);
    assert_eq!(derived.categories(), ["marketing", "utility"]);
    assert_eq!(meta.categories(), ["marketing"]);
    let c = record(&meta, &first);
    assert_eq!((c.messages, c.end), (2, t(expires)));
    assert_eq!(c.free, Free::None);
}

#[test]
fn v3_meta_s_origin_decides_a_conversation_and_its_expiration_ends_it() {
    let mut tr = Traffic::new();
    // A reply that wabill would bill as a service conversation, which
    // Meta says opened a referral conversation ending after 72 h.
    tr.user_writes(INDIA, "2023-07-03T09:00:00");
    let reply = tr.reply(INDIA, "2023-07-03T10:00:00");
    let conversation = "aa6b3a4c2a35d9bcb8f3ee6f2c5e1b0d";
    verdict_on(
        &mut tr,
        INDIA,
        &reply,
        "2023-07-03T10:00:00",
        cbp(conversation, "referral_conversion", "2023-07-06T10:00:00"),
    );
    // Two days later a template: inside Meta's free entry point
    // conversation, so free, whatever verdict it lacks.
    let later = tr.template(INDIA, "2023-07-05T10:00:00", Marketing);
    let (derived, meta) = on_meta_basis(tr);
    assert_eq!(derived.categories(), ["service", "marketing"]);
    assert_eq!(meta.categories(), ["free_entry_point"]);
    let c = record(&meta, &reply);
    assert_eq!(
        (c.free, c.end, c.messages),
        (Free::FreeEntryPoint, t("2023-07-06T10:00:00"), 2)
    );
    assert!(meta.conversations.iter().all(|c| c.opened_by != later));
}

#[test]
fn v3_a_conversation_meta_charged_still_takes_a_free_tier_slot_wabill_counts() {
    let mut tr = Traffic::new();
    // Before November 2024 the first 1 000 service conversations of a
    // month are free (B7): on Meta's basis too.
    webhook_only(
        &mut tr,
        INDIA,
        "svc",
        "2023-07-03T10:00:00",
        cbp("c1", "service", "2023-07-04T10:00:00"),
    );
    let (_, meta) = on_meta_basis(tr);
    assert_eq!(
        priced(&meta),
        [p("cbp-2023", "service", Free::FreeTier, "0.0040")]
    );
}

#[test]
fn d6_an_authentication_message_from_a_business_abroad_is_priced_international() {
    let mut tr = Traffic::new();
    let to_india = tr.template(INDIA, "2025-08-04T10:00:00", Authentication);
    let to_us = tr.template(US, "2025-08-04T11:00:00", Authentication);
    let plain = tr.bill();
    assert_eq!(record(&plain, &to_india).category, "authentication");

    let mut abroad = tr.config.waba(W).clone();
    abroad.business_country = Region::parse("US");
    tr.config.set_waba(W, abroad);
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [
            p(
                "pmp-2025",
                "authentication_international",
                Free::None,
                "0.0280"
            ),
            // North America has no international rate.
            p("pmp-2025", "authentication", Free::None, "0.0040"),
        ]
    );
    assert_eq!(record(&out, &to_us).category, "authentication");

    let mut at_home = tr.config.waba(W).clone();
    at_home.business_country = Region::parse("IN");
    tr.config.set_waba(W, at_home);
    assert_eq!(record(&tr.bill(), &to_india).category, "authentication");
}

#[test]
fn d6_meta_s_authentication_international_verdict_is_priced_at_that_rate_on_meta_basis() {
    let mut tr = Traffic::new();
    // The United Kingdom has no international rate: authentication.
    webhook_only(
        &mut tr,
        UK,
        "otp-uk",
        "2025-08-04T11:00:00",
        pmp("authentication-international", "regular"),
    );
    webhook_only(
        &mut tr,
        INDIA,
        "otp",
        "2025-08-04T10:00:00",
        pmp("authentication-international", "regular"),
    );
    let (derived, meta) = on_meta_basis(tr);
    // Derived, with no business country configured: authentication (F3).
    assert_eq!(
        priced(&derived),
        [
            p("pmp-2025", "authentication", Free::None, "0.0014"),
            p("pmp-2025", "authentication", Free::None, "0.0220"),
        ]
    );
    assert_eq!(
        priced(&meta),
        [
            p(
                "pmp-2025",
                "authentication_international",
                Free::None,
                "0.0280"
            ),
            p("pmp-2025", "authentication", Free::None, "0.0220"),
        ]
    );
}

/// Review finding: the business country re-priced a message Meta itself
/// called plain authentication.
#[test]
fn d6_meta_s_plain_authentication_verdict_stays_authentication_whatever_the_business_country() {
    let mut tr = Traffic::new();
    let mut abroad = tr.config.waba(W).clone();
    abroad.business_country = Region::parse("US");
    tr.config.set_waba(W, abroad);
    let id = tr.template(INDIA, "2025-08-04T10:00:00", Authentication);
    verdict_on(
        &mut tr,
        INDIA,
        &id,
        "2025-08-04T10:00:00",
        pmp("authentication", "regular"),
    );
    let (derived, meta) = on_meta_basis(tr);
    assert_eq!(
        record(&derived, &id).category,
        "authentication_international"
    );
    assert_eq!(
        priced(&meta),
        [p("pmp-2025", "authentication", Free::None, "0.0014")]
    );
}

/// Review finding: a message Meta frees as an entry point's opened no
/// window for the pair's later messages that have no verdict (C3).
#[test]
fn v2_meta_s_free_entry_point_opens_the_window_for_messages_without_a_verdict() {
    let mut tr = Traffic::new();
    let first = tr.template(INDIA, "2025-08-04T10:00:00", Marketing);
    verdict_on(
        &mut tr,
        INDIA,
        &first,
        "2025-08-04T10:00:00",
        pmp("marketing", "free_entry_point"),
    );
    let later = tr.template(INDIA, "2025-08-05T10:00:00", Marketing);
    let (derived, meta) = on_meta_basis(tr);
    assert_eq!(record(&derived, &later).free, Free::None);
    assert_eq!(record(&meta, &first).free, Free::FreeEntryPoint);
    assert_eq!(record(&meta, &later).free, Free::FreeEntryPoint);
}

/// Review finding: a derived authentication template did not join Meta's
/// authentication-international conversation (B2).
#[test]
fn v3_a_derived_authentication_template_joins_meta_s_international_conversation() {
    let mut tr = Traffic::new();
    let first = tr.template(INDIA, "2024-09-02T10:00:00", Authentication);
    let v = cbp(
        "c-otp",
        "authentication_international",
        "2024-09-03T10:00:00",
    );
    verdict_on(&mut tr, INDIA, &first, "2024-09-02T10:00:00", v);
    tr.template(INDIA, "2024-09-02T11:00:00", Authentication);
    let (_, meta) = on_meta_basis(tr);
    assert_eq!(
        priced(&meta),
        [p(
            "cbp-2023",
            "authentication_international",
            Free::None,
            "0.0280"
        )]
    );
    assert_eq!(record(&meta, &first).messages, 2);
}
