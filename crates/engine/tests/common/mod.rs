//! A small language for writing billing scenarios: who wrote when, what the
//! business sent and when it was delivered, and what the engine billed.
#![allow(dead_code)]

use std::borrow::Cow;
use std::str::FromStr;

use wabill_engine::billing::{Free, Invoice};
use wabill_engine::event::{Event, EventBody, Status, TemplateCategory};
use wabill_engine::{EngineConfig, Instant, Ledger, RateBook, Rejection, bill};

pub const W: &str = "W1";
pub const P: &str = "P1";

/// Users of the scenarios, one per market.
pub const BRAZIL: &str = "5511999990001";
pub const UK: &str = "447400123456";
pub const GERMANY: &str = "4915123456789";
pub const INDIA: &str = "919812345678";
pub const MEXICO: &str = "5215512345678";
pub const SPAIN: &str = "34612345678";
pub const NIGERIA: &str = "2348031234567";
pub const ITALY: &str = "393123456789";
pub const US: &str = "12125550100";
pub const PUERTO_RICO: &str = "17875550100";
pub const DOMINICAN: &str = "18095550100";
pub const KAZAKHSTAN: &str = "77272500000";

/// `2022-03-07 10:00` (seconds optional) in UTC.
pub fn t(s: &str) -> Instant {
    let s = if s.len() == 16 {
        format!("{s}:00")
    } else {
        s.to_owned()
    };
    // A typo in a scenario must fail loudly, not become the epoch.
    let dt = jiff::civil::DateTime::from_str(&s.replace(' ', "T"))
        .unwrap_or_else(|e| panic!("time {s:?}: {e}"));
    let ts = dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or_else(|e| panic!("time {s:?}: {e}"));
    Instant::from_timestamp(ts).unwrap_or_else(|| panic!("time {s:?} is out of range"))
}

pub struct Traffic {
    pub events: Vec<Event<'static>>,
    pub config: EngineConfig,
    pub book: RateBook,
    next_id: u32,
}

/// What the engine billed, in plain values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conv {
    pub waba: String,
    pub phone: String,
    pub user: String,
    pub era: &'static str,
    pub category: &'static str,
    pub start: Instant,
    pub end: Instant,
    pub free: Free,
    pub market: String,
    pub unit_price: String,
    pub opened_by: String,
    pub messages: u32,
    /// Volume-tier band of a per-message record (rules C4).
    pub tier: Option<(u64, Option<u64>)>,
}

pub struct Outcome {
    pub conversations: Vec<Conv>,
    pub invoices: Vec<Invoice>,
    pub errors: Vec<String>,
    pub rejected: Vec<Rejection>,
    pub duplicates: u64,
}

impl Outcome {
    pub fn categories(&self) -> Vec<&'static str> {
        self.conversations.iter().map(|c| c.category).collect()
    }

    /// Meta's total over all invoices, as a string.
    pub fn meta_total(&self) -> String {
        let total: rust_decimal::Decimal = self.invoices.iter().map(|i| i.meta_total).sum();
        total.normalize().to_string()
    }

    pub fn only_invoice(&self) -> &Invoice {
        assert_eq!(
            self.invoices.len(),
            1,
            "expected one invoice: {:?}",
            self.errors
        );
        &self.invoices[0]
    }
}

fn shipped_book() -> RateBook {
    match wabill_rates::shipped() {
        Ok(book) => book,
        Err(e) => panic!("shipped rate data: {e}"),
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic::new()
    }
}

impl Traffic {
    pub fn new() -> Traffic {
        Traffic {
            events: Vec::new(),
            config: EngineConfig::new(),
            book: shipped_book(),
            next_id: 0,
        }
    }

    pub fn timezone(mut self, waba: &str, tz: &str) -> Traffic {
        let zone = match jiff::tz::db().get(tz) {
            Ok(z) => z,
            Err(e) => panic!("{tz}: {e}"),
        };
        let mut settings = self.config.waba(waba).clone();
        settings.timezone = zone;
        settings.timezone_name = tz.to_owned();
        self.config.set_waba(waba, settings);
        self
    }

    /// Puts `waba` in business portfolio `name` (rules C4); WABAs join in
    /// the order of these calls.
    pub fn portfolio(mut self, waba: &str, name: &str) -> Traffic {
        let mut settings = self.config.waba(waba).clone();
        settings.portfolio = Some(name.to_owned());
        self.config.set_waba(waba, settings);
        self
    }

    /// The era timeline, as `[("cbp-2022", "2022-02-01"), …]`.
    pub fn timeline(mut self, entries: &[(&str, &str)]) -> Traffic {
        let entries = entries
            .iter()
            .map(|(era, from)| {
                let era = wabill_engine::era::EraKind::parse(era)
                    .unwrap_or_else(|| panic!("unknown era {era}"));
                let from =
                    jiff::civil::Date::from_str(from).unwrap_or_else(|e| panic!("{from}: {e}"));
                (from, era)
            })
            .collect();
        self.config.timeline = match wabill_engine::era::Timeline::new(entries) {
            Ok(t) => t,
            Err(e) => panic!("timeline: {e}"),
        };
        self
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("wamid.{prefix}{:05}", self.next_id)
    }

