//! Rules P6: events that came from a provider the configuration does not
//! say carried their phone at their time. They are billed like any other;
//! each is remembered once (a copy from the right provider does not clear
//! it), so that every invoice can count them whatever the order of copies.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::Ledger;
use crate::carriers::Provider;
use crate::event::Event;
use crate::time::{Instant, Month};

/// One flagged event: its earliest copy's time, its phone, and the
/// provider that copy came from.
#[derive(Clone, Debug)]
pub(super) struct Flagged {
    at: Instant,
    phone: String,
    provider: Provider,
}

/// Flagged events counted per (WABA that carried the phone then, its
/// local month), and per (phone, provider).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagCounts {
    pub by_month: BTreeMap<(String, Month), u64>,
    pub by_phone: BTreeMap<(String, Provider), u64>,
}

/// Flagged events by (message, which of its events).
pub(super) type Flags = FxHashMap<(u32, String), Flagged>;

/// Which of a message's events `event` is: its kind and status name.
fn part(event: &Event<'_>) -> String {
    match &event.body {
        crate::event::EventBody::Status(s) => format!("status:{}", s.as_str()),
        _ => event.kind_str().to_owned(),
    }
}

impl Ledger {
    /// After folding `event` (message `msg`) that came from `provider`
    /// outside its phone's period.
    pub(super) fn flag(&mut self, msg: u32, event: &Event<'_>, provider: Provider) {
        let entry = self
            .flags
            .entry((msg, part(event)))
            .or_insert_with(|| Flagged {
                at: event.ts,
                phone: event.phone.to_string(),
                provider,
            });
        // The earliest copy's, ties by provider: the same whatever the order.
        if (event.ts, provider) < (entry.at, entry.provider) {
            entry.at = event.ts;
            entry.provider = provider;
        }
    }

    /// Whether folding `event`, from `provider` outside its period, would
    /// remember something new (the service logs such a copy).
    pub fn would_flag(&self, event: &Event<'_>, provider: Option<Provider>) -> bool {
        let Some(provider) = provider else {
            return false;
        };
        let Some(msg) = self.message_index(&event.waba, &event.id) else {
            return true;
        };
        self.flags
            .get(&(msg, part(event)))
            .is_none_or(|f| (event.ts, provider) < (f.at, f.provider))
    }

    /// Flagged events per (WABA that carried the phone then, its local
    /// month), and per (phone, provider): what invoices count and the
    /// warning names.
    pub fn flagged(&self) -> FlagCounts {
        let config = self.config();
        let mut by_month = BTreeMap::new();
        let mut by_phone = BTreeMap::new();
        for ((msg, _), f) in &self.flags {
            let kept_under = self.waba_name(self.messages.waba(*msg));
            let waba = config
                .carrier_at(kept_under, &f.phone, f.at)
                .map_or(kept_under, |c| &c.waba);
            let month = Month::of(f.at.local_date(&config.waba(waba).timezone));
            *by_month.entry((waba.to_owned(), month)).or_default() += 1;
            *by_phone.entry((f.phone.clone(), f.provider)).or_default() += 1;
        }
        FlagCounts { by_month, by_phone }
    }
}
