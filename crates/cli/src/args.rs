//! The command line as clap reads it: commands, options, their parsers.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use wabill_engine::era::EraKind;
use wabill_engine::time::Month;

use crate::{bench, load, rates_cmd};

#[derive(Parser)]
#[command(
    name = "wabill",
    version,
    about = "Meters and bills WhatsApp Business conversations"
)]
pub struct Cli {
    /// TOML configuration (cli.md); without it the built-in defaults apply.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Rate events and print one invoice per (WABA, local month).
    Invoice(InvoiceArgs),
    /// Print one record per conversation.
    Conversations(ConversationsArgs),
    /// Rate the same traffic under each named era and compare, per market
    /// and category.
    Whatif(WhatifArgs),
    /// Compare wabill's derivation with Meta's verdict (and analytics), per
    /// WABA and month; exit 1 when they differ.
    Reconcile(ReconcileArgs),
    /// Show the rate cards and market maps in use.
    #[command(subcommand)]
    Rates(rates_cmd::RatesCommand),
    /// Write synthetic traffic (deterministic for a seed).
    Gen(GenArgs),
    /// Generate a month of traffic and print its invoices.
    Demo(DemoArgs),
    /// Measure `invoice` against a parse-only pass on generated traffic.
    Bench(bench::BenchArgs),
    /// Parse events without rating them (the benchmark's floor).
    #[command(hide = true)]
    Parse(ParseArgs),
    /// Run the HTTP service (service.md): webhooks, platform API, live
    /// window and cost answers, over a durable event log.
    Serve(ServeArgs),
    /// Apply the store's pending schema migrations (the service applies
    /// them on start too) and print its schema version.
    Migrate(StoreArgs),
    /// Write the store's event log (or a WABA's, a month's) as NDJSON that
    /// `invoice` reads back to the same invoices.
    Export(ExportArgs),
    /// Load event files into a store, as the service would take them.
    Import(ImportArgs),
    /// Copy the embedded store into a new file while the service runs.
    Backup(BackupArgs),
    /// Load a running service over HTTP (the service benchmark).
    #[command(hide = true)]
    Load(load::LoadArgs),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides `[server] listen`; also WABILL_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
    /// Directory of the event log (overrides `[server] data_dir`; also
    /// WABILL_DATA_DIR).
    #[arg(long, conflicts_with = "store")]
    pub data_dir: Option<PathBuf>,
    /// The store: a PostgreSQL URL (postgres://…) or a data directory
    /// (overrides `[server] store` and `data_dir`; also WABILL_STORE).
    #[arg(long)]
    pub store: Option<String>,
    /// `single` (webhooks, store and reads in one process), `receiver`
    /// (webhooks published to JetStream) or `worker` (partitions consumed
    /// into PostgreSQL): service.md, "Cluster".
    #[arg(long, default_value = "single", value_parser = ["single", "receiver", "worker"])]
    pub role: String,
}

#[derive(Args)]
pub struct StoreArgs {
    /// The store: a PostgreSQL URL (postgres://…) or a data directory.
    /// Default: the configuration's `[server] store` or `data_dir`.
    #[arg(long)]
    pub store: Option<String>,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only the events that bill this WABA's invoices (with its portfolio
    /// and the WABAs its moved numbers went through).
    #[arg(long)]
    pub waba: Option<String>,
    /// Only the events that bill this local month (YYYY-MM): the month's,
    /// and the history of the users in it.
    #[arg(long, value_parser = parse_month)]
    pub month: Option<Month>,
    /// Write to this new file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Event files (any shape `invoice` reads); `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Business phone number id for On-Premises bodies (their WABA is `--waba`).
    #[arg(long)]
    pub phone: Option<String>,
    /// WABA of On-Premises bodies.
    #[arg(long)]
    pub waba: Option<String>,
    /// The provider the files came through, for lines that name none.
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<wabill_engine::carriers::Provider>,
}

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The new file to write (never overwritten).
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Args)]
pub struct InputArgs {
    /// Event files (normalized NDJSON, Cloud API or On-Premises bodies, mixed
    /// line by line); `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// Business phone number id for On-Premises bodies, which carry none
    /// (their WABA is `--waba`).
    #[arg(long)]
    pub phone: Option<String>,
    /// The provider the input came through (meta, 360dialog, zendesk):
    /// events from one that `[[phone]]` does not say carried their phone
    /// then are counted (rules P6). Default: 360dialog for On-Premises
    /// bodies, else not known.
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<wabill_engine::carriers::Provider>,
    /// Print run statistics (events, seconds, peak memory) to standard error.
    #[arg(long, hide = true)]
    pub stats: bool,
}

