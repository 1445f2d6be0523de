//! `wabill bench`: runs `wabill invoice` and a parse-only pass over the same
//! generated file, each in its own process so that each reports its own
//! peak memory, and prints events/s, MB/s and peak RSS.
// Timing statistics, not money: floating point is fine here.
#![allow(clippy::float_arithmetic)]

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, anyhow};
use clap::Args;

use crate::args::GenFormat;
use crate::exit::Fatal;
use crate::output::emit;

#[derive(Args)]
pub struct BenchArgs {
    /// Events in the generated workload.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, value_enum, default_value = "ndjson")]
    format: GenFormat,
    /// First day of the generated traffic (UTC); with `--days` it chooses
    /// the eras the workload spans (`--start 2025-06-01 --days 500` covers
    /// cbp-2023, pmp-2025 and pmp-2026).
    #[arg(long, default_value = "2022-03-01")]
    start: jiff::civil::Date,
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Workload file: generated here if it does not exist (default: a file
    /// in the system temporary directory, removed afterwards).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Runs of each pass; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

/// The peak resident set size of this process (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[derive(Default, Clone, Copy)]
struct Stats {
    events: u64,
    bytes: u64,
    seconds: f64,
    peak_rss_bytes: u64,
}

fn field(json: &str, key: &str) -> Option<f64> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn run_pass(args: &[&str]) -> anyhow::Result<Stats> {
    let exe = std::env::current_exe().context("cannot find the wabill binary")?;
    let out = Command::new(exe)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run a benchmark pass")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("wabill-stats: "))
        .ok_or_else(|| {
            anyhow!(
                "`wabill {}` printed no statistics:\n{stderr}",
                args.join(" ")
            )
        })?;
    let get = |k| field(line, k).unwrap_or(0.0);
    Ok(Stats {
        events: get("events") as u64,
        bytes: get("bytes") as u64,
        seconds: get("seconds"),
        peak_rss_bytes: get("peak_rss_bytes") as u64,
    })
}

fn best(args: &[&str], runs: u32) -> anyhow::Result<Stats> {
    let mut best: Option<Stats> = None;
    for _ in 0..runs.max(1) {
        let s = run_pass(args)?;
        if best.is_none_or(|b| s.seconds < b.seconds) {
            best = Some(s);
        }
    }
    best.ok_or_else(|| anyhow!("no run"))
}

fn row(name: &str, s: Stats) -> String {
    let per_sec = s.events as f64 / s.seconds.max(1e-9);
    let mb_per_sec = s.bytes as f64 / 1e6 / s.seconds.max(1e-9);
    format!(
        "| {name} | {} | {:.2} | {:.0} | {:.0} | {:.0} |\n",
        s.events,
        s.seconds,
        per_sec,
        mb_per_sec,
        s.peak_rss_bytes as f64 / (1024.0 * 1024.0)
    )
}

pub fn run(args: BenchArgs) -> Result<ExitCode, Fatal> {
    let (path, temporary) = match &args.file {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "wabill-bench-{}-{}-{}-{}.ndjson",
                args.events, args.seed, args.start, args.days
            )),
            true,
        ),
    };
    if !path.exists() {
        let started = std::time::Instant::now();
        let mut cfg = wabill_gen::GenConfig::new(args.events, args.seed);
        cfg.start = args.start;
        cfg.days = args.days;
        cfg.format = match args.format {
            GenFormat::Ndjson => wabill_gen::Format::Ndjson,
            GenFormat::Cloud => wabill_gen::Format::Cloud,
        };
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let stats = wabill_gen::generate(&cfg, std::io::BufWriter::with_capacity(1 << 20, file))?;
        eprintln!(
            "generated {} events ({} bytes) in {:.1?} into {}",
            stats.events,
            stats.bytes,
            started.elapsed(),
            path.display()
        );
    }
    let file = path.to_string_lossy().into_owned();
    let parse = best(&["parse", "--stats", &file], args.runs)?;
    let invoice = best(
        &["invoice", "--stats", "--format", "json", &file],
        args.runs,
    )?;
    if temporary {
        let _ = std::fs::remove_file(&path);
    }
    if parse.events == 0 {
        return Err(Fatal(anyhow!("the workload has no events")));
    }
    let ratio = parse.seconds / invoice.seconds.max(1e-9);
    let mut out = format!(
        "workload: {} (best of {} runs, {} cores)\n\n| pass | events | seconds | events/s | MB/s | peak RSS MiB |\n|---|---|---|---|---|---|\n",
        file,
        args.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    out.push_str(&row("parse only (floor)", parse));
    out.push_str(&row("invoice", invoice));
    out.push_str(&format!(
        "\ninvoice throughput = {:.0}% of parse-only\n",
        ratio * 100.0
    ));
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
