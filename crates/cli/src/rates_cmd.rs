//! `wabill rates list` and `wabill rates show`.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use jiff::civil::Date;
use wabill_engine::rates::{Category, Family, RateBook, RateCard};

use crate::{Fatal, config, emit};

#[derive(Subcommand)]
pub enum RatesCommand {
    /// Every rate card and market map, with the dates they apply.
    List,
    /// The rates in force on a local date.
    Show {
        /// Local date (YYYY-MM-DD).
        #[arg(long)]
        at: Date,
        /// Only this market.
        #[arg(long)]
        market: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ShowFormat,
    },
}

#[derive(Copy, Clone, ValueEnum)]
pub enum ShowFormat {
    Table,
    Csv,
}

pub fn run(config: Option<&std::path::Path>, cmd: RatesCommand) -> Result<ExitCode, Fatal> {
    let loaded = config::load(config)?;
    let book = &loaded.book;
    let currency = &loaded.engine.platform.currency;
    match cmd {
        RatesCommand::List => emit(&list(book))?,
        RatesCommand::Show { at, market, format } => {
            if let Some(m) = &market
                && book.market_id(m).is_none()
            {
                return Err(Fatal(anyhow::anyhow!(
                    "unknown market {m:?}; `wabill rates show --at {at}` lists them"
                )));
            }
            emit(&show(book, currency, at, market.as_deref(), format))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(book: &RateBook) -> String {
    let mut cards = Table::new();
    cards.load_preset(UTF8_FULL_CONDENSED);
    cards.set_header(vec![
        "Family", "Currency", "From", "Until", "Markets", "Tiered", "Source",
    ]);
    for card in book.cards() {
        let until = book
            .next_card(card)
            .and_then(|next| next.effective_from.yesterday().ok())
            .map_or_else(|| "—".to_owned(), |d| d.to_string());
        let mut markets: Vec<_> = card.rates.keys().map(|k| k.0).collect();
        markets.sort();
        markets.dedup();
        cards.add_row(vec![
            card.family.as_str().to_owned(),
            card.currency.clone(),
            card.effective_from.to_string(),
            until,
            markets.len().to_string(),
            card.tiers.len().to_string(),
            card.source.clone(),
        ]);
    }
    let mut maps = Table::new();
    maps.load_preset(UTF8_FULL_CONDENSED);
    maps.set_header(vec![
        "Market map from",
        "Regions",
        "Prefixes",
        "Markets",
        "Sources",
    ]);
    for map in book.maps() {
        let mut markets: Vec<_> = map.regions.values().collect();
        markets.sort();
        markets.dedup();
        maps.add_row(vec![
            map.effective_from
                .map_or_else(|| "(all dates)".to_owned(), |d| d.to_string()),
            map.regions.len().to_string(),
            map.prefixes().len().to_string(),
            (markets.len() + 1).to_string(),
            map.sources.join(", "),
        ]);
    }
    format!("Rate cards\n{cards}\n\nMarket maps (a region not listed is `Other`)\n{maps}\n")
}

fn columns(card: &RateCard) -> Vec<Category> {
    let mut cats: Vec<Category> = card.rates.keys().map(|k| k.1).collect();
    cats.sort();
    cats.dedup();
    cats
}

fn show(
    book: &RateBook,
    currency: &str,
    at: Date,
    market: Option<&str>,
    format: ShowFormat,
) -> String {
    let mut out = String::new();
    let mut csv = csv::Writer::from_writer(Vec::new());
    if matches!(format, ShowFormat::Csv) {
        let _ = csv.write_record([
            "family",
            "effective_from",
            "source",
            "market",
            "category",
            "price",
            "tier_from",
            "tier_to",
        ]);
    }
    for family in [Family::Cbp2022, Family::Cbp2023, Family::Pmp] {
        let Some(card) = book.card_at(family, currency, at) else {
            continue;
        };
        let cats = columns(card);
        let mut markets: Vec<(&str, wabill_engine::market::MarketId)> = card
            .rates
            .keys()
            .map(|k| (book.market_name(k.0), k.0))
            .filter(|(name, _)| market.is_none_or(|m| m == *name))
            .collect();
        markets.sort();
        markets.dedup();
        match format {
            ShowFormat::Table => {
                let mut table = Table::new();
                table.load_preset(UTF8_FULL_CONDENSED);
                let mut header = vec!["Market".to_owned()];
                header.extend(cats.iter().map(|c| c.as_str().to_owned()));
                table.set_header(header);
                for (name, id) in &markets {
                    let mut row = vec![(*name).to_owned()];
                    for c in &cats {
                        let mut cell = card
                            .rate(*id, *c)
                            .map_or_else(|| "—".to_owned(), |r| r.to_string());
                        if let Some(bands) = card.tiers.get(&(*id, *c)) {
                            for b in bands {
                                let to = b.to.map_or_else(|| "∞".to_owned(), |t| t.to_string());
                                cell.push_str(&format!("\n{}–{to}: {}", b.from, b.price));
                            }
                        }
                        row.push(cell);
                    }
                    table.add_row(row);
                }
                out.push_str(&format!(
                    "{} card in force on {at}: from {} ({}, {})\n{table}\n\n",
                    family.as_str(),
                    card.effective_from,
                    card.currency,
                    card.source
                ));
            }
            ShowFormat::Csv => {
                let date = card.effective_from.to_string();
                let mut row = |name: &str, c: Category, price: String, from: String, to: String| {
                    let fields = [
                        family.as_str(),
                        &date,
                        &card.source,
                        name,
                        c.as_str(),
                        &price,
                        &from,
                        &to,
                    ];
                    let _ = csv.write_record(fields);
                };
                for (name, id) in &markets {
                    for c in &cats {
                        if let Some(rate) = card.rate(*id, *c) {
                            row(name, *c, rate.to_string(), String::new(), String::new());
                        }
                        for b in card.tiers.get(&(*id, *c)).into_iter().flatten() {
                            let to = b.to.map(|t| t.to_string()).unwrap_or_default();
                            row(name, *c, b.price.to_string(), b.from.to_string(), to);
                        }
                    }
                }
            }
        }
    }
    match format {
        ShowFormat::Csv => {
            String::from_utf8(csv.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        ShowFormat::Table => {
            if out.is_empty() {
                out = format!("No rate card in {currency} is in force on {at}.\n");
            }
            out
        }
    }
}
