//! What reading a line or body gives (events.md section 5): its events,
//! where each came from, the items that are not billing events (counted per
//! kind) and the items kept whole in quarantine with their path and reason.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::value::RawValue;
use wabill_engine::Verdict;
use wabill_engine::event::Event;

use crate::locate::{Located, Locator};

/// One line or body read: the events of its good items, and what became of
/// the others. A body is not all-or-nothing: one bad item is quarantined
/// and the rest are kept.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub events: Vec<Event<'a>>,
    /// Where each event came from, index for index with `events`.
    pub origins: Vec<Origin>,
    /// The envelopes the origins point into.
    envelopes: Vec<Envelope<'a>>,
    /// Items that are not billing events, per kind (`payment`, `calls`, …).
    pub ignored: BTreeMap<String, u64>,
    pub quarantined: Vec<Quarantined>,
    /// The provider a normalized line names (`provider`, events.md
    /// section 1; rules P6): it takes the place of the input's.
    pub provider: Option<wabill_engine::carriers::Provider>,
    /// The body's lists as parsed to find quarantined items again.
    locator: Locator<'a>,
    /// Verdict boxes of earlier lines, to fill again.
    pub(crate) boxes: Boxes<'a>,
}

/// How verdicts are read: boxes kept for reuse (a line of a file allocates
/// none once the lines before it freed theirs; boxes, not verdicts: events
/// own them), and whether serde alone reads Meta's objects (for the tests
/// that check the scanner against it).
#[derive(Debug, Default)]
#[allow(clippy::vec_box)]
pub(crate) struct Boxes<'a> {
    free: Vec<Box<Verdict<'a>>>,
    pub serde_only: bool,
}

impl<'a> Boxes<'a> {
    /// An empty verdict in a box.
    pub fn take(&mut self) -> Box<Verdict<'a>> {
        match self.free.pop() {
            Some(mut b) => {
                *b = Verdict::default();
                b
            }
            None => Box::default(),
        }
    }
}

/// An item kept whole because it could not become events: malformed, or a
/// user with no market. Re-reading `body` (with the same route) after the
/// configuration is fixed gives its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// Where the item was in its body: `entry[0].changes[0].value.statuses[1]`.
    pub path: String,
    pub reason: String,
    /// The item's JSON as received.
    pub item: String,
    /// A body of the same shape holding this item alone, in its envelope.
    pub body: String,
    /// The WABA the item's envelope names, when it names one.
    pub waba: Option<String>,
}

/// Where an event came from.
#[derive(Copy, Clone, Debug)]
pub enum Origin {
    /// A normalized line: the line is the item (rejected whole).
    Line,
    /// An item of a body (found again in it when quarantined).
    Item { envelope: u32, path: ItemPath },
}

/// The list an item is in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum List {
    Messages,
    Statuses,
    /// Sunshine's `events`.
    Events,
}

impl List {
    pub fn as_str(self) -> &'static str {
        match self {
            List::Messages => "messages",
            List::Statuses => "statuses",
            List::Events => "events",
        }
    }
}

/// An item's place in its body, kept as numbers until it is shown.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemPath {
    /// `entry[e].changes[c].value` of a Cloud API body; None for bodies
    /// whose lists are at the top (On-Premises, Sunshine).
    pub change: Option<(u32, u32)>,
    pub list: List,
    pub index: u32,
}

impl fmt::Display for ItemPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((e, c)) = self.change {
            write!(f, "entry[{e}].changes[{c}].value.")?;
        }
        write!(f, "{}[{}]", self.list.as_str(), self.index)
    }
}

/// The body an item came from, to find the item again and read it on its
/// own.
#[derive(Clone, Debug)]
pub enum Envelope<'a> {
    /// A Cloud API body's `entry` array (each item's envelope is in it).
    Cloud {
        entry: &'a RawValue,
    },
    /// With the route's WABA, which the body does not name.
    OnPremises {
        messages: Option<&'a RawValue>,
        statuses: Option<&'a RawValue>,
        contacts: Option<&'a RawValue>,
        waba: String,
    },
    Sunshine {
        events: &'a RawValue,
        waba: String,
    },
}

impl Envelope<'_> {
    /// The WABA an item names: its entry's `id`, or the route's.
    fn waba(&self, located: &Located<'_>) -> Option<String> {
        match self {
            Envelope::Cloud { .. } => crate::locate::waba_of(located.waba),
            Envelope::OnPremises { waba, .. } | Envelope::Sunshine { waba, .. } => {
                Some(waba.clone())
            }
        }
    }

    /// A body holding the located item alone, in `list`, inside its
    /// envelope.
    fn body(&self, list: List, located: &Located<'_>) -> String {
        let (list, item) = (list.as_str(), located.item);
        let contacts = match &located.contacts {
            Some(c) => format!("\"contacts\":{c},"),
            None => String::new(),
        };
        match self {
            Envelope::Cloud { .. } => {
                let raw = |r: Option<&RawValue>| r.map_or("null", RawValue::get).to_owned();
                let (waba, metadata) = (raw(located.waba), raw(located.metadata));
                format!(
                    "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":{waba},\"changes\":[{{\"field\":\"messages\",\"value\":{{\"messaging_product\":\"whatsapp\",\"metadata\":{metadata},{contacts}\"{list}\":[{item}]}}}}]}}]}}"
                )
            }
            Envelope::OnPremises { .. } => format!("{{{contacts}\"{list}\":[{item}]}}"),
            Envelope::Sunshine { .. } => format!("{{\"events\":[{item}]}}"),
        }
    }
}

