//! `wabill invoice --by customer` (cli.md "Customer invoices"): the JSON
//! document, CSV and table of customer invoices.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use wabill_engine::customers::{
    Conversion, CustomerInvoice, ExtraLine, IncludedPool, MarkupLine, PassThrough,
    SubscriptionCharge,
};

use crate::{CountsJson, InputCounts};

#[derive(Serialize)]
pub struct SubscriptionJson {
    pub plan: String,
    pub version_from: String,
    pub period: &'static str,
    pub period_from: String,
    pub period_to: String,
    pub from: String,
    pub to: String,
    pub days: i64,
    pub whole_days: i64,
    pub instalment: bool,
    pub price: String,
    pub amount: String,
}

impl From<&SubscriptionCharge> for SubscriptionJson {
    fn from(c: &SubscriptionCharge) -> Self {
        SubscriptionJson {
            plan: c.plan.clone(),
            version_from: c.version_from.to_string(),
            period: c.period.as_str(),
            period_from: c.period_from.to_string(),
            period_to: c.period_to.to_string(),
            from: c.from.to_string(),
            to: c.to.to_string(),
            days: c.days,
            whole_days: c.whole_days,
            instalment: c.instalment,
            price: c.price.to_string(),
            amount: c.amount.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct ConversionJson {
    pub from: String,
    pub to: String,
    pub rate: String,
    pub effective_from: String,
    pub amount: String,
    pub converted: String,
}

impl From<&Conversion> for ConversionJson {
    fn from(c: &Conversion) -> Self {
        ConversionJson {
            from: c.from.clone(),
            to: c.to.clone(),
            rate: c.rate.to_string(),
            effective_from: c.effective_from.to_string(),
            amount: c.amount.to_string(),
            converted: c.converted.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct PassThroughJson {
    pub waba: String,
    pub month: String,
    pub timezone: String,
    pub currency: String,
    pub provider: Option<&'static str>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub conversations: CountsJson,
    pub messages: CountsJson,
    pub meta_amount: String,
    pub conversions: Vec<ConversionJson>,
    pub amount: String,
    pub included_units: u64,
    pub extra_units: u64,
}

impl From<&PassThrough> for PassThroughJson {
    fn from(p: &PassThrough) -> Self {
        let (from, to) = p.part.unwrap_or((None, None));
        PassThroughJson {
            waba: p.waba.clone(),
            month: p.month.to_string(),
            timezone: p.timezone.clone(),
            currency: p.currency.clone(),
            provider: p.provider.map(|p| p.as_str()),
            from: from.map(|d| d.to_string()),
            to: to.map(|d| d.to_string()),
            conversations: (&p.conversations).into(),
            messages: (&p.messages).into(),
            meta_amount: p.meta_amount.to_string(),
            conversions: p.conversions.iter().map(ConversionJson::from).collect(),
            amount: p.amount.to_string(),
            included_units: p.included_units,
            extra_units: p.extra_units,
        }
    }
}

#[derive(Serialize)]
pub struct IncludedJson {
    pub plan: String,
    pub version_from: String,
    pub from: String,
    pub to: String,
    pub allowance: u64,
    pub used_before: u64,
    pub used: u64,
    pub left: u64,
}

impl From<&IncludedPool> for IncludedJson {
    fn from(p: &IncludedPool) -> Self {
        IncludedJson {
            plan: p.plan.clone(),
            version_from: p.version_from.to_string(),
            from: p.from.to_string(),
            to: p.to.to_string(),
            allowance: p.allowance,
            used_before: p.used_before,
            used: p.used,
            left: p.left,
        }
    }
}

#[derive(Serialize)]
pub struct ExtraJson {
    pub plan: String,
    pub version_from: String,
    pub category: &'static str,
    pub unit_price: String,
    pub quantity: u64,
    pub amount: String,
}

impl From<&ExtraLine> for ExtraJson {
    fn from(e: &ExtraLine) -> Self {
        ExtraJson {
            plan: e.plan.clone(),
            version_from: e.version_from.to_string(),
            category: e.category.as_str(),
            unit_price: e.unit_price.to_string(),
            quantity: e.quantity,
            amount: e.amount.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct MarkupJson {
    pub plan: String,
    pub version_from: String,
    pub rate: String,
    pub base: String,
    pub amount: String,
}

impl From<&MarkupLine> for MarkupJson {
    fn from(m: &MarkupLine) -> Self {
        MarkupJson {
            plan: m.plan.clone(),
            version_from: m.version_from.to_string(),
            rate: m.rate.to_string(),
            base: m.base.to_string(),
            amount: m.amount.to_string(),
        }
    }
}

/// One element of `customer_invoices` (cli.md), and the body of
/// `GET /v1/customers/{id}/invoices/{month}`.
#[derive(Serialize)]
pub struct CustomerInvoiceJson {
    pub customer: String,
    pub name: Option<String>,
    pub month: String,
    pub currency: String,
    pub subscription: Vec<SubscriptionJson>,
    pub wabas: Vec<PassThroughJson>,
    pub pass_through: String,
    pub included: Vec<IncludedJson>,
    pub extra: Vec<ExtraJson>,
    pub markup: Vec<MarkupJson>,
    pub platform_total: String,
    pub total: String,
    pub amount_due: String,
}

impl From<&CustomerInvoice> for CustomerInvoiceJson {
    fn from(i: &CustomerInvoice) -> Self {
        CustomerInvoiceJson {
            customer: i.customer.clone(),
            name: i.name.clone(),
            month: i.month.to_string(),
            currency: i.currency.clone(),
            subscription: i.subscription.iter().map(SubscriptionJson::from).collect(),
            wabas: i.wabas.iter().map(PassThroughJson::from).collect(),
            pass_through: i.pass_through.to_string(),
            included: i.included.iter().map(IncludedJson::from).collect(),
            extra: i.extra.iter().map(ExtraJson::from).collect(),
            markup: i.markup.iter().map(MarkupJson::from).collect(),
            platform_total: i.platform_total.to_string(),
            total: i.total.to_string(),
            amount_due: i.amount_due.to_string(),
        }
    }
}

#[derive(Serialize)]
struct CustomerInvoicesJson {
    customer_invoices: Vec<CustomerInvoiceJson>,
    rejected: u64,
    duplicates: u64,
    quarantined: u64,
}

/// The `--format json` document of `wabill invoice --by customer`.
pub fn customer_invoices_json(invoices: &[&CustomerInvoice], counts: InputCounts) -> String {
    let doc = CustomerInvoicesJson {
        customer_invoices: invoices
            .iter()
            .map(|i| CustomerInvoiceJson::from(*i))
            .collect(),
        rejected: counts.rejected,
        duplicates: counts.duplicates,
        quarantined: counts.quarantined,
    };
    crate::pretty(&doc)
}

const CSV_HEADER: [&str; 14] = [
    "customer",
    "month",
    "currency",
    "kind",
    "waba",
    "provider",
    "plan",
    "version_from",
    "category",
    "quantity",
    "unit_price",
    "amount",
    "invoice_total",
    "amount_due",
];

/// `--format csv`: one row per charge (`subscription`, `pass_through`,
/// `extra`, `markup`), the invoice keys repeated on each.
pub fn customer_invoices_csv(invoices: &[&CustomerInvoice]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CSV_HEADER);
    for i in invoices {
        for (kind, cells) in charge_rows(i) {
            let mut record = vec![i.customer.clone(), i.month.to_string(), i.currency.clone()];
            record.push(kind.to_owned());
            record.extend(cells);
            record.push(i.total.to_string());
            record.push(i.amount_due.to_string());
            let _ = w.write_record(&record);
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Each charge of an invoice as CSV cells, `waba` to `amount`.
fn charge_rows(i: &CustomerInvoice) -> Vec<(&'static str, [String; 8])> {
    let none = String::new;
    let mut rows = Vec::new();
    for c in &i.subscription {
        let (plan, v) = (c.plan.clone(), c.version_from.to_string());
        let (days, unit) = (c.days.to_string(), c.price.to_string());
        let cells = [
            none(),
            none(),
            plan,
            v,
            none(),
            days,
            unit,
            c.amount.to_string(),
        ];
        rows.push(("subscription", cells));
    }
    for p in &i.wabas {
        let provider = p
            .provider
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let q = (p.conversations.total + p.messages.total).to_string();
        let cells = [
            p.waba.clone(),
            provider,
            none(),
            none(),
            none(),
            q,
            none(),
            p.amount.to_string(),
        ];
        rows.push(("pass_through", cells));
    }
    for e in &i.extra {
        let (plan, v) = (e.plan.clone(), e.version_from.to_string());
        let (category, q) = (e.category.as_str().to_owned(), e.quantity.to_string());
        let cells = [
            none(),
            none(),
            plan,
            v,
            category,
            q,
            e.unit_price.to_string(),
            e.amount.to_string(),
        ];
        rows.push(("extra", cells));
    }
    for m in &i.markup {
        let (plan, v) = (m.plan.clone(), m.version_from.to_string());
        let cells = [
            none(),
            none(),
            plan,
            v,
            none(),
            none(),
            m.rate.to_string(),
            m.amount.to_string(),
        ];
        rows.push(("markup", cells));
    }
    rows
}

/// `--format table`: each invoice for people.
pub fn customer_invoices_table(invoices: &[&CustomerInvoice], counts: InputCounts) -> String {
    let mut out = String::new();
    for i in invoices {
        let name = i
            .name
            .as_deref()
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "Customer {}{name} {} ({})\n",
            i.customer, i.month, i.currency
        ));
        out.push_str(&charges_table(i).to_string());
        out.push('\n');
        for p in &i.included {
            out.push_str(&format!(
                "Included ({} {}..{}): {} of {} used ({} before this month), {} left\n",
                p.plan,
                p.from,
                p.to,
                p.used_before + p.used,
                p.allowance,
                p.used_before,
                p.left
            ));
        }
        out.push_str(&format!(
            "Pass-through {}  Platform {}  Total {}  Amount due {} {}\n\n",
            i.pass_through, i.platform_total, i.total, i.amount_due, i.currency
        ));
    }
    out.push_str(&format!(
        "{} rejected, {} duplicates, {} quarantined\n",
        counts.rejected, counts.duplicates, counts.quarantined
    ));
    out
}

/// One row per charge of an invoice.
fn charges_table(i: &CustomerInvoice) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["Charge", "Detail", "Qty", "Unit", "Amount"]);
    let mut row = |charge: &str, detail: String, qty: String, unit: String, amount: String| {
        table.add_row(vec![charge.to_owned(), detail, qty, unit, amount]);
    };
    for c in &i.subscription {
        let detail = format!(
            "{} {}..{} ({}/{} days)",
            c.plan, c.from, c.to, c.days, c.whole_days
        );
        row(
            "subscription",
            detail,
            String::new(),
            c.price.to_string(),
            c.amount.to_string(),
        );
    }
    for p in &i.wabas {
        let mut detail = format!("{} {} {}", p.waba, p.month, p.currency);
        for c in &p.conversions {
            detail.push_str(&format!(" {} at {} {}/{}", c.amount, c.rate, c.to, c.from));
        }
        let q = p.conversations.total + p.messages.total;
        row(
            "Meta pass-through",
            detail,
            q.to_string(),
            String::new(),
            p.amount.to_string(),
        );
    }
    for e in &i.extra {
        let detail = format!("{} from {} {}", e.plan, e.version_from, e.category.as_str());
        row(
            "extra volume",
            detail,
            e.quantity.to_string(),
            e.unit_price.to_string(),
            e.amount.to_string(),
        );
    }
    for m in &i.markup {
        let detail = format!("{} on {}", m.plan, m.base);
        row(
            "markup",
            detail,
            String::new(),
            m.rate.to_string(),
            m.amount.to_string(),
        );
    }
    table
}
