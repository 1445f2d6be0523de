//! Rules sections 4 (`pmp-2025`) and 5 (`pmp-2026`) of `rules.md`: per-message
//! pricing, one or more tests per rule, each named after the rule it proves.
//!
//! Prices come from the shipped per-message cards in `data/rates`
//! (`meta-pmp_USD_2025-07-01.csv`, `…_2025-10-01`, `…_2026-01-01`,
//! `…_2026-07-01`, `…_2026-10-01`); volume tiers (C4) from small cards built
//! in the tests (of the shipped cards only `…_2026-07-01`, United Arab
//! Emirates utility, and `…_2026-10-01`, Rest of Africa utility, have bands,
//! and theirs start at 100,001 messages).

mod common;

use common::*;
use jiff::civil::Date;
use wabill_engine::billing::Free;
use wabill_engine::event::TemplateCategory::{Authentication, Marketing, Utility};

type Tier = Option<(u64, Option<u64>)>;

/// A card in force from 2025-08-01 (until the shipped 2025-10-01 card) with
/// bands for Brazil utility (0–2, 3–5, 6+) and authentication (0–1, 2+), and
/// none for the United Kingdom.
const TIERS: &str = "market,category,price,tier_from,tier_to
Brazil,marketing,0.0625,,
Brazil,utility,0.0068,,
Brazil,utility,0.0060,0,2
Brazil,utility,0.0050,3,5
Brazil,utility,0.0040,6,
Brazil,authentication,0.0068,,
Brazil,authentication,0.0030,0,1
Brazil,authentication,0.0020,2,
United Kingdom,marketing,0.0529,,
United Kingdom,utility,0.0220,,
United Kingdom,authentication,0.0220,,
";

fn with_tiers(mut tr: Traffic) -> Traffic {
    add_pmp_card(&mut tr, Date::constant(2025, 8, 1), TIERS);
    tr
}

/// (free, unit price, tier) of the record of message `id`.
fn rated(out: &Outcome, id: &str) -> (Free, String, Tier) {
    let c = record(out, id);
    (c.free, c.unit_price.clone(), c.tier)
}

fn paid(unit: &str, tier: Tier) -> (Free, String, Tier) {
    (Free::None, unit.to_owned(), tier)
}

const B1: Tier = Some((0, Some(2)));
const B2: Tier = Some((3, Some(5)));
const B3: Tier = Some((6, None));

// ---- C1: every delivered business message is a message of the invoice ----

#[test]
fn c1_every_delivered_business_message_is_one_record_at_its_delivery() {
    // pmp 2025-07-01 card, Brazil: marketing 0.0625, authentication 0.0068.
    let mut tr = Traffic::new();
    tr.user_writes(BRAZIL, "2025-07-07 10:00");
    let r1 = tr.reply(BRAZIL, "2025-07-07 10:01");
    let r2 = tr.reply(BRAZIL, "2025-07-07 10:02");
    let m1 = tr.template(BRAZIL, "2025-07-07 11:00", Marketing);
    let m2 = tr.template(BRAZIL, "2025-07-07 11:30", Marketing);
    let a1 = tr.template(BRAZIL, "2025-07-07 12:00", Authentication);
    tr.sent(BRAZIL, "2025-07-07 13:00", Some(Marketing)); // never delivered
    let out = tr.bill();
    assert_eq!(out.errors, Vec::<String>::new());
    let got: Vec<_> = records(&out)
        .into_iter()
        .map(|c| {
            (
                c.opened_by.as_str(),
                c.era,
                c.category,
                c.start,
                c.end,
                c.messages,
                c.free,
                c.unit_price.as_str(),
                c.tier,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                r1.as_str(),
                "pmp-2025",
                "service",
                t("2025-07-07 10:01"),
                t("2025-07-07 10:01"),
                1,
                Free::FreeCustomerService,
                "0",
                None
            ),
            (
                r2.as_str(),
                "pmp-2025",
                "service",
                t("2025-07-07 10:02"),
                t("2025-07-07 10:02"),
                1,
                Free::FreeCustomerService,
                "0",
                None
            ),
            (
                m1.as_str(),
                "pmp-2025",
                "marketing",
                t("2025-07-07 11:00"),
                t("2025-07-07 11:00"),
                1,
                Free::None,
                "0.0625",
                None
            ),
            (
                m2.as_str(),
                "pmp-2025",
                "marketing",
                t("2025-07-07 11:30"),
                t("2025-07-07 11:30"),
                1,
                Free::None,
                "0.0625",
                None
            ),
            (
                a1.as_str(),
                "pmp-2025",
                "authentication",
                t("2025-07-07 12:00"),
                t("2025-07-07 12:00"),
                1,
                Free::None,
                "0.0068",
                None
            ),
        ]
    );
}

#[test]
fn c1_the_invoice_counts_messages_and_no_conversations() {
    let mut tr = Traffic::new();
    tr.user_writes(BRAZIL, "2025-07-07 10:00");
    tr.reply(BRAZIL, "2025-07-07 10:01");
    tr.reply(BRAZIL, "2025-07-07 10:02");
    tr.template(BRAZIL, "2025-07-07 11:00", Marketing);
    tr.template(BRAZIL, "2025-07-07 11:30", Marketing);
    tr.template(BRAZIL, "2025-07-07 12:00", Authentication);
    let out = tr.bill();
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [0, 0, 0, 0, 0]);
    assert_eq!(counts(&inv.messages), [5, 0, 0, 2, 3]);
    assert_eq!(
        lines(inv),
        [
            line(
                "pmp-2025",
                "Brazil",
                "authentication",
                None,
                "0.0068",
                [1, 0, 0, 0, 1],
                "0.0068"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "marketing",
                None,
                "0.0625",
                [2, 0, 0, 0, 2],
                "0.1250"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "service",
                None,
                "0",
                [2, 0, 0, 2, 0],
                "0"
            ),
        ]
    );
    assert_eq!(inv.meta_total, dec("0.1318"));
}

