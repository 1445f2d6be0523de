//! `wabill`: bills WhatsApp Business conversations from message events.
//!
//! The shell around the engine: reads files, configuration and options,
//! feeds the engine, prints its results. Exit codes (cli.md): 0 success,
//! 1 some input rejected, 2 usage, configuration or data error.

mod bench;
mod config;
mod load;
mod rates_cmd;
mod read;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, Parser, Subcommand, ValueEnum};
use wabill_engine::billing::{Invoice, WabaMonth, bill_with};
use wabill_engine::era::{EraKind, Timeline};
use wabill_engine::time::Month;
use wabill_engine::{Ledger, bill};
use wabill_ingest::Route;

// mimalloc: 14 % fewer instructions per webhook than glibc's malloc, and
// no arena lock between the service's threads; its features are set in the
// workspace's Cargo.toml (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "wabill",
    version,
    about = "Meters and bills WhatsApp Business conversations"
)]
struct Cli {
    /// TOML configuration (cli.md); without it the built-in defaults apply.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rate events and print one invoice per (WABA, local month).
    Invoice(InvoiceArgs),
    /// Print one record per conversation.
    Conversations(ConversationsArgs),
    /// Rate the same traffic under each named era and compare, per market
    /// and category.
    Whatif(WhatifArgs),
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
    /// Load a running service over HTTP (the service benchmark).
    #[command(hide = true)]
    Load(load::LoadArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (overrides `[server] listen`; also WABILL_LISTEN).
    #[arg(long)]
    listen: Option<String>,
    /// Directory of the event log (overrides `[server] data_dir`; also
    /// WABILL_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct InputArgs {
    /// Event files (normalized NDJSON, Cloud API or On-Premises bodies, mixed
    /// line by line); `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// Business phone number id for On-Premises bodies, which carry none
    /// (their WABA is `--waba`).
    #[arg(long)]
    phone: Option<String>,
    /// Print run statistics (events, seconds, peak memory) to standard error.
    #[arg(long, hide = true)]
    stats: bool,
}

#[derive(Args)]
struct Select {
    /// Only this local month (YYYY-MM); the free tier still counts the whole month.
    #[arg(long, value_parser = parse_month)]
    month: Option<Month>,
    /// Only this WABA. It is also the WABA of On-Premises bodies, which carry
    /// none (with `--phone`).
    #[arg(long)]
    waba: Option<String>,
}

#[derive(Copy, Clone, ValueEnum)]
enum InvoiceFormat {
    Json,
    Csv,
    Table,
}

#[derive(Args)]
struct InvoiceArgs {
    #[command(flatten)]
    select: Select,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    format: Option<InvoiceFormat>,
    #[command(flatten)]
    input: InputArgs,
}

#[derive(Copy, Clone, ValueEnum)]
enum ConversationFormat {
    Ndjson,
    Csv,
    Table,
}

#[derive(Args)]
struct ConversationsArgs {
    #[command(flatten)]
    select: Select,
    /// Output format [default: table on a terminal, ndjson otherwise]
    #[arg(long, value_enum)]
    format: Option<ConversationFormat>,
    #[command(flatten)]
    input: InputArgs,
}

#[derive(Args)]
struct WhatifArgs {
    /// An era to try (cbp-2022, cbp-2023, pmp-2025, pmp-2026); repeat to
    /// compare. Each is applied to all of the traffic, with its rules and the
    /// rate card of its family in force at the traffic's dates (never one
    /// older than the era's own start).
    #[arg(long = "era", required = true, value_parser = parse_era)]
    eras: Vec<EraKind>,
    #[command(flatten)]
    select: Select,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(long, value_enum)]
    format: Option<InvoiceFormat>,
    #[command(flatten)]
    input: InputArgs,
}

fn parse_era(s: &str) -> Result<EraKind, String> {
    EraKind::parse(s)
        .ok_or_else(|| format!("unknown era {s:?} (known: cbp-2022, cbp-2023, pmp-2025, pmp-2026)"))
}

#[derive(Copy, Clone, ValueEnum)]
enum GenFormat {
    Ndjson,
    Cloud,
}

