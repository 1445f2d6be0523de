//! Rules section 3 of `rules.md` (`cbp-2023`, four categories), one or more
//! tests per rule, each named after the rule it proves.
//!
//! Prices come from the shipped cards in `data/rates`:
//! `meta-cbp-2023_USD_2023-06-01.csv` (in force until 2024-06-30 local),
//! `…_2024-07-01`, `…_2024-08-01`, `…_2024-10-01`, `…_2024-11-01`, and
//! `meta-cbp-2022_USD_2022-02-01.csv` for conversations opened before the
//! switch. Most tests run in July 2023 with the WABA in UTC.

mod common;

use common::*;
use wabill_engine::billing::Free;
use wabill_engine::event::TemplateCategory::{Authentication, Marketing, Utility};
use wabill_engine::time::{HOURS_24, HOURS_72};

/// (category, start, end, messages) of every record, in `records` order.
fn spans(
    out: &Outcome,
) -> Vec<(
    &'static str,
    wabill_engine::Instant,
    wabill_engine::Instant,
    u32,
)> {
    records(out)
        .into_iter()
        .map(|c| (c.category, c.start, c.end, c.messages))
        .collect()
}

// ---- B1: categories ----

#[test]
fn b1_templates_open_their_own_category_and_only_non_templates_open_service() {
    // 2023-06-01 card, United Kingdom: marketing 0.0705, utility 0.0398,
    // authentication 0.0358, service 0.0388.
    let mut tr = traffic_without_free_tier();
    tr.template(UK, "2023-07-03 09:00", Marketing);
    tr.template(UK, "2023-07-03 09:10", Utility);
    tr.template(UK, "2023-07-03 09:20", Authentication);
    // Every conversation above ended by 2023-07-04 09:20.
    tr.reply(UK, "2023-07-04 10:00");
    let out = tr.bill();
    assert_eq!(out.errors, Vec::<String>::new());
    assert_eq!(
        priced(&out),
        [
            p("cbp-2023", "marketing", Free::None, "0.0705"),
            p("cbp-2023", "utility", Free::None, "0.0398"),
            p("cbp-2023", "authentication", Free::None, "0.0358"),
            p("cbp-2023", "service", Free::None, "0.0388"),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.1849"));
}

#[test]
fn b1_a_delivered_message_without_outbound_record_is_a_non_template_and_opens_service() {
    let mut tr = traffic_without_free_tier();
    tr.status(
        UK,
        "wamid.no-record",
        "2023-07-03 09:00",
        wabill_engine::event::Status::Delivered,
    );
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [p("cbp-2023", "service", Free::None, "0.0388")]
    );
    assert_eq!(out.conversations[0].opened_by, "wamid.no-record");
}

// ---- B2: templates ----

#[test]
fn b2_a_template_opens_a_conversation_of_its_category_unless_one_is_open() {
    // Brazil, 2023-06-01 card: marketing 0.0625.
    let mut tr = traffic_without_free_tier();
    let first = tr.template(BRAZIL, "2023-07-03 09:00", Marketing);
    tr.template(BRAZIL, "2023-07-03 15:00", Marketing);
    tr.template(BRAZIL, "2023-07-04 08:59:59", Marketing);
    // Half-open: at exactly 24 h the first one is over.
    let second = tr.template(BRAZIL, "2023-07-04 09:00", Marketing);
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            ("marketing", t("2023-07-03 09:00"), t("2023-07-04 09:00"), 3),
            ("marketing", t("2023-07-04 09:00"), t("2023-07-05 09:00"), 1),
        ]
    );
    assert_eq!(records(&out)[0].opened_by, first);
    assert_eq!(records(&out)[1].opened_by, second);
    assert_eq!(out.only_invoice().meta_total, dec("0.1250"));
}

