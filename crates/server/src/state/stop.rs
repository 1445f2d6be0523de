//! How the service stops when its state can no longer be trusted: a
//! panic while changing it (70), a store connection gone (75). A restart
//! rebuilds the state from the event log.

use crate::store::Store;

/// A lock poisoned: a panic while changing what it guards, which
/// [`stop_on_panic`] should have stopped the service for.
pub(super) fn poisoned() -> ! {
    stop(
        "a lock of the engine (poisoned)",
        "a panic while changing it",
    )
}

/// The exit status after a panic that stopped the service (EX_SOFTWARE).
pub const EXIT_PANICKED: i32 = 70;

/// The exit status when the store cannot be reached (EX_TEMPFAIL): start
/// again later.
pub const EXIT_STORE_UNREACHABLE: i32 = 75;

/// Ends the process when the store's connection is gone: requests in
/// flight see their connection close and retry, and the restart replays
/// the log, which settles a commit whose answer was lost.
pub(super) fn stop_if_lost(store: &mut dyn Store) {
    if store.lost() {
        let why = "the connection to the store is gone; a restart replays the log";
        tracing::error!(store = %store.location(), "stopping: {why}");
        // A command (`wabill import`) has no log of its own.
        if !tracing::dispatcher::has_been_set() {
            eprintln!(
                "wabill: stopping: {why} ({}); what was committed stays, run the command again",
                store.location()
            );
        }
        std::process::exit(EXIT_STORE_UNREACHABLE)
    }
}

/// Logs that `what` panicked and ends the process: the state it left may
/// be half-updated, and the event log rebuilds it on restart.
pub(crate) fn stop(what: &str, detail: &str) -> ! {
    tracing::error!(
        panicked = what,
        detail,
        "stopping: a panic may have left the state half-updated; a restart rebuilds it from the event log"
    );
    std::process::exit(EXIT_PANICKED)
}

/// Runs `f`; a panic in it stops the service ([`stop`]).
pub(crate) fn stop_on_panic<R>(what: &str, f: impl FnOnce() -> R) -> R {
    // The state `f` touches is not used again after a panic: the process ends.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            stop(what, detail)
        }
    }
}
