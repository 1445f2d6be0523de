//! The 19 worked scenarios of `meta-pricing.md` section 12 (CBP v1, 2022).
//! Mon = 2022-03-07. "Charge" in the reference is the list rate outside the
//! free tier, so scenarios that check a charge start with an exhausted free
//! tier; S14–S16 exercise the free tier itself. Where the reference and
//! `rules.md` differ, `rules.md` wins (S17: Kazakhstan).

mod common;

use common::*;
use wabill_engine::billing::Free;
use wabill_engine::event::{Status, TemplateCategory::*};

fn paid_traffic() -> Traffic {
    let mut tr = Traffic::new();
    tr.config.free_tier_per_month = 0;
    tr
}

fn summary(out: &Outcome) -> Vec<(&'static str, String)> {
    out.conversations
        .iter()
        .map(|c| (c.category, c.unit_price.clone()))
        .collect()
}

#[test]
fn s01_user_writes_business_never_answers() {
    let mut tr = paid_traffic();
    tr.user_writes(BRAZIL, "2022-03-07 10:00");
    let out = tr.bill();
    assert!(out.conversations.is_empty());
    assert_eq!(out.meta_total(), "0");
}

#[test]
fn s02_one_user_initiated_session_many_messages() {
    let mut tr = paid_traffic();
    tr.user_writes(BRAZIL, "2022-03-07 10:00");
    tr.reply(BRAZIL, "2022-03-07 10:00:30");
    for i in 0..30 {
        let at = format!("2022-03-07 {:02}:{:02}", 10 + i / 3, (i % 3) * 20 + 5);
        if i % 2 == 0 {
            tr.user_writes(BRAZIL, &at);
        } else {
            tr.reply(BRAZIL, &at);
        }
    }
    let out = tr.bill();
    assert_eq!(summary(&out), [("user_initiated", "0.0300".into())]);
    assert_eq!(out.conversations[0].start, t("2022-03-07 10:00:30"));
    assert_eq!(out.conversations[0].end, t("2022-03-08 10:00:30"));
    assert_eq!(out.meta_total(), "0.03");
}

#[test]
fn s03_two_templates_in_one_day() {
    let mut tr = paid_traffic();
    tr.template(UK, "2022-03-07 09:00", Utility);
    tr.template(UK, "2022-03-07 15:00", Utility);
    let out = tr.bill();
    assert_eq!(summary(&out), [("business_initiated", "0.0647".into())]);
    assert_eq!(out.conversations[0].end, t("2022-03-08 09:00"));
}

#[test]
fn s04_template_user_replies_free_form_follow_up() {
    let mut tr = paid_traffic();
    tr.template(UK, "2022-03-07 09:00", Marketing);
    tr.user_writes(UK, "2022-03-07 09:30");
    for hour in 9..=20 {
        tr.reply(UK, &format!("2022-03-07 {hour:02}:35"));
    }
    let out = tr.bill();
    assert_eq!(summary(&out), [("business_initiated", "0.0647".into())]);
    assert_eq!(out.meta_total(), "0.0647");
}

#[test]
fn s05_template_user_replies_after_the_conversation_expired() {
    let mut tr = paid_traffic();
    tr.template(UK, "2022-03-07 09:00", Marketing);
    tr.user_writes(UK, "2022-03-08 10:00");
    tr.reply(UK, "2022-03-08 10:05");
    let out = tr.bill();
    assert_eq!(
        summary(&out),
        [
            ("business_initiated", "0.0647".into()),
            ("user_initiated", "0.0388".into())
        ]
    );
    assert_eq!(out.conversations[1].end, t("2022-03-09 10:05"));
    assert_eq!(out.meta_total(), "0.1035");
}

#[test]
fn s06_support_chat_then_next_day_shipping_notice() {
    let mut tr = paid_traffic();
    tr.user_writes(GERMANY, "2022-03-07 13:13");
    tr.reply(GERMANY, "2022-03-07 13:13");
    tr.template(GERMANY, "2022-03-08 15:45", Utility);
    let out = tr.bill();
    assert_eq!(
        summary(&out),
        [
            ("user_initiated", "0.0819".into()),
            ("business_initiated", "0.1365".into())
        ]
    );
    assert_eq!(out.meta_total(), "0.2184");
}