    pub fn push(
        &mut self,
        at: Instant,
        waba: &str,
        phone: &str,
        user: &str,
        id: &str,
        body: EventBody<'static>,
    ) {
        self.events.push(Event {
            ts: at,
            waba: Cow::Owned(waba.to_owned()),
            phone: Cow::Owned(phone.to_owned()),
            user: Cow::Owned(user.to_owned()),
            id: Cow::Owned(id.to_owned()),
            body,
            verdict: None,
            also: None,
        });
    }

    /// The user writes (F1).
    pub fn user_writes(&mut self, user: &str, at: &str) -> String {
        let id = self.id("in");
        self.push(
            t(at),
            W,
            P,
            user,
            &id,
            EventBody::Inbound { referral: false },
        );
        id
    }

    /// The user writes from a Click to WhatsApp ad (F5).
    pub fn user_writes_from_ad(&mut self, user: &str, at: &str) -> String {
        let id = self.id("ad");
        self.push(
            t(at),
            W,
            P,
            user,
            &id,
            EventBody::Inbound { referral: true },
        );
        id
    }

    /// An outbound record only (as sent), no status.
    pub fn sent(&mut self, user: &str, at: &str, template: Option<TemplateCategory>) -> String {
        let id = self.id("out");
        self.push(t(at), W, P, user, &id, EventBody::Outbound { template });
        id
    }

    pub fn status(&mut self, user: &str, id: &str, at: &str, status: Status<'static>) {
        self.push(t(at), W, P, user, id, EventBody::Status(status));
    }

    /// A free-form business message, delivered at `at`.
    pub fn reply(&mut self, user: &str, at: &str) -> String {
        self.reply_on(W, P, user, at)
    }

    pub fn reply_on(&mut self, waba: &str, phone: &str, user: &str, at: &str) -> String {
        let id = self.id("out");
        self.push(
            t(at),
            waba,
            phone,
            user,
            &id,
            EventBody::Outbound { template: None },
        );
        self.push(
            t(at),
            waba,
            phone,
            user,
            &id,
            EventBody::Status(Status::Delivered),
        );
        id
    }

    /// A template delivered at `at`.
    pub fn template(&mut self, user: &str, at: &str, category: TemplateCategory) -> String {
        self.template_on(W, P, user, at, category)
    }

    pub fn template_on(
        &mut self,
        waba: &str,
        phone: &str,
        user: &str,
        at: &str,
        category: TemplateCategory,
    ) -> String {
        let id = self.id("tpl");
        template_with_id(self, (waba, phone, user), &id, at, category);
        id
    }

    pub fn bill(&self) -> Outcome {
        bill_events(&self.events, &self.config, &self.book)
    }
}

pub fn bill_events(events: &[Event<'_>], config: &EngineConfig, book: &RateBook) -> Outcome {
    static REGIONS: std::sync::OnceLock<std::sync::Arc<wabill_engine::RegionCache>> =
        std::sync::OnceLock::new();
    let key = wabill_engine::HashKey::fixed();
    let cache = || std::sync::Arc::new(wabill_engine::RegionCache::new(key));
    let regions = std::sync::Arc::clone(REGIONS.get_or_init(cache));
    let mut ledger = Ledger::with_regions(config.clone(), regions, key);
    let mut rejected = Vec::new();
    for e in events {
        if let Err(r) = ledger.ingest(std::slice::from_ref(e)) {
            rejected.push(r);
        }
    }
    let billing = bill(&ledger, book);
    let mut conversations = Vec::new();
    let mut invoices = Vec::new();
    let mut errors = Vec::new();
    for m in &billing.months {
        for r in &m.records {
            let (waba, phone, user) = ledger.pair_names(r.pair);
            conversations.push(Conv {
                waba: waba.to_owned(),
                phone: phone.to_owned(),
                user: user.to_owned(),
                era: r.era.as_str(),
                category: r.category.as_str(),
                start: r.start,
                end: r.end,
                free: r.free,
                market: billing.market_name(r.market).to_owned(),
                unit_price: r.unit_price.to_string(),
                opened_by: ledger.message_id(r.opened_by).to_owned(),
                messages: r.messages,
                tier: r.tier,
            });
        }
        match &m.invoice {
            Ok(i) => invoices.push(i.clone()),
            Err(es) => errors.extend(es.iter().map(ToString::to_string)),
        }
    }
    Outcome {
        conversations,
        invoices,
        errors,
        rejected,
        duplicates: ledger.duplicates(),
    }
}

// ---- Helpers for the cbp-2023 and per-message eras (appended) ----

/// `Traffic::new()` with the conversation free tier (A5/B7) at zero, so that
/// a conversation that is not free for another reason is paid.
pub fn traffic_without_free_tier() -> Traffic {
    let mut tr = Traffic::new();
    tr.config.free_tier_per_month = 0;
    tr
}

/// A Brazilian mobile number, distinct for each `n`.
pub fn brazil_number(n: u32) -> String {
    format!("551198{n:07}")
}

/// An exact decimal from its text.
pub fn dec(s: &str) -> rust_decimal::Decimal {
    match s.parse() {
        Ok(d) => d,
        Err(e) => panic!("{s}: {e}"),
    }
}

/// The records in the order of `wabill conversations`: (waba, start, phone,
/// user), then opening message id; independent of the engine's own order.
pub fn records(out: &Outcome) -> Vec<&Conv> {
    let mut all: Vec<&Conv> = out.conversations.iter().collect();
    all.sort_by(|a, b| {
        (&a.waba, a.start, &a.phone, &a.user, &a.opened_by).cmp(&(
            &b.waba,
            b.start,
            &b.phone,
            &b.user,
            &b.opened_by,
        ))
    });
    all
}

/// The record opened by message `id` (under per-message eras: its own record).
pub fn record<'a>(out: &'a Outcome, id: &str) -> &'a Conv {
    let found: Vec<&Conv> = out
        .conversations
        .iter()
        .filter(|c| c.opened_by == id)
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "expected one record opened by {id}, found {}: {:?} (errors: {:?})",
            found.len(),
            out.conversations,
            out.errors
        ),
    }
}

