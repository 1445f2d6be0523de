//! The stable output shapes of cli.md, and readable tables. The engine's
//! types do not know JSON; this crate is the boundary that does.

use std::borrow::Cow;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use wabill_engine::Verdict;
use wabill_engine::billing::{Billing, Counts, Invoice, Line, Record, WabaMonth};

mod customers;
mod reconcile;
mod whatif;
pub use customers::{
    CustomerInvoiceJson, customer_invoices_csv, customer_invoices_json, customer_invoices_table,
};
pub use reconcile::{
    ReconciliationJson, all_agree, reconciliation_json, reconciliations_json, reconciliations_table,
};
pub use whatif::{EraRun, Whatif};

#[derive(Serialize)]
pub struct CountsJson {
    pub total: u64,
    pub free_tier: u64,
    pub free_entry_point: u64,
    pub free_customer_service: u64,
    pub paid: u64,
}

impl From<&Counts> for CountsJson {
    fn from(c: &Counts) -> Self {
        CountsJson {
            total: c.total,
            free_tier: c.free_tier,
            free_entry_point: c.free_entry_point,
            free_customer_service: c.free_customer_service,
            paid: c.paid,
        }
    }
}

#[derive(Serialize)]
pub struct TierJson {
    pub from: u64,
    pub to: Option<u64>,
}

#[derive(Serialize)]
pub struct LineJson {
    pub era: &'static str,
    pub market: String,
    pub category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<TierJson>,
    /// Rules P6: the provider that carried the phone (only when `[[phone]]`
    /// says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'static str>,
    pub quantity: u64,
    pub free_tier: u64,
    pub free_entry_point: u64,
    pub free_customer_service: u64,
    pub paid: u64,
    pub unit_price: String,
    pub meta_amount: String,
}