#[test]
fn c1_non_template_messages_are_free_even_outside_the_customer_service_window() {
    let mut tr = Traffic::new();
    tr.reply(UK, "2025-07-07 10:00");
    // F3: delivered without an outbound record, so a non-template message.
    tr.status(
        UK,
        "wamid.no-record",
        "2025-07-07 11:00",
        wabill_engine::event::Status::Delivered,
    );
    let out = tr.bill();
    assert_eq!(
        priced(&out),
        [
            p("pmp-2025", "service", Free::FreeCustomerService, "0"),
            p("pmp-2025", "service", Free::FreeCustomerService, "0"),
        ]
    );
    assert_eq!(counts(&out.only_invoice().messages), [2, 0, 0, 2, 0]);
    assert_eq!(out.only_invoice().meta_total, dec("0"));
}

#[test]
fn c1_the_card_in_force_at_the_local_delivery_prices_the_message() {
    // Mexico marketing: 0.0436 on the 2025-07-01 card, 0.0305 on the 2025-10-01 card.
    let mut tr = Traffic::new().timezone(W, "America/Sao_Paulo");
    let before = tr.template(MEXICO, "2025-10-01 02:30", Marketing); // Sep 30 local
    let after = tr.template(MEXICO, "2025-10-01 03:30", Marketing);
    let out = tr.bill();
    assert_eq!(rated(&out, &before), paid("0.0436", None));
    assert_eq!(rated(&out, &after), paid("0.0305", None));
    assert_eq!(record(&out, &after).market, "Mexico");
    assert_eq!(invoice_of(&out, W, "2025-09").meta_total, dec("0.0436"));
    assert_eq!(invoice_of(&out, W, "2025-10").meta_total, dec("0.0305"));
}

// ---- C2: utility inside the customer service window ----

#[test]
fn c2_a_utility_template_inside_the_customer_service_window_is_free() {
    // pmp 2025-07-01 card, United Kingdom: marketing 0.0529, utility 0.0220,
    // authentication 0.0220.
    let mut tr = Traffic::new();
    tr.user_writes(UK, "2025-07-07 10:00");
    let inside = tr.template(UK, "2025-07-07 10:30", Utility);
    let marketing = tr.template(UK, "2025-07-07 10:45", Marketing);
    let auth = tr.template(UK, "2025-07-07 11:00", Authentication);
    tr.reply(UK, "2025-07-08 09:00"); // business messages never extend the window
    let last = tr.template(UK, "2025-07-08 09:59:59", Utility);
    let outside = tr.template(UK, "2025-07-08 10:00", Utility);
    let out = tr.bill();
    let fcs = |unit: &str| (Free::FreeCustomerService, unit.to_owned(), None);
    assert_eq!(rated(&out, &inside), fcs("0.0220"));
    assert_eq!(rated(&out, &last), fcs("0.0220"));
    assert_eq!(rated(&out, &outside), paid("0.0220", None));
    assert_eq!(rated(&out, &marketing), paid("0.0529", None));
    assert_eq!(rated(&out, &auth), paid("0.0220", None));
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.messages), [6, 0, 0, 3, 3]);
    assert_eq!(
        lines(inv),
        [
            line(
                "pmp-2025",
                "United Kingdom",
                "authentication",
                None,
                "0.0220",
                [1, 0, 0, 0, 1],
                "0.0220"
            ),
            line(
                "pmp-2025",
                "United Kingdom",
                "marketing",
                None,
                "0.0529",
                [1, 0, 0, 0, 1],
                "0.0529"
            ),
            line(
                "pmp-2025",
                "United Kingdom",
                "service",
                None,
                "0",
                [1, 0, 0, 1, 0],
                "0"
            ),
            line(
                "pmp-2025",
                "United Kingdom",
                "utility",
                None,
                "0.0220",
                [3, 0, 0, 2, 1],
                "0.0220"
            ),
        ]
    );
    assert_eq!(inv.meta_total, dec("0.0969"));
}

// ---- C3: free entry point window ----

#[test]
fn c3_every_message_inside_the_72h_free_entry_point_window_is_free_and_keeps_its_category() {
    // pmp 2025-07-01 card, Nigeria: marketing 0.0516.
    let mut tr = Traffic::new();
    tr.user_writes_from_ad(NIGERIA, "2025-07-07 10:00");
    let opener = tr.template(NIGERIA, "2025-07-07 12:00", Marketing);
    let free_form = tr.reply(NIGERIA, "2025-07-07 12:05");
    let utility = tr.template(NIGERIA, "2025-07-09 08:00", Utility); // window closed
    let auth = tr.template(NIGERIA, "2025-07-10 11:59:59", Authentication);
    let after = tr.template(NIGERIA, "2025-07-10 12:00", Marketing);
    let out = tr.bill();
    let got = |id: &str| {
        let c = record(&out, id);
        (c.era, c.category, c.free, c.tier)
    };
    assert_eq!(
        got(&opener),
        ("pmp-2025", "marketing", Free::FreeEntryPoint, None)
    );
    assert_eq!(
        got(&free_form),
        ("pmp-2025", "service", Free::FreeEntryPoint, None)
    );
    assert_eq!(
        got(&utility),
        ("pmp-2025", "utility", Free::FreeEntryPoint, None)
    );
    assert_eq!(
        got(&auth),
        ("pmp-2025", "authentication", Free::FreeEntryPoint, None)
    );
    assert_eq!(rated(&out, &after), paid("0.0516", None));
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.messages), [5, 0, 4, 0, 1]);
    assert_eq!(counts(&inv.conversations), [0, 0, 0, 0, 0]);
    assert_eq!(inv.meta_total, dec("0.0516"));
}