#[derive(Args)]
pub struct Select {
    /// Only this local month (YYYY-MM); the free tier still counts the whole month.
    #[arg(long, value_parser = parse_month)]
    pub month: Option<Month>,
    /// Only this WABA. It is also the WABA of On-Premises bodies, which carry
    /// none (with `--phone`).
    #[arg(long)]
    pub waba: Option<String>,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum InvoiceBy {
    Waba,
    Customer,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum InvoiceFormat {
    Json,
    Csv,
    Table,
}

#[derive(Args)]
pub struct InvoiceArgs {
    #[command(flatten)]
    pub select: Select,
    /// One invoice per WABA (Meta's charges), or per customer (what the
    /// platform invoices: plans, pass-through, its fee).
    #[arg(long, value_enum, default_value = "waba")]
    pub by: InvoiceBy,
    /// Only this customer (with `--by customer`).
    #[arg(long, requires = "by")]
    pub customer: Option<String>,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<InvoiceFormat>,
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum ReconcileFormat {
    Json,
    Table,
}

#[derive(Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub select: Select,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<ReconcileFormat>,
    /// An export of Meta's `pricing_analytics` or `conversation_analytics`
    /// (the Graph API's JSON); repeat for more.
    #[arg(long, value_name = "FILE")]
    pub analytics: Vec<PathBuf>,
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Copy, Clone, ValueEnum)]
pub enum ConversationFormat {
    Ndjson,
    Csv,
    Table,
}

#[derive(Args)]
pub struct ConversationsArgs {
    #[command(flatten)]
    pub select: Select,
    /// Output format [default: table on a terminal, ndjson otherwise]
    #[arg(long, value_enum)]
    pub format: Option<ConversationFormat>,
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Args)]
pub struct WhatifArgs {
    /// An era to try (cbp-2022, cbp-2023, pmp-2025, pmp-2026); repeat to
    /// compare. Each is applied to all of the traffic, with its rules and the
    /// rate card of its family in force at the traffic's dates (never one
    /// older than the era's own start).
    #[arg(long = "era", required = true, value_parser = parse_era)]
    pub eras: Vec<EraKind>,
    #[command(flatten)]
    pub select: Select,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<InvoiceFormat>,
    #[command(flatten)]
    pub input: InputArgs,
}

fn parse_era(s: &str) -> Result<EraKind, String> {
    EraKind::parse(s)
        .ok_or_else(|| format!("unknown era {s:?} (known: cbp-2022, cbp-2023, pmp-2025, pmp-2026)"))
}

#[derive(Copy, Clone, ValueEnum)]
pub enum GenFormat {
    Ndjson,
    Cloud,
}

#[derive(Args)]
pub struct GenArgs {
    /// Number of events to write.
    #[arg(long)]
    pub events: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: GenFormat,
    /// First day of traffic (UTC).
    #[arg(long, default_value = "2022-03-01")]
    pub start: jiff::civil::Date,
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    #[arg(long, default_value_t = 3)]
    pub wabas: u32,
    /// Size of the user population (default: max(1000, events / 40)).
    #[arg(long)]
    pub users: Option<u32>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Leave out `outbound` records and give every status the `pricing`
    /// and `conversation` objects Meta would send (derived by the
    /// configuration's rules); Cloud API bodies also get payment, group and
    /// withheld-number items. Held in memory: sized for tests and demos.
    #[arg(long)]
    pub webhooks_only: bool,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Events in the generated month.
    #[arg(long, default_value_t = 300_000)]
    pub events: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args)]
pub struct ParseArgs {
    /// WABA of On-Premises bodies.
    #[arg(long)]
    pub waba: Option<String>,
    #[command(flatten)]
    pub input: InputArgs,
}

fn parse_provider(s: &str) -> Result<wabill_engine::carriers::Provider, String> {
    wabill_engine::carriers::Provider::parse(s)
        .ok_or_else(|| format!("{s:?} is not meta, 360dialog or zendesk"))
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("{s:?} is not a month (YYYY-MM)"))
}
