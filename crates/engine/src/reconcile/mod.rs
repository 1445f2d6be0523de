//! Reconciliation (issue 16 point 6): wabill's derivation beside Meta's
//! verdict, per WABA and local month. Both sides are billed by the same
//! functions, on the two bases of rules section 7, so their counts and
//! amounts use the same cards, tiers and free tiers; every delivered
//! message whose verdict the two bases read differently is a
//! disagreement, classified where its cause can be told.

mod analytics;
mod explain;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::billing::{Record, WabaMonth, attribution, bill_with};
use crate::config::{Basis, EngineConfig};
use crate::conversation::Free;
use crate::era::EraKind;
use crate::ledger::Ledger;
use crate::live::TimelineEntry;
use crate::tariff::{Category, RateBook};
use crate::time::{HOURS_24, Instant, Month};

pub use analytics::{AnalyticsRow, MetaCount, compare_analytics};
pub use explain::Class;

/// One side's quantity and Meta's amount for a line.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub quantity: u64,
    pub amount: Decimal,
}

/// A market, category and free kind, counted on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideBySide {
    pub market: String,
    pub category: Category,
    pub free: Free,
    pub wabill: Tally,
    pub meta: Tally,
}

/// What one side says of a message: the conversation (or message record)
/// it belongs to and how that is billed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub era: EraKind,
    pub category: Category,
    pub free: Free,
    /// wabill: the id of the message that opened the conversation; Meta:
    /// its `conversation.id` (or, under per-message pricing, the message).
    pub conversation: String,
    pub start: Instant,
    pub end: Instant,
    /// The rule that decided it (wabill), or what the verdict said (Meta).
    pub rule: String,
}

/// A message the two sides bill differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub message: String,
    pub phone: String,
    pub user: String,
    pub delivered: Option<Instant>,
    pub class: Class,
    /// None: wabill bills nothing for it (no delivery).
    pub wabill: Option<Answer>,
    /// None: Meta's verdict could not be read.
    pub meta: Option<Answer>,
    /// The pair's messages around it.
    pub timeline: Vec<TimelineEntry>,
}

/// One WABA-month reconciled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciliation {
    pub waba: String,
    pub month: Month,
    /// By market, category, free kind.
    pub lines: Vec<SideBySide>,
    /// Meta's amount on each side.
    pub wabill_total: Decimal,
    pub meta_total: Decimal,
    /// Delivered messages that had a verdict to compare with.
    pub compared: u64,
    /// Delivered messages without one (compared too: on Meta's basis they
    /// may follow conversations Meta's verdicts opened).
    pub without_verdict: u64,
    /// In delivery order (ties by message id).
    pub disagreements: Vec<Disagreement>,
}

impl Reconciliation {
    /// A WABA-month with nothing counted yet.
    pub fn empty(waba: String, month: Month) -> Reconciliation {
        Reconciliation {
            waba,
            month,
            lines: Vec::new(),
            wabill_total: Decimal::ZERO,
            meta_total: Decimal::ZERO,
            compared: 0,
            without_verdict: 0,
            disagreements: Vec::new(),
        }
    }

    pub fn agrees(&self) -> bool {
        self.disagreements.is_empty() && self.lines.iter().all(|l| l.wabill == l.meta)
    }
}

/// Where a record sits in a billing: (month index, record index).
type Place = (usize, usize);

/// `config` on the given basis.
fn on_basis(config: &EngineConfig, basis: Basis) -> EngineConfig {
    let mut c = config.clone();
    c.basis = basis;
    c
}

/// The ledger billed on both bases (rules section 7): wabill's side and
/// Meta's of a reconciliation. [`compare_analytics`] reads wabill's too.
pub struct Bases {
    pub derived: Vec<WabaMonth>,
    pub meta: Vec<WabaMonth>,
}

impl Bases {
    pub fn bill(ledger: &Ledger, book: &RateBook, config: &EngineConfig) -> Bases {
        Bases {
            derived: bill_with(ledger, book, &on_basis(config, Basis::Derived)).months,
            meta: bill_with(ledger, book, &on_basis(config, Basis::Meta)).months,
        }
    }
}

/// Reconciles every WABA-month of the ledger, sorted by WABA then month.
pub fn reconcile(ledger: &Ledger, book: &RateBook, config: &EngineConfig) -> Vec<Reconciliation> {
    reconcile_bases(ledger, book, config, &Bases::bill(ledger, book, config))
}

