//! The set of distinct events (rules F6), compactly stored.
//!
//! Ingest validates a group of events (a line or a webhook body) as a whole
//! (`validate.rs`), then folds each (`fold.rs`) into per-message slots
//! (`messages.rs`), naming each (waba, phone, user) pair once (`pairs.rs`).
//! Whatever the order of arrival and however many copies come, a slot ends
//! up holding the canonical copy (the earliest, ties by pair in byte order),
//! so the ledger depends only on the set of events.

mod flags;
mod fold;
mod groups;
mod links;
mod messages;
mod pairs;
mod validate;
mod verdicts;

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use crate::config::EngineConfig;
use crate::event::{Event, EventBody};
pub use crate::grow::{CapacityError, Limit};
use crate::grow::{length, next_index};
pub use crate::hash::HashKey;
use crate::intern::Interner;
use crate::market::Region;
use crate::time::Instant;
pub(crate) use fold::template_of;
use fold::{Part, part_of};
pub use fold::{copy_order, template_code};
use messages::Messages;
pub(crate) use messages::{Message, Slot};
pub use pairs::PairKey;
use pairs::Pairs;
pub use validate::{Checked, Facts, RegionCache, Validator, limits};

/// Why a group of events was rejected. Nothing of the group is stored.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("user {user:?} is not an international phone number whose country can be determined")]
    UnknownRegion { user: String },
    #[error(
        "event time {at} is before {first} 00:00 {tz}, the start of the first pricing era: no era applies"
    )]
    BeforeFirstEra {
        at: String,
        first: jiff::civil::Date,
        tz: String,
    },
    /// A string longer than events.md section 1 allows.
    #[error("`{field}` is {bytes} bytes long; at most {max} are accepted")]
    TooLong {
        field: &'static str,
        bytes: usize,
        max: usize,
    },
    /// The ledger's tables have no room for the group.
    #[error(transparent)]
    TooMany(#[from] CapacityError),
}

/// What ingesting a group did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: u64,
    pub duplicates: u64,
}

/// What the ledger tells of one message (`Ledger::view_of`): time, pair and payload
/// of each canonical event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MessageView {
    /// Time, pair, entry point.
    pub inbound: Option<(Instant, u32, bool)>,
    /// Time, pair, template category.
    pub outbound: Option<(Instant, u32, Option<crate::event::TemplateCategory>)>,
    /// Time and pair of the delivery.
    pub delivery: Option<(Instant, u32)>,
    /// The template category Meta's verdict gives the message (rules F3:
    /// it counts when there is no outbound record).
    pub verdict: Option<crate::event::TemplateCategory>,
    /// On Meta's basis (rules V1), a fingerprint of what billing reads of
    /// the verdict (0 for none, and on wabill's own basis, where only
    /// `verdict` counts): the service keeps a view per message, and only
    /// needs to see that it changed.
    pub charge: u64,
    /// A group message's participant pair, its record's (rules G1).
    pub participant: Option<u32>,
}

impl MessageView {
    /// The delivered message's template category (rules F3): its outbound
    /// record's, else, without one, Meta's verdict's.
    pub fn template(&self) -> Option<crate::event::TemplateCategory> {
        match self.outbound {
            Some((_, _, template)) => template,
            None => self.verdict,
        }
    }
}

impl MessageView {
    /// The pair of each canonical event: inbound, outbound, delivery.
    pub fn pairs(&self) -> [Option<u32>; 3] {
        [
            self.inbound.map(|x| x.1),
            self.outbound.map(|x| x.1),
            self.delivery.map(|x| x.1),
        ]
    }
}

/// The set of distinct events, folded into per-message slots.
#[derive(Clone, Debug)]
pub struct Ledger {
    validator: Validator,
    pub(crate) messages: Messages,
    pairs: Pairs,
    /// Per user index of `pairs`, the user's region.
    regions: Vec<Region>,
    other_status_names: Interner,
    /// (message, status name) of the statuses of other names.
    other_statuses: FxHashSet<(u32, u32)>,
    /// Meta's verdict per message that has one.
    verdicts: verdicts::Verdicts,
    /// Numbers and business-scoped user ids of one person (rules F9).
    links: links::Links,
    /// Group messages (rules G1): message → the group's pair.
    groups: rustc_hash::FxHashMap<u32, u32>,
    /// The WABA of the last event folded: inputs come in long runs of one.
    last_waba: Option<u32>,
    /// Rules P6: events from a provider outside their phone's period.
    flags: flags::Flags,
    accepted: u64,
    duplicates: u64,
}