impl From<&Line> for LineJson {
    fn from(l: &Line) -> Self {
        LineJson {
            era: l.era.as_str(),
            market: l.market.clone(),
            category: l.category.as_str(),
            tier: l.tier.map(|(from, to)| TierJson { from, to }),
            provider: l.provider.map(|p| p.as_str()),
            quantity: l.counts.total,
            free_tier: l.counts.free_tier,
            free_entry_point: l.counts.free_entry_point,
            free_customer_service: l.counts.free_customer_service,
            paid: l.counts.paid,
            unit_price: l.unit_price.to_string(),
            meta_amount: l.meta_amount.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct PlatformFeeJson {
    pub unit: String,
    pub quantity: u64,
    pub amount: String,
}

/// One element of `invoices` (cli.md).
#[derive(Serialize)]
pub struct InvoiceJson {
    pub waba: String,
    pub month: String,
    pub timezone: String,
    pub currency: String,
    pub conversations: CountsJson,
    pub messages: CountsJson,
    pub lines: Vec<LineJson>,
    pub meta_total: String,
    pub platform_fee: PlatformFeeJson,
    pub total: String,
    pub amount_due: String,
    /// Rules P6: events of the month from a provider outside their phone's
    /// period (only on invoices of WABAs a `[[phone]]` names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off_period_events: Option<u64>,
}

/// Rules P6: what invoices count of events from a provider outside their
/// phone's period.
#[derive(Clone, Debug, Default)]
pub struct OffPeriod {
    /// By (WABA, month).
    pub counts: std::collections::BTreeMap<(String, wabill_engine::time::Month), u64>,
    /// The WABAs some `[[phone]]` names: their invoices carry the count.
    pub wabas: std::collections::BTreeSet<String>,
}

impl OffPeriod {
    /// From a ledger's flags and configuration.
    pub fn of(ledger: &wabill_engine::Ledger) -> OffPeriod {
        OffPeriod {
            counts: ledger.flagged().by_month,
            wabas: ledger
                .config()
                .phones
                .values()
                .flat_map(|h| h.carriers.iter().map(|c| c.waba.clone()))
                .collect(),
        }
    }

    pub fn count(&self, waba: &str, month: wabill_engine::time::Month) -> Option<u64> {
        self.wabas.contains(waba).then(|| {
            self.counts
                .get(&(waba.to_owned(), month))
                .copied()
                .unwrap_or(0)
        })
    }
}

impl InvoiceJson {
    /// With its count of events from a provider outside their period.
    pub fn flagged(mut self, off_period: &OffPeriod, invoice: &Invoice) -> Self {
        self.off_period_events = off_period.count(&invoice.waba, invoice.month);
        self
    }
}

impl From<&Invoice> for InvoiceJson {
    fn from(i: &Invoice) -> Self {
        InvoiceJson {
            waba: i.waba.clone(),
            month: i.month.to_string(),
            timezone: i.timezone.clone(),
            currency: i.currency.clone(),
            conversations: (&i.conversations).into(),
            messages: (&i.messages).into(),
            lines: i.lines.iter().map(LineJson::from).collect(),
            meta_total: i.meta_total.to_string(),
            platform_fee: PlatformFeeJson {
                unit: i.platform_fee.unit.to_string(),
                quantity: i.platform_fee.quantity,
                amount: i.platform_fee.amount.to_string(),
            },
            total: i.total.to_string(),
            amount_due: i.amount_due.to_string(),
            off_period_events: None,
        }
    }
}

#[derive(Serialize)]
pub struct InvoicesJson {
    pub invoices: Vec<InvoiceJson>,
    pub rejected: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

/// What became of the input besides its billed events (cli.md).
#[derive(Copy, Clone, Debug, Default)]
pub struct InputCounts {
    /// Lines and bodies refused whole.
    pub rejected: u64,
    /// Duplicate events skipped.
    pub duplicates: u64,
    /// Items of bodies kept in quarantine (events.md section 5).
    pub quarantined: u64,
}

/// The `--format json` document of `wabill invoice`.
pub fn invoices_json(invoices: &[&Invoice], counts: InputCounts, off: &OffPeriod) -> String {
    let doc = InvoicesJson {
        invoices: invoices
            .iter()
            .map(|i| InvoiceJson::from(*i).flagged(off, i))
            .collect(),
        rejected: counts.rejected,
        duplicates: counts.duplicates,
        quarantined: counts.quarantined,
    };
    pretty(&doc)
}

/// A document as indented JSON and a newline.
pub(crate) fn pretty<T: Serialize>(doc: &T) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

const CSV_HEADER: [&str; 18] = [
    "waba",
    "month",
    "timezone",
    "currency",
    "era",
    "market",
    "category",
    "tier_from",
    "tier_to",
    "quantity",
    "free_tier",
    "free_entry_point",
    "free_customer_service",
    "paid",
    "unit_price",
    "meta_amount",
    "invoice_total",
    "amount_due",
];

/// `--format csv`: one row per line, the invoice keys repeated on each.
pub fn invoices_csv(invoices: &[&Invoice]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CSV_HEADER);
    for i in invoices {
        for l in &i.lines {
            let (from, to) = match l.tier {
                Some((from, to)) => (
                    from.to_string(),
                    to.map(|t| t.to_string()).unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            };
            let _ = w.write_record([
                i.waba.as_str(),
                &i.month.to_string(),
                &i.timezone,
                &i.currency,
                l.era.as_str(),
                &l.market,
                l.category.as_str(),
                &from,
                &to,
                &l.counts.total.to_string(),
                &l.counts.free_tier.to_string(),
                &l.counts.free_entry_point.to_string(),
                &l.counts.free_customer_service.to_string(),
                &l.counts.paid.to_string(),
                &l.unit_price.to_string(),
                &l.meta_amount.to_string(),
                &i.total.to_string(),
                &i.amount_due.to_string(),
            ]);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn right(text: impl ToString) -> Cell {
    Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
}

/// A line's category as a table shows it: its tier band and the provider
/// that carried the phone (rules P6) when it has them.
fn line_category(l: &Line) -> String {
    let category = match l.tier {
        Some((from, Some(to))) => format!("{} (tier {from}–{to})", l.category.as_str()),
        Some((from, None)) => format!("{} (tier {from}+)", l.category.as_str()),
        None => l.category.as_str().to_owned(),
    };
    match l.provider {
        Some(p) => format!("{category} via {}", p.as_str()),
        None => category,
    }
}

/// `--format table`: what a person reads.
pub fn invoices_table(invoices: &[&Invoice], counts: InputCounts) -> String {
    let mut out = String::new();
    for i in invoices {
        out.push_str(&format!(
            "Invoice {} {} ({}, {})\n",
            i.waba, i.month, i.timezone, i.currency
        ));
        let c = &i.conversations;
        if c.total > 0 {
            out.push_str(&format!(
                "Conversations: {} ({} free tier, {} free entry point, {} free customer service, {} paid)\n",
                c.total, c.free_tier, c.free_entry_point, c.free_customer_service, c.paid
            ));
        }
        let m = &i.messages;
        if m.total > 0 {
            out.push_str(&format!(
                "Messages: {} ({} free tier, {} free entry point, {} free customer service, {} paid)\n",
                m.total, m.free_tier, m.free_entry_point, m.free_customer_service, m.paid
            ));
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(vec![
            "Era",
            "Market",
            "Category",
            "Qty",
            "Free tier",
            "Free entry",
            "Free service",
            "Paid",
            "Unit",
            "Meta amount",
        ]);
        for l in &i.lines {
            table.add_row(vec![
                Cell::new(l.era.as_str()),
                Cell::new(&l.market),
                Cell::new(line_category(l)),
                right(l.counts.total),
                right(l.counts.free_tier),
                right(l.counts.free_entry_point),
                right(l.counts.free_customer_service),
                right(l.counts.paid),
                right(l.unit_price),
                right(l.meta_amount),
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        let fee = &i.platform_fee;
        out.push_str(&format!(
            "Meta total:     {:>14} {}\n",
            i.meta_total, i.currency
        ));
        out.push_str(&format!(
            "Platform fee:   {:>14} {} ({} × {})\n",
            fee.amount, i.currency, fee.quantity, fee.unit
        ));
        out.push_str(&format!("Total:          {:>14} {}\n", i.total, i.currency));
        out.push_str(&format!(
            "Amount due:     {:>14} {}\n\n",
            i.amount_due, i.currency
        ));
    }
    if invoices.is_empty() {
        out.push_str("No invoices: no conversation or priced message in the input.\n");
    }
    out.push_str(&counts_footer(counts));
    out
}

/// The table's last lines: what became of the input besides its events.
fn counts_footer(counts: InputCounts) -> String {
    let mut out = format!(
        "Rejected input: {}. Duplicate events skipped: {}.\n",
        counts.rejected, counts.duplicates
    );
    if counts.quarantined > 0 {
        out.push_str(&format!("Items quarantined: {}.\n", counts.quarantined));
    }
    out
}

/// One `wabill conversations` record (cli.md).
#[derive(Serialize)]
pub struct ConversationJson<'a> {
    pub waba: &'a str,
    pub phone: &'a str,
    pub user: &'a str,
    pub start: String,
    pub end: String,
    pub era: &'static str,
    pub category: &'static str,
    pub market: &'a str,
    pub free: &'static str,
    pub unit_price: String,
    pub opened_by: &'a str,
    pub messages: u32,
    /// Meta's verdict on the opening message, when a status carried one
    /// (issue 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaJson<'a>>,
}

/// Meta's verdict on a message (`pricing` and `conversation` of its
/// statuses), keys in byte order, each only when Meta gave it.
#[derive(Clone, Debug, Serialize)]
pub struct MetaJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<Cow<'a, str>>,
}

impl MetaJson<'_> {
    /// The same, owning its strings (for an answer built off a lock).
    pub fn into_owned(self) -> MetaJson<'static> {
        let own = |s: Option<Cow<'_, str>>| s.map(|s| Cow::Owned(s.into_owned()));
        MetaJson {
            billable: self.billable,
            category: own(self.category),
            conversation_id: own(self.conversation_id),
            cost: own(self.cost),
            expires: self.expires,
            origin: own(self.origin),
            pricing_model: own(self.pricing_model),
            pricing_type: own(self.pricing_type),
        }
    }
}

impl<'a> From<Verdict<'a>> for MetaJson<'a> {
    fn from(v: Verdict<'a>) -> MetaJson<'a> {
        MetaJson {
            billable: v.billable,
            category: v.category,
            conversation_id: v.conversation_id,
            cost: v.cost,
            expires: v.expires.map(|e| e.rfc3339()),
            origin: v.origin,
            pricing_model: v.pricing_model,
            pricing_type: v.pricing_type,
        }
    }
}

pub fn conversation_json<'a>(billing: &'a Billing<'_>, r: &Record) -> ConversationJson<'a> {
    let (_, phone, user) = billing.ledger.pair_names(r.pair);
    ConversationJson {
        waba: billing.ledger.record_waba(r),
        phone,
        user,
        start: r.start.rfc3339(),
        end: r.end.rfc3339(),
        era: r.era.as_str(),
        category: r.category.as_str(),
        market: billing.market_name(r.market),
        free: r.free.as_str(),
        unit_price: r.unit_price.to_string(),
        opened_by: billing.ledger.message_id(r.opened_by),
        messages: r.messages,
        meta: billing.ledger.verdict(r.opened_by).map(MetaJson::from),
    }
}

/// Conversation records of the selected months, sorted by
/// (waba, start, phone, user) as cli.md requires.
pub fn sorted_records<'b>(billing: &Billing<'_>, months: &[&'b WabaMonth]) -> Vec<&'b Record> {
    let mut records: Vec<&Record> = months.iter().flat_map(|m| m.records.iter()).collect();
    let ledger = billing.ledger;
    records.sort_by(|a, b| {
        let (_, pa, ua) = ledger.pair_names(a.pair);
        let (_, pb, ub) = ledger.pair_names(b.pair);
        let (wa, wb) = (ledger.record_waba(a), ledger.record_waba(b));
        (wa, a.start, pa, ua, ledger.message_id(a.opened_by)).cmp(&(
            wb,
            b.start,
            pb,
            ub,
            ledger.message_id(b.opened_by),
        ))
    });
    records
}

pub fn conversations_ndjson(billing: &Billing<'_>, records: &[&Record], out: &mut String) {
    for r in records {
        out.push_str(&serde_json::to_string(&conversation_json(billing, r)).unwrap_or_default());
        out.push('\n');
    }
}

const CONVERSATION_COLUMNS: [&str; 12] = [
    "waba",
    "phone",
    "user",
    "start",
    "end",
    "era",
    "category",
    "market",
    "free",
    "unit_price",
    "opened_by",
    "messages",
];

fn conversation_row(billing: &Billing<'_>, r: &Record) -> [String; 12] {
    let c = conversation_json(billing, r);
    [
        c.waba.to_owned(),
        c.phone.to_owned(),
        c.user.to_owned(),
        c.start,
        c.end,
        c.era.to_owned(),
        c.category.to_owned(),
        c.market.to_owned(),
        c.free.to_owned(),
        c.unit_price,
        c.opened_by.to_owned(),
        c.messages.to_string(),
    ]
}

pub fn conversations_csv(billing: &Billing<'_>, records: &[&Record]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CONVERSATION_COLUMNS);
    for r in records {
        let _ = w.write_record(conversation_row(billing, r));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

pub fn conversations_table(billing: &Billing<'_>, records: &[&Record]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(CONVERSATION_COLUMNS.to_vec());
    for r in records {
        table.add_row(conversation_row(billing, r).to_vec());
    }
    format!("{table}\n{} conversations\n", records.len())
}