#[test]
fn s07_conversation_expires_while_the_window_is_still_open() {
    let mut tr = paid_traffic();
    tr.user_writes(INDIA, "2022-03-07 10:00");
    tr.reply(INDIA, "2022-03-07 10:01");
    tr.user_writes(INDIA, "2022-03-07 23:00");
    tr.reply(INDIA, "2022-03-07 23:05");
    tr.reply(INDIA, "2022-03-08 11:00");
    let out = tr.bill();
    assert_eq!(
        summary(&out),
        [
            ("user_initiated", "0.0040".into()),
            ("user_initiated", "0.0040".into())
        ]
    );
    assert_eq!(out.conversations[0].messages, 2);
    assert_eq!(out.conversations[1].start, t("2022-03-08 11:00"));
    assert_eq!(out.meta_total(), "0.008");
}

#[test]
fn s08_template_sent_inside_an_open_user_initiated_conversation() {
    let mut tr = paid_traffic();
    tr.user_writes(MEXICO, "2022-03-07 10:00");
    tr.reply(MEXICO, "2022-03-07 10:02");
    tr.template(MEXICO, "2022-03-07 14:00", Utility);
    let out = tr.bill();
    assert_eq!(summary(&out), [("user_initiated", "0.0105".into())]);
    assert_eq!(out.conversations[0].messages, 2);
}

#[test]
fn s09_template_reply_inside_the_window_is_user_initiated() {
    let mut tr = paid_traffic();
    tr.user_writes(SPAIN, "2022-03-07 10:00");
    tr.template(SPAIN, "2022-03-07 11:00", Marketing);
    let out = tr.bill();
    assert_eq!(summary(&out), [("user_initiated", "0.0369".into())]);
}

#[test]
fn s10_template_never_delivered() {
    let mut tr = paid_traffic();
    let id = tr.sent(US, "2022-03-07 09:00", Some(Marketing));
    tr.status(US, &id, "2022-03-07 09:00:02", Status::Failed);
    assert!(tr.bill().conversations.is_empty());
}

#[test]
fn s10b_free_form_outside_the_window_fails_and_costs_nothing() {
    let mut tr = paid_traffic();
    tr.user_writes(US, "2022-03-07 06:00");
    let id = tr.sent(US, "2022-03-08 12:00", None);
    tr.status(US, &id, "2022-03-08 12:00:01", Status::Failed);
    tr.user_writes(US, "2022-03-08 13:00");
    let out = tr.bill();
    assert!(out.conversations.is_empty());
    assert_eq!(out.meta_total(), "0");
}

#[test]
fn s11_late_delivery_starts_the_conversation_at_delivery() {
    let mut tr = paid_traffic();
    let first = tr.sent(NIGERIA, "2022-03-07 09:00", Some(Utility));
    tr.status(NIGERIA, &first, "2022-03-07 09:00:01", Status::Sent);
    tr.status(NIGERIA, &first, "2022-03-07 21:00", Status::Delivered);
    tr.template(NIGERIA, "2022-03-08 20:00", Utility);
    let out = tr.bill();
    assert_eq!(summary(&out), [("business_initiated", "0.0516".into())]);
    assert_eq!(out.conversations[0].start, t("2022-03-07 21:00"));
    assert_eq!(out.conversations[0].messages, 2);
}

#[test]
fn s12_click_to_whatsapp_ad_in_2022() {
    let mut tr = Traffic::new();
    tr.config.free_tier_per_month = 1;
    tr.user_writes_from_ad(NIGERIA, "2022-03-07 10:00");
    tr.reply(NIGERIA, "2022-03-07 10:02");
    tr.template(NIGERIA, "2022-03-10 09:00", Marketing);
    tr.template(UK, "2022-03-11 09:00", Marketing);
    let out = tr.bill();
    let got: Vec<_> = out
        .conversations
        .iter()
        .map(|c| (c.category, c.free, c.end))
        .collect();
    assert_eq!(
        got,
        [
            (
                "free_entry_point",
                Free::FreeEntryPoint,
                t("2022-03-08 10:02")
            ),
            // The free entry point conversation did not use the one free-tier slot.
            ("business_initiated", Free::FreeTier, t("2022-03-11 09:00")),
            ("business_initiated", Free::None, t("2022-03-12 09:00")),
        ]
    );
}