#[test]
fn b2_a_template_opens_its_category_while_a_service_conversation_is_open() {
    // Brazil, 2023-06-01 card: service 0.0300, utility 0.0350.
    let mut tr = traffic_without_free_tier();
    tr.user_writes(BRAZIL, "2023-07-03 09:00");
    tr.reply(BRAZIL, "2023-07-03 09:05");
    tr.template(BRAZIL, "2023-07-03 10:00", Utility);
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            ("service", t("2023-07-03 09:05"), t("2023-07-04 09:05"), 1),
            ("utility", t("2023-07-03 10:00"), t("2023-07-04 10:00"), 1),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.0650"));
}

// ---- B3: non-templates ----

#[test]
fn b3_a_non_template_opens_service_only_when_no_conversation_of_any_category_is_open() {
    // Mexico, 2023-06-01 card: utility 0.0266, service 0.0105.
    let mut tr = traffic_without_free_tier();
    tr.template(MEXICO, "2023-07-03 09:00", Utility);
    tr.user_writes(MEXICO, "2023-07-03 09:30");
    tr.reply(MEXICO, "2023-07-03 10:00"); // joins the utility conversation
    tr.user_writes(MEXICO, "2023-07-04 08:00");
    tr.reply(MEXICO, "2023-07-04 09:00"); // utility is over: opens service
    tr.reply(MEXICO, "2023-07-04 09:05"); // joins service
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            ("utility", t("2023-07-03 09:00"), t("2023-07-04 09:00"), 2),
            ("service", t("2023-07-04 09:00"), t("2023-07-05 09:00"), 2),
        ]
    );
    assert_eq!(
        priced(&out),
        [
            p("cbp-2023", "utility", Free::None, "0.0266"),
            p("cbp-2023", "service", Free::None, "0.0105"),
        ]
    );
}

// ---- B4: several open ----

#[test]
fn b4_several_conversations_of_different_categories_can_be_open_at_once() {
    // United Kingdom, 2023-06-01 card: 0.0388 + 0.0705 + 0.0398 + 0.0358.
    let mut tr = traffic_without_free_tier();
    tr.user_writes(UK, "2023-07-03 07:55");
    tr.reply(UK, "2023-07-03 08:00"); // service
    tr.template(UK, "2023-07-03 09:00", Marketing);
    tr.template(UK, "2023-07-03 10:00", Utility);
    tr.template(UK, "2023-07-03 11:00", Authentication);
    tr.template(UK, "2023-07-03 12:00", Marketing); // joins marketing
    tr.reply(UK, "2023-07-03 13:00"); // joins the open service conversation
    tr.template(UK, "2023-07-03 14:00", Utility); // joins utility
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            ("service", t("2023-07-03 08:00"), t("2023-07-04 08:00"), 2),
            ("marketing", t("2023-07-03 09:00"), t("2023-07-04 09:00"), 2),
            ("utility", t("2023-07-03 10:00"), t("2023-07-04 10:00"), 2),
            (
                "authentication",
                t("2023-07-03 11:00"),
                t("2023-07-04 11:00"),
                1
            ),
        ]
    );
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [4, 0, 0, 0, 4]);
    assert_eq!(inv.meta_total, dec("0.1849"));
}

#[test]
fn b4_a_joining_non_template_goes_to_the_open_service_conversation_else_the_earliest_opened() {
    let mut tr = traffic_without_free_tier();
    tr.template(UK, "2023-07-03 09:00", Marketing);
    tr.template(UK, "2023-07-03 10:00", Utility);
    tr.user_writes(UK, "2023-07-03 10:30");
    // No service conversation is open: the earliest opened (marketing).
    tr.reply(UK, "2023-07-03 11:00");
    tr.reply(UK, "2023-07-03 11:30");
    // A joining template goes to the open one of its own category.
    tr.template(UK, "2023-07-03 12:00", Utility);
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            ("marketing", t("2023-07-03 09:00"), t("2023-07-04 09:00"), 3),
            ("utility", t("2023-07-03 10:00"), t("2023-07-04 10:00"), 2),
        ]
    );
}

// ---- B5: free entry point ----

