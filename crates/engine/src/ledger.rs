//! The set of distinct events (rules F6), compactly stored.
//!
//! Ingest validates a group of events (a line or a webhook body) as a whole,
//! then folds each into per-message slots. Whatever the order of arrival and
//! however many copies come, a slot ends up holding the canonical copy (the
//! earliest, ties by pair in byte order), so the ledger depends only on the
//! set of events.

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::EngineConfig;
use crate::event::{Event, EventBody, Status, TemplateCategory};
use crate::grow::{Chunked, Text, TextAt};
use crate::intern::{Interner, Probe, SlotTable, str_hash};
use crate::market::{Region, RegionLookup};
use crate::time::{Instant, local_midnight};

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
}

/// What ingesting a group did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub accepted: u64,
    pub duplicates: u64,
}

/// One event's contribution to a message: time, pair and a small payload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub at: i64,
    pub pair: u32,
    pub flag: u8,
}

const NONE: Slot = Slot {
    at: i64::MAX,
    pair: u32::MAX,
    flag: 0,
};

impl Slot {
    pub fn get(self) -> Option<Slot> {
        (self.pair != u32::MAX).then_some(self)
    }
}

const SEEN_INBOUND: u8 = 1;
const SEEN_OUTBOUND: u8 = 2;
const SEEN_SENT: u8 = 4;
const SEEN_DELIVERED: u8 = 8;
const SEEN_READ: u8 = 16;
const SEEN_FAILED: u8 = 32;

/// What the ledger knows of one message id: 64 bytes, so that folding an
/// event touches one cache line of it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Message {
    /// The inbound message with this id; `flag` 1 = entry point.
    pub inbound: Slot,
    /// The outbound record; `flag` = template category code (0 = none).
    pub outbound: Slot,
    /// The earliest `delivered`/`read` status (F2, F8).
    pub delivery: Slot,
    /// The id's place in [`Messages::ids`].
    id_at: TextAt,
    id_len: u32,
    seen: u8,
}

/// Message ids and their records: the ids in one arena, the records in one
/// chunked vector, a table from hash to record index; none of them stops to
/// grow.
#[derive(Clone, Default)]
pub(crate) struct Messages {
    ids: Text,
    pub records: Chunked<Message>,
    table: SlotTable,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages")
            .field("len", &self.records.len())
            .finish()
    }
}

fn id_of<'s>(ids: &'s Text, m: &Message) -> &'s str {
    ids.get(m.id_at, m.id_len as usize)
}

impl Messages {
    pub fn id(&self, msg: u32) -> &str {
        id_of(&self.ids, &self.records[msg as usize])
    }

    /// Reads what [`Messages::intern`] of `hash` will read first: its slot,
    /// the record it names and that record's id. The value only makes the
    /// reads happen.
    pub fn touch(&self, hash: u64) -> u64 {
        let Some(index) = self.table.home(hash) else {
            return 0;
        };
        let Some(record) = self.records.get(index as usize) else {
            return 0;
        };
        let first = self.ids.first_byte(record.id_at);
        u64::from(index) ^ u64::from(first.unwrap_or(0))
    }

    /// The record index of `id`, if the ledger has it.
    pub(crate) fn lookup(&self, id: &str) -> Option<u32> {
        let Self {
            ids,
            records,
            table,
        } = self;
        match table.find(str_hash(id), |i| id_of(ids, &records[i as usize]) == id) {
            Probe::Found(i) => Some(i),
            Probe::Vacant(_) => None,
        }
    }

