//! The worked examples of `meta-pricing.md` section 3 (CBP v2, 2023–2025) and
//! the sentences of R25.1 (section 4, per-message pricing), each with the
//! price from the shipped cards; and the era switches at WABA-local midnight.
//!
//! "0h" in the reference is 2023-07-03 09:00 UTC (a Monday) unless said
//! otherwise. Scenarios that show a charge start with the free tier at zero,
//! as "charge" in the reference is the list rate outside the free tier.
//! Cards used (all `data/rates`): `meta-cbp-2022_USD_2022-02-01.csv`,
//! `meta-cbp-2023_USD_2023-06-01.csv`, `…_2024-10-01`, `…_2024-11-01`,
//! `…_2025-04-01`, `meta-pmp_USD_2025-07-01.csv`, `…_2026-07-01`, `…_2026-10-01`.

mod common;

use common::*;
use wabill_engine::billing::Free;
use wabill_engine::event::Status;
use wabill_engine::event::TemplateCategory::{Authentication, Marketing, Utility};

/// (era, category, start, end, messages) of every record, in `records` order.
fn timeline_of(
    out: &Outcome,
) -> Vec<(
    &'static str,
    &'static str,
    wabill_engine::Instant,
    wabill_engine::Instant,
    u32,
)> {
    records(out)
        .into_iter()
        .map(|c| (c.era, c.category, c.start, c.end, c.messages))
        .collect()
}

// ---- Section 3: CBP v2 ----

#[test]
fn r23_1_cbp2023_applies_from_june_1_2023_at_midnight_waba_time() {
    // São Paulo is UTC−3: 2023-06-01 02:30 UTC is still May 31 locally.
    // cbp-2022 card, Brazil business_initiated 0.0500; cbp-2023 2023-06-01
    // card, Brazil marketing 0.0625.
    let mut tr = traffic_without_free_tier().timezone(W, "America/Sao_Paulo");
    let before = tr.template(&brazil_number(1), "2023-06-01 02:30", Marketing);
    let after = tr.template(&brazil_number(2), "2023-06-01 03:30", Marketing);
    let midnight = tr.template(&brazil_number(3), "2023-06-01 03:00", Marketing);
    let out = tr.bill();
    let got = |id: &str| {
        let c = record(&out, id);
        (c.era, c.category, c.unit_price.clone())
    };
    assert_eq!(
        got(&before),
        ("cbp-2022", "business_initiated", "0.0500".to_owned())
    );
    assert_eq!(got(&after), ("cbp-2023", "marketing", "0.0625".to_owned()));
    assert_eq!(
        got(&midnight),
        ("cbp-2023", "marketing", "0.0625".to_owned())
    );
    assert_eq!(invoice_of(&out, W, "2023-05").meta_total, dec("0.0500"));
    assert_eq!(invoice_of(&out, W, "2023-06").meta_total, dec("0.1250"));
}

