//! The operators' commands on a store (cli.md "The store"): `migrate`,
//! `import`, `backup`. `export` has its own module.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use wabill_server::store::Location;

use crate::args::{BackupArgs, ImportArgs, StoreArgs};
use crate::config;
use crate::exit::{Fatal, exit_code};

/// The store a command works on: `--store`, else the configuration's
/// (`[server] store` or `data_dir`, and their environment variables).
pub fn location(config_path: Option<&Path>, args: &StoreArgs) -> Result<Location, Fatal> {
    match &args.store {
        Some(store) => Location::parse(store).map_err(|e| Fatal(anyhow!("--store: {e}"))),
        None => Ok(wabill_server::config::read_service_config(config_path)?.store),
    }
}

pub fn migrate(config_path: Option<&Path>, args: &StoreArgs) -> Result<ExitCode, Fatal> {
    let location = location(config_path, args)?;
    let (applied, version) = wabill_store::migrate(&location)
        .with_context(|| format!("cannot migrate the store {location}"))?;
    for m in &applied {
        println!("applied {:04} {}", m.version, m.name);
    }
    println!("store {location}: schema version {version}");
    Ok(ExitCode::SUCCESS)
}

pub fn backup(config_path: Option<&Path>, args: &BackupArgs) -> Result<ExitCode, Fatal> {
    let location = location(config_path, &args.store)?;
    let Location::Embedded(dir) = &location else {
        return Err(Fatal(anyhow!(
            "{location} is a PostgreSQL store: back it up with PostgreSQL's own tools (pg_dump, or a base backup with WAL archiving; docs/deploy.md)"
        )));
    };
    wabill_store::sqlite::backup(dir, &args.to)
        .with_context(|| format!("cannot back up the store {location}"))?;
    eprintln!("wabill: store {location} copied to {}", args.to.display());
    Ok(ExitCode::SUCCESS)
}

pub fn import(config_path: Option<&Path>, args: ImportArgs) -> Result<ExitCode, Fatal> {
    let location = location(config_path, &args.store)?;
    let configured = config::read_config(config_path)?;
    let mut inputs = Vec::new();
    for name in &args.files {
        let reader: Box<dyn std::io::BufRead> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let file = std::fs::File::open(name).with_context(|| format!("cannot open {name}"))?;
            Box::new(std::io::BufReader::with_capacity(1 << 20, file))
        };
        inputs.push(wabill_server::import::Input {
            name: name.clone(),
            reader,
        });
    }
    let route = wabill_ingest::Route {
        waba: args.waba.as_deref(),
        phone: args.phone.as_deref(),
        provider: args.provider,
    };
    let imported = wabill_server::import::import(
        &location,
        configured.engine,
        configured.book,
        inputs,
        route,
    )?;
    for (place, reason) in &imported.rejected {
        eprintln!("wabill: {place}: {reason}");
    }
    eprintln!(
        "wabill: imported into {location}: {} new events, {} duplicates, {} items quarantined, {} items ignored, {} lines rejected",
        imported.accepted,
        imported.duplicates,
        imported.quarantined,
        imported.ignored,
        imported.rejected.len()
    );
    // cli.md: 1 when some input was rejected or quarantined.
    Ok(exit_code(
        imported.rejected.len() as u64 + imported.quarantined,
    ))
}
