//! Finding a quarantined item again in its body, with the envelope around
//! it: its text and a body that holds it alone. The body's lists are parsed
//! once per body however many of its items are quarantined, and an item's
//! envelope copies only the `contacts` entries of its own user, so that a
//! body of many bad items costs in proportion to its size.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Id;
use crate::parsed::{Envelope, ItemPath, List};

/// An item found again, with what its envelope says.
pub(crate) struct Located<'a> {
    pub item: &'a str,
    /// `entry[].id` of a Cloud API body.
    pub waba: Option<&'a RawValue>,
    pub metadata: Option<&'a RawValue>,
    /// The `contacts` entries of the item's user, as a JSON array.
    pub contacts: Option<String>,
}

/// An entry, a change and a change's value, their parts raw: what the
/// part-by-part reading (`body::granular`) and the finding of items share.
#[derive(Deserialize)]
pub(crate) struct RawEntry<'a> {
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub changes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct RawChange<'a> {
    #[serde(borrow)]
    pub field: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub value: Option<&'a RawValue>,
}

/// A value's parts; `contacts` is read on its own ([`contacts_of`]), as a
/// value may repeat keys the typed pass ignores.
#[derive(Deserialize)]
pub(crate) struct RawValueParts<'a> {
    #[serde(borrow)]
    pub metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    pub messages: Option<&'a RawValue>,
    #[serde(borrow)]
    pub statuses: Option<&'a RawValue>,
    #[serde(borrow)]
    pub errors: Option<&'a RawValue>,
}

/// The WABA an entry's `id` names, when it is a non-empty id.
pub(crate) fn waba_of(id: Option<&RawValue>) -> Option<String> {
    let id: Id<'_> = serde_json::from_str(id?.get()).ok()?;
    Some(id.0.into_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct RawContacts<'a> {
    #[serde(borrow)]
    contacts: Option<&'a RawValue>,
}

/// The ids a contact or an item names its user by.
#[derive(Deserialize, Default)]
struct UserIds<'a> {
    #[serde(borrow)]
    wa_id: Option<Id<'a>>,
    #[serde(borrow)]
    user_id: Option<Id<'a>>,
    #[serde(borrow)]
    from: Option<Id<'a>>,
    #[serde(borrow)]
    from_user_id: Option<Id<'a>>,
    #[serde(borrow)]
    recipient_id: Option<Id<'a>>,
    #[serde(borrow)]
    recipient_user_id: Option<Id<'a>>,
    #[serde(borrow)]
    recipient_participant_id: Option<Id<'a>>,
}

impl UserIds<'_> {
    fn of(raw: &RawValue) -> UserIds<'_> {
        serde_json::from_str(raw.get()).unwrap_or_default()
    }

    fn all(&self) -> impl Iterator<Item = &str> {
        [
            &self.wa_id,
            &self.user_id,
            &self.from,
            &self.from_user_id,
            &self.recipient_id,
            &self.recipient_user_id,
            &self.recipient_participant_id,
        ]
        .into_iter()
        .flatten()
        .map(|id| &*id.0)
        .filter(|id| !id.is_empty())
    }
}

/// One list of items with the envelope around it.
struct Parts<'a> {
    items: Vec<&'a RawValue>,
    waba: Option<&'a RawValue>,
    metadata: Option<&'a RawValue>,
    contacts: Contacts<'a>,
}

/// A `contacts` array, and which entries name each user id.
#[derive(Default)]
struct Contacts<'a> {
    entries: Vec<&'a RawValue>,
    by_id: HashMap<String, Vec<usize>>,
}