#[test]
fn b5_a_reply_within_24h_of_an_entry_point_opens_a_free_72h_free_entry_point_conversation() {
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 10:00");
    let opener = tr.reply(NIGERIA, "2023-07-04 09:59:59");
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [(
            "free_entry_point",
            t("2023-07-04 09:59:59"),
            t("2023-07-07 09:59:59"),
            1
        )]
    );
    assert_eq!(
        priced(&out),
        [p("cbp-2023", "free_entry_point", Free::FreeEntryPoint, "0")]
    );
    assert_eq!(out.conversations[0].opened_by, opener);
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [1, 0, 1, 0, 0]);
    assert_eq!(inv.meta_total, dec("0"));
}

#[test]
fn b5_a_reply_at_the_entry_point_instant_opens_it_and_one_24h_later_does_not() {
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 10:00");
    tr.reply(NIGERIA, "2023-07-03 10:00");
    assert_eq!(tr.bill().categories(), ["free_entry_point"]);

    // Nigeria, 2023-06-01 card: marketing 0.0516.
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 10:00");
    tr.template(NIGERIA, "2023-07-04 10:00", Marketing);
    assert_eq!(
        priced(&tr.bill()),
        [p("cbp-2023", "marketing", Free::None, "0.0516")]
    );
}

#[test]
fn b5_any_business_message_opens_it_and_it_takes_precedence_over_b2_and_b3() {
    for category in [Marketing, Utility, Authentication] {
        let mut tr = traffic_without_free_tier();
        tr.user_writes_from_ad(NIGERIA, "2023-07-03 10:00");
        tr.template(NIGERIA, "2023-07-03 22:00", category);
        let out = tr.bill();
        assert_eq!(
            spans(&out),
            [(
                "free_entry_point",
                t("2023-07-03 22:00"),
                t("2023-07-06 22:00"),
                1
            )],
            "{category:?}"
        );
    }
}

#[test]
fn b5_it_takes_precedence_even_over_an_open_conversation_of_the_template_category() {
    let mut tr = traffic_without_free_tier();
    tr.template(NIGERIA, "2023-07-03 08:00", Marketing);
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 09:00");
    tr.template(NIGERIA, "2023-07-03 09:30", Marketing);
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            ("marketing", t("2023-07-03 08:00"), t("2023-07-03 09:30"), 1),
            (
                "free_entry_point",
                t("2023-07-03 09:30"),
                t("2023-07-06 09:30"),
                1
            ),
        ]
    );
}

#[test]
fn b5_opening_closes_every_other_open_conversation_at_its_start() {
    // Nigeria, 2023-06-01 card: service 0.0310, marketing 0.0516, utility 0.0319.
    let mut tr = traffic_without_free_tier();
    tr.user_writes(NIGERIA, "2023-07-03 07:50");
    tr.reply(NIGERIA, "2023-07-03 08:00"); // service
    tr.template(NIGERIA, "2023-07-03 08:10", Marketing);
    tr.template(NIGERIA, "2023-07-03 08:20", Utility);
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 09:00");
    tr.reply(NIGERIA, "2023-07-03 09:30"); // free entry point: closes the three
    tr.template(NIGERIA, "2023-07-03 10:00", Marketing); // joins it
    tr.template(NIGERIA, "2023-07-06 09:30", Marketing); // it has ended: opens
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            ("service", t("2023-07-03 08:00"), t("2023-07-03 09:30"), 1),
            ("marketing", t("2023-07-03 08:10"), t("2023-07-03 09:30"), 1),
            ("utility", t("2023-07-03 08:20"), t("2023-07-03 09:30"), 1),
            (
                "free_entry_point",
                t("2023-07-03 09:30"),
                t("2023-07-06 09:30"),
                2
            ),
            ("marketing", t("2023-07-06 09:30"), t("2023-07-07 09:30"), 1),
        ]
    );
    // The closed conversations were opened, so they are still charged.
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [5, 0, 1, 0, 4]);
    assert_eq!(inv.meta_total, dec("0.1661"));
}

