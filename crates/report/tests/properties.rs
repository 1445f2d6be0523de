//! Rules F6 and A5 as properties of the whole pipeline: NDJSON text →
//! parser → ledger → billing → invoice JSON.

use proptest::prelude::*;
use std::sync::Arc;
use wabill_engine::config::WabaConfig;

use wabill_engine::{EngineConfig, Ledger, RateBook, RegionCache, bill};
use wabill_ingest::{Route, parse_line};

const USERS: [&str; 6] = [
    "5511999990001",
    "447400123456",
    "2348031234567",
    "919812345678",
    "12125550100",
    "77272500000",
];
const WABAS: [&str; 2] = ["W1", "W2"];
const PHONES: [&str; 2] = ["P1", "P2"];
/// 2022-03-30T00:00:00Z: events spread over four days cross the month
/// boundary in UTC and in São Paulo (W2).
const BASE: i64 = 1_648_598_400;

/// One region cache for every case: libphonenumber's metadata loads once.
fn ledger(config: EngineConfig) -> Ledger {
    static REGIONS: std::sync::OnceLock<Arc<RegionCache>> = std::sync::OnceLock::new();
    Ledger::with_regions(config, Arc::clone(REGIONS.get_or_init(Arc::default)))
}

fn book() -> RateBook {
    match wabill_rates::shipped() {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

fn config() -> EngineConfig {
    let mut config = EngineConfig::new();
    let w2 = WabaConfig {
        timezone: match jiff::tz::db().get("America/Sao_Paulo") {
            Ok(tz) => tz,
            Err(e) => panic!("{e}"),
        },
        timezone_name: "America/Sao_Paulo".into(),
        ..WabaConfig::default()
    };
    config.wabas.insert("W2".into(), w2);
    config.free_tier_per_month = 3;
    config
}

/// One random event as a normalized NDJSON line.
fn event_line() -> impl Strategy<Value = String> {
    (
        0..5u8,
        0..24u32,
        0..2usize,
        0..2usize,
        0..USERS.len(),
        0..(4 * 86_400i64),
        0..5u8,
    )
        .prop_map(|(kind, id, waba, phone, user, offset, variant)| {
            let (w, p, u) = (WABAS[waba], PHONES[phone], USERS[user]);
            let ts = BASE + offset;
            let head =
                format!(r#""id":"wamid.{id}","waba":"{w}","phone":"{p}","user":"{u}","ts":{ts}"#);
            match kind {
                0 => {
                    let referral = if variant == 0 {
                        r#","referral":{"source_type":"ad"}"#
                    } else {
                        ""
                    };
                    format!(r#"{{"type":"inbound",{head}{referral}}}"#)
                }
                1 => {
                    let template = match variant {
                        0 => r#","template":{"name":"t","category":"marketing"}"#,
                        1 => r#","template":{"name":"t","category":"UTILITY"}"#,
                        _ => "",
                    };
                    format!(r#"{{"type":"outbound",{head}{template}}}"#)
                }
                _ => {
                    let status =
                        ["sent", "delivered", "read", "failed", "deleted"][usize::from(variant)];
                    format!(r#"{{"type":"status",{head},"status":"{status}"}}"#)
                }
            }
        })
}

/// The `wabill invoice --format json` document for these lines.
fn invoice_json(lines: &[String], config: &EngineConfig, book: &RateBook) -> String {
    let mut ledger = ledger(config.clone());
    let mut rejected = 0;
    for line in lines {
        let mut events = Vec::new();
        let ok = parse_line(line, Route::default(), &mut events).is_ok()
            && ledger.ingest(&events).is_ok();
        rejected += u64::from(!ok);
    }
    let billing = bill(&ledger, book);
    let mut invoices = Vec::new();
    for m in &billing.months {
        match &m.invoice {
            Ok(i) => invoices.push(i),
            Err(e) => panic!("{e:?}"),
        }
    }
    wabill_report::invoices_json(&invoices, rejected, ledger.duplicates())
}

/// The `invoices` array alone (the duplicate count legitimately differs when
/// duplicates are added).
fn invoices_only(json: &str) -> &str {
    json.rsplit_once("\"rejected\"")
        .map_or(json, |(head, _)| head)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// F6: any permutation gives a byte-identical invoice document.
    #[test]
    fn f6_any_order_gives_a_byte_identical_invoice(
        (lines, shuffled) in prop::collection::vec(event_line(), 0..60)
            .prop_flat_map(|lines| (Just(lines.clone()), Just(lines).prop_shuffle()))
    ) {
        let (config, book) = (config(), book());
        prop_assert_eq!(invoice_json(&lines, &config, &book), invoice_json(&shuffled, &config, &book));
    }

    /// F6: duplicates added anywhere change nothing but the duplicate count.
    #[test]
    fn f6_duplicates_anywhere_change_nothing(
        (lines, noisy) in prop::collection::vec(event_line(), 1..60).prop_flat_map(|lines| {
            let n = lines.len();
            (Just(lines.clone()), prop::collection::vec(0..n, 0..30))
                .prop_map(|(lines, picks)| {
                    let mut noisy = lines.clone();
                    noisy.extend(picks.into_iter().map(|i| lines[i].clone()));
                    (lines, noisy)
                })
                .prop_flat_map(|(lines, noisy)| (Just(lines), Just(noisy).prop_shuffle()))
        })
    ) {
        let (config, book) = (config(), book());
        let clean = invoice_json(&lines, &config, &book);
        let dirty = invoice_json(&noisy, &config, &book);
        prop_assert_eq!(invoices_only(&clean), invoices_only(&dirty));
    }
}

fn brazil_user(n: u32) -> String {
    format!("551198{n:07}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A5: each WABA and local month frees exactly
    /// min(1000, conversations that are not free entry point).
    #[test]
    fn a5_free_tier_frees_min_1000_and_the_non_entry_point_conversations(
        convs in prop::collection::vec((0..2usize, 0..2500u32, 0..(45 * 86_400i64), 0..10u8), 0..2600)
    ) {
        let mut config = config();
        config.free_tier_per_month = 1000;
        let book = book();
        let mut lines = Vec::new();
        for (i, (waba, user, offset, kind)) in convs.iter().enumerate() {
            let (w, u, ts) = (WABAS[*waba], brazil_user(*user), BASE - 20 * 86_400 + offset);
            if *kind == 0 {
                lines.push(format!(r#"{{"type":"inbound","id":"in{i}","waba":"{w}","phone":"P1","user":"{u}","ts":{},"referral":{{}}}}"#, ts - 60));
            }
            lines.push(format!(r#"{{"type":"status","id":"out{i}","waba":"{w}","phone":"P1","user":"{u}","ts":{ts},"status":"delivered"}}"#));
        }
        let mut ledger = ledger(config);
        for line in &lines {
            let mut events = Vec::new();
            prop_assert!(parse_line(line, Route::default(), &mut events).is_ok());
            prop_assert!(ledger.ingest(&events).is_ok());
        }
        let billing = bill(&ledger, &book);
        for m in &billing.months {
            let Ok(invoice) = &m.invoice else { panic!("{:?}", m.invoice) };
            let c = &invoice.conversations;
            prop_assert_eq!(c.free_tier, 1000.min(c.total - c.free_entry_point));
            prop_assert_eq!(c.total, c.free_tier + c.free_entry_point + c.free_customer_service + c.paid);
        }
    }
}