#[test]
fn c3_the_window_opens_only_within_24h_of_an_unused_entry_point() {
    let mut tr = Traffic::new();
    tr.user_writes_from_ad(NIGERIA, "2025-07-07 10:00");
    let late = tr.template(NIGERIA, "2025-07-08 10:00", Marketing);
    let out = tr.bill();
    assert_eq!(rated(&out, &late), paid("0.0516", None));
}

#[test]
fn c3_a_new_ad_click_during_a_window_opens_the_next_window_after_it_ends() {
    let mut tr = Traffic::new();
    tr.user_writes_from_ad(NIGERIA, "2025-07-07 10:00");
    let first = tr.reply(NIGERIA, "2025-07-07 12:00"); // window until 07-10 12:00
    tr.user_writes_from_ad(NIGERIA, "2025-07-09 12:30");
    let second = tr.template(NIGERIA, "2025-07-10 12:00", Marketing); // next window
    let inside = tr.template(NIGERIA, "2025-07-13 11:59", Marketing);
    let after = tr.template(NIGERIA, "2025-07-13 12:00", Marketing);
    let out = tr.bill();
    for id in [&first, &second, &inside] {
        assert_eq!(record(&out, id).free, Free::FreeEntryPoint, "{id}");
    }
    assert_eq!(rated(&out, &after), paid("0.0516", None));
    assert_eq!(counts(&out.only_invoice().messages), [4, 0, 3, 0, 1]);
}

// ---- C4: volume tiers ----

#[test]
fn c4_the_nth_charged_message_of_the_month_pays_the_band_that_contains_n() {
    let mut tr = with_tiers(Traffic::new());
    let days = [
        "2025-08-01 09:00",
        "2025-08-05 09:00",
        "2025-08-10 09:00",
        "2025-08-15 09:00",
        "2025-08-20 09:00",
        "2025-08-25 09:00",
        "2025-08-31 23:59",
    ];
    let ids: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(n, at)| tr.template(&brazil_number(n as u32), at, Utility))
        .collect();
    // A category without bands: the list rate, no tier.
    let marketing = tr.template(&brazil_number(100), "2025-08-12 12:00", Marketing);
    let out = tr.bill();
    assert_eq!(out.errors, Vec::<String>::new());
    let got: Vec<_> = ids.iter().map(|id| rated(&out, id)).collect();
    assert_eq!(
        got,
        [
            paid("0.0060", B1),
            paid("0.0060", B1),
            paid("0.0050", B2),
            paid("0.0050", B2),
            paid("0.0050", B2),
            paid("0.0040", B3),
            paid("0.0040", B3),
        ]
    );
    assert_eq!(rated(&out, &marketing), paid("0.0625", None));
    let inv = out.only_invoice();
    assert_eq!(
        lines(inv),
        [
            line(
                "pmp-2025",
                "Brazil",
                "marketing",
                None,
                "0.0625",
                [1, 0, 0, 0, 1],
                "0.0625"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                B3,
                "0.0040",
                [2, 0, 0, 0, 2],
                "0.0080"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                B2,
                "0.0050",
                [3, 0, 0, 0, 3],
                "0.0150"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                B1,
                "0.0060",
                [2, 0, 0, 0, 2],
                "0.0120"
            ),
        ]
    );
    assert_eq!(inv.meta_total, dec("0.0975"));
}

#[test]
fn c4_a_market_or_category_without_bands_pays_the_list_rate_without_a_tier() {
    let mut tr = with_tiers(Traffic::new());
    let ids: Vec<String> = (0..4)
        .map(|n| tr.template(UK, &format!("2025-08-0{} 09:00", n + 2), Utility))
        .collect();
    let out = tr.bill();
    for id in &ids {
        assert_eq!(rated(&out, id), paid("0.0220", None));
    }
    assert_eq!(
        lines(out.only_invoice()),
        [line(
            "pmp-2025",
            "United Kingdom",
            "utility",
            None,
            "0.0220",
            [4, 0, 0, 0, 4],
            "0.0880"
        )]
    );
}

#[test]
fn c4_only_charged_messages_count_per_market_and_category() {
    let mut tr = with_tiers(Traffic::new());
    let (u1, u2, u3, u4) = (
        brazil_number(1),
        brazil_number(2),
        brazil_number(3),
        brazil_number(4),
    );
    tr.user_writes(&u1, "2025-08-04 10:00");
    let in_window = tr.template(&u1, "2025-08-04 10:30", Utility); // C2: free
    tr.user_writes_from_ad(&u2, "2025-08-04 11:00");
    let in_fep = tr.template(&u2, "2025-08-04 11:30", Utility); // C3: free
    // Another market's charged utility does not move Brazil's count.
    let uk1 = tr.template(UK, "2025-08-04 11:45", Utility);
    let uk2 = tr.template(UK, "2025-08-04 11:50", Utility);
    let p1 = tr.template(&u3, "2025-08-04 12:00", Utility);
    let marketing = tr.template(&u3, "2025-08-04 12:30", Marketing);
    let p2 = tr.template(&u4, "2025-08-04 13:00", Utility);
    let p3 = tr.template(&u1, "2025-08-06 10:00", Utility); // window closed: charged
    // Authentication counts on its own.
    let a1 = tr.template(&u4, "2025-08-07 10:00", Authentication);
    let a2 = tr.template(&u3, "2025-08-07 11:00", Authentication);
    let out = tr.bill();
    assert_eq!(
        rated(&out, &in_window),
        (Free::FreeCustomerService, "0.0068".to_owned(), None)
    );
    assert_eq!(record(&out, &in_fep).free, Free::FreeEntryPoint);
    assert_eq!(record(&out, &in_fep).tier, None);
    assert_eq!(rated(&out, &uk1), paid("0.0220", None));
    assert_eq!(rated(&out, &uk2), paid("0.0220", None));
    assert_eq!(rated(&out, &p1), paid("0.0060", B1));
    assert_eq!(rated(&out, &p2), paid("0.0060", B1));
    assert_eq!(rated(&out, &p3), paid("0.0050", B2));
    assert_eq!(rated(&out, &marketing), paid("0.0625", None));
    assert_eq!(rated(&out, &a1), paid("0.0030", Some((0, Some(1)))));
    assert_eq!(rated(&out, &a2), paid("0.0020", Some((2, None))));
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.messages), [10, 0, 1, 1, 8]);
    assert_eq!(inv.meta_total, dec("0.1285"));
}

