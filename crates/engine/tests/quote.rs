//! `GET /v1/quote` in process: what delivering one more message would do,
//! asked of the engine (`wabill_engine::quote`) after a history of events.
//! A table of cases named after the rule each shows, and a property: a
//! quote for "now" predicts what billing does once that message is
//! delivered (its category, how it is free, its price, the platform fee).

mod common;

use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use wabill_engine::billing::Free;
use wabill_engine::era::EraClock;
use wabill_engine::event::{EventBody, Status, TemplateCategory};
use wabill_engine::market::RegionLookup;
use wabill_engine::quote::{self, Ask, Quote, QuoteError, QuoteInputs};
use wabill_engine::{Billed, Incremental, Instant, Ledger};

use TemplateCategory::{Authentication, Marketing, Utility};

/// The quote for a message from `W`/`P` to `user` at `at`, after `tr`'s
/// events, as the service asks it: settled first.
fn quote_after(
    tr: &Traffic,
    user: &str,
    at: Instant,
    template: Option<TemplateCategory>,
) -> Result<Quote, QuoteError> {
    let ledger = Ledger::new(tr.config.clone(), wabill_engine::HashKey::fixed());
    let mut engine = Incremental::new(ledger);
    let mut billed = Billed::new(tr.config.clone(), Arc::new(tr.book.clone()));
    for e in &tr.events {
        engine
            .ingest(std::slice::from_ref(e))
            .unwrap_or_else(|r| panic!("{r}"));
    }
    billed.settle(&mut engine);
    let config = &tr.config;
    let clock = EraClock::new(&config.timeline, &config.waba(W).timezone);
    let region = RegionLookup::new()
        .region_of(user)
        .unwrap_or_else(|| panic!("no region for {user}"));
    let empty = Default::default();
    let inputs = QuoteInputs {
        book: &tr.book,
        config,
        clock: &clock,
        log: engine.pair_log_of(W, P, user).unwrap_or(&empty),
        month: billed
            .month(W, quote::month_of(config, W, at))
            .map(|m| &**m),
    };
    let ask = Ask {
        waba: W,
        phone: P,
        user,
        region,
        at,
        template,
    };
    quote::quote(&inputs, &ask)
}

/// A quote's fields as the service prints them.
fn fields(q: &Quote, tr: &Traffic) -> String {
    format!(
        "allowed={} era={} opens={} category={} market={} free={} meta={} fee={} left={}",
        q.allowed,
        q.era.as_str(),
        q.opens_conversation,
        q.category.as_str(),
        tr.book.market_name(q.market),
        q.free.as_str(),
        q.meta_price,
        q.platform_fee,
        q.free_tier_left
    )
}

struct Case {
    /// The rule the case shows.
    name: &'static str,
    setup: fn() -> Traffic,
    user: &'static str,
    at: &'static str,
    template: Option<TemplateCategory>,
    expect: &'static str,
}

fn user_wrote_at_10() -> Traffic {
    let mut tr = Traffic::new();
    tr.user_writes(BRAZIL, "2022-03-07 10:00");
    tr
}

fn user_wrote_without_free_tier() -> Traffic {
    let mut tr = traffic_without_free_tier();
    tr.user_writes(BRAZIL, "2022-03-07 10:00");
    tr
}

fn reply_delivered_at_10_01() -> Traffic {
    let mut tr = traffic_without_free_tier();
    tr.user_writes(BRAZIL, "2022-03-07 10:00");
    tr.reply(BRAZIL, "2022-03-07 10:01");
    tr
}

fn user_wrote_from_ad_2023() -> Traffic {
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(BRAZIL, "2023-07-03 10:00");
    tr
}

fn user_wrote_2024_12() -> Traffic {
    let mut tr = traffic_without_free_tier();
    tr.user_writes(BRAZIL, "2024-12-02 10:00");
    tr
}

fn user_wrote_2025_08() -> Traffic {
    let mut tr = Traffic::new();
    tr.user_writes(BRAZIL, "2025-08-04 10:00");
    tr
}

