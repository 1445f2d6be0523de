//! Cross-checks: exact money at the limits of `rust_decimal` (D3), the order
//! of eras in a timeline (section 1), and an independent reference model of
//! the per-pair rules and free tiers run on random traffic around every era
//! switch.

mod common;

use common::*;
use wabill_engine::Instant;
use wabill_engine::event::TemplateCategory::{self, Marketing};
use wabill_engine::event::{EventBody, Status};

// ---- D3: money is exact ----

/// D3: line amounts are exact. `rust_decimal` rounds a product that needs
/// more than 28 decimal places instead of failing: 9 × 0.9999999999999999999999999999
/// is 8.9999999999999999999999999991, which it cannot hold. That invoice is
/// a data error, never a rounded amount.
#[test]
fn d3_a_line_amount_that_cannot_be_exact_is_a_data_error_not_a_rounded_amount() {
    let mut tr = Traffic::new();
    add_pmp_card(
        &mut tr,
        jiff::civil::Date::constant(2025, 8, 1),
        "market,category,price,tier_from,tier_to\nBrazil,marketing,0.9999999999999999999999999999,,\n",
    );
    for n in 0..9 {
        tr.template(
            &brazil_number(n),
            &format!("2025-08-05 10:{n:02}"),
            Marketing,
        );
    }
    let out = tr.bill();
    assert!(out.invoices.is_empty());
    assert_eq!(
        out.errors,
        [
            "the invoice's line amount is too large or has too many decimal places to compute exactly (check rates and fees)"
        ]
    );

    // One message is exact: the same price bills as it is.
    let mut tr = Traffic::new();
    add_pmp_card(
        &mut tr,
        jiff::civil::Date::constant(2025, 8, 1),
        "market,category,price,tier_from,tier_to\nBrazil,marketing,0.9999999999999999999999999999,,\n",
    );
    tr.template(BRAZIL, "2025-08-05 10:00", Marketing);
    assert_eq!(
        tr.bill().only_invoice().meta_total.to_string(),
        "0.9999999999999999999999999999"
    );
}

/// D3: the total is Meta's total plus the fee, exactly: 10.0000 plus a fee
/// of 0.0000000000000000000000000001 cannot be held in 28 places, so the
/// invoice is a data error rather than a total of 10.
#[test]
fn d3_a_total_that_cannot_be_exact_is_a_data_error_not_a_rounded_total() {
    let mut tr = Traffic::new();
    tr.config.platform.fee_per_conversation = dec("0.0000000000000000000000000001");
    add_pmp_card(
        &mut tr,
        jiff::civil::Date::constant(2025, 8, 1),
        "market,category,price,tier_from,tier_to\nBrazil,marketing,10.0000,,\n",
    );
    tr.template(BRAZIL, "2025-08-05 10:00", Marketing);
    let out = tr.bill();
    assert!(out.invoices.is_empty());
    assert_eq!(
        out.errors,
        [
            "the invoice's total is too large or has too many decimal places to compute exactly (check rates and fees)"
        ]
    );
}

// ---- Section 1: eras keep their order ----

/// Section 1 lets a deployment move, add or remove eras; cli.md makes
/// unordered eras a configuration error. Conversation eras hand their pair
/// state to per-message eras, never back, so a timeline that puts
/// `pmp-2025` before `cbp-2023` is refused.
#[test]
fn section1_a_timeline_that_swaps_eras_is_refused() {
    let entries = vec![
        (
            jiff::civil::Date::constant(2022, 2, 1),
            wabill_engine::era::EraKind::Cbp2022,
        ),
        (
            jiff::civil::Date::constant(2023, 1, 1),
            wabill_engine::era::EraKind::Pmp2025,
        ),
        (
            jiff::civil::Date::constant(2023, 6, 1),
            wabill_engine::era::EraKind::Cbp2023,
        ),
    ];
    let refused = wabill_engine::era::Timeline::new(entries).map_err(|e| e.to_string());
    assert_eq!(
        refused,
        Err("era cbp-2023 cannot follow pmp-2025: eras keep their order (cbp-2022, cbp-2023, pmp-2025, pmp-2026); move, add or remove them, never swap them".to_owned())
    );
    // Removing an era is fine.
    let without_cbp2023 = vec![
        (
            jiff::civil::Date::constant(2022, 2, 1),
            wabill_engine::era::EraKind::Cbp2022,
        ),
        (
            jiff::civil::Date::constant(2025, 7, 1),
            wabill_engine::era::EraKind::Pmp2025,
        ),
    ];
    assert!(wabill_engine::era::Timeline::new(without_cbp2023).is_ok());
}