#[derive(Args)]
struct GenArgs {
    /// Number of events to write.
    #[arg(long)]
    events: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value = "ndjson")]
    format: GenFormat,
    /// First day of traffic (UTC).
    #[arg(long, default_value = "2022-03-01")]
    start: jiff::civil::Date,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 3)]
    wabas: u32,
    /// Size of the user population (default: max(1000, events / 40)).
    #[arg(long)]
    users: Option<u32>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct DemoArgs {
    /// Events in the generated month.
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct ParseArgs {
    /// WABA of On-Premises bodies.
    #[arg(long)]
    waba: Option<String>,
    #[command(flatten)]
    input: InputArgs,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("{s:?} is not a month (YYYY-MM)"))
}

/// An error that makes the command exit 2 with nothing on standard output.
struct Fatal(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Fatal(e)) => {
            eprintln!("wabill: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Fatal> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Invoice(args) => invoice(config, args),
        Command::Conversations(args) => conversations(config, args),
        Command::Whatif(args) => whatif(config, args),
        Command::Rates(cmd) => rates_cmd::run(config, cmd),
        Command::Gen(args) => generate(args),
        Command::Demo(args) => demo(config, args),
        Command::Bench(args) => bench::run(args),
        Command::Parse(args) => parse_only(args),
        Command::Serve(args) => serve(config, args),
        Command::Load(args) => load::run(args),
    }
}

fn serve(config: Option<&std::path::Path>, args: ServeArgs) -> Result<ExitCode, Fatal> {
    let loaded = config::load(config)?;
    let mut service = wabill_server::config::load(config)?;
    if let Some(listen) = args.listen {
        service.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        service.data_dir = dir;
    }
    wabill_server::serve(service, loaded.engine, loaded.book)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<(), Fatal> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// How many events ahead the fold touches the message table.
const LOOKAHEAD: usize = 8;

/// Messages about rejected input beyond this many are counted, not printed.
const MAX_PRINTED_REJECTIONS: u64 = 1000;

struct Loaded {
    ledger: Ledger,
    book: wabill_engine::RateBook,
    rejected: u64,
    started: std::time::Instant,
    bytes: u64,
}

/// A secret key for the ledger's tables, drawn from the OS for this run:
/// message ids in the input cannot be crafted to collide under it.
fn hash_key() -> wabill_engine::HashKey {
    wabill_engine::HashKey::drawn_from(&std::hash::RandomState::new())
}

/// Reads every input into a ledger, reporting bad lines on standard error.
fn load(
    config: Option<&std::path::Path>,
    input: &InputArgs,
    waba: Option<&str>,
) -> Result<Loaded, Fatal> {
    let started = std::time::Instant::now();
    let loaded = config::load(config)?;
    let mut ledger = Ledger::new(loaded.engine, hash_key());
    let route = Route {
        waba,
        phone: input.phone.as_deref(),
    };
    let inputs: Vec<read::Input> = input
        .files
        .iter()
        .map(|name| read::Input { name: name.clone() })
        .collect();
    let mut rejected = 0u64;
    let mut report = |input: &read::Input, line: u64, reason: &dyn std::fmt::Display| {
        rejected += 1;
        if rejected <= MAX_PRINTED_REJECTIONS {
            let name = if input.name == "-" {
                "<stdin>"
            } else {
                &input.name
            };
            eprintln!("{name}:{line}: {reason}");
        }
    };
    // NDJSON events take about 280 bytes each; a hint, not a limit.
    let input_bytes: u64 = inputs
        .iter()
        .filter_map(|i| std::fs::metadata(&i.name).ok())
        .map(|m| m.len())
        .sum();
    ledger.reserve(usize::try_from(input_bytes / 280).unwrap_or(0));
    let validator = ledger.validator();
    let mut full = None;
    let bytes = read::read_batches(&inputs, route, Some(&validator), |input, batch| {
        for (line, reason) in &batch.errors {
            report(input, *line, reason);
        }
        // Touching the table a few events ahead lets the cache misses of
        // different events overlap (the fold's largest cost).
        let mut ahead = LOOKAHEAD;
        let mut sink = 0u64;
        for group in &batch.groups {
            batch.each_checked(*group, |c| {
                if let Some(id_hash) = batch.id_hash(ahead) {
                    sink ^= ledger.touch(id_hash);
                }
                ahead += 1;
                if let Err(e) = ledger.apply(c) {
                    full.get_or_insert(e);
                }
            });
        }
        std::hint::black_box(sink);
    })?;
    if let Some(e) = full {
        return Err(e.into());
    }
    if rejected > MAX_PRINTED_REJECTIONS {
        eprintln!(
            "wabill: … {} more rejected lines not shown",
            rejected - MAX_PRINTED_REJECTIONS
        );
    }
    if rejected > 0 {
        eprintln!("wabill: {rejected} lines or bodies rejected; the rest was rated");
    }
    Ok(Loaded {
        ledger,
        book: loaded.book,
        rejected,
        started,
        bytes,
    })
}

fn selected<'a>(months: &'a [WabaMonth], select: &Select) -> Vec<&'a WabaMonth> {
    months
        .iter()
        .filter(|m| select.month.is_none_or(|month| m.month == month))
        .filter(|m| select.waba.as_deref().is_none_or(|w| m.waba == w))
        .collect()
}

