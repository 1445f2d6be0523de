//! A sample answer of `GET /v1/reconciliation`, every optional part filled.

use wabill_engine::Instant;
use wabill_engine::live::TimelineEntry;

pub(super) fn reconciliation() -> wabill_report::ReconciliationJson {
    use wabill_engine::billing::Free;
    use wabill_engine::era::EraKind;
    use wabill_engine::reconcile::{
        Answer, Class, Disagreement, Reconciliation, SideBySide, Tally,
    };
    use wabill_engine::tariff::Category;
    let at = Instant(1_754_000_000_000_000_000);
    let answer = |category| Answer {
        era: EraKind::Pmp2025,
        category,
        free: Free::None,
        conversation: "wamid.1".into(),
        start: at,
        end: at,
        rule: "C1: a message of its category".into(),
    };
    let tally = |quantity| Tally {
        quantity,
        amount: rust_decimal::Decimal::ZERO,
    };
    wabill_report::reconciliation_json(&Reconciliation {
        waba: "W1".into(),
        month: wabill_engine::time::Month::parse("2025-08").unwrap_or_else(|| panic!("month")),
        lines: vec![SideBySide {
            market: "India".into(),
            category: Category::Utility,
            free: Free::None,
            wabill: tally(1),
            meta: tally(0),
        }],
        wabill_total: Default::default(),
        meta_total: Default::default(),
        compared: 1,
        without_verdict: 0,
        disagreements: vec![Disagreement {
            message: "wamid.1".into(),
            phone: "P1".into(),
            user: "919812345678".into(),
            delivered: Some(at),
            class: Class::Recategorized,
            wabill: Some(answer(Category::Utility)),
            meta: Some(answer(Category::Marketing)),
            timeline: vec![TimelineEntry {
                at,
                kind: "delivered",
                id: "wamid.1".into(),
                detail_key: "meta",
                detail: Some("pricing PMP marketing regular billable".into()),
            }],
        }],
    })
}