#[test]
fn b5_while_it_is_open_no_other_conversation_opens_and_everything_is_free() {
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 10:00");
    tr.reply(NIGERIA, "2023-07-03 10:05");
    tr.template(NIGERIA, "2023-07-04 09:00", Marketing);
    tr.template(NIGERIA, "2023-07-05 09:00", Utility);
    tr.reply(NIGERIA, "2023-07-05 09:30");
    tr.template(NIGERIA, "2023-07-06 10:04:59", Authentication);
    tr.template(NIGERIA, "2023-07-06 10:05", Authentication);
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            (
                "free_entry_point",
                t("2023-07-03 10:05"),
                t("2023-07-06 10:05"),
                5
            ),
            (
                "authentication",
                t("2023-07-06 10:05"),
                t("2023-07-07 10:05"),
                1
            ),
        ]
    );
    // Nigeria authentication, 2023-06-01 card: 0.0287.
    assert_eq!(out.only_invoice().meta_total, dec("0.0287"));
}

#[test]
fn b5_an_entry_point_that_opened_nothing_can_open_the_next_one_after_the_first_ends() {
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(ITALY, "2023-07-03 10:00");
    tr.reply(ITALY, "2023-07-03 10:05"); // FEP until 07-06 10:05
    // A second ad click while it is open opens nothing yet…
    tr.user_writes_from_ad(ITALY, "2023-07-05 12:00");
    tr.reply(ITALY, "2023-07-05 12:05");
    // …but is unused, so a reply after the first ends (within 24 h of it) opens the next.
    tr.reply(ITALY, "2023-07-06 10:05");
    // No unused entry point within 24 h: service (Italy 0.0386).
    tr.reply(ITALY, "2023-07-09 10:05");
    let out = tr.bill();
    assert_eq!(
        spans(&out),
        [
            (
                "free_entry_point",
                t("2023-07-03 10:05"),
                t("2023-07-06 10:05"),
                2
            ),
            (
                "free_entry_point",
                t("2023-07-06 10:05"),
                t("2023-07-09 10:05"),
                1
            ),
            ("service", t("2023-07-09 10:05"), t("2023-07-10 10:05"), 1),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.0386"));
}

// ---- B6: length ----

#[test]
fn b6_conversations_last_exactly_24h_and_free_entry_point_ones_72h() {
    let mut tr = Traffic::new();
    tr.template(UK, "2023-07-03 09:00:30", Marketing);
    tr.reply(GERMANY, "2023-07-03 09:00");
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 09:00");
    tr.reply(NIGERIA, "2023-07-03 09:01");
    let out = tr.bill();
    let lengths: Vec<_> = records(&out)
        .into_iter()
        .map(|c| (c.category, c.end.0 - c.start.0))
        .collect();
    assert_eq!(
        lengths,
        [
            ("service", HOURS_24),
            ("marketing", HOURS_24),
            ("free_entry_point", HOURS_72)
        ]
    );
}

// ---- B7: free tier ----

#[test]
fn b7_the_first_1000_service_conversations_of_a_waba_month_are_free_and_other_categories_never() {
    let mut tr = Traffic::new();
    // Marketing conversations first: earliest, yet never in the free tier.
    for n in 0..3 {
        tr.template(
            &brazil_number(5000 + n),
            &format!("2023-07-01 00:0{n}"),
            Marketing,
        );
    }
    tr.user_writes_from_ad(NIGERIA, "2023-07-01 00:30");
    tr.reply(NIGERIA, "2023-07-01 00:31");
    // 1002 service conversations over both phones.
    for n in 0..1002 {
        let at = format!("2023-07-02 {:02}:{:02}", n / 60, n % 60);
        let phone = if n % 2 == 0 { "P1" } else { "P2" };
        tr.reply_on(W, phone, &brazil_number(n), &at);
    }
    let out = tr.bill();
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [1006, 1000, 1, 0, 5]);
    // Brazil, 2023-06-01 card: 3 × 0.0625 + 2 × 0.0300.
    assert_eq!(inv.meta_total, dec("0.2475"));
    let paid_services: Vec<_> = records(&out)
        .into_iter()
        .filter(|c| c.category == "service" && c.free == Free::None)
        .map(|c| c.start)
        .collect();
    assert_eq!(
        paid_services,
        [t("2023-07-02 16:40"), t("2023-07-02 16:41")]
    );
    assert!(
        out.conversations
            .iter()
            .filter(|c| c.category == "marketing")
            .all(|c| c.free == Free::None)
    );
}

#[test]
fn b7_equal_starts_take_the_free_tier_in_phone_user_and_opening_message_id_order() {
    let mut tr = Traffic::new();
    tr.config.free_tier_per_month = 2;
    tr.reply_on(W, "P2", "5511000000001", "2023-07-03 10:00");
    tr.reply_on(W, "P1", "5511000000009", "2023-07-03 10:00");
    tr.reply_on(W, "P1", "5511000000005", "2023-07-03 10:00");
    let out = tr.bill();
    let free: Vec<_> = records(&out)
        .into_iter()
        .map(|c| (c.phone.as_str(), c.user.as_str(), c.free))
        .collect();
    assert_eq!(
        free,
        [
            ("P1", "5511000000005", Free::FreeTier),
            ("P1", "5511000000009", Free::FreeTier),
            ("P2", "5511000000001", Free::None),
        ]
    );
}

#[test]
fn b7_the_free_tier_counts_the_waba_local_month_and_does_not_roll_over() {
    let mut tr = Traffic::new().timezone(W, "America/Sao_Paulo");
    tr.config.free_tier_per_month = 1;
    tr.reply(&brazil_number(1), "2023-07-10 12:00");
    // 2023-08-01 02:30 UTC is July 31 23:30 in São Paulo.
    tr.reply(&brazil_number(2), "2023-08-01 02:30");
    tr.reply(&brazil_number(3), "2023-08-01 03:30");
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [
            p("cbp-2023", "service", Free::FreeTier, "0.0300"),
            p("cbp-2023", "service", Free::None, "0.0300"),
            p("cbp-2023", "service", Free::FreeTier, "0.0300"),
        ]
    );
    assert_eq!(
        counts(&invoice_of(&out, W, "2023-07").conversations),
        [2, 1, 0, 0, 1]
    );
    assert_eq!(
        counts(&invoice_of(&out, W, "2023-08").conversations),
        [1, 1, 0, 0, 0]
    );
}

