//! The output of `wabill reconcile` and `GET /v1/reconciliation` (cli.md):
//! JSON for scripts, tables for people.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use wabill_engine::live::TimelineEntry;
use wabill_engine::reconcile::{
    AnalyticsRow, Answer, Disagreement, Reconciliation, SideBySide, Tally,
};

#[derive(Serialize)]
pub struct ReconciliationsJson {
    pub agree: bool,
    pub reconciliations: Vec<ReconciliationJson>,
    /// Present when analytics were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics: Option<Vec<AnalyticsJson>>,
}

#[derive(Serialize)]
pub struct ReconciliationJson {
    pub waba: String,
    pub month: String,
    pub agree: bool,
    pub lines: Vec<SideJson>,
    pub wabill_total: String,
    pub meta_total: String,
    pub messages: MessagesJson,
    pub disagreements: Vec<DisagreementJson>,
}

#[derive(Serialize)]
pub struct MessagesJson {
    pub compared: u64,
    pub without_verdict: u64,
    pub disagreeing: u64,
}

#[derive(Serialize)]
pub struct SideJson {
    pub market: String,
    pub category: &'static str,
    pub free: &'static str,
    pub wabill: TallyJson,
    pub meta: TallyJson,
}

#[derive(Serialize)]
pub struct TallyJson {
    pub quantity: u64,
    pub amount: String,
}

#[derive(Serialize)]
pub struct DisagreementJson {
    pub message: String,
    pub phone: String,
    pub user: String,
    pub delivered: Option<String>,
    pub class: &'static str,
    pub wabill: Option<AnswerJson>,
    pub meta: Option<AnswerJson>,
    pub timeline: Vec<EntryJson>,
}

#[derive(Serialize)]
pub struct AnswerJson {
    pub era: &'static str,
    pub category: &'static str,
    pub free: &'static str,
    pub conversation: String,
    pub start: String,
    pub end: String,
    pub rule: String,
}

#[derive(Serialize)]
pub struct EntryJson {
    pub at: String,
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Serialize)]
pub struct AnalyticsJson {
    pub waba: String,
    pub start: String,
    pub end: String,
    pub market: Option<String>,
    pub category: Option<String>,
    pub wabill: u64,
    pub meta: u64,
    pub class: Option<&'static str>,
}

fn tally(t: &Tally) -> TallyJson {
    TallyJson {
        quantity: t.quantity,
        amount: t.amount.to_string(),
    }
}

fn side(l: &SideBySide) -> SideJson {
    SideJson {
        market: l.market.clone(),
        category: l.category.as_str(),
        free: l.free.as_str(),
        wabill: tally(&l.wabill),
        meta: tally(&l.meta),
    }
}

fn answer(a: &Answer) -> AnswerJson {
    AnswerJson {
        era: a.era.as_str(),
        category: a.category.as_str(),
        free: a.free.as_str(),
        conversation: a.conversation.clone(),
        start: a.start.rfc3339(),
        end: a.end.rfc3339(),
        rule: a.rule.clone(),
    }
}

fn entry(e: &TimelineEntry) -> EntryJson {
    EntryJson {
        at: e.at.rfc3339(),
        kind: e.kind,
        id: e.id.clone(),
        detail: e.detail.clone(),
    }
}

fn disagreement(d: &Disagreement) -> DisagreementJson {
    DisagreementJson {
        message: d.message.clone(),
        phone: d.phone.clone(),
        user: d.user.clone(),
        delivered: d.delivered.map(|t| t.rfc3339()),
        class: d.class.as_str(),
        wabill: d.wabill.as_ref().map(answer),
        meta: d.meta.as_ref().map(answer),
        timeline: d.timeline.iter().map(entry).collect(),
    }
}

/// One WABA-month as JSON.
pub fn reconciliation_json(r: &Reconciliation) -> ReconciliationJson {
    ReconciliationJson {
        waba: r.waba.clone(),
        month: r.month.to_string(),
        agree: r.agrees(),
        lines: r.lines.iter().map(side).collect(),
        wabill_total: r.wabill_total.to_string(),
        meta_total: r.meta_total.to_string(),
        messages: MessagesJson {
            compared: r.compared,
            without_verdict: r.without_verdict,
            disagreeing: r.disagreements.len() as u64,
        },
        disagreements: r.disagreements.iter().map(disagreement).collect(),
    }
}