// ---- A reference model of the per-pair rules and free tiers against an independent model ----
//
// A small reference model of rules A1-A5, B1-B7a, C1-C3, C6 and section 5,
// written from rules.md (not from the engine), run on random traffic around
// every era switch and in-era change, in UTC and in Sao Paulo: same records
// (era, category, start, end, free, opener, messages). It found no
// difference in 2 x 4000 cases during the review; kept with fewer cases.

fn ns(s: i64) -> Instant {
    Instant(s * 1_000_000_000)
}

const H: i64 = 3600;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
struct In {
    t: i64,
    referral: bool,
}
#[derive(Clone, Debug)]
struct Del {
    d: i64,
    id: String,
    tpl: Option<TemplateCategory>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    phone: String,
    user: String,
    start: i64,
    end: i64,
    era: &'static str,
    category: &'static str,
    free: String,
    opener: String,
    msgs: u32,
}

const D2023_03: i64 = 1677628800; // 2023-03-01
const D2023_06: i64 = 1685577600;
const D2024_11: i64 = 1730419200;
const D2025_07: i64 = 1751328000;
const D2026_10: i64 = 1790812800;
const D2022_02: i64 = 1643673600;

thread_local! { static OFF: std::cell::Cell<i64> = const { std::cell::Cell::new(0) }; }
fn off() -> i64 {
    OFF.with(std::cell::Cell::get)
}
fn era_of(d: i64) -> &'static str {
    let d = d - off();
    if d >= D2026_10 {
        "pmp-2026"
    } else if d >= D2025_07 {
        "pmp-2025"
    } else if d >= D2023_06 {
        "cbp-2023"
    } else {
        "cbp-2022"
    }
}

fn model_pair(phone: &str, user: &str, ins: &[In], dels: &[Del]) -> Vec<Rec> {
    let mut convs: Vec<Rec> = vec![];
    let mut used = vec![false; ins.len()];
    let mut window: Option<(i64, i64)> = None;
    for m in dels {
        let d = m.d;
        let vis: Vec<usize> = (0..ins.len()).filter(|&i| ins[i].t <= d).collect();
        let csw = vis.iter().any(|&i| d < ins[i].t + 24 * H);
        let eligible = vis
            .iter()
            .copied()
            .find(|&i| ins[i].referral && d < ins[i].t + 24 * H && !used[i]);
        let era = era_of(d);
        let open: Vec<usize> = (0..convs.len())
            .filter(|&i| convs[i].era.starts_with("cbp") && convs[i].start <= d && d < convs[i].end)
            .collect();
        let mk = |start, end, category, free: &str| Rec {
            phone: phone.into(),
            user: user.into(),
            start,
            end,
            era,
            category,
            free: free.into(),
            opener: m.id.clone(),
            msgs: 1,
        };
        match era {
            "cbp-2022" => {
                if let Some(&i) = open.first() {
                    convs[i].msgs += 1;
                    continue;
                }
                if let Some(e) = eligible {
                    used[e] = true;
                    let len = if d - off() >= D2023_03 {
                        72 * H
                    } else {
                        24 * H
                    };
                    window = Some((d, d + len));
                    convs.push(mk(d, d + len, "free_entry_point", "free_entry_point"));
                } else if csw {
                    convs.push(mk(d, d + 24 * H, "user_initiated", "none"));
                } else {
                    convs.push(mk(d, d + 24 * H, "business_initiated", "none"));
                }
            }
            "cbp-2023" => {
                if let Some(&i) = open
                    .iter()
                    .find(|&&i| convs[i].category == "free_entry_point")
                {
                    convs[i].msgs += 1;
                    continue;
                }
                if let Some(e) = eligible {
                    used[e] = true;
                    for &i in &open {
                        convs[i].end = d;
                    }
                    window = Some((d, d + 72 * H));
                    convs.push(mk(d, d + 72 * H, "free_entry_point", "free_entry_point"));
                    continue;
                }
                match m.tpl {
                    Some(c) => {
                        let cat = c.as_str();
                        if let Some(&i) = open.iter().find(|&&i| convs[i].category == cat) {
                            convs[i].msgs += 1;
                            continue;
                        }
                        let cat: &'static str = match c {
                            TemplateCategory::Marketing => "marketing",
                            TemplateCategory::Utility => "utility",
                            TemplateCategory::Authentication => "authentication",
                        };
                        convs.push(mk(d, d + 24 * H, cat, "none"));
                    }
                    None => {
                        if let Some(&i) = open.iter().find(|&&i| convs[i].category == "service") {
                            convs[i].msgs += 1;
                            continue;
                        }
                        if let Some(&i) = open.first() {
                            convs[i].msgs += 1;
                            continue;
                        }
                        let free = if d - off() >= D2024_11 {
                            "free_customer_service"
                        } else {
                            "none"
                        };
                        convs.push(mk(d, d + 24 * H, "service", free));
                    }
                }
            }
            _ => {
                let cat: &'static str = match m.tpl {
                    None => "service",
                    Some(TemplateCategory::Marketing) => "marketing",
                    Some(TemplateCategory::Utility) => "utility",
                    Some(TemplateCategory::Authentication) => "authentication",
                };
                let free = if window.is_some_and(|(s, e)| s <= d && d < e) {
                    "free_entry_point"
                } else if let Some(e) = eligible {
                    used[e] = true;
                    window = Some((d, d + 72 * H));
                    "free_entry_point"
                } else if era == "pmp-2026" {
                    "none"
                } else if cat == "service" || (cat == "utility" && csw) {
                    "free_customer_service"
                } else {
                    "none"
                };
                convs.push(mk(d, d, cat, free));
            }
        }
    }
    convs
}

