//! wabill's billing engine: a deterministic function of (events,
//! configuration). No I/O, no clock, no async, no global state: the shell
//! feeds it events and reads its results.
//!
//! Flow: [`ledger::Ledger`] holds the set of distinct events; [`billing::bill`]
//! derives each pair's conversations under the era in force
//! ([`rules::EraRules`]), allocates the free tier per WABA and local month,
//! rates them from the [`tariff::RateBook`] and builds the invoices.

pub mod billing;
pub mod carriers;
pub mod config;
pub mod conversation;
pub mod customers;
pub mod derive;
pub mod era;
pub mod event;
mod grow;
mod hash;
pub mod incremental;
mod intern;
pub mod ledger;
pub mod live;
pub mod market;
mod names;
pub mod partition;
pub mod quote;
pub mod reconcile;
pub mod rules;
pub mod tariff;
pub mod time;
pub mod verdict;

pub use billing::{Billing, attribution, bill};
pub use config::EngineConfig;
pub use event::{Event, EventBody, Status, TemplateCategory};
pub use incremental::{Billed, Incremental};
pub use ledger::{
    CapacityError, Checked, Facts, HashKey, IngestOutcome, Ledger, RegionCache, Rejection,
    Validator,
};
pub use tariff::RateBook;
pub use time::Instant;
pub use verdict::Verdict;