/// [`reconcile`] of a ledger already billed on both bases.
pub fn reconcile_bases(
    ledger: &Ledger,
    book: &RateBook,
    config: &EngineConfig,
    bases: &Bases,
) -> Vec<Reconciliation> {
    let (derived_config, meta_config) = (
        on_basis(config, Basis::Derived),
        on_basis(config, Basis::Meta),
    );
    let (derived, meta) = (&bases.derived, &bases.meta);
    let meta_went: FxHashMap<u32, u32> = attribution(ledger, &meta_config).into_iter().collect();
    let (d_places, m_places) = (places(derived), places(meta));
    let mut out = skeleton(derived, meta, book);
    let index: FxHashMap<(String, Month), usize> = out
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.waba.clone(), r.month), i))
        .collect();
    // Each derived month's place in `out`.
    let month_at: Vec<Option<usize>> = derived
        .iter()
        .map(|m| index.get(&(m.waba.clone(), m.month)).copied())
        .collect();
    for (msg, opener) in attribution(ledger, &derived_config) {
        let Some(&d) = d_places.get(&opener) else {
            continue;
        };
        let Some(i) = month_at[d.0] else {
            continue;
        };
        let charge = ledger.meta_charge(msg);
        if charge.is_some() {
            out[i].compared += 1;
        } else {
            out[i].without_verdict += 1;
        }
        let m = meta_went.get(&msg).and_then(|o| m_places.get(o));
        let d_record = &derived[d.0].records[d.1];
        let m_record = m.map(|&(a, b)| &meta[a].records[b]);
        if let Some(class) = explain::differs(ledger, msg, d_record, m_record, charge.as_ref()) {
            let wabill = explain::wabill_answer(ledger, msg, d_record);
            let meta_answer = m_record
                .filter(|_| class != Class::UnknownValue)
                .map(|r| explain::meta_answer(ledger, msg, r));
            out[i]
                .disagreements
                .push(disagreement(ledger, msg, class, Some(wabill), meta_answer));
        }
    }
    explain::undelivered(ledger, config, &index, &mut out);
    timelines(ledger, &mut out);
    for r in &mut out {
        r.disagreements
            .sort_by(|a, b| (a.delivered, &a.message).cmp(&(b.delivered, &b.message)));
    }
    out
}

fn places(months: &[WabaMonth]) -> FxHashMap<u32, Place> {
    months
        .iter()
        .enumerate()
        .flat_map(|(m, month)| {
            month
                .records
                .iter()
                .enumerate()
                .map(move |(r, rec)| (rec.opened_by, (m, r)))
        })
        .collect()
}

/// Every WABA-month of either side, with its lines side by side.
fn skeleton(derived: &[WabaMonth], meta: &[WabaMonth], book: &RateBook) -> Vec<Reconciliation> {
    type Key = (String, Month);
    type LineKey = (String, Category, Free);
    let mut tallies: BTreeMap<Key, BTreeMap<LineKey, (Tally, Tally)>> = BTreeMap::new();
    for (side, months) in [(0, derived), (1, meta)] {
        for month in months {
            let lines = tallies
                .entry((month.waba.clone(), month.month))
                .or_default();
            for r in &month.records {
                let key = (book.market_name(r.market).to_owned(), r.category, r.free);
                let tally = lines.entry(key).or_default();
                let tally = if side == 0 {
                    &mut tally.0
                } else {
                    &mut tally.1
                };
                count(tally, r);
            }
        }
    }
    tallies
        .into_iter()
        .map(|((waba, month), lines)| {
            let lines: Vec<SideBySide> = lines
                .into_iter()
                .map(|((market, category, free), (wabill, meta))| SideBySide {
                    market,
                    category,
                    free,
                    wabill,
                    meta,
                })
                .collect();
            Reconciliation {
                wabill_total: lines.iter().map(|l| l.wabill.amount).sum(),
                meta_total: lines.iter().map(|l| l.meta.amount).sum(),
                lines,
                ..Reconciliation::empty(waba, month)
            }
        })
        .collect()
}

fn count(tally: &mut Tally, r: &Record) {
    tally.quantity += 1;
    if r.free == Free::None {
        tally.amount += r.unit_price;
    }
}