    /// The record index of `id` (`hash == str_hash(id)`), and whether new.
    fn intern(&mut self, id: &str, hash: u64) -> (u32, bool) {
        let Self {
            ids,
            records,
            table,
        } = self;
        let vacant = match table.find(hash, |i| id_of(ids, &records[i as usize]) == id) {
            Probe::Found(i) => return (i, false),
            Probe::Vacant(vacant) => vacant,
        };
        let index = u32::try_from(records.len()).unwrap_or(u32::MAX);
        records.push(Message {
            inbound: NONE,
            outbound: NONE,
            delivery: NONE,
            id_at: ids.push(id),
            id_len: u32::try_from(id.len()).unwrap_or(u32::MAX),
            seen: 0,
        });
        table.insert(vacant, hash, index);
        (index, true)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PairKey {
    pub waba: u32,
    pub phone: u32,
    pub user: u32,
}

/// A template category as the ledger stores it (0 = not a template); its
/// order is F6's last tie-break between copies.
pub fn template_code(t: Option<TemplateCategory>) -> u8 {
    match t {
        None => 0,
        Some(TemplateCategory::Marketing) => 1,
        Some(TemplateCategory::Utility) => 2,
        Some(TemplateCategory::Authentication) => 3,
    }
}

pub(crate) fn template_of(code: u8) -> Option<TemplateCategory> {
    match code {
        1 => Some(TemplateCategory::Marketing),
        2 => Some(TemplateCategory::Utility),
        3 => Some(TemplateCategory::Authentication),
        _ => None,
    }
}

/// What [`Ledger::message_view`] tells of one message id: time, pair and
/// payload of each canonical event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MessageView {
    /// Time, pair, entry point.
    pub inbound: Option<(Instant, u32, bool)>,
    /// Time, pair, template category.
    pub outbound: Option<(Instant, u32, Option<TemplateCategory>)>,
    /// Time and pair of the delivery.
    pub delivery: Option<(Instant, u32)>,
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

/// The distinct (waba, phone, user) pairs, each string interned once.
#[derive(Clone, Debug, Default)]
struct Pairs {
    keys: Chunked<PairKey>,
    /// Each pair's names side by side in `text`: `(place, lengths)`, so
    /// comparing or reading a pair touches one place, not three interners.
    spans: Chunked<(TextAt, [u32; 3])>,
    text: Text,
    table: SlotTable,
    wabas: Interner,
    phones: Interner,
    users: Interner,
}

fn pair_names_of<'t>(
    text: &'t Text,
    spans: &Chunked<(TextAt, [u32; 3])>,
    pair: u32,
) -> (&'t str, &'t str, &'t str) {
    let Some(&(at, [w, p, u])) = spans.get(pair as usize) else {
        return ("", "", "");
    };
    let (w, p, u) = (w as usize, p as usize, u as usize);
    let all = text.get(at, w + p + u);
    let (waba, rest) = all.split_at_checked(w).unwrap_or_default();
    let (phone, user) = rest.split_at_checked(p).unwrap_or_default();
    (waba, phone, user)
}

/// Which parts of a pair [`Pairs::intern`] saw for the first time.
struct NewParts {
    waba: bool,
    user: bool,
}

impl Pairs {
    fn names(&self, pair: u32) -> (&str, &str, &str) {
        pair_names_of(&self.text, &self.spans, pair)
    }

    /// The index of a pair (`hash == pair_hash(waba, phone, user)`).
    fn intern(&mut self, hash: u64, waba: &str, phone: &str, user: &str) -> (u32, NewParts) {
        let mut new = NewParts {
            waba: false,
            user: false,
        };
        let vacant = match self
            .table
            .find(hash, |p| self.names(p) == (waba, phone, user))
        {
            Probe::Found(pair) => return (pair, new),
            Probe::Vacant(vacant) => vacant,
        };
        // Event strings come from lines, far below 4 GiB.
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        let at = self.text.push_all(&[waba, phone, user]);
        self.spans.push((at, [len(waba), len(phone), len(user)]));
        let (waba, new_waba) = self.wabas.intern(waba);
        let (phone, _) = self.phones.intern(phone);
        let (user, new_user) = self.users.intern(user);
        (new.waba, new.user) = (new_waba, new_user);
        let pair = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        self.keys.push(PairKey { waba, phone, user });
        self.table.insert(vacant, hash, pair);
        (pair, new)
    }
}

/// `(waba, phone, user)` hashed as the ledger's pair table hashes it.
pub fn pair_hash(waba: &str, phone: &str, user: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one((waba, phone, user))
}

/// What validation found out about one event: what the ledger needs and
/// would otherwise compute itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub region: Region,
    pub id_hash: u64,
    pub pair_hash: u64,
}

/// An event that passed validation, with what the ledger needs computed
/// ahead (possibly on a parsing thread): the user's region and the hashes of
/// its id and pair.
#[derive(Clone, Debug)]
pub struct Checked<'a> {
    pub event: Event<'a>,
    pub region: Region,
    pub id_hash: u64,
    pub pair_hash: u64,
}