#[test]
fn c4_tier_counts_reset_at_the_local_month_start() {
    let mut tr = with_tiers(Traffic::new().timezone(W, "America/Sao_Paulo"));
    let at = [
        "2025-08-10 12:00",
        "2025-08-20 12:00",
        "2025-09-01 02:30", // Aug 31 23:30 in São Paulo
        "2025-09-01 03:30", // Sep 1 00:30: a new month
        "2025-09-10 12:00",
        "2025-09-20 12:00",
    ];
    let ids: Vec<String> = at
        .iter()
        .enumerate()
        .map(|(n, at)| tr.template(&brazil_number(n as u32), at, Utility))
        .collect();
    let out = tr.bill();
    let got: Vec<_> = ids.iter().map(|id| record(&out, id).tier).collect();
    assert_eq!(got, [B1, B1, B2, B1, B1, B2]);
    assert_eq!(invoice_of(&out, W, "2025-08").meta_total, dec("0.0170"));
    assert_eq!(invoice_of(&out, W, "2025-09").meta_total, dec("0.0170"));
}

#[test]
fn c4_a_portfolio_shares_tiers_across_its_wabas_in_the_month_of_its_first_waba() {
    // W2 (São Paulo) is configured first, so its month decides, though W1
    // (Tokyo) sorts first by name.
    let mut tr = with_tiers(
        Traffic::new()
            .timezone("W2", "America/Sao_Paulo")
            .timezone("W1", "Asia/Tokyo")
            .portfolio("W2", "acme")
            .portfolio("W1", "acme"),
    );
    let mut send =
        |waba: &str, n: u32, at: &str| tr.template_on(waba, P, &brazil_number(n), at, Utility);
    let a = send("W2", 1, "2025-08-20 12:00"); // August #1
    let b = send("W1", 2, "2025-08-25 12:00"); // August #2
    // Sep 1 05:00 in Tokyo but Aug 31 17:00 in São Paulo: August #3.
    let c = send("W1", 3, "2025-08-31 20:00");
    let d = send("W2", 4, "2025-09-01 02:59"); // Aug 31 23:59 in São Paulo: #4
    let e = send("W1", 5, "2025-09-01 03:00"); // Sep 1 00:00 in São Paulo: September #1
    // Same instant: W1 before W2 (C5: by WABA id, not configuration order).
    let f = send("W2", 6, "2025-09-02 12:00");
    let g = send("W1", 7, "2025-09-02 12:00");
    let out = tr.bill();
    assert_eq!(out.errors, Vec::<String>::new());
    let got: Vec<_> = [&a, &b, &c, &d, &e, &g, &f]
        .iter()
        .map(|id| rated(&out, id))
        .collect();
    assert_eq!(
        got,
        [
            paid("0.0060", B1),
            paid("0.0060", B1),
            paid("0.0050", B2),
            paid("0.0050", B2),
            paid("0.0060", B1),
            paid("0.0060", B1),
            paid("0.0050", B2),
        ]
    );
    // Invoices stay per WABA and its own local month.
    let months: Vec<_> = out
        .invoices
        .iter()
        .map(|i| (i.waba.as_str(), i.month.to_string(), i.messages.paid))
        .collect();
    assert_eq!(
        months,
        [
            ("W1", "2025-08".to_owned(), 1),
            ("W1", "2025-09".to_owned(), 3),
            ("W2", "2025-08".to_owned(), 2),
            ("W2", "2025-09".to_owned(), 1),
        ]
    );
}

#[test]
fn c4_the_month_count_includes_charged_messages_priced_by_an_earlier_card_of_the_month() {
    // The banded card starts on 2025-08-15; the two charged Brazil utility
    // messages before it (shipped 2025-07-01 card, list 0.0068, no bands)
    // are still the month's first two.
    let mut tr = Traffic::new();
    add_pmp_card(&mut tr, Date::constant(2025, 8, 15), TIERS);
    let at = [
        "2025-08-02 09:00",
        "2025-08-05 09:00",
        "2025-08-15 09:00",
        "2025-08-20 09:00",
    ];
    let ids: Vec<String> = at
        .iter()
        .enumerate()
        .map(|(n, at)| tr.template(&brazil_number(n as u32), at, Utility))
        .collect();
    let out = tr.bill();
    let got: Vec<_> = ids.iter().map(|id| rated(&out, id)).collect();
    assert_eq!(
        got,
        [
            paid("0.0068", None),
            paid("0.0068", None),
            paid("0.0050", B2),
            paid("0.0050", B2),
        ]
    );
}

#[test]
fn c4_by_default_each_waba_accrues_alone() {
    let mut tr = with_tiers(Traffic::new());
    let ids: Vec<String> = (0..3)
        .flat_map(|n| ["W1", "W2"].map(|waba| (waba, n, format!("2025-08-0{} 09:00", n + 2))))
        .map(|(waba, n, at)| tr.template_on(waba, P, &brazil_number(n), &at, Utility))
        .collect();
    let out = tr.bill();
    let got: Vec<_> = ids.iter().map(|id| record(&out, id).tier).collect();
    assert_eq!(got, [B1, B1, B1, B1, B2, B2]);
}

