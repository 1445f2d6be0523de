//! `wabill rates list`, `wabill rates show` and `wabill rates import`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use jiff::civil::Date;
use wabill_engine::market::MarketId;
use wabill_engine::tariff::{Category, Family, RateBook, RateCard};
use wabill_rates::{CardFlags, ImportContext, Imported, Invalid};

use crate::config;
use crate::exit::Fatal;
use crate::output::emit;

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
    /// Validate a rate card (long, wide or Meta's published layout) against
    /// the market maps and timeline in use, and report what it holds.
    Import {
        /// The card's family [default: the file's `# family:` line, else its name].
        #[arg(long, value_enum)]
        family: Option<FamilyArg>,
        /// The card's currency [default: the file's `# currency:` line, else
        /// its name, else its Currency column].
        #[arg(long)]
        currency: Option<String>,
        /// The card's first day, a local date (YYYY-MM-DD) [default: the
        /// file's `# effective_from:` line, else its name].
        #[arg(long, value_name = "YYYY-MM-DD")]
        effective_from: Option<Date>,
        /// Write the valid card here in the long layout, with header lines
        /// saying its family, currency and date.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The card (CSV).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Copy, Clone, ValueEnum)]
pub enum FamilyArg {
    #[value(name = "cbp-2022")]
    Cbp2022,
    #[value(name = "cbp-2023")]
    Cbp2023,
    #[value(name = "pmp")]
    Pmp,
}

impl From<FamilyArg> for Family {
    fn from(f: FamilyArg) -> Family {
        match f {
            FamilyArg::Cbp2022 => Family::Cbp2022,
            FamilyArg::Cbp2023 => Family::Cbp2023,
            FamilyArg::Pmp => Family::Pmp,
        }
    }
}

#[derive(Copy, Clone, ValueEnum)]
pub enum ShowFormat {
    Table,
    Csv,
}

pub fn run(config_path: Option<&Path>, cmd: RatesCommand) -> Result<ExitCode, Fatal> {
    let mut configured = config::read_config(config_path)?;
    let currency = &configured.engine.platform.currency;
    match cmd {
        RatesCommand::List => emit(&list(&configured.book))?,
        RatesCommand::Show { at, market, format } => {
            let book = &configured.book;
            if let Some(m) = &market
                && book.market_id(m).is_none()
            {
                return Err(Fatal(anyhow!(
                    "unknown market {m:?}; `wabill rates show --at {at}` lists them"
                )));
            }
            emit(&show(book, currency, at, market.as_deref(), format))?;
        }
        RatesCommand::Import {
            family,
            currency: card_currency,
            effective_from,
            out,
            file,
        } => {
            let flags = CardFlags {
                family: family.map(Family::from),
                currency: card_currency,
                effective_from,
            };
            let currencies = configured.engine.billing_currencies();
            let context = ImportContext {
                timeline: &configured.engine.timeline,
                currencies: &currencies,
            };
            import(&file, &flags, context, &mut configured.book, out.as_deref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rates import`: the report on standard output when the card is valid
/// (and the card written to `out`), else every problem on standard error
/// and exit code 2.
fn import(
    file: &Path,
    flags: &CardFlags,
    context: ImportContext<'_>,
    book: &mut RateBook,
    out: Option<&Path>,
) -> Result<(), Fatal> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
    let source = file.display().to_string();
    let imported = wabill_rates::import_card(&text, &source, flags, context, book)
        .map_err(|invalid| Fatal(anyhow!(invalid_report(&invalid))))?;
    let mut report = import_report(&imported);
    if let Some(out) = out {
        let long = wabill_rates::to_long_layout(&imported.card, book)?;
        std::fs::write(out, long).map_err(|e| anyhow!("cannot write {}: {e}", out.display()))?;
        let _ = writeln!(report, "written: {}", out.display());
    }
    emit(&report)
}

fn invalid_report(invalid: &Invalid) -> String {
    let mut text = invalid.to_string();
    for problem in &invalid.problems {
        let _ = write!(text, "\n  {problem}");
    }
    if !invalid.warnings.is_empty() {
        let _ = write!(text, "\nwarnings: {}", invalid.warnings.len());
        for warning in &invalid.warnings {
            let _ = write!(text, "\n  {warning}");
        }
    }
    text
}

fn categories(cats: &[Category]) -> String {
    let names: Vec<&str> = cats.iter().map(|c| c.as_str()).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The report of a valid card: one `key: value` line each, lists indented.
fn import_report(i: &Imported) -> String {
    let card = &i.card;
    let mut r = String::new();
    let _ = writeln!(r, "rate card: {}", card.source);
    let _ = writeln!(r, "valid: yes");
    let _ = writeln!(r, "layout: {}", i.layout.as_str());
    let _ = writeln!(
        r,
        "family: {} (from {})",
        card.family.as_str(),
        i.family_from
    );
    let _ = writeln!(r, "currency: {} (from {})", card.currency, i.currency_from);
    let _ = writeln!(
        r,
        "effective_from: {} (from {})",
        card.effective_from, i.effective_from_from
    );
    match &i.next {
        Some(next) => {
            let until = next
                .effective_from
                .yesterday()
                .map_or_else(|_| next.effective_from.to_string(), |d| d.to_string());
            let _ = writeln!(r, "applies: from {} to {until}", card.effective_from);
            let _ = writeln!(r, "next card: {} {}", next.effective_from, next.source);
        }
        None => {
            let _ = writeln!(r, "applies: from {} on", card.effective_from);
            let _ = writeln!(r, "next card: none");
        }
    }
    match &i.map {
        Some(map) => {
            let date = map
                .effective_from
                .map_or_else(|| "undated".to_owned(), |d| d.to_string());
            let _ = writeln!(
                r,
                "market map: {date} ({}), {} markets with Other",
                map.sources.join(", "),
                map.markets
            );
        }
        None => {
            let _ = writeln!(r, "market map: none in force, only Other is checked");
        }
    }
    let _ = writeln!(r, "markets priced: {}", i.markets_priced);
    let _ = writeln!(r, "categories priced: {}", categories(&i.categories));
    let _ = writeln!(r, "categories required: {}", categories(&i.required));
    let _ = writeln!(r, "tiered: {}", i.tiered.len());
    for t in &i.tiered {
        let bands: Vec<String> = t
            .bands
            .iter()
            .map(|b| format!("{} {}", wabill_rates::Bounds::from(b), b.price))
            .collect();
        let _ = writeln!(
            r,
            "  {}, {}: {}",
            t.market,
            t.category.as_str(),
            bands.join("; ")
        );
    }
    let _ = writeln!(r, "replaces: {}", i.replaces.as_deref().unwrap_or("none"));
    let _ = writeln!(r, "warnings: {}", i.warnings.len());
    for w in &i.warnings {
        let _ = writeln!(r, "  {w}");
    }
    r
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
        let mut markets: Vec<_> = card
            .rates
            .keys()
            .chain(card.tiers.keys())
            .map(|k| k.0)
            .collect();
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

/// The categories a card prices, with a list rate or volume-tier bands.
fn columns(card: &RateCard) -> Vec<Category> {
    let mut cats: Vec<Category> = card
        .rates
        .keys()
        .chain(card.tiers.keys())
        .map(|k| k.1)
        .collect();
    cats.sort();
    cats.dedup();
    cats
}

/// `rates show`: each family's card in force on `at`, as a table per card
/// or as one CSV.
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
        let markets = markets_shown(book, card, market);
        match format {
            ShowFormat::Table => out.push_str(&card_table(family, card, &markets, at)),
            ShowFormat::Csv => write_card_csv(&mut csv, family, card, &markets),
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

/// The markets a card prices (only `market` when given), by name.
fn markets_shown<'b>(
    book: &'b RateBook,
    card: &RateCard,
    market: Option<&str>,
) -> Vec<(&'b str, MarketId)> {
    let mut markets: Vec<(&str, MarketId)> = card
        .rates
        .keys()
        .chain(card.tiers.keys())
        .map(|k| (book.market_name(k.0), k.0))
        .filter(|(name, _)| market.is_none_or(|m| m == *name))
        .collect();
    markets.sort();
    markets.dedup();
    markets
}

/// A card's rates as a table, a row per market, a column per category,
/// its bands under each list rate.
fn card_table(family: Family, card: &RateCard, markets: &[(&str, MarketId)], at: Date) -> String {
    let cats = columns(card);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["Market".to_owned()];
    header.extend(cats.iter().map(|c| c.as_str().to_owned()));
    table.set_header(header);
    for (name, id) in markets {
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
    format!(
        "{} card in force on {at}: from {} ({}, {})\n{table}\n\n",
        family.as_str(),
        card.effective_from,
        card.currency,
        card.source
    )
}

/// A card's rates as CSV rows: a row per list rate and per band.
fn write_card_csv(
    csv: &mut csv::Writer<Vec<u8>>,
    family: Family,
    card: &RateCard,
    markets: &[(&str, MarketId)],
) {
    let cats = columns(card);
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
    for (name, id) in markets {
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