#[test]
fn b7_from_2024_11_01_local_every_service_conversation_is_free_customer_service() {
    // Brazil service: 0.0300 on the 2024-10-01 card, 0.0000 on the 2024-11-01 card.
    let mut tr = Traffic::new().timezone(W, "America/Sao_Paulo");
    tr.config.free_tier_per_month = 1;
    tr.reply(&brazil_number(1), "2024-10-15 12:00"); // free tier
    tr.reply(&brazil_number(2), "2024-11-01 02:30"); // Oct 31 local: tier used up, paid
    tr.reply(&brazil_number(3), "2024-11-01 03:30"); // Nov 1 local
    tr.reply(&brazil_number(4), "2024-11-02 12:00");
    tr.template(&brazil_number(5), "2024-11-03 12:00", Marketing);
    let out = tr.bill();
    assert_eq!(out.errors, Vec::<String>::new());
    assert_eq!(
        priced(&out),
        [
            p("cbp-2023", "service", Free::FreeTier, "0.0300"),
            p("cbp-2023", "service", Free::None, "0.0300"),
            // D2: a category a rule makes free shows unit price 0.
            p("cbp-2023", "service", Free::FreeCustomerService, "0"),
            p("cbp-2023", "service", Free::FreeCustomerService, "0"),
            p("cbp-2023", "marketing", Free::None, "0.0625"),
        ]
    );
    let oct = invoice_of(&out, W, "2024-10");
    assert_eq!(counts(&oct.conversations), [2, 1, 0, 0, 1]);
    assert_eq!(oct.meta_total, dec("0.0300"));
    let nov = invoice_of(&out, W, "2024-11");
    assert_eq!(counts(&nov.conversations), [3, 0, 0, 2, 1]);
    assert_eq!(nov.meta_total, dec("0.0625"));
    assert_eq!(
        lines(nov),
        [
            line(
                "cbp-2023",
                "Brazil",
                "marketing",
                None,
                "0.0625",
                [1, 0, 0, 0, 1],
                "0.0625"
            ),
            line(
                "cbp-2023",
                "Brazil",
                "service",
                None,
                "0",
                [2, 0, 0, 2, 0],
                "0"
            ),
        ]
    );
}