impl Ledger {
    /// An empty ledger whose tables hash outside strings under `key` (a
    /// secret the shell draws per process; [`HashKey::fixed`] in tests).
    pub fn new(config: EngineConfig, key: HashKey) -> Ledger {
        Ledger::with_regions(config, Arc::new(RegionCache::new(key)), key)
    }

    /// A ledger whose validators share `regions` with other ledgers (loading
    /// libphonenumber's metadata takes milliseconds; answers never change).
    pub fn with_regions(config: EngineConfig, regions: Arc<RegionCache>, key: HashKey) -> Ledger {
        // Rules P6: every WABA that carries a moved phone has an index,
        // whether or not an event names it (its events are kept under the
        // phone's first WABA).
        let mut carriers: Vec<String> = config
            .phones
            .values()
            .flat_map(|h| h.carriers.iter().map(|c| c.waba.clone()))
            .collect();
        carriers.sort_unstable();
        carriers.dedup();
        let mut ledger = Ledger {
            validator: Validator::with_cache(config, regions, key),
            messages: Messages::new(key),
            pairs: Pairs::new(key),
            regions: Vec::new(),
            other_status_names: Interner::new(key),
            other_statuses: FxHashSet::default(),
            verdicts: verdicts::Verdicts::new(key),
            links: links::Links::default(),
            groups: rustc_hash::FxHashMap::default(),
            last_waba: None,
            flags: flags::Flags::default(),
            accepted: 0,
            duplicates: 0,
        };
        for waba in carriers {
            // A handful of names: the table cannot be full.
            let _ = ledger.intern_waba(&waba);
        }
        ledger
    }

    pub fn config(&self) -> &EngineConfig {
        self.validator.config()
    }

    /// A validator for this ledger's configuration (one per parsing
    /// thread), sharing the ledger's region cache and hash key: the hashes
    /// in its [`Facts`] are the ones this ledger's tables use.
    /// [`Validator::set_length_limits`] for what this ledger ingests.
    pub fn set_length_limits(&mut self, on: bool) {
        self.validator.set_length_limits(on);
    }

    /// [`Validator::set_provider`] for what this ledger ingests.
    pub fn set_provider(&mut self, provider: Option<crate::carriers::Provider>) {
        self.validator.set_provider(provider);
    }

    pub fn validator(&self) -> Validator {
        self.validator.sibling()
    }

    /// Sizes the message table for about `events` events, if it is still
    /// empty (a hint: a table sized ahead splits little as it fills).
    pub fn reserve(&mut self, events: usize) {
        // About one distinct message id for every two or three events.
        self.messages.reserve(events / 2);
    }