fn user_wrote_2026_10() -> Traffic {
    let mut tr = Traffic::new();
    tr.config.pmp_2026_free_service_per_phone = 2;
    tr.user_writes(BRAZIL, "2026-10-05 10:00");
    tr.reply(BRAZIL, "2026-10-05 10:01");
    tr
}

fn fee_with_nothing_included() -> Traffic {
    let mut tr = traffic_without_free_tier();
    tr.config.platform.fee_per_conversation = dec("0.0050");
    tr
}

fn fee_with_free_tier() -> Traffic {
    let mut tr = Traffic::new();
    tr.config.platform.fee_per_conversation = dec("0.0050");
    tr
}

fn fee_with_one_included() -> Traffic {
    let mut tr = fee_with_nothing_included();
    let mut settings = tr.config.waba(W).clone();
    settings.included_conversations = 1;
    tr.config.set_waba(W, settings);
    tr
}

fn fee_after_one_included() -> Traffic {
    let mut tr = fee_with_one_included();
    tr.template(BRAZIL, "2022-03-07 09:00", Marketing);
    tr
}

const CASES: &[Case] = &[
    Case {
        name: "A3_inside_the_window_a_reply_opens_a_user_initiated_conversation_in_the_free_tier",
        setup: user_wrote_at_10,
        user: BRAZIL,
        at: "2022-03-07 10:05",
        template: None,
        expect: "allowed=true era=cbp-2022 opens=true category=user_initiated market=Brazil free=free_tier meta=0 fee=0 left=1000",
    },
    Case {
        name: "A6_once_the_free_tier_is_used_up_the_conversation_pays_the_card_rate",
        setup: user_wrote_without_free_tier,
        user: BRAZIL,
        at: "2022-03-07 10:05",
        template: None,
        expect: "allowed=true era=cbp-2022 opens=true category=user_initiated market=Brazil free=none meta=0.0300 fee=0 left=0",
    },
    Case {
        name: "F4_after_the_window_free_form_is_refused_and_a_template_opens_business_initiated",
        setup: user_wrote_without_free_tier,
        user: BRAZIL,
        at: "2022-03-08 10:00",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2022 opens=true category=business_initiated market=Brazil free=none meta=0.0500 fee=0 left=0",
    },
    Case {
        name: "F4_free_form_outside_the_window_is_not_allowed",
        setup: user_wrote_without_free_tier,
        user: BRAZIL,
        at: "2022-03-08 10:00",
        template: None,
        expect: "allowed=false era=cbp-2022 opens=true category=business_initiated market=Brazil free=none meta=0.0500 fee=0 left=0",
    },
    Case {
        name: "A1_a_message_inside_an_open_conversation_joins_it_at_no_charge",
        setup: reply_delivered_at_10_01,
        user: BRAZIL,
        at: "2022-03-07 10:30",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2022 opens=false category=user_initiated market=Brazil free=none meta=0 fee=0 left=0",
    },
    Case {
        name: "B5_a_reply_to_an_entry_point_opens_a_free_entry_point_conversation",
        setup: user_wrote_from_ad_2023,
        user: BRAZIL,
        at: "2023-07-03 11:00",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2023 opens=true category=free_entry_point market=Brazil free=free_entry_point meta=0 fee=0 left=0",
    },
    Case {
        name: "B7_from_2024_11_a_service_conversation_is_free_customer_service",
        setup: user_wrote_2024_12,
        user: BRAZIL,
        at: "2024-12-02 10:05",
        template: None,
        expect: "allowed=true era=cbp-2023 opens=true category=service market=Brazil free=free_customer_service meta=0 fee=0 left=0",
    },
    Case {
        name: "B2_a_marketing_template_opens_a_marketing_conversation_outside_the_free_tier",
        setup: user_wrote_2024_12,
        user: UK,
        at: "2024-12-02 10:05",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2023 opens=true category=marketing market=United Kingdom free=none meta=0.0529 fee=0 left=0",
    },
    Case {
        name: "C2_a_utility_template_inside_the_window_is_free_under_pmp_2025",
        setup: user_wrote_2025_08,
        user: BRAZIL,
        at: "2025-08-04 10:05",
        template: Some(Utility),
        expect: "allowed=true era=pmp-2025 opens=true category=utility market=Brazil free=free_customer_service meta=0 fee=0 left=0",
    },
    Case {
        name: "C1_an_authentication_template_is_charged_per_message",
        setup: user_wrote_2025_08,
        user: BRAZIL,
        at: "2025-08-04 10:05",
        template: Some(Authentication),
        expect: "allowed=true era=pmp-2025 opens=true category=authentication market=Brazil free=none meta=0.0068 fee=0 left=0",
    },
    Case {
        name: "section_5_a_service_message_takes_the_phones_monthly_allowance",
        setup: user_wrote_2026_10,
        user: BRAZIL,
        at: "2026-10-05 10:05",
        template: None,
        expect: "allowed=true era=pmp-2026 opens=true category=service market=Brazil free=free_tier meta=0 fee=0 left=1",
    },
    Case {
        name: "D4_a_paid_conversation_bears_the_platform_fee",
        setup: fee_with_nothing_included,
        user: UK,
        at: "2022-03-07 10:00",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2022 opens=true category=business_initiated market=United Kingdom free=none meta=0.0647 fee=0.0050 left=0",
    },
    Case {
        name: "D4_a_free_tier_conversation_bears_no_fee_when_it_applies_to_paid_ones",
        setup: fee_with_free_tier,
        user: UK,
        at: "2022-03-07 10:00",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2022 opens=true category=business_initiated market=United Kingdom free=free_tier meta=0 fee=0 left=1000",
    },
    Case {
        name: "D5_the_included_volume_is_used_before_the_fee_starts",
        setup: fee_with_one_included,
        user: UK,
        at: "2022-03-07 10:00",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2022 opens=true category=business_initiated market=United Kingdom free=none meta=0.0647 fee=0 left=0",
    },
    Case {
        name: "D5_the_platform_fee_starts_once_the_included_volume_is_used",
        setup: fee_after_one_included,
        user: UK,
        at: "2022-03-07 10:00",
        template: Some(Marketing),
        expect: "allowed=true era=cbp-2022 opens=true category=business_initiated market=United Kingdom free=none meta=0.0647 fee=0.0050 left=0",
    },
];

