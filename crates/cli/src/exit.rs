//! Exit codes (cli.md): 0 success, 1 some input rejected, 2 usage,
//! configuration or data error.

use std::process::ExitCode;

/// An error that makes the command exit 2 with nothing on standard output.
pub struct Fatal(pub anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.into())
    }
}

/// 1 when some input was rejected (the rest was used), else 0.
pub fn exit_code(rejected: u64) -> ExitCode {
    if rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The status of a command that could not run (cli.md): 75 when its store
/// cannot be reached or a PostgreSQL session holds it (try again later: a
/// supervisor restarts it), else 2.
pub fn fatal_status(e: &anyhow::Error) -> u8 {
    use wabill_server::state::OpenError;
    use wabill_store::StoreError;
    let unreachable = e.chain().any(|c| {
        let retry =
            |e: &StoreError| matches!(e, StoreError::Unreachable { .. } | StoreError::Busy { .. });
        c.downcast_ref::<StoreError>().is_some_and(retry)
            || matches!(c.downcast_ref::<OpenError>(), Some(OpenError::Store(e)) if retry(e))
            || c.downcast_ref::<wabill_server::cluster::NatsUnreachable>()
                .is_some()
    });
    if unreachable { 75 } else { 2 }
}