#[test]
fn s12_contrast_after_march_2023_the_entry_point_lasts_72h() {
    let mut tr = paid_traffic();
    tr.user_writes_from_ad(NIGERIA, "2023-03-06 10:00");
    tr.reply(NIGERIA, "2023-03-06 10:02");
    tr.template(NIGERIA, "2023-03-09 09:00", Marketing);
    let out = tr.bill();
    assert_eq!(summary(&out), [("free_entry_point", "0".into())]);
    assert_eq!(out.conversations[0].end, t("2023-03-09 10:02"));
    assert_eq!(out.meta_total(), "0");
}

#[test]
fn s13_ad_message_without_a_reply_within_24h() {
    let mut tr = paid_traffic();
    tr.user_writes_from_ad(NIGERIA, "2022-03-07 10:00");
    tr.template(NIGERIA, "2022-03-08 11:00", Marketing);
    let out = tr.bill();
    assert_eq!(summary(&out), [("business_initiated", "0.0516".into())]);
}

fn us_user(n: u32) -> String {
    format!("12122{n:06}")
}

/// Minute `n` of March 2022 as `2022-03-DD HH:MM`.
fn march_minute(n: u32) -> String {
    format!(
        "2022-03-{:02} {:02}:{:02}",
        1 + n / 1440,
        n / 60 % 24,
        n % 60
    )
}

#[test]
fn s14_free_tier_is_shared_by_two_phone_numbers() {
    let mut tr = Traffic::new();
    // #1–#1000: a mix of UI/BI in the US and Brazil on both numbers.
    for n in 0..1000 {
        let phone = if n % 2 == 0 { "A" } else { "B" };
        let user = if n % 3 == 0 {
            us_user(n)
        } else {
            brazil_number(n)
        };
        let at = march_minute(n * 10);
        if n % 4 == 0 {
            tr.push(
                t(&at),
                W,
                phone,
                &user,
                &format!("wamid.u{n}"),
                wabill_engine::EventBody::Inbound { referral: false },
            );
        }
        tr.reply_on(W, phone, &user, &at);
    }
    // #1001–#1200: 150 BI to Brazil and 50 UI to the US.
    for n in 1000..1200 {
        let phone = if n % 2 == 0 { "A" } else { "B" };
        let at = march_minute(n * 10);
        if n < 1150 {
            tr.reply_on(W, phone, &brazil_number(n), &at);
        } else {
            let user = us_user(n);
            tr.push(
                t(&at),
                W,
                phone,
                &user,
                &format!("wamid.u{n}"),
                wabill_engine::EventBody::Inbound { referral: false },
            );
            tr.reply_on(W, phone, &user, &at);
        }
    }
    // 300 free entry point conversations spread through the month.
    for n in 0..300 {
        let at = march_minute(n * 140 + 7);
        let user = brazil_number(5000 + n);
        tr.push(
            t(&at),
            W,
            "A",
            &user,
            &format!("wamid.ad{n}"),
            wabill_engine::EventBody::Inbound { referral: true },
        );
        tr.reply_on(W, "A", &user, &at);
    }
    let out = tr.bill();
    let inv = out.only_invoice();
    assert_eq!(inv.conversations.total, 1500);
    assert_eq!(inv.conversations.free_tier, 1000);
    assert_eq!(inv.conversations.free_entry_point, 300);
    assert_eq!(inv.conversations.paid, 200);
    assert_eq!(inv.meta_total.to_string(), "7.9400");
}

#[test]
fn s15_month_boundary_in_waba_local_time() {
    let mut tr = Traffic::new().timezone(W, "America/Sao_Paulo");
    tr.config.free_tier_per_month = 1;
    // 2022-03-31 23:30 local = 2022-04-01 02:30 UTC.
    tr.template(BRAZIL, "2022-04-01 02:30", Marketing);
    // 2022-04-02 09:00 local = 12:00 UTC.
    tr.template(BRAZIL, "2022-04-02 12:00", Marketing);
    let out = tr.bill();
    let months: Vec<_> = out
        .invoices
        .iter()
        .map(|i| (i.month.to_string(), i.conversations.free_tier))
        .collect();
    assert_eq!(
        months,
        [("2022-03".to_owned(), 1), ("2022-04".to_owned(), 1)]
    );
    assert_eq!(out.conversations[0].end, t("2022-04-02 02:30"));
}