fn analytics_row(a: &AnalyticsRow) -> AnalyticsJson {
    AnalyticsJson {
        waba: a.waba.clone(),
        start: a.start.rfc3339(),
        end: a.end.rfc3339(),
        market: a.market.clone(),
        category: a.category.clone(),
        wabill: a.wabill,
        meta: a.meta,
        class: a.class.map(|c| c.as_str()),
    }
}

/// Whether everything agrees: every WABA-month and every analytics row.
pub fn all_agree(rs: &[&Reconciliation], analytics: Option<&[AnalyticsRow]>) -> bool {
    rs.iter().all(|r| r.agrees()) && analytics.is_none_or(|a| a.iter().all(|r| r.class.is_none()))
}

/// The `--format json` document of `wabill reconcile`.
pub fn reconciliations_json(rs: &[&Reconciliation], analytics: Option<&[AnalyticsRow]>) -> String {
    let doc = ReconciliationsJson {
        agree: all_agree(rs, analytics),
        reconciliations: rs.iter().map(|r| reconciliation_json(r)).collect(),
        analytics: analytics.map(|a| a.iter().map(analytics_row).collect()),
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// The table for people: per WABA-month the lines side by side, then each
/// disagreement with its class, both answers and its timeline; then the
/// analytics rows.
pub fn reconciliations_table(rs: &[&Reconciliation], analytics: Option<&[AnalyticsRow]>) -> String {
    let mut out = String::new();
    for r in rs {
        month_table(r, &mut out);
    }
    if let Some(rows) = analytics {
        out.push_str(&format!("Analytics\n{}\n", analytics_table(rows)));
    }
    out
}

fn month_table(r: &Reconciliation, out: &mut String) {
    let verdict = if r.agrees() { "agree" } else { "DIFFER" };
    out.push_str(&format!(
        "Reconciliation {} {}: {verdict} ({} messages compared, {} without a verdict, {} disagreeing)\n",
        r.waba,
        r.month,
        r.compared,
        r.without_verdict,
        r.disagreements.len()
    ));
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "Market",
        "Category",
        "Free",
        "wabill qty",
        "Meta qty",
        "wabill amount",
        "Meta amount",
    ]);
    for l in &r.lines {
        table.add_row(vec![
            l.market.clone(),
            l.category.as_str().to_owned(),
            l.free.as_str().to_owned(),
            l.wabill.quantity.to_string(),
            l.meta.quantity.to_string(),
            l.wabill.amount.to_string(),
            l.meta.amount.to_string(),
        ]);
    }
    out.push_str(&format!(
        "{table}\nTotal: wabill {}, Meta {}\n",
        r.wabill_total, r.meta_total
    ));
    for d in &r.disagreements {
        out.push_str(&format!(
            "\n  {} {} {} [{}]\n",
            d.message,
            d.phone,
            d.user,
            d.class.as_str()
        ));
        for (who, a) in [("wabill", &d.wabill), ("Meta", &d.meta)] {
            match a {
                Some(a) => out.push_str(&format!(
                    "    {who}: {} {} {} from {} ({}): {}\n",
                    a.era.as_str(),
                    a.category.as_str(),
                    a.free.as_str(),
                    a.start.rfc3339(),
                    a.conversation,
                    a.rule
                )),
                None => out.push_str(&format!("    {who}: nothing\n")),
            }
        }
        for e in &d.timeline {
            let detail = e
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "      {} {} {}{detail}\n",
                e.at.rfc3339(),
                e.kind,
                e.id
            ));
        }
    }
    out.push('\n');
}

fn analytics_table(rows: &[AnalyticsRow]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "WABA", "From", "To", "Market", "Category", "wabill", "Meta", "Class",
    ]);
    for a in rows {
        table.add_row(vec![
            a.waba.clone(),
            a.start.rfc3339(),
            a.end.rfc3339(),
            a.market.clone().unwrap_or_else(|| "*".to_owned()),
            a.category.clone().unwrap_or_else(|| "*".to_owned()),
            a.wabill.to_string(),
            a.meta.to_string(),
            a.class.map_or("", |c| c.as_str()).to_owned(),
        ]);
    }
    table
}