/// cli.md: a printed invoice that cannot be rated is a data error (exit 2).
fn invoices_or_fatal<'a>(months: &[&'a WabaMonth]) -> Result<Vec<&'a Invoice>, Fatal> {
    let mut messages = Vec::new();
    let mut invoices = Vec::new();
    for m in months {
        match &m.invoice {
            Ok(invoice) => invoices.push(invoice),
            Err(errors) => {
                for e in errors {
                    messages.push(format!("{} {}: {e}", m.waba, m.month));
                }
            }
        }
    }
    if messages.is_empty() {
        Ok(invoices)
    } else {
        Err(Fatal(anyhow!("cannot rate:\n  {}", messages.join("\n  "))))
    }
}

fn exit_code(rejected: u64) -> ExitCode {
    if rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_stats(loaded: &Loaded, events: u64, load: std::time::Duration) {
    let secs = loaded.started.elapsed().as_secs_f64();
    eprintln!(
        "wabill-stats: {{\"events\":{events},\"bytes\":{},\"seconds\":{secs:.3},\"load_seconds\":{:.3},\"peak_rss_bytes\":{}}}",
        loaded.bytes,
        load.as_secs_f64(),
        bench::peak_rss_bytes().unwrap_or(0)
    );
}

fn invoice(config: Option<&std::path::Path>, args: InvoiceArgs) -> Result<ExitCode, Fatal> {
    let loaded = load(config, &args.input, args.select.waba.as_deref())?;
    let loaded_at = loaded.started.elapsed();
    let billing = bill(&loaded.ledger, &loaded.book);
    let months = selected(&billing.months, &args.select);
    let invoices = invoices_or_fatal(&months)?;
    let (rejected, duplicates) = (loaded.rejected, loaded.ledger.duplicates());
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        InvoiceFormat::Table
    } else {
        InvoiceFormat::Json
    });
    let text = match format {
        InvoiceFormat::Json => wabill_report::invoices_json(&invoices, rejected, duplicates),
        InvoiceFormat::Csv => wabill_report::invoices_csv(&invoices),
        InvoiceFormat::Table => wabill_report::invoices_table(&invoices, rejected, duplicates),
    };
    emit(&text)?;
    if args.input.stats {
        print_stats(&loaded, loaded.ledger.accepted() + duplicates, loaded_at);
    }
    Ok(exit_code(rejected))
}

fn conversations(
    config: Option<&std::path::Path>,
    args: ConversationsArgs,
) -> Result<ExitCode, Fatal> {
    let loaded = load(config, &args.input, args.select.waba.as_deref())?;
    let billing = bill(&loaded.ledger, &loaded.book);
    let months = selected(&billing.months, &args.select);
    invoices_or_fatal(&months)?;
    let records = wabill_report::sorted_records(&billing, &months);
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        ConversationFormat::Table
    } else {
        ConversationFormat::Ndjson
    });
    let text = match format {
        ConversationFormat::Ndjson => {
            let mut out = String::new();
            wabill_report::conversations_ndjson(&billing, &records, &mut out);
            out
        }
        ConversationFormat::Csv => wabill_report::conversations_csv(&billing, &records),
        ConversationFormat::Table => wabill_report::conversations_table(&billing, &records),
    };
    emit(&text)?;
    Ok(exit_code(loaded.rejected))
}

