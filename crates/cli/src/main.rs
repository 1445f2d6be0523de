//! `wabill`: bills WhatsApp Business conversations from message events.
//!
//! The shell around the engine: reads files, configuration and options,
//! feeds the engine, prints its results. Exit codes (cli.md): 0 success,
//! 1 some input rejected, 2 usage, configuration or data error.

mod args;
mod bench;
mod commands;
mod config;
mod exit;
mod ingest;
mod load;
mod output;
mod rates_cmd;
mod read;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use exit::Fatal;

// mimalloc: 14 % fewer instructions per webhook than glibc's malloc, and
// no arena lock between the service's threads; its features are set in the
// workspace's Cargo.toml (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Fatal(e)) => {
            eprintln!("wabill: {e:#}");
            ExitCode::from(exit::fatal_status(&e))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Fatal> {
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::Invoice(args) => commands::invoice::run(config_path, args),
        Command::Conversations(args) => commands::conversations::run(config_path, args),
        Command::Whatif(args) => commands::whatif::run(config_path, args),
        Command::Reconcile(args) => commands::reconcile::run(config_path, args),
        Command::Rates(cmd) => rates_cmd::run(config_path, cmd),
        Command::Gen(args) => commands::generate::run(config_path, args),
        Command::Demo(args) => commands::demo::run(config_path, args),
        Command::Bench(args) => bench::run(args),
        Command::Parse(args) => commands::parse_only::run(args),
        Command::Serve(args) => commands::serve::run(config_path, args),
        Command::Load(args) => load::run(args),
        Command::Migrate(args) => commands::store::migrate(config_path, &args),
        Command::Export(args) => commands::export::run(config_path, args),
        Command::Import(args) => commands::store::import(config_path, args),
        Command::Backup(args) => commands::store::backup(config_path, &args),
    }
}
