//! `wabill whatif`: the same traffic rated under several eras, side by side
//! per market and category.

use std::collections::BTreeMap;

use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};
use rust_decimal::Decimal;
use serde::Serialize;
use wabill_engine::billing::{Counts, Invoice, exact_add};
use wabill_engine::era::EraKind;
use wabill_engine::tariff::Category;

use crate::{CountsJson, right};

/// One era's result: the invoices of the selected WABA-months.
pub struct EraRun<'a> {
    pub era: EraKind,
    pub invoices: Vec<&'a Invoice>,
}

#[derive(Clone, Debug, Default)]
struct Cellwise {
    counts: Counts,
    meta_amount: Decimal,
}

#[derive(Clone, Debug, Default)]
struct Totals {
    counts: Counts,
    meta_total: Decimal,
    platform_fee: Decimal,
    total: Decimal,
}

/// The comparison: per (market, category), per era, quantity and cost.
pub struct Whatif {
    currency: String,
    eras: Vec<EraKind>,
    rows: BTreeMap<(String, Category), Vec<Option<Cellwise>>>,
    totals: Vec<Totals>,
}

fn add_counts(into: &mut Counts, c: &Counts) {
    into.total += c.total;
    into.free_tier += c.free_tier;
    into.free_entry_point += c.free_entry_point;
    into.free_customer_service += c.free_customer_service;
    into.paid += c.paid;
}

impl Whatif {
    /// Sums each era's invoices; None if a sum cannot be exact (never with
    /// real prices: each invoice was computed exactly).
    pub fn new(currency: &str, runs: &[EraRun<'_>]) -> Option<Whatif> {
        let n = runs.len();
        let mut rows: BTreeMap<(String, Category), Vec<Option<Cellwise>>> = BTreeMap::new();
        let mut totals = vec![Totals::default(); n];
        for (e, run) in runs.iter().enumerate() {
            for invoice in &run.invoices {
                let t = &mut totals[e];
                add_counts(&mut t.counts, &invoice.conversations);
                add_counts(&mut t.counts, &invoice.messages);
                t.meta_total = exact_add(t.meta_total, invoice.meta_total)?;
                t.platform_fee = exact_add(t.platform_fee, invoice.platform_fee.amount)?;
                t.total = exact_add(t.total, invoice.total)?;
                for line in &invoice.lines {
                    let row = rows
                        .entry((line.market.clone(), line.category))
                        .or_insert_with(|| vec![None; n]);
                    let cell = row[e].get_or_insert_with(Cellwise::default);
                    add_counts(&mut cell.counts, &line.counts);
                    cell.meta_amount = exact_add(cell.meta_amount, line.meta_amount)?;
                }
            }
        }
        Some(Whatif {
            currency: currency.to_owned(),
            eras: runs.iter().map(|r| r.era).collect(),
            rows,
            totals,
        })
    }

    fn unit(era: EraKind) -> &'static str {
        if era.rules().per_message() {
            "messages"
        } else {
            "conversations"
        }
    }

    /// A person's view: quantity and Meta cost per era, then totals.
    pub fn table(&self) -> String {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let mut header = vec![Cell::new("Market"), Cell::new("Category")];
        for era in &self.eras {
            header.push(Cell::new(format!("{} {}", era.as_str(), Self::unit(*era))));
            header.push(Cell::new(format!("{} cost", era.as_str())));
        }
        table.set_header(header);
        for ((market, category), cells) in &self.rows {
            let mut row = vec![Cell::new(market), Cell::new(category.as_str())];
            for cell in cells {
                match cell {
                    Some(c) => {
                        row.push(right(c.counts.total));
                        row.push(right(c.meta_amount));
                    }
                    None => {
                        row.push(right("–"));
                        row.push(right("–"));
                    }
                }
            }
            table.add_row(row);
        }
        let mut add_total = |label: &str, value: &dyn Fn(&Totals) -> (String, Decimal)| {
            let mut row = vec![Cell::new(label), Cell::new("")];
            for t in &self.totals {
                let (quantity, amount) = value(t);
                row.push(right(quantity));
                row.push(right(amount));
            }
            table.add_row(row);
        };
        add_total("Meta total", &|t| {
            (t.counts.total.to_string(), t.meta_total)
        });
        add_total("Platform fee", &|t| (String::new(), t.platform_fee));
        add_total("Total", &|t| (String::new(), t.total));
        let mut out = format!(
            "What if each era applied to all of this traffic ({})\n",
            self.currency
        );
        out.push_str(&table.to_string());
        out.push('\n');
        if self.rows.is_empty() {
            out.push_str("No conversation or priced message in the selection.\n");
        }
        out
    }

    /// One row per (market, category, era), for spreadsheets.
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "market",
            "category",
            "era",
            "unit",
            "quantity",
            "free_tier",
            "free_entry_point",
            "free_customer_service",
            "paid",
            "meta_amount",
        ]);
        for ((market, category), cells) in &self.rows {
            for (era, cell) in self.eras.iter().zip(cells) {
                let Some(c) = cell else { continue };
                let _ = w.write_record([
                    market.as_str(),
                    category.as_str(),
                    era.as_str(),
                    Self::unit(*era),
                    &c.counts.total.to_string(),
                    &c.counts.free_tier.to_string(),
                    &c.counts.free_entry_point.to_string(),
                    &c.counts.free_customer_service.to_string(),
                    &c.counts.paid.to_string(),
                    &c.meta_amount.to_string(),
                ]);
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    pub fn json(&self) -> String {
        #[derive(Serialize)]
        struct CellJson {
            era: &'static str,
            unit: &'static str,
            #[serde(flatten)]
            counts: CountsJson,
            meta_amount: String,
        }
        #[derive(Serialize)]
        struct RowJson<'a> {
            market: &'a str,
            category: &'static str,
            eras: Vec<CellJson>,
        }
        #[derive(Serialize)]
        struct TotalJson {
            era: &'static str,
            #[serde(flatten)]
            counts: CountsJson,
            meta_total: String,
            platform_fee: String,
            total: String,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            currency: &'a str,
            eras: Vec<&'static str>,
            rows: Vec<RowJson<'a>>,
            totals: Vec<TotalJson>,
        }
        let doc = Doc {
            currency: &self.currency,
            eras: self.eras.iter().map(|e| e.as_str()).collect(),
            rows: self
                .rows
                .iter()
                .map(|((market, category), cells)| RowJson {
                    market,
                    category: category.as_str(),
                    eras: self
                        .eras
                        .iter()
                        .zip(cells)
                        .filter_map(|(era, cell)| {
                            cell.as_ref().map(|c| CellJson {
                                era: era.as_str(),
                                unit: Self::unit(*era),
                                counts: CountsJson::from(&c.counts),
                                meta_amount: c.meta_amount.to_string(),
                            })
                        })
                        .collect(),
                })
                .collect(),
            totals: self
                .eras
                .iter()
                .zip(&self.totals)
                .map(|(era, t)| TotalJson {
                    era: era.as_str(),
                    counts: CountsJson::from(&t.counts),
                    meta_total: t.meta_total.to_string(),
                    platform_fee: t.platform_fee.to_string(),
                    total: t.total.to_string(),
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }
}