impl<'a> Checked<'a> {
    /// `event` with what validation found out about it.
    pub fn new(event: Event<'a>, facts: Facts) -> Checked<'a> {
        Checked {
            event,
            region: facts.region,
            id_hash: facts.id_hash,
            pair_hash: facts.pair_hash,
        }
    }
}

/// Regions already determined, shared by the validators of one ledger (one
/// per parsing thread), so that each distinct user is parsed once: a
/// libphonenumber parse costs microseconds. It only remembers answers of a
/// pure function, so sharing it cannot change any result.
#[derive(Debug, Default)]
pub struct RegionCache {
    lookup: RegionLookup,
    map: RwLock<FxHashMap<Box<str>, Option<Region>>>,
}

impl RegionCache {
    pub fn new() -> RegionCache {
        RegionCache::default()
    }

    fn get(&self, user: &str) -> Option<Option<Region>> {
        self.map.read().ok()?.get(user).copied()
    }

    fn insert(&self, user: &str, region: Option<Region>) {
        if let Ok(mut map) = self.map.write() {
            map.insert(user.into(), region);
        }
    }
}

/// Checks events against the configuration: a pricing era must apply
/// (rules section 1) and the user's region must be known (D1). Its caches
/// only remember answers.
#[derive(Clone, Debug)]
pub struct Validator {
    config: EngineConfig,
    first_starts: FxHashMap<String, Instant>,
    last_waba: Option<(String, Instant)>,
    /// Users short enough to be numbers, keyed by [`numeric_key`]: no string
    /// to chase on a lookup (this runs once per event).
    numeric_regions: FxHashMap<u64, Option<Region>>,
    regions: FxHashMap<String, Option<Region>>,
    shared: Arc<RegionCache>,
}

/// A user of at most 17 digits as one number that keeps its length, so
/// `"0123"` and `"123"` stay apart; None for anything else.
fn numeric_key(user: &str) -> Option<u64> {
    if user.is_empty() || user.len() > 17 {
        return None;
    }
    let mut value = 0u64;
    for b in user.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Some(value << 5 | user.len() as u64)
}

impl Validator {
    pub fn new(config: EngineConfig) -> Validator {
        Validator::with_cache(config, Arc::default())
    }

    fn with_cache(config: EngineConfig, shared: Arc<RegionCache>) -> Validator {
        Validator {
            config,
            first_starts: FxHashMap::default(),
            last_waba: None,
            numeric_regions: FxHashMap::default(),
            regions: FxHashMap::default(),
            shared,
        }
    }

    fn first_start(&mut self, waba: &str) -> Instant {
        // Inputs come in long runs of one WABA: skip the hash when it repeats.
        if let Some((last, start)) = &self.last_waba
            && last == waba
        {
            return *start;
        }
        if let Some(start) = self.first_starts.get(waba) {
            self.last_waba = Some((waba.to_owned(), *start));
            return *start;
        }
        let start = local_midnight(
            self.config.timeline.first_date(),
            &self.config.waba(waba).timezone,
        );
        self.first_starts.insert(waba.to_owned(), start);
        self.last_waba = Some((waba.to_owned(), start));
        start
    }

    fn region(&mut self, user: &str) -> Option<Region> {
        let key = numeric_key(user);
        if let Some(key) = key {
            if let Some(region) = self.numeric_regions.get(&key) {
                return *region;
            }
        } else if let Some(region) = self.regions.get(user) {
            return *region;
        }
        let region = match self.shared.get(user) {
            Some(region) => region,
            None => {
                let region = self.shared.lookup.region_of(user);
                self.shared.insert(user, region);
                region
            }
        };
        match key {
            Some(key) => self.numeric_regions.insert(key, region),
            None => self.regions.insert(user.to_owned(), region),
        };
        region
    }

