//! What the service logs: an event's normalized line with the validated
//! event it came from ([`LogRow`]). The store itself (the log, the
//! quarantine, the published tables, on SQLite or PostgreSQL) is the
//! `wabill-store` crate.

use wabill_engine::event::{Event, EventBody};
use wabill_engine::ledger::{Checked, Facts, copy_order};
pub use wabill_store::{Held, Location, Store, StoreError};

/// One event ready to be logged: its normalized line (events.md section
/// 1), which replays it, and the validated event (with the region and
/// hashes validation found), which the writer folds once it is durable.
pub struct LogRow {
    pub checked: Checked<'static>,
    pub line: String,
    /// Where the event came from when not its request's (an item released
    /// from the quarantine keeps its provider's, rules P6).
    pub source: Option<&'static str>,
}

/// An event's identity (rules F6): kind, WABA, message id and status name.
pub type Identity<'e> = (&'static str, &'e str, &'e str, &'e str);

impl LogRow {
    /// A validated event.
    pub fn of((e, facts): (&Event<'_>, Facts)) -> LogRow {
        LogRow {
            line: wabill_ingest::normalized_line(e),
            checked: Checked::new(e.clone().into_owned(), facts),
            source: None,
        }
    }

    pub fn event(&self) -> &Event<'static> {
        &self.checked.event
    }

    pub fn identity(&self) -> Identity<'_> {
        let e = self.event();
        let status = match &e.body {
            EventBody::Status(s) => s.as_str(),
            EventBody::Inbound { .. } | EventBody::Outbound { .. } => "",
        };
        (e.kind_str(), &e.waba, &e.id, status)
    }

    /// Whether this copy comes before `other`, a copy of the same event, in
    /// F6's order.
    pub fn precedes(&self, other: &LogRow) -> bool {
        copy_order(self.event()) < copy_order(other.event())
    }
}