// ---- C5: messages, not conversations; counting order ----

#[test]
fn c5_charged_messages_are_counted_in_delivery_waba_phone_user_and_id_order() {
    let card = "market,category,price,tier_from,tier_to
Brazil,utility,0.0068,,
Brazil,utility,0.0061,0,1
Brazil,utility,0.0062,2,2
Brazil,utility,0.0063,3,3
Brazil,utility,0.0064,4,
";
    let mut tr = Traffic::new();
    add_pmp_card(&mut tr, Date::constant(2025, 8, 1), card);
    let at = "2025-08-05 10:00";
    let (low, high) = ("5511999990001", "5511999990009");
    template_with_id(&mut tr, (W, "P2", low), "wamid.a", at, Utility);
    template_with_id(&mut tr, (W, "P1", high), "wamid.b", at, Utility);
    template_with_id(&mut tr, (W, "P1", low), "wamid.z", at, Utility);
    template_with_id(&mut tr, (W, "P1", low), "wamid.y", at, Utility);
    // Earlier delivery first, whatever the id.
    template_with_id(
        &mut tr,
        (W, "P9", high),
        "wamid.zz",
        "2025-08-05 09:59:59",
        Utility,
    );
    let out = tr.bill();
    let got: Vec<_> = ["wamid.zz", "wamid.y", "wamid.z", "wamid.b", "wamid.a"]
        .iter()
        .map(|id| rated(&out, id))
        .collect();
    assert_eq!(
        got,
        [
            paid("0.0061", Some((0, Some(1)))),
            paid("0.0062", Some((2, Some(2)))),
            paid("0.0063", Some((3, Some(3)))),
            paid("0.0064", Some((4, None))),
            paid("0.0064", Some((4, None))),
        ]
    );
}

#[test]
fn c5_lines_are_one_per_era_market_category_price_and_tier_sorted_by_price_then_untiered_first() {
    let card = "market,category,price,tier_from,tier_to
Brazil,marketing,0.0625,,
Brazil,utility,0.0068,,
Brazil,utility,0.0068,0,1
Brazil,utility,0.0050,2,
";
    let mut tr = Traffic::new();
    add_pmp_card(&mut tr, Date::constant(2025, 8, 1), card);
    let (u1, u2, u3) = (brazil_number(1), brazil_number(2), brazil_number(3));
    tr.user_writes(&u1, "2025-08-04 10:00");
    tr.template(&u1, "2025-08-04 10:30", Utility); // free, list rate, no tier
    tr.template(&u2, "2025-08-04 12:00", Utility); // #1
    tr.template(&u3, "2025-08-04 13:00", Utility); // #2
    tr.template(&u2, "2025-08-05 12:00", Marketing);
    let out = tr.bill();
    let inv = out.only_invoice();
    assert_eq!(
        lines(inv),
        [
            line(
                "pmp-2025",
                "Brazil",
                "marketing",
                None,
                "0.0625",
                [1, 0, 0, 0, 1],
                "0.0625"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                Some((2, None)),
                "0.0050",
                [1, 0, 0, 0, 1],
                "0.0050"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                None,
                "0.0068",
                [1, 0, 0, 1, 0],
                "0"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                Some((0, Some(1))),
                "0.0068",
                [1, 0, 0, 0, 1],
                "0.0068"
            ),
        ]
    );
    assert_eq!(counts(&inv.messages), [4, 0, 0, 1, 3]);
    assert_eq!(inv.meta_total, dec("0.0743"));
}

// ---- C6: across the switch from cbp-2023 ----

#[test]
fn c6_a_cbp2023_conversation_open_at_the_switch_does_not_make_later_messages_free() {
    // cbp-2023 2025-04-01 card, Brazil: marketing 0.0625, utility 0.0080.
    // pmp 2025-07-01 card, Brazil: marketing 0.0625, utility 0.0068.
    let mut tr = traffic_without_free_tier();
    let cm = tr.template(BRAZIL, "2025-06-30 12:00", Marketing);
    let cu = tr.template(BRAZIL, "2025-06-30 13:00", Utility);
    let pm = tr.template(BRAZIL, "2025-07-01 01:00", Marketing);
    let pu = tr.template(BRAZIL, "2025-07-01 02:00", Utility);
    let out = tr.bill();
    let got = |id: &str| {
        let c = record(&out, id);
        (c.era, c.category, c.free, c.unit_price.clone(), c.messages)
    };
    assert_eq!(
        got(&cm),
        ("cbp-2023", "marketing", Free::None, "0.0625".to_owned(), 1)
    );
    assert_eq!(
        got(&cu),
        ("cbp-2023", "utility", Free::None, "0.0080".to_owned(), 1)
    );
    assert_eq!(
        got(&pm),
        ("pmp-2025", "marketing", Free::None, "0.0625".to_owned(), 1)
    );
    assert_eq!(
        got(&pu),
        ("pmp-2025", "utility", Free::None, "0.0068".to_owned(), 1)
    );
    let june = invoice_of(&out, W, "2025-06");
    assert_eq!(counts(&june.conversations), [2, 0, 0, 0, 2]);
    assert_eq!(june.meta_total, dec("0.0705"));
    let july = invoice_of(&out, W, "2025-07");
    assert_eq!(counts(&july.conversations), [0, 0, 0, 0, 0]);
    assert_eq!(counts(&july.messages), [2, 0, 0, 0, 2]);
    assert_eq!(july.meta_total, dec("0.0693"));
}