    /// Distinct events accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Duplicate events seen so far (counted and skipped).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn n_messages(&self) -> usize {
        self.messages.records.len()
    }

    pub fn message_id(&self, msg: u32) -> &str {
        self.messages.id(msg)
    }

    /// Meta's verdict on message `msg` (issue 16): of its statuses that
    /// carried one, the copy F6 keeps first ([`verdicts`]).
    pub fn verdict(&self, msg: u32) -> Option<crate::verdict::Verdict<'_>> {
        let i = self.messages.records.get(msg as usize)?.verdict?;
        self.verdicts.get(i.get())
    }

    /// [`Ledger::verdict`] by WABA and message id.
    pub fn verdict_of(&self, waba: &str, id: &str) -> Option<crate::verdict::Verdict<'_>> {
        self.verdict(self.message_index(waba, id)?)
    }

    /// The index of WABA `waba`'s message `id`, if the ledger has it.
    pub(crate) fn message_index(&self, waba: &str, id: &str) -> Option<u32> {
        let w = self.pairs.wabas.lookup(waba)?;
        self.messages.lookup(w, id, self.messages.hash(waba, id))
    }

    /// The index of WABA `name`, interned if new (a message's key names
    /// it, rules F6).
    pub(super) fn intern_waba(&mut self, name: &str) -> Result<u32, CapacityError> {
        if let Some(last) = self.last_waba
            && self.pairs.wabas.get(last) == name
        {
            return Ok(last);
        }
        let (waba, _) = self.pairs.wabas.intern(name)?;
        self.last_waba = Some(waba);
        Ok(waba)
    }

    /// The template category message `msg`'s verdict gives (rules F3).
    pub(crate) fn verdict_template(&self, msg: u32) -> Option<crate::event::TemplateCategory> {
        let i = self.messages.records.get(msg as usize)?.verdict?;
        self.verdicts.template(i.get())
    }

    /// What billing on Meta's basis reads of message `msg`'s verdict
    /// (rules V1).
    pub fn meta_charge(&self, msg: u32) -> Option<crate::verdict::MetaCharge> {
        let i = self.messages.records.get(msg as usize)?.verdict?;
        self.verdicts.kept(i.get()).map(|k| k.meta_charge())
    }

    /// How many messages have a verdict.
    pub fn n_verdicts(&self) -> usize {
        self.verdicts.len()
    }

    pub fn waba_name(&self, waba: u32) -> &str {
        self.pairs.wabas.get(waba)
    }

    pub fn pair(&self, pair: u32) -> PairKey {
        self.pairs.keys[pair as usize]
    }

    /// The id of business phone `phone` (a [`PairKey::phone`]).
    pub fn phone_name(&self, phone: u32) -> &str {
        self.pairs.phones.get(phone)
    }

    /// The index of a pair, if the ledger has seen it.
    pub fn pair_index(&self, waba: &str, phone: &str, user: &str) -> Option<u32> {
        self.pairs.lookup(waba, phone, user)
    }

    /// (waba, phone, user) of a pair.
    pub fn pair_names(&self, pair: u32) -> (&str, &str, &str) {
        self.pairs.names(pair)
    }

    /// The canonical copies (F6) of message `msg`'s events that billing
    /// reads: its inbound message, its outbound record and its delivery
    /// (earliest `delivered` or `read`, F8), each with its pair.
    pub(crate) fn view_of(&self, msg: u32) -> MessageView {
        let m = self.messages.records[msg as usize];
        // Rules F9, G1: pairs as billing derives them.
        let pair = |p: u32| self.billing_pair(msg, p);
        MessageView {
            inbound: m
                .inbound
                .get()
                .map(|s| (Instant(s.at), pair(s.pair), s.flag == 1)),
            outbound: m
                .outbound
                .get()
                .map(|s| (Instant(s.at), pair(s.pair), template_of(s.flag))),
            delivery: m.delivery.get().map(|s| (Instant(s.at), pair(s.pair))),
            verdict: self.verdict_template(msg),
            participant: self.participant_pair(msg),
            charge: match self.config().basis {
                crate::config::Basis::Meta => self.meta_charge(msg).map_or(0, |c| {
                    use std::hash::{Hash, Hasher};
                    let mut h = rustc_hash::FxHasher::default();
                    c.hash(&mut h);
                    h.finish() | 1
                }),
                crate::config::Basis::Derived => 0,
            },
        }
    }

    /// The index of WABA `name`, if it has events.
    pub fn waba_index(&self, name: &str) -> Option<u32> {
        self.pairs.wabas.lookup(name)
    }

    /// The canonical events (F6) of WABA `waba`'s messages among ledger
    /// indices `range`: each message's inbound message, outbound record,
    /// delivery (as a `delivered` status) and kept verdict (as a `sent`
    /// status at its time). Another ledger fed them derives and reconciles
    /// the WABA alike; the service copies a WABA out a range at a time.
    pub fn canonical_events(&self, waba: u32, range: std::ops::Range<u32>) -> Vec<Event<'static>> {
        let end = range.end.min(self.n_messages() as u32);
        let mut out = Vec::new();
        for msg in range.start..end {
            if self.messages.waba(msg) != waba {
                continue;
            }
            let m = self.messages.records[msg as usize];
            let id = self.message_id(msg);
            // A group message keeps its group (G1); pairs are read as the
            // numbers they link to (F9).
            let group = self
                .groups
                .get(&msg)
                .map(|g| self.pair_names(*g).2.to_owned());
            let mut push = |at: i64, pair: u32, body: EventBody<'static>| {
                let (w, phone, user) = self.pair_names(self.canonical_pair(pair));
                out.push(Event {
                    ts: Instant(at),
                    waba: Cow::Owned(w.to_owned()),
                    phone: Cow::Owned(phone.to_owned()),
                    user: Cow::Owned(user.to_owned()),
                    id: Cow::Owned(id.to_owned()),
                    body,
                    verdict: None,
                    also: crate::event::Also::boxed(None, group.clone().map(Cow::Owned)),
                });
            };
            if let Some(s) = m.inbound.get() {
                push(
                    s.at,
                    s.pair,
                    EventBody::Inbound {
                        referral: s.flag == 1,
                    },
                );
            }
            if let Some(s) = m.outbound.get() {
                let template = template_of(s.flag);
                push(s.at, s.pair, EventBody::Outbound { template });
            }
            if let Some(s) = m.delivery.get() {
                push(
                    s.at,
                    s.pair,
                    EventBody::Status(crate::event::Status::Delivered),
                );
            }
            let pair = m.delivery.get().or(m.outbound.get()).map(|s| s.pair);
            let kept = m.verdict.and_then(|i| self.verdicts.kept(i.get()));
            if let (Some(pair), Some(kept), Some(v)) = (pair, kept, self.verdict(msg)) {
                let verdict = Some(Box::new(v.into_owned()));
                push(kept.at, pair, EventBody::Status(crate::event::Status::Sent));
                if let Some(e) = out.last_mut() {
                    e.verdict = verdict;
                }
            }
        }
        out
    }

    pub(crate) fn region(&self, user: u32) -> Region {
        self.regions[user as usize]
    }

    /// How many distinct WABAs the ledger holds (ids `0..n`).
    pub fn n_wabas(&self) -> usize {
        self.pairs.wabas.len()
    }

    /// Validates `events` as one group (a line or a body is accepted or
    /// rejected whole, events.md section 5), then stores them.
    pub fn ingest(&mut self, events: &[Event<'_>]) -> Result<IngestOutcome, Rejection> {
        let mut group = events.to_vec();
        let mut checked = Vec::with_capacity(group.len());
        self.validator.check(&mut group, &mut checked)?;
        self.room_for(&checked)?;
        let mut outcome = IngestOutcome::default();
        for c in &checked {
            if self.apply(c)? {
                outcome.accepted += 1;
            } else {
                outcome.duplicates += 1;
            }
        }
        Ok(outcome)
    }

    /// Whether every table has room for `group` were all of it new, so that
    /// a group that does not fit is refused whole, not stored in part.
    fn room_for(&self, group: &[Checked<'_>]) -> Result<(), CapacityError> {
        let Some(last) = group.len().checked_sub(1) else {
            return Ok(());
        };
        let after = |len: usize| len.saturating_add(last);
        next_index(after(self.messages.records.len()), Limit::Messages)?;
        next_index(after(self.pairs.keys.len()), Limit::Pairs)?;
        let names = [
            &self.pairs.wabas,
            &self.pairs.phones,
            &self.pairs.users,
            &self.other_status_names,
        ];
        for names in names {
            next_index(after(names.len()), Limit::Strings)?;
        }
        // A message's key holds its WABA's index in four bytes.
        if after(self.pairs.wabas.len()) >= messages::MAX_WABAS {
            return Err(CapacityError { what: Limit::Wabas });
        }
        for c in group {
            let e = &c.event;
            messages::id_length(&e.id)?;
            // A pair's names are stored as one string.
            let pair = e.waba.len().saturating_add(e.phone.len());
            u32::try_from(pair.saturating_add(e.user.len()))
                .map_err(|_| CapacityError { what: Limit::Bytes })?;
            if let Part::Other(name) = part_of(&e.body) {
                length(name)?;
            }
            if let Some(v) = &e.verdict {
                for text in v.texts().into_iter().flatten() {
                    length(text)?;
                }
            }
        }
        Ok(())
    }

    fn pair_of(&mut self, c: &Checked<'_>) -> Result<u32, CapacityError> {
        let e = &c.event;
        let (pair, new) = self.pairs.intern(c.pair_hash, &e.waba, &e.phone, &e.user)?;
        if new.user {
            self.regions.push(c.region);
        }
        Ok(pair)
    }

    /// Fetches what folding an event with this id hash will read; the
    /// shell calls it a few events ahead of [`Ledger::apply`]. It changes
    /// nothing.
    pub fn touch(&self, id_hash: u64) -> u64 {
        self.messages.touch(id_hash)
    }
}