impl<'a> Contacts<'a> {
    fn new(entries: Vec<&'a RawValue>) -> Contacts<'a> {
        let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in entries.iter().enumerate() {
            for id in UserIds::of(c).all() {
                let at = by_id.entry(id.to_owned()).or_default();
                if !at.contains(&i) {
                    at.push(i);
                }
            }
        }
        Contacts { entries, by_id }
    }

    /// The entries that name the item's user, as a JSON array; none when
    /// no entry does.
    fn of(&self, item: &RawValue) -> Option<String> {
        let mut mine: Vec<usize> = UserIds::of(item)
            .all()
            .filter_map(|id| self.by_id.get(id))
            .flatten()
            .copied()
            .collect();
        mine.sort_unstable();
        mine.dedup();
        let texts: Vec<&str> = mine
            .iter()
            .filter_map(|&i| self.entries.get(i))
            .map(|c| c.get())
            .collect();
        (!texts.is_empty()).then(|| format!("[{}]", texts.join(",")))
    }
}

type Key = (u32, Option<(u32, u32)>, List);

/// An entry's `id` and its changes.
type EntryParts<'a> = (Option<&'a RawValue>, Vec<&'a RawValue>);

/// What a body's lists parsed to, kept while its items are quarantined.
#[derive(Default)]
pub(crate) struct Locator<'a> {
    /// Per (envelope, entry), its `id` and changes.
    changes: HashMap<(u32, u32), EntryParts<'a>>,
    /// Per Cloud envelope, its entries.
    entries: HashMap<u32, Vec<&'a RawValue>>,
    lists: HashMap<Key, Option<Parts<'a>>>,
}

impl std::fmt::Debug for Locator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locator")
            .field("lists", &self.lists.len())
            .finish()
    }
}

fn array(raw: Option<&RawValue>) -> Vec<&RawValue> {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or_default()
}

fn contacts_of(value: &RawValue) -> Vec<&RawValue> {
    let contacts = serde_json::from_str::<RawContacts<'_>>(value.get())
        .ok()
        .and_then(|c| c.contacts);
    array(contacts)
}

impl<'a> Locator<'a> {
    pub fn clear(&mut self) {
        self.changes.clear();
        self.entries.clear();
        self.lists.clear();
    }

    /// The item at `path` of envelope number `at`, found again.
    pub fn locate(
        &mut self,
        at: u32,
        envelope: &Envelope<'a>,
        path: ItemPath,
    ) -> Option<Located<'a>> {
        let key = (at, path.change, path.list);
        if !self.lists.contains_key(&key) {
            let parts = self.parts(at, envelope, path);
            self.lists.insert(key, parts);
        }
        let parts = self.lists.get(&key)?.as_ref()?;
        let item = *parts.items.get(path.index as usize)?;
        Some(Located {
            item: item.get(),
            waba: parts.waba,
            metadata: parts.metadata,
            contacts: parts.contacts.of(item),
        })
    }

    fn parts(&mut self, at: u32, envelope: &Envelope<'a>, path: ItemPath) -> Option<Parts<'a>> {
        match envelope {
            Envelope::Cloud { entry } => {
                let (e, c) = path.change?;
                let entries = self.entries.entry(at).or_insert_with(|| array(Some(entry)));
                let raw_entry = *entries.get(e as usize)?;
                let (waba, changes) = self.changes.entry((at, e)).or_insert_with(|| {
                    match serde_json::from_str::<RawEntry<'a>>(raw_entry.get()) {
                        Ok(entry) => (entry.id, array(entry.changes)),
                        Err(_) => (None, Vec::new()),
                    }
                });
                let change: RawChange<'a> =
                    serde_json::from_str(changes.get(c as usize)?.get()).ok()?;
                let value = change.value?;
                let parts: RawValueParts<'a> = serde_json::from_str(value.get()).ok()?;
                let list = match path.list {
                    List::Messages => parts.messages,
                    _ => parts.statuses,
                };
                Some(Parts {
                    items: array(list),
                    waba: *waba,
                    metadata: parts.metadata,
                    contacts: Contacts::new(contacts_of(value)),
                })
            }
            Envelope::OnPremises {
                messages,
                statuses,
                contacts,
                ..
            } => Some(Parts {
                items: array(match path.list {
                    List::Messages => *messages,
                    _ => *statuses,
                }),
                waba: None,
                metadata: None,
                contacts: Contacts::new(array(*contacts)),
            }),
            Envelope::Sunshine { events, .. } => Some(Parts {
                items: array(Some(events)),
                waba: None,
                metadata: None,
                contacts: Contacts::default(),
            }),
        }
    }
}