fn disagreement(
    ledger: &Ledger,
    msg: u32,
    class: Class,
    wabill: Option<Answer>,
    meta: Option<Answer>,
) -> Disagreement {
    let view = ledger.view_of(msg);
    let pair = view.delivery.map(|d| d.1).or(view.outbound.map(|o| o.1));
    let (phone, user) = pair.map_or((String::new(), String::new()), |p| {
        let (_, phone, user) = ledger.pair_names(p);
        (phone.to_owned(), user.to_owned())
    });
    Disagreement {
        message: ledger.message_id(msg).to_owned(),
        phone,
        user,
        delivered: view.delivery.map(|d| d.0),
        class,
        wabill,
        meta,
        timeline: Vec::new(),
    }
}

/// Each disagreement's pair's messages from 24 h before the earliest
/// start either side gives to the latest end, read in one pass over the
/// ledger.
fn timelines(ledger: &Ledger, out: &mut [Reconciliation]) {
    let mut wanted: BTreeMap<(String, String, String), Vec<TimelineEntry>> = BTreeMap::new();
    for r in out.iter() {
        for d in &r.disagreements {
            wanted.insert(
                (r.waba.clone(), d.phone.clone(), d.user.clone()),
                Vec::new(),
            );
        }
    }
    if wanted.is_empty() {
        return;
    }
    let pairs: FxHashMap<u32, (String, String, String)> = wanted
        .keys()
        .filter_map(|k| Some((ledger.pair_index(&k.0, &k.1, &k.2)?, k.clone())))
        .collect();
    for msg in 0..ledger.n_messages() as u32 {
        let view = ledger.view_of(msg);
        let id = ledger.message_id(msg);
        let mut push = |pair: u32, entry: TimelineEntry| {
            if let Some(list) = pairs.get(&pair).and_then(|k| wanted.get_mut(k)) {
                list.push(entry);
            }
        };
        if let Some((at, pair, referral)) = view.inbound {
            push(
                pair,
                entry(
                    at,
                    "inbound",
                    id,
                    "referral",
                    referral.then(|| "entry_point".to_owned()),
                ),
            );
        }
        if let Some((at, pair, template)) = view.outbound {
            let detail = template.map(|t| Category::from(t).as_str().to_owned());
            push(pair, entry(at, "outbound", id, "template", detail));
        }
        if let Some((at, pair)) = view.delivery {
            let detail = ledger.verdict(msg).map(|v| explain::verdict_text(&v));
            push(pair, entry(at, "delivered", id, "meta", detail));
        }
    }
    for list in wanted.values_mut() {
        // Same instant: a message is sent before it is delivered.
        let rank = |kind: &str| {
            ["inbound", "outbound", "delivered"]
                .iter()
                .position(|k| *k == kind)
        };
        list.sort_by(|a, b| (a.at, rank(a.kind), &a.id).cmp(&(b.at, rank(b.kind), &b.id)));
    }
    for r in out.iter_mut() {
        for d in &mut r.disagreements {
            let Some(list) = wanted.get(&(r.waba.clone(), d.phone.clone(), d.user.clone())) else {
                continue;
            };
            let answers = [&d.wabill, &d.meta];
            let starts = answers.iter().filter_map(|a| a.as_ref().map(|a| a.start));
            let ends = answers.iter().filter_map(|a| a.as_ref().map(|a| a.end));
            let from = starts.chain(d.delivered).min().map(|s| s.plus(-HOURS_24));
            let to = ends.chain(d.delivered).max();
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            d.timeline = around(list, (from, to), d.delivered.unwrap_or(to)).to_vec();
        }
    }
}

/// Most entries a disagreement's timeline shows.
const TIMELINE_MAX: usize = 200;

/// The entries of `list` (sorted by time) from `from` to `to`, at most
/// [`TIMELINE_MAX`] of them, those nearest `at`.
fn around(list: &[TimelineEntry], (from, to): (Instant, Instant), at: Instant) -> &[TimelineEntry] {
    let lo = list.partition_point(|e| e.at < from);
    let hi = list.partition_point(|e| e.at <= to).max(lo);
    let mid = list.partition_point(|e| e.at < at).clamp(lo, hi);
    let start = mid.saturating_sub(TIMELINE_MAX / 2).max(lo);
    let end = (start + TIMELINE_MAX).min(hi);
    let start = end.saturating_sub(TIMELINE_MAX).max(lo);
    &list[start..end]
}

fn entry(
    at: Instant,
    kind: &'static str,
    id: &str,
    detail_key: &'static str,
    detail: Option<String>,
) -> TimelineEntry {
    TimelineEntry {
        at,
        kind,
        id: id.to_owned(),
        detail_key,
        detail,
    }
}