#[test]
fn c6_messages_inside_an_open_cbp2023_free_entry_point_conversation_stay_free_until_it_ends() {
    // pmp 2025-07-01 card, Nigeria: marketing 0.0516.
    let mut tr = traffic_without_free_tier();
    tr.user_writes_from_ad(NIGERIA, "2025-06-30 09:00");
    let fep = tr.reply(NIGERIA, "2025-06-30 10:00"); // cbp-2023 FEP until 07-03 10:00
    let m = tr.template(NIGERIA, "2025-07-01 12:00", Marketing);
    let r = tr.reply(NIGERIA, "2025-07-02 12:00");
    let u = tr.template(NIGERIA, "2025-07-03 09:59:59", Utility);
    let after = tr.template(NIGERIA, "2025-07-03 10:00", Marketing);
    let out = tr.bill();
    let c = record(&out, &fep);
    assert_eq!(
        (c.era, c.category, c.free, c.start, c.end),
        (
            "cbp-2023",
            "free_entry_point",
            Free::FreeEntryPoint,
            t("2025-06-30 10:00"),
            t("2025-07-03 10:00")
        )
    );
    let got = |id: &str| {
        let c = record(&out, id);
        (c.era, c.category, c.free)
    };
    assert_eq!(got(&m), ("pmp-2025", "marketing", Free::FreeEntryPoint));
    assert_eq!(got(&r), ("pmp-2025", "service", Free::FreeEntryPoint));
    assert_eq!(got(&u), ("pmp-2025", "utility", Free::FreeEntryPoint));
    assert_eq!(rated(&out, &after), paid("0.0516", None));
    let july = invoice_of(&out, W, "2025-07");
    assert_eq!(counts(&july.messages), [4, 0, 3, 0, 1]);
    assert_eq!(july.meta_total, dec("0.0516"));
}

#[test]
fn c6_the_customer_service_window_is_not_a_conversation_and_spans_the_switch() {
    // The window opened by a June message still frees a July utility (C2).
    let mut tr = traffic_without_free_tier();
    tr.user_writes(BRAZIL, "2025-06-30 20:00");
    tr.reply(BRAZIL, "2025-06-30 20:05"); // cbp-2023 service conversation
    let inside = tr.template(BRAZIL, "2025-07-01 02:00", Utility);
    let outside = tr.template(BRAZIL, "2025-07-01 20:00", Utility);
    let out = tr.bill();
    assert_eq!(
        rated(&out, &inside),
        (Free::FreeCustomerService, "0.0068".to_owned(), None)
    );
    assert_eq!(rated(&out, &outside), paid("0.0068", None));
}

// ---- Section 5: pmp-2026 ----

fn traffic_2026(allowance: u64) -> Traffic {
    let mut tr = Traffic::new();
    tr.config.pmp_2026_free_service_per_phone = allowance;
    tr
}

#[test]
fn s5_service_messages_are_charged_at_the_card_service_rate_after_the_free_allowance() {
    // pmp 2026-10-01 card, United Kingdom: service 0.0220.
    let mut tr = traffic_2026(2);
    tr.user_writes(UK, "2026-10-05 10:00");
    let ids: Vec<String> = (1..=3)
        .map(|m| tr.reply(UK, &format!("2026-10-05 10:0{m}")))
        .collect();
    let out = tr.bill();
    let got: Vec<_> = ids.iter().map(|id| rated(&out, id)).collect();
    let ft = (Free::FreeTier, "0.0220".to_owned(), None);
    assert_eq!(got, [ft.clone(), ft, paid("0.0220", None)]);
    assert!(out.conversations.iter().all(|c| c.era == "pmp-2026"));
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.messages), [3, 2, 0, 0, 1]);
    assert_eq!(
        lines(inv),
        [line(
            "pmp-2026",
            "United Kingdom",
            "service",
            None,
            "0.0220",
            [3, 2, 0, 0, 1],
            "0.0220"
        )]
    );
}

#[test]
fn s5_utility_templates_inside_the_customer_service_window_are_charged() {
    // pmp 2026-10-01 card, United Kingdom: utility 0.0220, marketing 0.0635.
    let mut tr = traffic_2026(2);
    tr.user_writes(UK, "2026-10-05 10:00");
    let utility = tr.template(UK, "2026-10-05 10:30", Utility);
    let marketing = tr.template(UK, "2026-10-05 10:40", Marketing);
    let out = tr.bill();
    assert_eq!(rated(&out, &utility), paid("0.0220", None));
    assert_eq!(rated(&out, &marketing), paid("0.0635", None));
    assert_eq!(out.only_invoice().meta_total, dec("0.0855"));
}

#[test]
fn s5_the_allowance_is_per_business_phone_and_local_month_in_delivery_order() {
    // pmp 2026-10-01 card, Brazil: service 0.0068.
    let mut tr = traffic_2026(2).timezone(W, "America/Sao_Paulo");
    // P1: delivered 10-05, 10-06, 10-07 (added out of order).
    let p1_third = tr.reply_on(W, "P1", &brazil_number(1), "2026-10-07 12:00");
    let p1_first = tr.reply_on(W, "P1", &brazil_number(2), "2026-10-05 12:00");
    let p1_second = tr.reply_on(W, "P1", &brazil_number(3), "2026-10-06 12:00");
    // P2 has its own allowance.
    let p2_oct = tr.reply_on(W, "P2", &brazil_number(4), "2026-10-10 12:00");
    let p2_oct_last = tr.reply_on(W, "P2", &brazil_number(5), "2026-11-01 02:30"); // Oct 31 local
    let p2_oct_paid = tr.reply_on(W, "P2", &brazil_number(6), "2026-11-01 02:45");
    let p2_nov = tr.reply_on(W, "P2", &brazil_number(7), "2026-11-01 03:30"); // Nov 1 local
    let out = tr.bill();
    let ft = (Free::FreeTier, "0.0068".to_owned(), None);
    for id in [&p1_first, &p1_second, &p2_oct, &p2_oct_last, &p2_nov] {
        assert_eq!(rated(&out, id), ft, "{id}");
    }
    for id in [&p1_third, &p2_oct_paid] {
        assert_eq!(rated(&out, id), paid("0.0068", None), "{id}");
    }
    assert_eq!(
        counts(&invoice_of(&out, W, "2026-10").messages),
        [6, 4, 0, 0, 2]
    );
    assert_eq!(
        counts(&invoice_of(&out, W, "2026-11").messages),
        [1, 1, 0, 0, 0]
    );
}