#[test]
fn r23_3_templates_open_one_conversation_per_category() {
    // 0h marketing opens Marketing; 4h utility opens Utility; 10h utility
    // opens nothing new. United Kingdom: marketing 0.0705 + utility 0.0398.
    let mut tr = traffic_without_free_tier();
    tr.template(UK, "2023-07-03 09:00", Marketing);
    tr.template(UK, "2023-07-03 13:00", Utility);
    tr.template(UK, "2023-07-03 19:00", Utility);
    let out = tr.bill();
    assert_eq!(
        timeline_of(&out),
        [
            (
                "cbp-2023",
                "marketing",
                t("2023-07-03 09:00"),
                t("2023-07-04 09:00"),
                1
            ),
            (
                "cbp-2023",
                "utility",
                t("2023-07-03 13:00"),
                t("2023-07-04 13:00"),
                2
            ),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.1103"));
}

#[test]
fn r23_4_a_service_conversation_opens_only_when_no_conversation_is_open() {
    // 0h marketing template (Marketing opens); 4h the user writes (window
    // opens); 5h free-form (nothing new: Marketing is open); 24h Marketing
    // expires; 25h free-form opens Service; 26h free-form, nothing new.
    // United Kingdom: marketing 0.0705 + service 0.0388.
    let mut tr = traffic_without_free_tier();
    tr.template(UK, "2023-07-03 09:00", Marketing);
    tr.user_writes(UK, "2023-07-03 13:00");
    tr.reply(UK, "2023-07-03 14:00");
    tr.reply(UK, "2023-07-04 10:00");
    tr.reply(UK, "2023-07-04 11:00");
    let out = tr.bill();
    assert_eq!(
        timeline_of(&out),
        [
            (
                "cbp-2023",
                "marketing",
                t("2023-07-03 09:00"),
                t("2023-07-04 09:00"),
                2
            ),
            (
                "cbp-2023",
                "service",
                t("2023-07-04 10:00"),
                t("2023-07-05 10:00"),
                2
            ),
        ]
    );
    assert_eq!(
        priced(&out),
        [
            p("cbp-2023", "marketing", Free::None, "0.0705"),
            p("cbp-2023", "service", Free::None, "0.0388"),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.1093"));
}

#[test]
fn r23_5a_a_template_of_another_category_opens_a_second_open_conversation() {
    // United Kingdom: marketing 0.0705 + utility 0.0398.
    let mut tr = traffic_without_free_tier();
    tr.template(UK, "2023-07-03 09:00", Marketing);
    tr.template(UK, "2023-07-03 10:00", Utility);
    let out = tr.bill();
    let convs = records(&out);
    assert_eq!(out.categories().len(), 2);
    assert_eq!(
        (convs[0].category, convs[1].category),
        ("marketing", "utility")
    );
    // Both are open at 10:00.
    assert!(
        convs
            .iter()
            .all(|c| c.start <= t("2023-07-03 10:00") && t("2023-07-03 10:00") < c.end)
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.1103"));
}

#[test]
fn r23_5b_any_template_opens_a_conversation_while_a_service_conversation_is_open() {
    // United Kingdom: service 0.0388 + authentication 0.0358 + marketing 0.0705.
    let mut tr = traffic_without_free_tier();
    tr.user_writes(UK, "2023-07-03 09:00");
    tr.reply(UK, "2023-07-03 09:05");
    tr.template(UK, "2023-07-03 10:00", Authentication);
    tr.template(UK, "2023-07-03 11:00", Marketing);
    let out = tr.bill();
    assert_eq!(
        timeline_of(&out),
        [
            (
                "cbp-2023",
                "service",
                t("2023-07-03 09:05"),
                t("2023-07-04 09:05"),
                1
            ),
            (
                "cbp-2023",
                "authentication",
                t("2023-07-03 10:00"),
                t("2023-07-04 10:00"),
                1
            ),
            (
                "cbp-2023",
                "marketing",
                t("2023-07-03 11:00"),
                t("2023-07-04 11:00"),
                1
            ),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.1451"));
}

#[test]
fn r23_6_ctwa_at_10_template_reply_at_22_opens_a_free_entry_point_conversation_for_72h() {
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 10:00");
    tr.template(NIGERIA, "2023-07-03 22:00", Marketing);
    // Free-form inside the (independent) window, until 10:00 next day.
    tr.reply(NIGERIA, "2023-07-04 09:00");
    // Templates are free too while it is open.
    tr.template(NIGERIA, "2023-07-05 12:00", Utility);
    let out = tr.bill();
    assert_eq!(
        timeline_of(&out),
        [(
            "cbp-2023",
            "free_entry_point",
            t("2023-07-03 22:00"),
            t("2023-07-06 22:00"),
            3
        )]
    );
    assert_eq!(
        priced(&out),
        [p("cbp-2023", "free_entry_point", Free::FreeEntryPoint, "0")]
    );
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [1, 0, 1, 0, 0]);
    assert_eq!(inv.meta_total, dec("0"));
}

#[test]
fn r23_6_no_response_within_24h_means_a_template_opens_a_paid_conversation() {
    // Nigeria utility, 2023-06-01 card: 0.0319.
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 10:00");
    tr.template(NIGERIA, "2023-07-04 10:00", Utility);
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [p("cbp-2023", "utility", Free::None, "0.0319")]
    );
}

#[test]
fn r23_6_a_free_entry_point_conversation_closes_all_others_and_blocks_new_ones_until_it_expires() {
    // Nigeria, 2023-06-01 card: marketing 0.0516, utility 0.0319.
    let mut tr = traffic_without_free_tier();
    tr.template(NIGERIA, "2023-07-03 08:00", Marketing);
    tr.template(NIGERIA, "2023-07-03 08:30", Utility);
    tr.user_writes_from_ad(NIGERIA, "2023-07-03 09:00");
    tr.reply(NIGERIA, "2023-07-03 09:30");
    tr.template(NIGERIA, "2023-07-03 12:00", Utility); // no new conversation
    tr.template(NIGERIA, "2023-07-06 09:29", Marketing); // still none
    tr.template(NIGERIA, "2023-07-06 09:30", Utility); // it has expired
    let out = tr.bill();
    assert_eq!(
        timeline_of(&out),
        [
            (
                "cbp-2023",
                "marketing",
                t("2023-07-03 08:00"),
                t("2023-07-03 09:30"),
                1
            ),
            (
                "cbp-2023",
                "utility",
                t("2023-07-03 08:30"),
                t("2023-07-03 09:30"),
                1
            ),
            (
                "cbp-2023",
                "free_entry_point",
                t("2023-07-03 09:30"),
                t("2023-07-06 09:30"),
                3
            ),
            (
                "cbp-2023",
                "utility",
                t("2023-07-06 09:30"),
                t("2023-07-07 09:30"),
                1
            ),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.1154"));
}

#[test]
fn r23_8_free_service_conversations_are_shared_by_all_phones_of_the_waba() {
    let mut tr = Traffic::new();
    tr.config.free_tier_per_month = 2;
    tr.template_on(W, "P1", &brazil_number(9), "2023-07-03 08:00", Marketing);
    tr.reply_on(W, "P1", &brazil_number(1), "2023-07-03 09:00");
    tr.reply_on(W, "P2", &brazil_number(2), "2023-07-03 10:00");
    tr.reply_on(W, "P1", &brazil_number(3), "2023-07-03 11:00");
    let out = tr.bill();
    // Brazil, 2023-06-01 card: marketing 0.0625, service 0.0300.
    assert_eq!(
        priced(&out),
        [
            p("cbp-2023", "marketing", Free::None, "0.0625"),
            p("cbp-2023", "service", Free::FreeTier, "0.0300"),
            p("cbp-2023", "service", Free::FreeTier, "0.0300"),
            p("cbp-2023", "service", Free::None, "0.0300"),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.0925"));
}

#[test]
fn r23_9_service_conversations_are_free_and_unlimited_from_november_1_2024() {
    // United Kingdom service: 0.0388 on the 2024-10-01 card, 0.0000 on the 2024-11-01 card.
    let mut tr = traffic_without_free_tier();
    tr.reply(UK, "2024-10-31 23:00");
    tr.reply(GERMANY, "2024-11-01 00:00");
    for n in 0..3 {
        tr.reply(&brazil_number(n), "2024-11-02 00:00");
    }
    let out = tr.bill();
    assert_eq!(
        priced(&out)[..2],
        [
            p("cbp-2023", "service", Free::None, "0.0388"),
            // D2: a category a rule makes free shows unit price 0.
            p("cbp-2023", "service", Free::FreeCustomerService, "0"),
        ]
    );
    assert_eq!(
        counts(&invoice_of(&out, W, "2024-11").conversations),
        [4, 0, 0, 4, 0]
    );
    assert_eq!(invoice_of(&out, W, "2024-11").meta_total, dec("0"));
}

// ---- Section 4: R25.1, sentence by sentence ----

#[test]
fn r25_1_we_only_charge_when_a_template_message_is_delivered() {
    // Brazil marketing, pmp 2025-07-01 card: 0.0625.
    let mut tr = Traffic::new();
    let failed = tr.sent(BRAZIL, "2025-07-07 09:00", Some(Marketing));
    tr.status(BRAZIL, &failed, "2025-07-07 09:00:01", Status::Sent);
    tr.status(BRAZIL, &failed, "2025-07-07 09:01", Status::Failed);
    let only_sent = tr.sent(BRAZIL, "2025-07-07 10:00", Some(Marketing));
    tr.status(BRAZIL, &only_sent, "2025-07-07 10:00:01", Status::Sent);
    let out = tr.bill();
    // Billed nothing, and not because an event was turned away.
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert!(out.conversations.is_empty());
    assert!(out.invoices.is_empty());

    // Read implies delivered: charged at the read time.
    let read = tr.sent(BRAZIL, "2025-07-07 11:00", Some(Marketing));
    tr.status(BRAZIL, &read, "2025-07-07 11:05", Status::Read);
    let out = tr.bill();
    let c = record(&out, &read);
    assert_eq!(
        (c.era, c.category, c.free, c.unit_price.as_str(), c.start),
        (
            "pmp-2025",
            "marketing",
            Free::None,
            "0.0625",
            t("2025-07-07 11:05")
        )
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.0625"));
}

#[test]
fn r25_1_rates_vary_by_template_category_and_the_recipient_calling_code() {
    // pmp 2025-07-01 card: Brazil marketing 0.0625, utility 0.0068,
    // authentication 0.0068; United Kingdom marketing 0.0529, utility 0.0220;
    // Germany marketing 0.1365; North America (+1 212) marketing 0.0250;
    // India marketing 0.0107.
    let mut tr = Traffic::new();
    let sends = [
        (BRAZIL, Marketing, "Brazil", "0.0625"),
        (BRAZIL, Utility, "Brazil", "0.0068"),
        (BRAZIL, Authentication, "Brazil", "0.0068"),
        (UK, Marketing, "United Kingdom", "0.0529"),
        (UK, Utility, "United Kingdom", "0.0220"),
        (GERMANY, Marketing, "Germany", "0.1365"),
        (US, Marketing, "North America", "0.0250"),
        (INDIA, Marketing, "India", "0.0107"),
    ];
    let ids: Vec<String> = sends
        .iter()
        .enumerate()
        .map(|(n, (user, category, _, _))| {
            tr.template(user, &format!("2025-07-07 09:{n:02}"), *category)
        })
        .collect();
    let out = tr.bill();
    for (id, (_, _, market, unit)) in ids.iter().zip(sends) {
        let c = record(&out, id);
        assert_eq!((c.market.as_str(), c.unit_price.as_str()), (market, unit));
        assert_eq!(c.free, Free::None);
    }
    assert_eq!(out.only_invoice().meta_total, dec("0.3232"));
}

#[test]
fn r25_1_all_non_template_messages_are_free() {
    let mut tr = Traffic::new();
    tr.user_writes(GERMANY, "2025-07-07 09:00");
    for minute in 1..=5 {
        tr.reply(GERMANY, &format!("2025-07-07 09:0{minute}"));
    }
    let out = tr.bill();
    assert!(
        out.conversations
            .iter()
            .all(|c| c.category == "service" && c.free == Free::FreeCustomerService)
    );
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.messages), [5, 0, 0, 5, 0]);
    assert_eq!(inv.meta_total, dec("0"));
}

#[test]
fn r25_1_non_templates_need_an_open_window_but_billing_does_not_charge_one_sent_outside() {
    // "These can only be sent within an open customer service window": Meta
    // refuses them otherwise; if one is delivered anyway, C1 keeps it free.
    let mut tr = Traffic::new();
    tr.reply(GERMANY, "2025-07-07 09:00");
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [p("pmp-2025", "service", Free::FreeCustomerService, "0")]
    );
}

#[test]
fn r25_1_utility_templates_delivered_within_an_open_window_are_free() {
    // Germany utility, pmp 2025-07-01 card: 0.0550.
    let mut tr = Traffic::new();
    tr.user_writes(GERMANY, "2025-07-07 09:00");
    tr.template(GERMANY, "2025-07-07 09:30", Utility);
    tr.template(GERMANY, "2025-07-08 09:00", Utility);
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [
            p("pmp-2025", "utility", Free::FreeCustomerService, "0.0550"),
            p("pmp-2025", "utility", Free::None, "0.0550"),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.0550"));
}

#[test]
fn r25_1_lower_rates_for_utility_and_authentication_unlock_with_volume() {
    // A card with small bands (of the shipped cards only `…_2026-07-01`,
    // United Arab Emirates utility, and `…_2026-10-01`, Rest of Africa
    // utility, have bands, and theirs start at 100,001 messages): Brazil utility
    // 0.0068 for messages 0–2 of the month, 0.0050 from the third;
    // authentication 0.0068, then 0.0040 from the second.
    let card = "market,category,price,tier_from,tier_to
Brazil,marketing,0.0625,,
Brazil,utility,0.0068,,
Brazil,utility,0.0068,0,2
Brazil,utility,0.0050,3,
Brazil,authentication,0.0068,,
Brazil,authentication,0.0068,0,1
Brazil,authentication,0.0040,2,
";
    let mut tr = Traffic::new();
    add_pmp_card(&mut tr, jiff::civil::Date::constant(2025, 8, 1), card);
    for n in 0..4 {
        tr.template(
            &brazil_number(n),
            &format!("2025-08-0{} 09:00", n + 1),
            Utility,
        );
        tr.template(
            &brazil_number(n),
            &format!("2025-08-0{} 10:00", n + 1),
            Authentication,
        );
        tr.template(
            &brazil_number(n),
            &format!("2025-08-0{} 11:00", n + 1),
            Marketing,
        );
    }
    let out = tr.bill();
    let units = |category: &str| -> Vec<String> {
        records(&out)
            .into_iter()
            .filter(|c| c.category == category)
            .map(|c| c.unit_price.clone())
            .collect()
    };
    assert_eq!(units("utility"), ["0.0068", "0.0068", "0.0050", "0.0050"]);
    assert_eq!(
        units("authentication"),
        ["0.0068", "0.0040", "0.0040", "0.0040"]
    );
    assert_eq!(units("marketing"), ["0.0625"; 4]);
    // 0.0236 + 0.0188 + 0.2500.
    assert_eq!(out.only_invoice().meta_total, dec("0.2924"));
}

#[test]
fn r25_1_all_messages_are_free_for_72h_in_an_open_free_entry_point_window() {
    // Nigeria marketing, pmp 2025-07-01 card: 0.0516.
    let mut tr = Traffic::new();
    tr.user_writes_from_ad(NIGERIA, "2025-07-07 10:00");
    tr.reply(NIGERIA, "2025-07-07 10:05");
    tr.template(NIGERIA, "2025-07-08 12:00", Marketing);
    tr.template(NIGERIA, "2025-07-09 12:00", Utility);
    tr.template(NIGERIA, "2025-07-10 10:04", Authentication);
    tr.template(NIGERIA, "2025-07-10 10:05", Marketing);
    let out = tr.bill();
    let frees: Vec<_> = records(&out)
        .into_iter()
        .map(|c| (c.category, c.free))
        .collect();
    assert_eq!(
        frees,
        [
            ("service", Free::FreeEntryPoint),
            ("marketing", Free::FreeEntryPoint),
            ("utility", Free::FreeEntryPoint),
            ("authentication", Free::FreeEntryPoint),
            ("marketing", Free::None),
        ]
    );
    assert_eq!(out.only_invoice().meta_total, dec("0.0516"));
}

// ---- Era switches at WABA-local midnight ----

#[test]
fn era_switch_2025_07_01_at_midnight_in_sao_paulo() {
    // Brazil utility: cbp-2023 2025-04-01 card 0.0080; pmp 2025-07-01 card 0.0068.
    let mut tr = traffic_without_free_tier().timezone(W, "America/Sao_Paulo");
    let before = tr.template(&brazil_number(1), "2025-07-01 02:30", Utility);
    let after = tr.template(&brazil_number(2), "2025-07-01 03:30", Utility);
    let midnight = tr.template(&brazil_number(3), "2025-07-01 03:00", Utility);
    let out = tr.bill();
    assert_eq!(record(&out, &midnight).era, "pmp-2025");
    let before = record(&out, &before);
    assert_eq!(
        (
            before.era,
            before.category,
            before.unit_price.as_str(),
            before.end
        ),
        ("cbp-2023", "utility", "0.0080", t("2025-07-02 02:30"))
    );
    let after = record(&out, &after);
    assert_eq!(
        (
            after.era,
            after.category,
            after.unit_price.as_str(),
            after.end
        ),
        ("pmp-2025", "utility", "0.0068", t("2025-07-01 03:30"))
    );
    let june = invoice_of(&out, W, "2025-06");
    assert_eq!(counts(&june.conversations), [1, 0, 0, 0, 1]);
    assert_eq!(counts(&june.messages), [0, 0, 0, 0, 0]);
    let july = invoice_of(&out, W, "2025-07");
    assert_eq!(counts(&july.conversations), [0, 0, 0, 0, 0]);
    assert_eq!(counts(&july.messages), [2, 0, 0, 0, 2]);
}

#[test]
fn era_switch_2026_10_01_at_midnight_in_sao_paulo() {
    // Brazil service: free under pmp-2025; 0.0068 on the 2026-10-01 card.
    // Mexico marketing: 0.0305 on the 2026-07-01 card, 0.0397 on the 2026-10-01 card.
    let mut tr = Traffic::new().timezone(W, "America/Sao_Paulo");
    tr.config.pmp_2026_free_service_per_phone = 0;
    let service_before = tr.reply(&brazil_number(1), "2026-10-01 02:30");
    let service_after = tr.reply(&brazil_number(2), "2026-10-01 03:30");
    let service_midnight = tr.reply(&brazil_number(3), "2026-10-01 03:00");
    let marketing_before = tr.template(MEXICO, "2026-10-01 02:31", Marketing);
    let marketing_after = tr.template(MEXICO, "2026-10-01 03:31", Marketing);
    let out = tr.bill();
    let got = |id: &str| {
        let c = record(&out, id);
        (c.era, c.category, c.free, c.unit_price.clone())
    };
    assert_eq!(
        got(&service_before),
        p("pmp-2025", "service", Free::FreeCustomerService, "0")
    );
    assert_eq!(
        got(&service_after),
        p("pmp-2026", "service", Free::None, "0.0068")
    );
    assert_eq!(
        got(&marketing_before),
        p("pmp-2025", "marketing", Free::None, "0.0305")
    );
    assert_eq!(
        got(&marketing_after),
        p("pmp-2026", "marketing", Free::None, "0.0397")
    );
    assert_eq!(invoice_of(&out, W, "2026-09").meta_total, dec("0.0305"));
    assert_eq!(
        got(&service_midnight),
        p("pmp-2026", "service", Free::None, "0.0068")
    );
    assert_eq!(invoice_of(&out, W, "2026-10").meta_total, dec("0.0533"));
}

#[test]
fn era_switch_2023_06_01_keeps_a_pair_conversation_in_its_own_era() {
    // One pair across the switch in São Paulo: the cbp-2022 conversation
    // opened on May 31 local takes the June 1 free-form message (B7a).
    let mut tr = traffic_without_free_tier().timezone(W, "America/Sao_Paulo");
    tr.template(BRAZIL, "2023-06-01 02:30", Marketing); // May 31 local: cbp-2022
    tr.reply(BRAZIL, "2023-06-01 03:30"); // June 1 local: joins it
    tr.template(BRAZIL, "2023-06-01 03:40", Marketing); // opens marketing
    let out = tr.bill();
    assert_eq!(
        timeline_of(&out),
        [
            (
                "cbp-2022",
                "business_initiated",
                t("2023-06-01 02:30"),
                t("2023-06-02 02:30"),
                2
            ),
            (
                "cbp-2023",
                "marketing",
                t("2023-06-01 03:40"),
                t("2023-06-02 03:40"),
                1
            ),
        ]
    );
}