fn month_of(s: i64) -> (i16, i8) {
    let z = ns(s - off()).timestamp().to_zoned(jiff::tz::TimeZone::UTC);
    (z.year(), z.month())
}

fn model(
    pairs: &[(String, String, Vec<In>, Vec<Del>)],
    free_tier: u64,
    allowance: u64,
) -> Vec<Rec> {
    let mut all: Vec<Rec> = vec![];
    for (p, u, ins, dels) in pairs {
        all.extend(model_pair(p, u, ins, dels));
    }
    all.sort_by(|a, b| {
        (a.start, &a.phone, &a.user, &a.opener).cmp(&(b.start, &b.phone, &b.user, &b.opener))
    });
    let mut waba_used: std::collections::HashMap<(i16, i8), u64> = Default::default();
    let mut phone_used: std::collections::HashMap<((i16, i8), String), u64> = Default::default();
    for r in &mut all {
        if r.free != "none" {
            continue;
        }
        let m = month_of(r.start);
        let waba_pool = (r.era == "cbp-2022" && r.category != "free_entry_point")
            || (r.era == "cbp-2023" && r.category == "service");
        if waba_pool {
            let u = waba_used.entry(m).or_default();
            if *u < free_tier {
                *u += 1;
                r.free = "free_tier".into();
            }
        }
        if r.era == "pmp-2026" && r.category == "service" {
            let u = phone_used.entry((m, r.phone.clone())).or_default();
            if *u < allowance {
                *u += 1;
                r.free = "free_tier".into();
            }
        }
    }
    all.sort();
    all
}