/// One entry of `priced`: (era, category, free, unit price).
pub fn p(
    era: &'static str,
    category: &'static str,
    free: Free,
    unit: &str,
) -> (&'static str, &'static str, Free, String) {
    (era, category, free, unit.to_owned())
}

/// (era, category, free, unit price) of every record, in `records` order.
pub fn priced(out: &Outcome) -> Vec<(&'static str, &'static str, Free, String)> {
    records(out)
        .into_iter()
        .map(|c| (c.era, c.category, c.free, c.unit_price.clone()))
        .collect()
}

/// The invoice of `waba` for local month `month` ("2023-07").
pub fn invoice_of<'a>(out: &'a Outcome, waba: &str, month: &str) -> &'a Invoice {
    match out
        .invoices
        .iter()
        .find(|i| i.waba == waba && i.month.to_string() == month)
    {
        Some(i) => i,
        None => panic!(
            "no invoice for {waba} {month}: {:?} (errors: {:?})",
            out.invoices
                .iter()
                .map(|i| (i.waba.clone(), i.month.to_string()))
                .collect::<Vec<_>>(),
            out.errors
        ),
    }
}

/// `[total, free_tier, free_entry_point, free_customer_service, paid]`.
pub fn counts(c: &wabill_engine::billing::Counts) -> [u64; 5] {
    [
        c.total,
        c.free_tier,
        c.free_entry_point,
        c.free_customer_service,
        c.paid,
    ]
}

/// An invoice line as plain values; `meta_amount` compares by value
/// (`0.0120 == 0.012`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineView {
    pub era: &'static str,
    pub market: String,
    pub category: &'static str,
    pub tier: Option<(u64, Option<u64>)>,
    pub unit_price: String,
    /// `[total, free_tier, free_entry_point, free_customer_service, paid]`.
    pub counts: [u64; 5],
    pub meta_amount: rust_decimal::Decimal,
}

pub fn line(
    era: &'static str,
    market: &str,
    category: &'static str,
    tier: Option<(u64, Option<u64>)>,
    unit_price: &str,
    counts: [u64; 5],
    meta_amount: &str,
) -> LineView {
    LineView {
        era,
        market: market.to_owned(),
        category,
        tier,
        unit_price: unit_price.to_owned(),
        counts,
        meta_amount: dec(meta_amount),
    }
}

/// The lines of an invoice, in the invoice's order.
pub fn lines(inv: &Invoice) -> Vec<LineView> {
    inv.lines
        .iter()
        .map(|l| LineView {
            era: l.era.as_str(),
            market: l.market.clone(),
            category: l.category.as_str(),
            tier: l.tier,
            unit_price: l.unit_price.to_string(),
            counts: counts(&l.counts),
            meta_amount: l.meta_amount,
        })
        .collect()
}

/// Adds a per-message (`pmp`) USD card in the long layout
/// (`market,category,price,tier_from,tier_to`), in force from local `from`.
pub fn add_pmp_card(tr: &mut Traffic, from: jiff::civil::Date, text: &str) {
    let meta = wabill_rates::CardMeta {
        family: wabill_engine::tariff::Family::Pmp,
        currency: "USD".into(),
        effective_from: from,
    };
    let source = format!("test-pmp_USD_{from}.csv");
    match wabill_rates::parse_card(text, &meta, &source, &mut tr.book) {
        Ok(card) => tr.book.add_card(card),
        Err(e) => panic!("{e}"),
    }
}

/// A template with a chosen message id, delivered at `at`.
pub fn template_with_id(
    tr: &mut Traffic,
    (waba, phone, user): (&str, &str, &str),
    id: &str,
    at: &str,
    category: TemplateCategory,
) {
    tr.push(
        t(at),
        waba,
        phone,
        user,
        id,
        EventBody::Outbound {
            template: Some(category),
        },
    );
    tr.push(
        t(at),
        waba,
        phone,
        user,
        id,
        EventBody::Status(Status::Delivered),
    );
}