#[test]
fn s16_free_tier_does_not_roll_over() {
    let mut tr = Traffic::new();
    for n in 0..400 {
        tr.reply(
            &brazil_number(n),
            &format!(
                "2022-02-{:02} {:02}:{:02}",
                2 + n / 60 % 20,
                n / 3 % 24,
                n % 60
            ),
        );
    }
    for n in 0..1500 {
        tr.reply(&brazil_number(n), &march_minute(n * 20));
    }
    let out = tr.bill();
    let got: Vec<_> = out
        .invoices
        .iter()
        .map(|i| {
            (
                i.month.to_string(),
                i.conversations.total,
                i.conversations.free_tier,
                i.conversations.paid,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2022-02".to_owned(), 400, 400, 0),
            ("2022-03".to_owned(), 1500, 1000, 500)
        ]
    );
}

#[test]
fn s17_market_mapping_on_plus_one_and_plus_seven_numbers() {
    let mut tr = paid_traffic();
    tr.user_writes(PUERTO_RICO, "2022-03-07 10:00");
    tr.reply(PUERTO_RICO, "2022-03-07 10:01");
    tr.user_writes(US, "2022-03-07 10:00");
    tr.reply(US, "2022-03-07 10:01");
    tr.template(DOMINICAN, "2022-03-07 10:00", Marketing);
    tr.user_writes(KAZAKHSTAN, "2022-03-07 10:00");
    tr.reply(KAZAKHSTAN, "2022-03-07 10:01");
    let out = tr.bill();
    let mut got: Vec<_> = out
        .conversations
        .iter()
        .map(|c| {
            (
                c.user.as_str(),
                c.market.as_str(),
                c.category,
                c.unit_price.as_str(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (US, "North America", "user_initiated", "0.0088"),
            (
                PUERTO_RICO,
                "Rest of Latin America",
                "user_initiated",
                "0.0423"
            ),
            (
                DOMINICAN,
                "Rest of Latin America",
                "business_initiated",
                "0.0706"
            ),
            // rules.md D1: KZ is not in the market map, so `Other` (the
            // reference's calling-code table would say Russia, 0.0398).
            (KAZAKHSTAN, "Other", "user_initiated", "0.0145"),
        ]
    );
}

#[test]
fn s18_webhook_driven_counting_out_of_order_with_duplicates() {
    let mut tr = paid_traffic();
    tr.user_writes(UK, "2022-03-07 09:50");
    tr.status(UK, "wamid.m1", "2022-03-07 10:00:00", Status::Sent);
    tr.status(UK, "wamid.m2", "2022-03-07 10:05:00", Status::Sent);
    tr.status(UK, "wamid.m1", "2022-03-07 10:00:03", Status::Read);
    tr.status(UK, "wamid.m2", "2022-03-07 10:05:02", Status::Delivered);
    tr.status(UK, "wamid.m1", "2022-03-07 10:00:00", Status::Sent);
    let out = tr.bill();
    assert_eq!(summary(&out), [("user_initiated", "0.0388".into())]);
    assert_eq!(out.conversations[0].messages, 2);
    assert_eq!(out.duplicates, 1);
}

#[test]
fn s19_a_free_entry_point_conversation_does_not_cover_the_next_one() {
    let mut tr = paid_traffic();
    tr.user_writes_from_ad(ITALY, "2022-03-07 10:00");
    tr.reply(ITALY, "2022-03-07 10:01");
    tr.user_writes(ITALY, "2022-03-08 09:00");
    tr.reply(ITALY, "2022-03-08 12:00");
    let out = tr.bill();
    assert_eq!(
        summary(&out),
        [
            ("free_entry_point", "0".into()),
            ("user_initiated", "0.0386".into())
        ]
    );
    assert_eq!(out.meta_total(), "0.0386");
}

#[test]
fn s19_contrast_after_march_2023_the_reply_falls_inside_the_entry_point() {
    let mut tr = paid_traffic();
    tr.user_writes_from_ad(ITALY, "2023-03-06 10:00");
    tr.reply(ITALY, "2023-03-06 10:01");
    tr.user_writes(ITALY, "2023-03-07 09:00");
    tr.reply(ITALY, "2023-03-07 12:00");
    let out = tr.bill();
    assert_eq!(summary(&out), [("free_entry_point", "0".into())]);
}
