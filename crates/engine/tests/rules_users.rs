//! Rules F9: a user named by number or by business-scoped user id (BSUID)
//! is one person once an event names both, whatever the order events
//! arrive in; a user known only by BSUID is priced in its country.

mod common;

use std::borrow::Cow;

use common::*;
use wabill_engine::TemplateCategory::Marketing;
use wabill_engine::{EventBody, Rejection, Status};

const BSUID: &str = "IN.1502576394655843";

/// Inbound from India naming both ids, a reply and a template to the
/// BSUID alone, a template to the number alone.
fn traffic() -> Traffic {
    let mut tr = Traffic::new();
    let inbound = tr.user_writes(INDIA, "2025-08-04T10:00:00");
    if let Some(e) = tr.events.iter_mut().find(|e| e.id == inbound) {
        e.also = wabill_engine::event::Also::boxed(Some(Cow::Borrowed(BSUID)), None);
    }
    tr.reply(BSUID, "2025-08-04T10:05:00");
    tr.template(BSUID, "2025-08-05T10:00:00", Marketing);
    tr.template(INDIA, "2025-08-06T10:00:00", Marketing);
    tr
}

#[test]
fn f9_a_number_and_its_business_scoped_id_are_one_pair_whatever_the_order() {
    let tr = traffic();
    let expected = tr.bill();
    assert_eq!(
        priced(&expected),
        [
            p(
                "pmp-2025",
                "service",
                wabill_engine::billing::Free::FreeCustomerService,
                "0"
            ),
            p(
                "pmp-2025",
                "marketing",
                wabill_engine::billing::Free::None,
                "0.0107"
            ),
            p(
                "pmp-2025",
                "marketing",
                wabill_engine::billing::Free::None,
                "0.0107"
            ),
        ]
    );
    assert!(
        expected
            .conversations
            .iter()
            .all(|c| c.user == INDIA && c.market == "India")
    );
    // Every order of arrival, and each event twice.
    let n = tr.events.len();
    for rotation in 0..n {
        for reversed in [false, true] {
            let mut events = tr.events.clone();
            events.rotate_left(rotation);
            if reversed {
                events.reverse();
            }
            events.extend(tr.events.clone());
            let out = bill_events(&events, &tr.config, &tr.book);
            assert_eq!(
                out.invoices, expected.invoices,
                "rotation {rotation}, reversed {reversed}"
            );
            assert_eq!(out.conversations, expected.conversations);
        }
    }
}

#[test]
fn f9_a_user_known_only_by_business_scoped_id_is_priced_in_its_country() {
    let mut tr = Traffic::new();
    let id = tr.template("BR.2077296503193087", "2025-08-05T10:00:00", Marketing);
    let out = tr.bill();
    let c = record(&out, &id);
    assert_eq!(
        (c.market.as_str(), c.user.as_str()),
        ("Brazil", "BR.2077296503193087")
    );
    // A parent id names its country too.
    let mut tr = Traffic::new();
    tr.template(
        "US.ENT.11815799212886844830",
        "2025-08-05T10:00:00",
        Marketing,
    );
    assert_eq!(tr.bill().conversations[0].market, "North America");
}

#[test]
fn f9_a_business_scoped_id_of_no_known_country_is_refused_not_guessed() {
    let mut tr = Traffic::new();
    tr.push(
        t("2025-08-05T10:00:00"),
        W,
        P,
        "XX.12345",
        "wamid.x",
        EventBody::Status(Status::Delivered),
    );
    let out = tr.bill();
    assert!(
        matches!(out.rejected.as_slice(), [Rejection::UnknownRegion { .. }]),
        "{:?}",
        out.rejected
    );
    assert!(out.conversations.is_empty());
}

/// Review finding: the service's window and quote found no pair for a
/// linked business-scoped id that had never named a pair of its own.
#[test]
fn f9_the_live_window_finds_a_linked_business_scoped_id_by_its_number() {
    use wabill_engine::{HashKey, Incremental, Ledger};
    let tr = traffic();
    let mut live = Incremental::new(Ledger::new(tr.config.clone(), HashKey::fixed()));
    // Only the inbound message that names both ids.
    assert!(live.ingest(&tr.events[..1]).is_ok());
    assert!(live.pair_log_of(W, P, BSUID).is_some());
    assert!(live.pair_log_of(W, P, "IN.999").is_none());
}

/// W1's traffic to a user known by BSUID, and W2's event linking the same
/// BSUID to a number.
fn linked_elsewhere(tr: &mut Traffic) {
    tr.user_writes(BSUID, "2025-08-04T10:00:00");
    tr.reply(BSUID, "2025-08-04T10:05:00");
    let id = "wamid.w2";
    tr.push(
        t("2025-08-04T09:00:00"),
        "W2",
        P,
        INDIA,
        id,
        EventBody::Inbound { referral: false },
    );
    if let Some(e) = tr.events.iter_mut().find(|e| e.id == id) {
        e.also = wabill_engine::event::Also::boxed(Some(Cow::Borrowed(BSUID)), None);
    }
}

fn w1_users(out: &Outcome) -> Vec<&str> {
    out.conversations
        .iter()
        .filter(|c| c.waba == W)
        .map(|c| c.user.as_str())
        .collect()
}

/// F9: a link holds within its business portfolio. Another WABA's event
/// naming the same BSUID with a number does not move this WABA's pair when
/// the two are separate businesses (each WABA alone, the default); it does
/// when the configuration puts them in one portfolio, as Meta scopes the
/// BSUID.
#[test]
fn f9_a_link_holds_within_its_portfolio_only() {
    let mut tr = Traffic::new();
    linked_elsewhere(&mut tr);
    assert_eq!(w1_users(&tr.bill()), [BSUID], "W1's user stays its BSUID");
    let mut tr = Traffic::new().portfolio(W, "acme").portfolio("W2", "acme");
    linked_elsewhere(&mut tr);
    assert_eq!(w1_users(&tr.bill()), [INDIA], "one business: one person");
}