#[test]
fn each_quote_case_answers_as_its_rule_says() {
    let mut failures = Vec::new();
    for case in CASES {
        let tr = (case.setup)();
        let got = match quote_after(&tr, case.user, t(case.at), case.template) {
            Ok(q) => fields(&q, &tr),
            Err(e) => format!("error: {e}"),
        };
        if got != case.expect {
            failures.push(format!(
                "{}:\n  expected {}\n  got      {got}",
                case.name, case.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn before_the_first_era_a_quote_is_an_error() {
    let tr = Traffic::new();
    let got = quote_after(&tr, BRAZIL, t("2022-01-15 10:00"), None);
    assert_eq!(got, Err(QuoteError::NoEra));
}

/// One step of a random history: who wrote, what was delivered, hours after
/// the era's start.
#[derive(Clone, Debug)]
enum Step {
    Writes {
        user: usize,
        hour: u32,
        ad: bool,
    },
    Delivered {
        user: usize,
        hour: u32,
        template: Option<TemplateCategory>,
    },
}

const USERS: [&str; 2] = [BRAZIL, UK];

fn template() -> impl Strategy<Value = Option<TemplateCategory>> {
    prop_oneof![
        Just(None),
        Just(Some(Marketing)),
        Just(Some(Utility)),
        Just(Some(Authentication)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..2usize, 0..96u32, any::<bool>()).prop_map(|(user, hour, ad)| Step::Writes {
            user,
            hour,
            ad
        }),
        (0..2usize, 0..96u32, template()).prop_map(|(user, hour, template)| Step::Delivered {
            user,
            hour,
            template
        }),
    ]
}

/// Each era's first days, and one inside cbp-2023 after B7 made service free.
const STARTS: [&str; 5] = [
    "2022-03-01 00:00",
    "2023-07-01 00:00",
    "2024-11-04 00:00",
    "2025-08-01 00:00",
    "2026-10-01 00:00",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_quote_for_now_predicts_what_billing_does_with_that_message(
        start in 0..STARTS.len(),
        steps in proptest::collection::vec(step(), 0..12),
        asked_user in 0..2usize,
        asked_template in template(),
        minutes_after in 0..(30 * 60i64),
        free_tier in 0..3u64,
        included in 0..3u64,
        fee_on_all in any::<bool>(),
    ) {
        let mut tr = Traffic::new();
        tr.config.free_tier_per_month = free_tier;
        tr.config.pmp_2026_free_service_per_phone = free_tier;
        tr.config.platform.fee_per_conversation = dec("0.0050");
        if fee_on_all {
            tr.config.platform.fee_applies_to = wabill_engine::config::FeeAppliesTo::All;
        }
        let mut settings = tr.config.waba(W).clone();
        settings.included_conversations = included;
        tr.config.set_waba(W, settings);
        let base = t(STARTS[start]);
        let hour = |h: u32| base.plus(i64::from(h) * 3600 * 1_000_000_000);
        let mut last = base;
        for (n, s) in steps.iter().enumerate() {
            let id = format!("wamid.h{n:03}");
            match *s {
                Step::Writes { user, hour: h, ad } => {
                    tr.push(hour(h), W, P, USERS[user], &id, EventBody::Inbound { referral: ad });
                    last = last.max(hour(h));
                }
                Step::Delivered { user, hour: h, template } => {
                    tr.push(hour(h), W, P, USERS[user], &id, EventBody::Outbound { template });
                    tr.push(hour(h), W, P, USERS[user], &id, EventBody::Status(Status::Delivered));
                    last = last.max(hour(h));
                }
            }
        }
        // "Now": at or after everything the pair's history holds.
        let at = last.plus(minutes_after * 60 * 1_000_000_000);
        let user = USERS[asked_user];
        let q = quote_after(&tr, user, at, asked_template)
            .unwrap_or_else(|e| panic!("quote: {e}"));
        let month = wabill_engine::time::Month::of(at.local_date(&jiff::tz::TimeZone::UTC)).to_string();
        let before = tr.bill();
        let fee_before = before
            .invoices
            .iter()
            .find(|i| i.month.to_string() == month)
            .map_or(rust_decimal::Decimal::ZERO, |i| i.platform_fee.amount);

        // Deliver the message asked about, and bill again.
        let id = "wamid.asked";
        tr.push(at, W, P, user, id, EventBody::Outbound { template: asked_template });
        tr.push(at, W, P, user, id, EventBody::Status(Status::Delivered));
        let after = tr.bill();
        prop_assert!(after.errors.is_empty(), "{:?}", after.errors);
        let opened: Vec<&Conv> = after.conversations.iter().filter(|c| c.opened_by == id).collect();
        prop_assert_eq!(opened.len() == 1, q.opens_conversation);
        if let [record] = opened.as_slice() {
            prop_assert_eq!(record.era, q.era.as_str());
            prop_assert_eq!(record.category, q.category.as_str());
            prop_assert_eq!(&record.market, tr.book.market_name(q.market));
            prop_assert_eq!(record.free, q.free);
            let charged = if record.free == Free::None { dec(&record.unit_price) } else { dec("0") };
            prop_assert_eq!(charged, q.meta_price);
        }
        let fee_after = after
            .invoices
            .iter()
            .find(|i| i.month.to_string() == month)
            .map_or(rust_decimal::Decimal::ZERO, |i| i.platform_fee.amount);
        prop_assert_eq!(fee_after - fee_before, q.platform_fee);
    }
}
