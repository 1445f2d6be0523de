//! `wabill serve`: the HTTP service (service.md).

use std::path::Path;
use std::process::ExitCode;

use crate::args::ServeArgs;
use crate::config;
use crate::exit::Fatal;

pub fn run(config_path: Option<&Path>, args: ServeArgs) -> Result<ExitCode, Fatal> {
    let configured = config::read_config(config_path)?;
    let mut service = wabill_server::config::read_service_config(config_path)?;
    service.resolve_customers(&configured.engine)?;
    if let Some(listen) = args.listen {
        service.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        service.store = wabill_server::store::Location::Embedded(dir);
    }
    if let Some(store) = args.store {
        service.store = wabill_server::store::Location::parse(&store)
            .map_err(|e| anyhow::anyhow!("--store: {e}"))?;
    }
    use wabill_server::cluster::{Role, serve_receiver, serve_worker};
    let serve = match Role::parse(&args.role) {
        Some(Role::Receiver) => serve_receiver,
        Some(Role::Worker) => serve_worker,
        _ => wabill_server::serve,
    };
    serve(service, configured.engine, configured.book)?;
    Ok(ExitCode::SUCCESS)
}