    /// Checks a group (a line or a body: accepted or rejected whole),
    /// appending for each event what the ledger needs ([`Facts`]) to `out`;
    /// on error `out` is left as it was.
    pub fn check_group(
        &mut self,
        events: &[Event<'_>],
        out: &mut Vec<Facts>,
    ) -> Result<(), Rejection> {
        let start = out.len();
        for event in events {
            if event.ts < self.first_start(&event.waba) {
                out.truncate(start);
                return Err(Rejection::BeforeFirstEra {
                    at: event.ts.rfc3339(),
                    first: self.config.timeline.first_date(),
                    tz: self.config.waba(&event.waba).timezone_name.clone(),
                });
            }
            let Some(region) = self.region(&event.user) else {
                out.truncate(start);
                return Err(Rejection::UnknownRegion {
                    user: event.user.to_string(),
                });
            };
            out.push(Facts {
                region,
                id_hash: str_hash(&event.id),
                pair_hash: pair_hash(&event.waba, &event.phone, &event.user),
            });
        }
        Ok(())
    }

    /// As [`Validator::check_group`], moving the events into `out`.
    pub fn check<'a>(
        &mut self,
        events: &mut Vec<Event<'a>>,
        out: &mut Vec<Checked<'a>>,
    ) -> Result<(), Rejection> {
        let mut facts = Vec::with_capacity(events.len());
        self.check_group(events, &mut facts)?;
        out.extend(
            events
                .drain(..)
                .zip(facts)
                .map(|(event, f)| Checked::new(event, f)),
        );
        Ok(())
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
    other_statuses: FxHashSet<(u32, u32)>,
    accepted: u64,
    duplicates: u64,
}

impl Ledger {
    pub fn new(config: EngineConfig) -> Ledger {
        Ledger::with_regions(config, Arc::default())
    }