impl<'a> Parsed<'a> {
    /// Empties it for the next line, keeping its memory.
    pub fn clear(&mut self) {
        for event in self.events.drain(..) {
            if let Some(b) = event.verdict {
                self.boxes.free.push(b);
            }
        }
        self.origins.clear();
        self.envelopes.clear();
        self.ignored.clear();
        self.quarantined.clear();
        self.provider = None;
        self.locator.clear();
    }

    /// Whether the line is nothing but its events: no item ignored or
    /// quarantined.
    pub fn is_clean(&self) -> bool {
        self.ignored.is_empty() && self.quarantined.is_empty()
    }

    pub(crate) fn envelope(&mut self, envelope: Envelope<'a>) -> u32 {
        self.envelopes.push(envelope);
        u32::try_from(self.envelopes.len() - 1).unwrap_or(u32::MAX)
    }

    pub(crate) fn push(&mut self, event: Event<'a>, origin: Origin) {
        self.events.push(event);
        self.origins.push(origin);
    }

    pub(crate) fn ignore(&mut self, kind: &str) {
        // A change whose `field` is "" still counts, under a name.
        let kind = if kind.is_empty() {
            "unnamed_field"
        } else {
            kind
        };
        match self.ignored.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.ignored.insert(kind.to_owned(), 1);
            }
        }
    }

    /// Keeps an item whole in quarantine: its text, found again in its
    /// body, and a body that reads it again.
    pub(crate) fn quarantine(&mut self, envelope: u32, path: ItemPath, reason: impl fmt::Display) {
        let Some(env) = self.envelopes.get(envelope as usize) else {
            return;
        };
        let located = self.locator.locate(envelope, env, path);
        let (item, body, waba) = match &located {
            Some(l) => (l.item, env.body(path.list, l), env.waba(l)),
            None => ("", String::new(), None),
        };
        self.quarantined.push(Quarantined {
            path: path.to_string(),
            reason: reason.to_string(),
            item: item.to_owned(),
            body,
            waba,
        });
    }

    /// Keeps an item whose place is not an item path (a malformed entry or
    /// change): there is no body to read it again in.
    pub(crate) fn quarantine_part(
        &mut self,
        path: String,
        raw: &str,
        waba: Option<String>,
        reason: impl fmt::Display,
    ) {
        self.quarantined.push(Quarantined {
            path,
            reason: reason.to_string(),
            item: raw.to_owned(),
            body: String::new(),
            waba,
        });
    }

    /// Checks every event with `check`, appending the facts of those kept
    /// to `facts`. An item with an event that fails is quarantined whole,
    /// with the first failure as its reason, and all its events leave
    /// `events`. An event of a normalized line that fails rejects the line:
    /// the error, with nothing kept.
    pub fn check_items<F, E: fmt::Display>(
        &mut self,
        mut check: impl FnMut(&Event<'a>) -> Result<F, E>,
        facts: &mut Vec<F>,
    ) -> Result<(), E> {
        let start = facts.len();
        let mut failed: Vec<(usize, E)> = Vec::new();
        for (i, event) in self.events.iter().enumerate() {
            match check(event) {
                Ok(f) => facts.push(f),
                Err(e) => {
                    if matches!(self.origins.get(i), Some(Origin::Line) | None) {
                        facts.truncate(start);
                        self.events.clear();
                        self.origins.clear();
                        return Err(e);
                    }
                    failed.push((i, e));
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        // The items that failed, each quarantined once.
        let key = |o: &Origin| match o {
            Origin::Item { envelope, path } => Some((*envelope, *path)),
            Origin::Line => None,
        };
        let failed_at: std::collections::HashSet<usize> = failed.iter().map(|(i, _)| *i).collect();
        let mut bad = std::collections::HashSet::new();
        for (i, reason) in failed {
            if let Some(&Origin::Item { envelope, path }) = self.origins.get(i)
                && bad.insert((envelope, path))
            {
                self.quarantine(envelope, path, reason);
            }
        }
        // Facts were pushed for the events that passed, in order: keep
        // those of events whose item is not quarantined.
        let passed: Vec<F> = facts.drain(start..).collect();
        let mut passed = passed.into_iter();
        let events = std::mem::take(&mut self.events);
        let origins = std::mem::take(&mut self.origins);
        for (i, (event, origin)) in events.into_iter().zip(origins).enumerate() {
            let fact = if failed_at.contains(&i) {
                None
            } else {
                passed.next()
            };
            let keep = key(&origin).is_none_or(|k| !bad.contains(&k));
            if let (true, Some(fact)) = (keep, fact) {
                facts.push(fact);
                self.events.push(event);
                self.origins.push(origin);
            }
        }
        Ok(())
    }
}

/// A normalized line's `provider` (events.md section 1): a provider's
/// name; any other value is no provider, never a reason to reject.
pub(crate) fn line_provider(raw: Option<&str>) -> Option<wabill_engine::carriers::Provider> {
    let name: std::borrow::Cow<'_, str> = serde_json::from_str(raw?).ok()?;
    wabill_engine::carriers::Provider::parse(&name)
}