#[test]
fn b7_from_2024_11_01_service_conversations_use_no_free_tier_slot() {
    // With the old free tier still configured, November services are not
    // `free_tier` and the invoice's free tier count stays 0.
    let mut tr = Traffic::new();
    for n in 0..3 {
        tr.reply(&brazil_number(n), &format!("2024-11-0{} 12:00", n + 1));
    }
    let out = tr.bill();
    assert!(
        out.conversations
            .iter()
            .all(|c| c.free == Free::FreeCustomerService)
    );
    assert_eq!(counts(&out.only_invoice().conversations), [3, 0, 0, 3, 0]);
}

// ---- B7a: across the era boundary ----

#[test]
fn b7a_an_open_cbp2022_conversation_counts_as_open_of_its_own_category_at_a_cbp2023_delivery() {
    // cbp-2022 card, United Kingdom: business_initiated 0.0647.
    // cbp-2023 2023-06-01 card, United Kingdom: marketing 0.0705, utility 0.0398.
    let mut tr = traffic_without_free_tier();
    tr.template(UK, "2023-05-31 20:00", Marketing); // cbp-2022, open until 06-01 20:00
    tr.reply(UK, "2023-06-01 01:00"); // non-template: joins it
    tr.template(UK, "2023-06-01 02:00", Marketing); // template: opens marketing
    tr.reply(UK, "2023-06-01 03:00"); // no service open: the earliest opened
    tr.template(UK, "2023-06-01 04:00", Utility); // opens utility
    tr.reply(UK, "2023-06-01 20:30"); // cbp-2022 one is over: marketing (earliest open)
    let out = tr.bill();
    let got: Vec<_> = records(&out)
        .into_iter()
        .map(|c| {
            (
                c.era,
                c.category,
                c.start,
                c.end,
                c.messages,
                c.unit_price.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "cbp-2022",
                "business_initiated",
                t("2023-05-31 20:00"),
                t("2023-06-01 20:00"),
                3,
                "0.0647"
            ),
            (
                "cbp-2023",
                "marketing",
                t("2023-06-01 02:00"),
                t("2023-06-02 02:00"),
                2,
                "0.0705"
            ),
            (
                "cbp-2023",
                "utility",
                t("2023-06-01 04:00"),
                t("2023-06-02 04:00"),
                1,
                "0.0398"
            ),
        ]
    );
    assert_eq!(invoice_of(&out, W, "2023-05").meta_total, dec("0.0647"));
    assert_eq!(invoice_of(&out, W, "2023-06").meta_total, dec("0.1103"));
}

#[test]
fn b7a_an_open_cbp2022_free_entry_point_conversation_blocks_every_cbp2023_opening() {
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2023-05-31 10:00");
    tr.reply(NIGERIA, "2023-05-31 10:05"); // cbp-2022 FEP, 72 h: until 06-03 10:05
    tr.template(NIGERIA, "2023-06-01 12:00", Marketing);
    tr.reply(NIGERIA, "2023-06-02 12:00");
    tr.template(NIGERIA, "2023-06-03 10:04", Utility);
    tr.template(NIGERIA, "2023-06-03 10:05", Marketing); // it has ended: opens
    let out = tr.bill();
    let got: Vec<_> = records(&out)
        .into_iter()
        .map(|c| (c.era, c.category, c.start, c.end, c.messages, c.free))
        .collect();
    assert_eq!(
        got,
        [
            (
                "cbp-2022",
                "free_entry_point",
                t("2023-05-31 10:05"),
                t("2023-06-03 10:05"),
                4,
                Free::FreeEntryPoint
            ),
            (
                "cbp-2023",
                "marketing",
                t("2023-06-03 10:05"),
                t("2023-06-04 10:05"),
                1,
                Free::None
            ),
        ]
    );
    // Nigeria marketing, 2023-06-01 card: 0.0516.
    assert_eq!(invoice_of(&out, W, "2023-06").meta_total, dec("0.0516"));
}