    /// A ledger whose validators share `regions` with other ledgers (loading
    /// libphonenumber's metadata takes milliseconds; answers never change).
    pub fn with_regions(config: EngineConfig, regions: Arc<RegionCache>) -> Ledger {
        Ledger {
            validator: Validator::with_cache(config, regions),
            messages: Messages::default(),
            pairs: Pairs::default(),
            regions: Vec::new(),
            other_status_names: Interner::default(),
            other_statuses: FxHashSet::default(),
            accepted: 0,
            duplicates: 0,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.validator.config
    }

    /// A validator for this ledger's configuration (one per parsing
    /// thread), sharing the ledger's region cache.
    pub fn validator(&self) -> Validator {
        Validator::with_cache(
            self.validator.config.clone(),
            Arc::clone(&self.validator.shared),
        )
    }

    /// Sizes the message table for about `events` events, if it is still
    /// empty (a hint: a table sized ahead splits little as it fills).
    pub fn reserve(&mut self, events: usize) {
        // About one distinct message id for every two or three events.
        self.messages.table.reserve(events / 2);
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
        let hash = pair_hash(waba, phone, user);
        match self
            .pairs
            .table
            .find(hash, |p| self.pairs.names(p) == (waba, phone, user))
        {
            Probe::Found(p) => Some(p),
            Probe::Vacant(_) => None,
        }
    }

    /// (waba, phone, user) of a pair.
    pub fn pair_names(&self, pair: u32) -> (&str, &str, &str) {
        self.pairs.names(pair)
    }

    /// The canonical copies (F6) of one message id's events that billing
    /// reads: its inbound message, its outbound record and its delivery
    /// (earliest `delivered` or `read`, F8), each with its pair.
    pub fn message_view(&self, id: &str) -> Option<MessageView> {
        Some(self.view_of(self.messages.lookup(id)?))
    }

    /// [`Ledger::message_view`] by message index.
    pub(crate) fn view_of(&self, msg: u32) -> MessageView {
        let m = self.messages.records[msg as usize];
        MessageView {
            inbound: m
                .inbound
                .get()
                .map(|s| (Instant(s.at), s.pair, s.flag == 1)),
            outbound: m
                .outbound
                .get()
                .map(|s| (Instant(s.at), s.pair, template_of(s.flag))),
            delivery: m.delivery.get().map(|s| (Instant(s.at), s.pair)),
        }
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
        let mut outcome = IngestOutcome::default();
        for c in &checked {
            if self.apply(c) {
                outcome.accepted += 1;
            } else {
                outcome.duplicates += 1;
            }
        }
        Ok(outcome)
    }

    fn pair_of(&mut self, c: &Checked<'_>) -> u32 {
        let e = &c.event;
        let (pair, new) = self.pairs.intern(c.pair_hash, &e.waba, &e.phone, &e.user);
        if new.user {
            self.regions.push(c.region);
        }
        pair
    }

    /// Fetches what folding an event with this id hash will read; the
    /// shell calls it a few events ahead of [`Ledger::apply`]. It changes
    /// nothing.
    pub fn touch(&self, id_hash: u64) -> u64 {
        self.messages.touch(id_hash)
    }

    /// Folds one checked event in; false when it was a duplicate (F6).
    pub fn apply(&mut self, c: &Checked<'_>) -> bool {
        let new_event = self.fold(c);
        if new_event {
            self.accepted += 1;
        } else {
            self.duplicates += 1;
        }
        new_event
    }

    /// Whether folding `event` would change the ledger: an event it has not
    /// seen, or a copy that F6 prefers to the one a slot keeps. It changes
    /// nothing; the service logs only such events, so that its log holds
    /// each event once (plus the copies that came to replace one).
    pub fn would_change(&self, event: &Event<'_>) -> bool {
        let Some(msg) = self.messages.lookup(&event.id) else {
            return true;
        };
        let (bit, slot) = match part_of(&event.body) {
            Part::Other(name) => {
                return self
                    .other_status_names
                    .lookup(name)
                    .is_none_or(|name| !self.other_statuses.contains(&(msg, name)));
            }
            Part::Slot(bit, slot, _) => (bit, slot),
        };
        let message = &self.messages.records[msg as usize];
        if message.seen & bit == 0 {
            return true;
        }
        let Some(current) = message.slot(slot).get() else {
            return false;
        };
        // As `slot_order`, with the event's pair by name (it may be new).
        copy_order(event) < (current.at, self.pair_names(current.pair), current.flag)
    }

    fn fold(&mut self, c: &Checked<'_>) -> bool {
        let event = &c.event;
        let (msg, _) = self.messages.intern(&event.id, c.id_hash);
        let (bit, slot, flag) = match part_of(&event.body) {
            Part::Slot(bit, slot, flag) => (bit, slot, flag),
            Part::Other(name) => {
                let (name, _) = self.other_status_names.intern(name);
                return self.other_statuses.insert((msg, name));
            }
        };
        let message = self.messages.records[msg as usize];
        let new_event = message.seen & bit == 0;
        self.messages.records[msg as usize].seen |= bit;
        let current = message.slot(slot);
        // `sent` and `failed` only count for duplicates: no pair needed.
        if matches!(slot, SlotKind::None) {
            return new_event;
        }
        // Most copies are later than the slot's: they need no pair lookup.
        if current.get().is_some() && event.ts.0 > current.at {
            return new_event;
        }
        let candidate = Slot {
            at: event.ts.0,
            pair: self.pair_of(c),
            flag,
        };
        if self.slot_order(candidate, current) == Ordering::Less {
            let message = &mut self.messages.records[msg as usize];
            match slot {
                SlotKind::Inbound => message.inbound = candidate,
                SlotKind::Outbound => message.outbound = candidate,
                SlotKind::Delivery => message.delivery = candidate,
                SlotKind::None => {}
            }
        }
        new_event
    }

    /// F6: the earliest copy wins; ties by pair in byte order, then payload.
    fn slot_order(&self, a: Slot, b: Slot) -> Ordering {
        if b.get().is_none() {
            return Ordering::Less;
        }
        a.at.cmp(&b.at)
            .then_with(|| self.pair_order(a.pair, b.pair))
            .then(a.flag.cmp(&b.flag))
    }

    pub(crate) fn pair_order(&self, a: u32, b: u32) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        self.pair_names(a).cmp(&self.pair_names(b))
    }
}

#[derive(Copy, Clone)]
enum SlotKind {
    Inbound,
    Outbound,
    Delivery,
    None,
}

/// Where an event goes in its message's record: its `seen` bit, its slot
/// and the slot's payload; or a status of another name.
enum Part<'e> {
    Slot(u8, SlotKind, u8),
    Other(&'e str),
}

fn part_of<'e>(body: &'e EventBody<'_>) -> Part<'e> {
    match body {
        EventBody::Inbound { referral } => {
            Part::Slot(SEEN_INBOUND, SlotKind::Inbound, u8::from(*referral))
        }
        EventBody::Outbound { template } => {
            Part::Slot(SEEN_OUTBOUND, SlotKind::Outbound, template_code(*template))
        }
        EventBody::Status(Status::Sent) => Part::Slot(SEEN_SENT, SlotKind::None, 0),
        EventBody::Status(Status::Delivered) => Part::Slot(SEEN_DELIVERED, SlotKind::Delivery, 0),
        EventBody::Status(Status::Read) => Part::Slot(SEEN_READ, SlotKind::Delivery, 0),
        EventBody::Status(Status::Failed) => Part::Slot(SEEN_FAILED, SlotKind::None, 0),
        EventBody::Status(Status::Other(name)) => Part::Other(name),
    }
}

/// Where a copy of an event stands in F6's order: earliest first, then
/// its pair in byte order, then its payload (as `Ledger::slot_order` ranks
/// the copies a slot holds).
pub fn copy_order<'e>(e: &'e Event<'_>) -> (i64, (&'e str, &'e str, &'e str), u8) {
    let payload = match part_of(&e.body) {
        Part::Slot(_, _, flag) => flag,
        Part::Other(_) => 0,
    };
    (e.ts.0, (&e.waba, &e.phone, &e.user), payload)
}