#[test]
fn s5_the_allowance_is_per_waba_and_phone() {
    let mut tr = traffic_2026(1);
    let a = tr.reply_on("W1", P, &brazil_number(1), "2026-10-05 12:00");
    let b = tr.reply_on("W2", P, &brazil_number(2), "2026-10-05 13:00");
    let c = tr.reply_on("W1", P, &brazil_number(3), "2026-10-05 14:00");
    let out = tr.bill();
    assert_eq!(record(&out, &a).free, Free::FreeTier);
    assert_eq!(record(&out, &b).free, Free::FreeTier);
    assert_eq!(record(&out, &c).free, Free::None);
}

#[test]
fn s5_everything_inside_a_free_entry_point_window_stays_free_and_does_not_use_the_allowance() {
    let mut tr = traffic_2026(1);
    tr.user_writes_from_ad(BRAZIL, "2026-10-05 10:00");
    let opener = tr.reply(BRAZIL, "2026-10-05 10:01");
    let utility = tr.template(BRAZIL, "2026-10-05 11:00", Utility);
    let marketing = tr.template(BRAZIL, "2026-10-06 11:00", Marketing);
    tr.user_writes(BRAZIL, "2026-10-08 11:00");
    let first_service = tr.reply(BRAZIL, "2026-10-08 11:05"); // window ended 10:01
    let second_service = tr.reply(BRAZIL, "2026-10-08 11:06");
    let out = tr.bill();
    let got = |id: &str| {
        let c = record(&out, id);
        (c.category, c.free)
    };
    assert_eq!(got(&opener), ("service", Free::FreeEntryPoint));
    assert_eq!(got(&utility), ("utility", Free::FreeEntryPoint));
    assert_eq!(got(&marketing), ("marketing", Free::FreeEntryPoint));
    assert_eq!(
        rated(&out, &first_service),
        (Free::FreeTier, "0.0068".to_owned(), None)
    );
    assert_eq!(rated(&out, &second_service), paid("0.0068", None));
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.messages), [5, 1, 3, 0, 1]);
    assert_eq!(inv.meta_total, dec("0.0068"));
}

#[test]
fn s5_the_allowance_is_configuration_defaulting_to_1000() {
    let mut tr = Traffic::new();
    tr.reply(BRAZIL, "2026-10-05 10:00");
    assert_eq!(tr.bill().conversations[0].free, Free::FreeTier);

    let mut tr = traffic_2026(0);
    tr.reply(BRAZIL, "2026-10-05 10:00");
    let out = tr.bill();
    assert_eq!(out.conversations[0].free, Free::None);
    assert_eq!(out.only_invoice().meta_total, dec("0.0068"));
}

#[test]
fn s5_a_card_without_a_service_rate_is_an_error_naming_card_market_and_category() {
    // pmp-2026 moved to 2026-01-01, when the shipped card has no service rates.
    let mut tr = traffic_2026(0).timeline(&[
        ("cbp-2022", "2022-02-01"),
        ("cbp-2023", "2023-06-01"),
        ("pmp-2025", "2025-07-01"),
        ("pmp-2026", "2026-01-01"),
    ]);
    tr.reply(BRAZIL, "2026-02-05 10:00");
    let out = tr.bill();
    assert!(out.invoices.is_empty());
    assert_eq!(
        out.errors,
        [
            "rate card meta-pmp_USD_2026-01-01.csv has no rate for market \"Brazil\", category service"
        ]
    );
}

// ---- Section 1: eras by local delivery time; a month spanning two eras ----

#[test]
fn an_invoice_month_spanning_two_eras_shows_lines_of_both() {
    // pmp-2025 from 2025-07-15. cbp-2023 2025-04-01 card, Brazil: marketing
    // 0.0625 (service is free by B7: unit price 0); pmp 2025-07-01 card:
    // marketing 0.0625, utility 0.0068.
    let mut tr = Traffic::new().timeline(&[
        ("cbp-2022", "2022-02-01"),
        ("cbp-2023", "2023-06-01"),
        ("pmp-2025", "2025-07-15"),
        ("pmp-2026", "2026-10-01"),
    ]);
    let (u1, u2, u3) = (brazil_number(1), brazil_number(2), brazil_number(3));
    tr.template(&u1, "2025-07-05 09:00", Marketing);
    tr.reply(&u2, "2025-07-06 09:00");
    tr.template(&u3, "2025-07-20 09:00", Utility);
    tr.template(&u1, "2025-07-20 10:00", Marketing);
    tr.reply(&u3, "2025-07-21 09:00");
    let out = tr.bill();
    assert_eq!(out.errors, Vec::<String>::new());
    let inv = out.only_invoice();
    assert_eq!(counts(&inv.conversations), [2, 0, 0, 1, 1]);
    assert_eq!(counts(&inv.messages), [3, 0, 0, 1, 2]);
    assert_eq!(
        lines(inv),
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
                [1, 0, 0, 1, 0],
                "0"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "marketing",
                None,
                "0.0625",
                [1, 0, 0, 0, 1],
                "0.0625"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "service",
                None,
                "0",
                [1, 0, 0, 1, 0],
                "0"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                None,
                "0.0068",
                [1, 0, 0, 0, 1],
                "0.0068"
            ),
        ]
    );
    assert_eq!(inv.meta_total, dec("0.1318"));
}

