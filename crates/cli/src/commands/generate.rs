//! `wabill gen`: synthetic traffic.

use std::process::ExitCode;

use anyhow::anyhow;

use crate::args::{GenArgs, GenFormat};
use crate::exit::Fatal;

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

pub fn run(args: GenArgs) -> Result<ExitCode, Fatal> {
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