fn differential(offset: i64, cases: u32) {
    OFF.with(|o| o.set(offset));
    let anchors = [
        D2022_02 + 20 * 86400,
        D2023_03 - 2 * 86400,
        D2023_06 - 2 * 86400,
        D2024_11 - 2 * 86400,
        D2025_07 - 2 * 86400,
        D2026_10 - 2 * 86400,
    ];
    let users = [BRAZIL, UK];
    let phones = ["P1", "P2"];
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let mut failures = 0;
    for case in 0..cases {
        let anchor = anchors[rng.below(anchors.len() as u64) as usize];
        let mut tr = Traffic::new();
        if off() != 0 {
            tr = tr.timezone(W, "America/Sao_Paulo");
        }
        tr.config.free_tier_per_month = 2;
        tr.config.pmp_2026_free_service_per_phone = 1;
        let mut pairs: Vec<(String, String, Vec<In>, Vec<Del>)> = vec![];
        for p in phones {
            for u in users {
                pairs.push((p.into(), u.into(), vec![], vec![]));
            }
        }
        let n = 1 + rng.below(25);
        let mut ids = std::collections::HashSet::new();
        for _ in 0..n {
            let k = rng.below(pairs.len() as u64) as usize;
            // times on a coarse grid so ties and exact 24h/72h edges happen
            let t = anchor + off() + (rng.below(8 * 24) as i64) * H / 2
                - if rng.below(3) == 0 { 3 * H } else { 0 } * if rng.below(4) == 0 { 2 } else { 1 };
            let mut id;
            loop {
                id = format!("wamid.{:03}", rng.below(1000));
                if ids.insert(id.clone()) {
                    break;
                }
            }
            let (p, u) = (pairs[k].0.clone(), pairs[k].1.clone());
            match rng.below(3) {
                0 => {
                    let referral = rng.below(2) == 0;
                    tr.push(ns(t), W, &p, &u, &id, EventBody::Inbound { referral });
                    pairs[k].2.push(In { t, referral });
                }
                _ => {
                    let tpl = match rng.below(5) {
                        0 => Some(TemplateCategory::Marketing),
                        1 => Some(TemplateCategory::Utility),
                        2 => Some(TemplateCategory::Authentication),
                        _ => None,
                    };
                    tr.push(ns(t), W, &p, &u, &id, EventBody::Outbound { template: tpl });
                    tr.push(ns(t), W, &p, &u, &id, EventBody::Status(Status::Delivered));
                    pairs[k].3.push(Del {
                        d: t,
                        id: id.clone(),
                        tpl,
                    });
                }
            }
        }
        for p in &mut pairs {
            p.2.sort_by_key(|i| i.t);
            p.3.sort_by(|a, b| (a.d, &a.id).cmp(&(b.d, &b.id)));
        }
        let want = model(&pairs, 2, 1);
        let out = tr.bill();
        let mut got: Vec<Rec> = out
            .conversations
            .iter()
            .map(|c| Rec {
                phone: c.phone.clone(),
                user: c.user.clone(),
                start: c.start.0 / 1_000_000_000,
                end: c.end.0 / 1_000_000_000,
                era: c.era,
                category: c.category,
                free: c.free.as_str().into(),
                opener: c.opened_by.clone(),
                msgs: c.messages,
            })
            .collect();
        got.sort();
        if got != want || !out.errors.is_empty() {
            failures += 1;
            if failures <= 3 {
                println!("CASE {case} anchor {anchor} errors {:?}", out.errors);
                for p in &pairs {
                    println!(
                        "  pair {} {} in={:?} del={:?}",
                        p.0,
                        p.1,
                        p.2.iter()
                            .map(|i| (i.t - anchor, i.referral))
                            .collect::<Vec<_>>(),
                        p.3.iter()
                            .map(|d| (d.d - anchor, d.id.clone(), d.tpl))
                            .collect::<Vec<_>>()
                    );
                }
                for r in &want {
                    if !got.contains(r) {
                        println!(
                            "  MODEL ONLY {:?}",
                            (
                                r.phone.clone(),
                                r.user.clone(),
                                r.start - anchor,
                                r.end - anchor,
                                r.era,
                                r.category,
                                r.free.clone(),
                                r.opener.clone(),
                                r.msgs
                            )
                        );
                    }
                }
                for r in &got {
                    if !want.contains(r) {
                        println!(
                            "  ENGINE ONLY {:?}",
                            (
                                r.phone.clone(),
                                r.user.clone(),
                                r.start - anchor,
                                r.end - anchor,
                                r.era,
                                r.category,
                                r.free.clone(),
                                r.opener.clone(),
                                r.msgs
                            )
                        );
                    }
                }
            }
        }
    }
    assert_eq!(failures, 0, "see the first cases printed above");
}

#[test]
fn model_per_pair_rules_and_free_tiers_match_a_reference_model_in_utc() {
    differential(0, 600);
}

#[test]
fn model_per_pair_rules_and_free_tiers_match_a_reference_model_in_sao_paulo() {
    differential(3 * H, 600);
}