fn whatif(config: Option<&std::path::Path>, args: WhatifArgs) -> Result<ExitCode, Fatal> {
    let loaded = load(config, &args.input, args.select.waba.as_deref())?;
    let base = loaded.ledger.config();
    let mut billings = Vec::new();
    for era in &args.eras {
        let mut tried = base.clone();
        tried.timeline = base.timeline.only(*era);
        // The era's own cards: none older than its start (a pmp-2026 run on
        // September 2026 traffic prices service with the October card).
        tried.rate_floor = base
            .timeline
            .start_of(*era)
            .or_else(|| Timeline::meta_default().start_of(*era));
        billings.push((*era, bill_with(&loaded.ledger, &loaded.book, &tried)));
    }
    let mut runs = Vec::new();
    for (era, billing) in &billings {
        let months = selected(&billing.months, &args.select);
        let invoices = invoices_or_fatal(&months)
            .map_err(|Fatal(e)| Fatal(e.context(format!("under era {}", era.as_str()))))?;
        runs.push(wabill_report::EraRun {
            era: *era,
            invoices,
        });
    }
    let comparison = wabill_report::Whatif::new(&base.platform.currency, &runs)
        .ok_or_else(|| Fatal(anyhow!("the totals are too large to compute exactly")))?;
    let format = args.format.unwrap_or(if stdout_is_terminal() {
        InvoiceFormat::Table
    } else {
        InvoiceFormat::Json
    });
    let text = match format {
        InvoiceFormat::Json => comparison.json(),
        InvoiceFormat::Csv => comparison.csv(),
        InvoiceFormat::Table => comparison.table(),
    };
    emit(&text)?;
    Ok(exit_code(loaded.rejected))
}

fn gen_config(args: &GenArgs) -> wabill_gen::GenConfig {
    let mut cfg = wabill_gen::GenConfig::new(args.events, args.seed);
    cfg.format = match args.format {
        GenFormat::Ndjson => wabill_gen::Format::Ndjson,
        GenFormat::Cloud => wabill_gen::Format::Cloud,
    };
    cfg.start = args.start;
    cfg.days = args.days;
    cfg.wabas = args.wabas;
    if let Some(users) = args.users {
        cfg.users = users;
    }
    cfg
}

fn generate(args: GenArgs) -> Result<ExitCode, Fatal> {
    let cfg = gen_config(&args);
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| anyhow!("cannot create {}: {e}", path.display()))?;
            wabill_gen::generate(&cfg, std::io::BufWriter::with_capacity(1 << 20, file))?;
        }
        None => {
            let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            match wabill_gen::generate(&cfg, out) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(config: Option<&std::path::Path>, args: DemoArgs) -> Result<ExitCode, Fatal> {
    let loaded = config::load(config)?;
    let cfg = wabill_gen::GenConfig::new(args.events, args.seed);
    let mut traffic = Vec::new();
    wabill_gen::generate(&cfg, &mut traffic)?;
    let text = String::from_utf8(traffic).map_err(|e| anyhow!("generated traffic: {e}"))?;
    let mut ledger = Ledger::new(loaded.engine, hash_key());
    let mut rejected = 0;
    let mut events = Vec::new();
    for line in text.lines() {
        events.clear();
        let ok = wabill_ingest::parse_line(line, Route::default(), &mut events).is_ok()
            && ledger.ingest(&events).is_ok();
        rejected += u64::from(!ok);
    }
    let billing = bill(&ledger, &loaded.book);
    let months: Vec<&WabaMonth> = billing.months.iter().collect();
    let invoices = invoices_or_fatal(&months)?;
    emit(&format!(
        "wabill demo: {} generated events (seed {}), {} WABAs, month of {}\n\n",
        args.events, args.seed, cfg.wabas, cfg.start
    ))?;
    emit(&wabill_report::invoices_table(
        &invoices,
        rejected,
        ledger.duplicates(),
    ))?;
    Ok(exit_code(rejected))
}

fn parse_only(args: ParseArgs) -> Result<ExitCode, Fatal> {
    let started = std::time::Instant::now();
    let route = Route {
        waba: args.waba.as_deref(),
        phone: args.input.phone.as_deref(),
    };
    let inputs: Vec<read::Input> = args
        .input
        .files
        .iter()
        .map(|name| read::Input { name: name.clone() })
        .collect();
    let mut events = 0u64;
    let mut rejected = 0u64;
    let bytes = read::read_batches(&inputs, route, None, |_, batch| {
        events += batch.n_events() as u64;
        rejected += batch.errors.len() as u64;
    })?;
    emit(&format!("{events} events, {rejected} rejected lines\n"))?;
    if args.input.stats {
        eprintln!(
            "wabill-stats: {{\"events\":{events},\"bytes\":{bytes},\"seconds\":{:.3},\"peak_rss_bytes\":{}}}",
            started.elapsed().as_secs_f64(),
            bench::peak_rss_bytes().unwrap_or(0)
        );
    }
    Ok(exit_code(rejected))
}
