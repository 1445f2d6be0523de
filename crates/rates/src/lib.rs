//! Rate cards and market maps (rules D1, D2): the CSV layouts, and Meta's
//! published cards and maps, embedded in the binary (see `data/README.md`).
//!
//! A card is read in any of three layouts, told apart by its header: the
//! project's long layout (`market,category,price,tier_from,tier_to`), its wide
//! layout (`market,<category>,…`), and Meta's published layout (a row per
//! market, a column per category, optional tier and `Currency` columns,
//! human-written header names). [`import_card`] validates a card against the
//! rate book and timeline it would join (`wabill rates import`).
//!
//! Pure: everything here reads text handed to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use rust_decimal::Decimal;
use wabill_engine::era::{EraKind, Timeline};
use wabill_engine::market::{MarketId, MarketMap, Region};
use wabill_engine::tariff::{Band, Category, Family, RateBook, RateCard};

mod error;
mod import;
mod layout;
mod shipped;

pub use error::*;
pub use import::*;
pub use layout::*;
pub use shipped::*;

#[cfg(test)]
mod test_support;