impl Message {
    fn slot(&self, kind: SlotKind) -> Slot {
        match kind {
            SlotKind::Inbound => self.inbound,
            SlotKind::Outbound => self.outbound,
            SlotKind::Delivery => self.delivery,
            SlotKind::None => NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;
    use std::borrow::Cow;

    fn ev(kind: EventBody<'static>, id: &'static str, secs: i64) -> Event<'static> {
        Event {
            ts: Instant(secs * crate::time::NANOS_PER_SEC),
            waba: Cow::Borrowed("W1"),
            phone: Cow::Borrowed("P1"),
            user: Cow::Borrowed("5511999990001"),
            id: Cow::Borrowed(id),
            body: kind,
        }
    }

    const MARCH_2022: i64 = 1_646_092_800;

    #[test]
    fn f6_same_type_and_id_is_one_event_and_earliest_copy_counts() {
        let mut ledger = Ledger::new(EngineConfig::new());
        let late = ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022 + 60);
        let early = ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022 + 30);
        assert_eq!(ledger.ingest(&[late]).map(|o| o.accepted), Ok(1));
        assert_eq!(ledger.ingest(&[early]).map(|o| o.duplicates), Ok(1));
        let delivery = ledger.messages.records[0].delivery.get();
        assert_eq!(
            delivery.map(|s| s.at),
            Some((MARCH_2022 + 30) * 1_000_000_000)
        );
        // A read of the same message is a different event.
        let read = ev(EventBody::Status(Status::Read), "m1", MARCH_2022 + 90);
        assert_eq!(ledger.ingest(&[read]).map(|o| o.accepted), Ok(1));
        assert_eq!(ledger.duplicates(), 1);
    }

    #[test]
    fn events_before_the_first_era_are_rejected() {
        let mut ledger = Ledger::new(EngineConfig::new());
        let old = ev(
            EventBody::Inbound { referral: false },
            "m1",
            MARCH_2022 - 40 * 86_400,
        );
        assert!(matches!(
            ledger.ingest(&[old]),
            Err(Rejection::BeforeFirstEra { .. })
        ));
        assert_eq!(ledger.accepted(), 0);
    }

    #[test]
    fn a_group_with_one_bad_user_is_rejected_whole() {
        let mut ledger = Ledger::new(EngineConfig::new());
        let good = ev(EventBody::Inbound { referral: false }, "m1", MARCH_2022);
        let mut bad = ev(EventBody::Inbound { referral: false }, "m2", MARCH_2022);
        bad.user = Cow::Borrowed("999123");
        assert!(matches!(
            ledger.ingest(&[good, bad]),
            Err(Rejection::UnknownRegion { .. })
        ));
        assert_eq!(ledger.n_messages(), 0);
    }

    #[test]
    fn numeric_user_keys_keep_leading_zeros_and_refuse_what_is_not_a_short_number() {
        assert_ne!(numeric_key("0123"), numeric_key("123"));
        assert_eq!(numeric_key("5511999990001"), numeric_key("5511999990001"));
        assert_ne!(numeric_key("5511999990001"), numeric_key("5511999990002"));
        assert_eq!(numeric_key(""), None);
        assert_eq!(numeric_key("12a4"), None);
        assert_eq!(numeric_key("123456789012345678"), None);
        assert!(numeric_key("99999999999999999").is_some());
    }

    fn arbitrary_event() -> impl proptest::strategy::Strategy<Value = Event<'static>> {
        use proptest::prelude::*;
        let body = prop_oneof![
            any::<bool>().prop_map(|referral| EventBody::Inbound { referral }),
            (0u8..4).prop_map(|c| EventBody::Outbound {
                template: template_of(c)
            }),
            prop_oneof![
                Just(Status::Sent),
                Just(Status::Delivered),
                Just(Status::Read),
                Just(Status::Failed),
                Just(Status::Other(Cow::Borrowed("deleted"))),
            ]
            .prop_map(EventBody::Status),
        ];
        let ids = ["m0", "m1", "m2"];
        let users = ["5511999990001", "5511999990002"];
        (body, 0usize..3, 0i64..4, 0usize..2, any::<bool>()).prop_map(
            move |(body, id, secs, user, w2)| {
                let mut e = ev(body, ids[id], MARCH_2022 + secs);
                e.user = Cow::Borrowed(users[user]);
                if w2 {
                    e.waba = Cow::Borrowed("W2");
                }
                e
            },
        )
    }

    type Copy = (i64, String, u8);

    /// What a ledger holds, as far as billing and the counts can tell: per
    /// message id, each canonical copy with its pair by name (pair indices
    /// depend on arrival).
    #[allow(clippy::type_complexity)]
    fn held(ledger: &Ledger) -> (u64, Vec<(String, [Option<Copy>; 3])>, usize) {
        let names = |pair| format!("{:?}", ledger.pair_names(pair));
        let mut views: Vec<_> = (0..ledger.n_messages() as u32)
            .map(|m| {
                let v = ledger.view_of(m);
                let copies = [
                    v.inbound.map(|(at, p, f)| (at.0, names(p), u8::from(f))),
                    v.outbound
                        .map(|(at, p, t)| (at.0, names(p), template_code(t))),
                    v.delivery.map(|(at, p)| (at.0, names(p), 0)),
                ];
                (ledger.message_id(m).to_owned(), copies)
            })
            .collect();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        (ledger.accepted(), views, ledger.other_statuses.len())
    }

    proptest::proptest! {
        /// The service logs only events that `would_change` the ledger: the
        /// prediction matches what folding does, and folding just those
        /// events gives the ledger that folding all of them gives.
        #[test]
        fn would_change_predicts_the_fold_and_the_changing_events_rebuild_the_ledger(
            events in proptest::collection::vec(arbitrary_event(), 0..40)
        ) {
            // libphonenumber's metadata loads once for all cases.
            static REGIONS: std::sync::LazyLock<Arc<RegionCache>> =
                std::sync::LazyLock::new(Arc::default);
            let ledger = || Ledger::with_regions(EngineConfig::new(), Arc::clone(&REGIONS));
            let (mut all, mut changing) = (ledger(), ledger());
            for e in &events {
                let predicted = all.would_change(e);
                let before = held(&all);
                all.ingest(std::slice::from_ref(e)).map_err(|r| {
                    proptest::test_runner::TestCaseError::fail(r.to_string())
                })?;
                proptest::prop_assert_eq!(predicted, held(&all) != before, "{:?}", e);
                if predicted {
                    changing.ingest(std::slice::from_ref(e)).map_err(|r| {
                        proptest::test_runner::TestCaseError::fail(r.to_string())
                    })?;
                }
            }
            let (_, views, others) = held(&all);
            let (_, changing_views, changing_others) = held(&changing);
            proptest::prop_assert_eq!(views, changing_views);
            proptest::prop_assert_eq!(others, changing_others);
        }
    }

    #[test]
    fn pair_names_come_back_as_interned() {
        let mut pairs = Pairs::default();
        let (a, _) = pairs.intern(pair_hash("W1", "P1", "55"), "W1", "P1", "55");
        let (b, _) = pairs.intern(pair_hash("W1", "P12", "5"), "W1", "P12", "5");
        let (again, _) = pairs.intern(pair_hash("W1", "P1", "55"), "W1", "P1", "55");
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_eq!(pairs.names(a), ("W1", "P1", "55"));
        assert_eq!(pairs.names(b), ("W1", "P12", "5"));
    }

    #[test]
    fn the_message_table_finds_every_id_through_growth_and_touch_changes_nothing() {
        let mut messages = Messages::default();
        let ids: Vec<String> = (0..5000).map(|i| format!("wamid.{i:x}")).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(messages.intern(id, str_hash(id)), (i as u32, true));
        }
        for (i, id) in ids.iter().enumerate().rev() {
            let _ = messages.touch(str_hash(id));
            assert_eq!(messages.intern(id, str_hash(id)), (i as u32, false));
            assert_eq!(messages.id(i as u32), id);
        }
        // Ids whose hashes share the home slot and the tag still differ.
        let mut crowded = Messages::default();
        assert_eq!(crowded.intern("a", 7), (0, true));
        assert_eq!(crowded.intern("b", 7), (1, true));
        assert_eq!(crowded.intern("a", 7), (0, false));
        assert_eq!(crowded.intern("b", 7), (1, false));
        assert_eq!(crowded.records.len(), 2);
    }
}