#[test]
fn b7a_a_waba_month_that_mixes_eras_has_one_free_tier_counter() {
    // cbp-2023 from 2023-06-15: June has conversations of both eras.
    let mut tr = Traffic::new().timeline(&[
        ("cbp-2022", "2022-02-01"),
        ("cbp-2023", "2023-06-15"),
        ("pmp-2025", "2025-07-01"),
        ("pmp-2026", "2026-10-01"),
    ]);
    tr.config.free_tier_per_month = 3;
    tr.template(&brazil_number(1), "2023-06-05 09:00", Marketing); // cbp-2022 BI
    tr.user_writes(&brazil_number(2), "2023-06-06 09:00");
    tr.reply(&brazil_number(2), "2023-06-06 09:01"); // cbp-2022 UI
    tr.template(&brazil_number(3), "2023-06-16 09:00", Marketing); // never free tier
    tr.reply(&brazil_number(4), "2023-06-17 09:00"); // third slot
    tr.reply(&brazil_number(5), "2023-06-18 09:00"); // none left
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [
            p("cbp-2022", "business_initiated", Free::FreeTier, "0.0500"),
            p("cbp-2022", "user_initiated", Free::FreeTier, "0.0300"),
            p("cbp-2023", "marketing", Free::None, "0.0625"),
            p("cbp-2023", "service", Free::FreeTier, "0.0300"),
            p("cbp-2023", "service", Free::None, "0.0300"),
        ]
    );
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [5, 3, 0, 0, 2]);
    assert_eq!(
        lines(inv),
        [
            line(
                "cbp-2022",
                "Brazil",
                "business_initiated",
                None,
                "0.0500",
                [1, 1, 0, 0, 0],
                "0"
            ),
            line(
                "cbp-2022",
                "Brazil",
                "user_initiated",
                None,
                "0.0300",
                [1, 1, 0, 0, 0],
                "0"
            ),
            line(
                "cbp-2023",
                "Brazil",
                "marketing",
                None,
                "0.0625",
                [1, 0, 0, 0, 1],
                "0.0625"
            ),
            line(
                "cbp-2023",
                "Brazil",
                "service",
                None,
                "0.0300",
                [2, 1, 0, 0, 1],
                "0.0300"
            ),
        ]
    );
    assert_eq!(inv.meta_total, dec("0.0925"));
}

// ---- B8: price ----

#[test]
fn b8_a_conversation_costs_its_category_rate_from_the_card_in_force_at_its_local_start() {
    // Brazil utility: 0.0350 on the 2024-07-01 card, 0.0080 on the 2024-08-01
    // card; United Kingdom utility 0.0220 on the 2024-08-01 card.
    let mut tr = traffic_without_free_tier().timezone(W, "America/Sao_Paulo");
    let before = tr.template(&brazil_number(1), "2024-08-01 02:30", Utility); // Jul 31 local
    let after = tr.template(&brazil_number(2), "2024-08-01 03:30", Utility);
    let uk = tr.template(UK, "2024-08-01 04:00", Utility);
    // A message joining after the change does not reprice the conversation.
    tr.template(&brazil_number(1), "2024-08-01 12:00", Utility);
    let out = tr.bill();
    let got = |id: &str| {
        let c = record(&out, id);
        (c.market.clone(), c.unit_price.clone(), c.messages)
    };
    assert_eq!(got(&before), ("Brazil".to_owned(), "0.0350".to_owned(), 2));
    assert_eq!(got(&after), ("Brazil".to_owned(), "0.0080".to_owned(), 1));
    assert_eq!(
        got(&uk),
        ("United Kingdom".to_owned(), "0.0220".to_owned(), 1)
    );
    assert_eq!(invoice_of(&out, W, "2024-07").meta_total, dec("0.0350"));
    assert_eq!(invoice_of(&out, W, "2024-08").meta_total, dec("0.0300"));
}