#[test]
fn c3_an_entry_point_before_the_switch_opens_a_window_after_it() {
    // The ad message is under cbp-2023, the first reply under pmp-2025.
    let mut tr = Traffic::new();
    tr.user_writes_from_ad(NIGERIA, "2025-06-30 20:00");
    let opener = tr.template(NIGERIA, "2025-07-01 01:00", Marketing);
    let inside = tr.template(NIGERIA, "2025-07-04 00:59:59", Marketing);
    let after = tr.template(NIGERIA, "2025-07-04 01:00", Marketing);
    let out = tr.bill();
    assert_eq!(record(&out, &opener).free, Free::FreeEntryPoint);
    assert_eq!(record(&out, &inside).free, Free::FreeEntryPoint);
    assert_eq!(rated(&out, &after), paid("0.0516", None));
    assert!(out.conversations.iter().all(|c| c.era == "pmp-2025"));
}

#[test]
fn c4_tier_counts_span_both_per_message_eras_within_a_month() {
    // pmp-2026 from 2025-08-15: August has charged utility of both eras, one count.
    let mut tr = with_tiers(Traffic::new().timeline(&[
        ("cbp-2022", "2022-02-01"),
        ("cbp-2023", "2023-06-01"),
        ("pmp-2025", "2025-07-01"),
        ("pmp-2026", "2025-08-15"),
    ]));
    let at = [
        "2025-08-02 09:00",
        "2025-08-05 09:00",
        "2025-08-10 09:00",
        "2025-08-20 09:00",
    ];
    let ids: Vec<String> = at
        .iter()
        .enumerate()
        .map(|(n, at)| tr.template(&brazil_number(n as u32), at, Utility))
        .collect();
    let out = tr.bill();
    let got: Vec<_> = ids
        .iter()
        .map(|id| (record(&out, id).era, record(&out, id).tier))
        .collect();
    assert_eq!(
        got,
        [
            ("pmp-2025", B1),
            ("pmp-2025", B1),
            ("pmp-2025", B2),
            ("pmp-2026", B2)
        ]
    );
    assert_eq!(
        lines(out.only_invoice()),
        [
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                B2,
                "0.0050",
                [1, 0, 0, 0, 1],
                "0.0050"
            ),
            line(
                "pmp-2025",
                "Brazil",
                "utility",
                B1,
                "0.0060",
                [2, 0, 0, 0, 2],
                "0.0120"
            ),
            line(
                "pmp-2026",
                "Brazil",
                "utility",
                B2,
                "0.0050",
                [1, 0, 0, 0, 1],
                "0.0050"
            ),
        ]
    );
}

#[test]
fn c5_the_platform_fee_counts_paid_messages_or_all_messages() {
    let build = |applies_to| {
        let mut tr = Traffic::new();
        tr.config.platform.fee_per_conversation = dec("0.0050");
        tr.config.platform.fee_applies_to = applies_to;
        tr.user_writes(BRAZIL, "2025-07-07 10:00");
        tr.reply(BRAZIL, "2025-07-07 10:01");
        tr.template(BRAZIL, "2025-07-07 10:02", Utility); // free in the window
        tr.template(BRAZIL, "2025-07-07 10:03", Marketing); // 0.0625
        tr.bill()
    };
    let out = build(wabill_engine::config::FeeAppliesTo::Paid);
    let inv = out.only_invoice();
    assert_eq!(
        (inv.platform_fee.quantity, inv.platform_fee.amount),
        (1, dec("0.0050"))
    );
    assert_eq!(inv.total, dec("0.0675"));
    assert_eq!(inv.amount_due.to_string(), "0.07");
    let out = build(wabill_engine::config::FeeAppliesTo::All);
    let inv = out.only_invoice();
    assert_eq!(
        (inv.platform_fee.quantity, inv.platform_fee.amount),
        (3, dec("0.0150"))
    );
}

// ---- D2: a card uses the market map in force at its date ----

#[test]
fn d2_each_card_uses_the_market_map_of_its_date_so_markets_change_with_the_maps() {
    const ZIMBABWE: &str = "263771234567";
    const HONG_KONG: &str = "85251234567";
    let mut tr = Traffic::new();
    // Zimbabwe is Other until the map of 2025-10-01 puts it in Rest of Africa.
    tr.template(ZIMBABWE, "2025-09-30 23:59", Marketing);
    tr.template(ZIMBABWE, "2025-10-01 00:00", Marketing);
    // Hong Kong becomes its own market with the map of 2026-07-01.
    tr.template(HONG_KONG, "2026-06-30 12:00", Marketing);
    tr.template(HONG_KONG, "2026-07-01 12:00", Marketing);
    // Kazakhstan (+7 7…) is Other until the map of 2026-10-01.
    tr.template(KAZAKHSTAN, "2026-09-30 12:00", Marketing);
    tr.template(KAZAKHSTAN, "2026-10-01 12:00", Marketing);
    let out = tr.bill();
    assert_eq!(out.errors, Vec::<String>::new());
    let priced: Vec<(&str, &str)> = out
        .conversations
        .iter()
        .map(|c| (c.market.as_str(), c.unit_price.as_str()))
        .collect();
    // Marketing list rates of the pmp cards of 2025-07-01, 2025-10-01,
    // 2026-04-01, 2026-07-01 and 2026-10-01.
    assert_eq!(
        priced,
        [
            ("Other", "0.0604"),
            ("Rest of Africa", "0.0225"),
            ("Rest of Asia Pacific", "0.0732"),
            ("Hong Kong", "0.0732"),
            ("Other", "0.0604"),
            ("Kazakhstan", "0.0604"),
        ]
    );
}
