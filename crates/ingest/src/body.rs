//! Cloud API (events.md section 2) and On-Premises (section 3) bodies, read
//! item by item (section 5): a good item gives its event, an item that is no
//! billing event is counted by kind, and a bad one is quarantined whole
//! without touching the others.
//!
//! A body is read in one typed pass, as fast as a body read whole; only a
//! body whose structure that pass refuses (an entry, change or item of the
//! wrong JSON type) is read again part by part ([`granular`]), so that its
//! good parts are kept. A quarantined item's own text is found again in the
//! body when it is needed ([`locate`]), not kept for every item.

mod granular;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use wabill_engine::event::{Also, Event, EventBody, Status};

use crate::parsed::{Envelope, ItemPath, List, Origin, Parsed};
use crate::{Id, InputError, Route, invalid, is_null, missing, required_id, timestamp, user_ids};

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow, default)]
    changes: Option<Vec<Change<'a>>>,
}

#[derive(Deserialize)]
struct Change<'a> {
    #[serde(borrow)]
    field: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Option<ChangeValue<'a>>,
}

#[derive(Deserialize)]
struct ChangeValue<'a> {
    #[serde(borrow)]
    metadata: Option<Metadata<'a>>,
    #[serde(borrow)]
    messages: Option<Vec<InboundItem<'a>>>,
    #[serde(borrow)]
    statuses: Option<Vec<StatusItem<'a>>>,
    #[serde(borrow)]
    errors: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    phone_number_id: Option<Id<'a>>,
}

#[derive(Clone, Deserialize)]
struct InboundItem<'a> {
    #[serde(borrow)]
    from: Option<Id<'a>>,
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    referral: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    group_id: Option<Id<'a>>,
    #[serde(borrow)]
    from_user_id: Option<Id<'a>>,
}

#[derive(Clone, Deserialize)]
struct StatusItem<'a> {
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    recipient_id: Option<Id<'a>>,
    /// On-Premises v2.45+: `message.recipient_id`.
    #[serde(borrow)]
    message: Option<StatusMessage<'a>>,
    #[serde(borrow)]
    conversation: Option<&'a RawValue>,
    #[serde(borrow)]
    pricing: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_user_id: Option<Id<'a>>,
    /// Groups: the participant a group message was delivered to (Meta
    /// spells the key both ways), by number and by business-scoped id.
    #[serde(borrow, alias = "participant_recipient_id")]
    recipient_participant_id: Option<Id<'a>>,
    #[serde(borrow, alias = "participant_recipient_user_id")]
    recipient_participant_user_id: Option<Id<'a>>,
}

#[derive(Clone, Deserialize)]
struct StatusMessage<'a> {
    #[serde(borrow)]
    recipient_id: Option<Id<'a>>,
}

/// What one item is.
enum Item<'a> {
    Event(Event<'a>),
    /// Not a billing event, of this kind.
    Ignored(&'static str),
}

/// A change's items, typed, with where they are.
struct Items<'a> {
    messages: Vec<InboundItem<'a>>,
    statuses: Vec<StatusItem<'a>>,
    change: Option<(u32, u32)>,
    envelope: u32,
}

pub(crate) fn cloud_body<'a>(
    entry: Option<&'a RawValue>,
    out: &mut Parsed<'a>,
) -> Result<(), InputError> {
    // A body without `entry` carries no messages or statuses: no events.
    let Some(raw) = entry.filter(|r| r.get() != "null") else {
        return Ok(());
    };
    match serde_json::from_str::<Vec<Entry<'a>>>(raw.get()) {
        Ok(entries) => {
            let envelope = out.envelope(Envelope::Cloud { entry: raw });
            for (e, entry) in entries.into_iter().enumerate() {
                let waba = entry.id;
                for (c, change) in entry.changes.into_iter().flatten().enumerate() {
                    let value = match messages_value(change, out) {
                        Some(value) => value,
                        None => continue,
                    };
                    let who = envelope_ids(waba.clone(), value.metadata, (e, c));
                    let items = Items {
                        messages: value.messages.unwrap_or_default(),
                        statuses: value.statuses.unwrap_or_default(),
                        change: Some((e as u32, c as u32)),
                        envelope,
                    };
                    read_items(items, who, out);
                }
            }
            Ok(())
        }
        Err(_) => granular::cloud_body(raw, out),
    }
}

/// The value of a change that carries billing items; a change of another
/// field, or with errors alone, is counted as ignored.
fn messages_value<'a>(change: Change<'a>, out: &mut Parsed<'a>) -> Option<ChangeValue<'a>> {
    // Only `messages` carries billing events; calls, echoes, group
    // lifecycle, preferences, account and template updates do not.
    if let Some(field) = change.field.as_deref()
        && field != "messages"
    {
        out.ignore(field);
        return None;
    }
    let value = change.value?;
    if value.messages.as_ref().is_none_or(Vec::is_empty)
        && value.statuses.as_ref().is_none_or(Vec::is_empty)
    {
        // A value of errors alone (Meta could not deliver webhooks).
        if !is_null(value.errors) {
            out.ignore("errors");
        }
        return None;
    }
    Some(value)
}

/// The WABA (`entry[e].id`) and phone (`metadata.phone_number_id` of the
/// value of change `c`) of a change's items.
fn envelope_ids<'a>(
    waba: Option<Id<'a>>,
    metadata: Option<Metadata<'a>>,
    (e, c): (usize, usize),
) -> Result<(Cow<'a, str>, Cow<'a, str>), InputError> {
    // Paths are written only for an error: this runs for every change.
    let given = |id: &Option<Id<'a>>| id.as_ref().is_some_and(|i| !i.0.is_empty());
    let path_unless = |given: bool, write: &dyn Fn() -> String| {
        if given { String::new() } else { write() }
    };
    let waba_path = path_unless(given(&waba), &|| format!("entry[{e}]"));
    let waba = required_id(waba, &waba_path, "id")?;
    let phone = metadata.and_then(|m| m.phone_number_id);
    let phone_path = path_unless(given(&phone), &|| {
        format!("entry[{e}].changes[{c}].value.metadata")
    });
    let phone = required_id(phone, &phone_path, "phone_number_id")?;
    Ok((waba, phone))
}

/// Each item of a change: its event, ignored, or quarantined; `who` is the
/// WABA and phone the envelope gives them, or why it gives none.
fn read_items<'a>(items: Items<'a>, who: Who<'a>, out: &mut Parsed<'a>) {
    let path = |list, i: usize| ItemPath {
        change: items.change,
        list,
        index: i as u32,
    };
    // Each item is read without its path, which is written only for an
    // error: an item that fails is read again with it (rare; formatting
    // paths was a tenth of reading a body).
    for (i, m) in items.messages.into_iter().enumerate() {
        let at = path(List::Messages, i);
        let again = m.clone();
        let item =
            inbound_item(m, "", &who).or_else(|_| inbound_item(again, &at.to_string(), &who));
        settle(item, items.envelope, at, out);
    }
    for (i, s) in items.statuses.into_iter().enumerate() {
        let at = path(List::Statuses, i);
        let again = s.clone();
        let item = status_item(s, "", &who, &mut out.boxes)
            .or_else(|_| status_item(again, &at.to_string(), &who, &mut out.boxes));
        settle(item, items.envelope, at, out);
    }
}

/// Records what an item turned out to be.
fn settle<'a>(
    item: Result<Item<'a>, InputError>,
    envelope: u32,
    path: ItemPath,
    out: &mut Parsed<'a>,
) {
    match item {
        Ok(Item::Event(event)) => out.push(event, Origin::Item { envelope, path }),
        Ok(Item::Ignored(kind)) => out.ignore(kind),
        Err(e) => {
            let reason = e.reason_at(&path.to_string());
            out.quarantine(envelope, path, reason);
        }
    }
}

/// A user as the item names it: the user and the business-scoped id beside
/// the number (rules F9).
type UserIds<'a> = (Cow<'a, str>, Option<Cow<'a, str>>);

/// A group status's participant (number and business-scoped id), or None
/// when it names none.
fn participant<'a>(
    number: &Option<Id<'a>>,
    bsuid: &Option<Id<'a>>,
    path: &str,
) -> Result<Option<UserIds<'a>>, InputError> {
    let given = |id: &Option<Id<'a>>| id.as_ref().is_some_and(|i| !i.0.is_empty());
    if !given(number) && !given(bsuid) {
        return Ok(None);
    }
    let (user, bsuid) = user_ids(
        number.clone(),
        bsuid.clone(),
        path,
        "recipient_participant_id",
    )?;
    Ok(Some((user, bsuid)))
}

/// A group status that names no participant: `sent` and `failed` ones
/// never do (Meta) and bill nothing; a delivery with no participant has no
/// market to be priced in.
fn no_participant<'a>(status: &str, path: &str) -> Result<Item<'a>, InputError> {
    if matches!(status, "delivered" | "read") {
        return Err(invalid(
            path,
            "a group delivery that names no participant (`recipient_participant_id`): no market to price it in",
        ));
    }
    Ok(Item::Ignored("group_status"))
}

/// A change's WABA and phone, or why its envelope gives none.
type Who<'a> = Result<(Cow<'a, str>, Cow<'a, str>), InputError>;

fn inbound_item<'a>(m: InboundItem<'a>, path: &str, who: &Who<'a>) -> Result<Item<'a>, InputError> {
    // A notice about the user (changed number, changed user id), not a
    // message the user sent.
    if m.kind.as_deref() == Some("system") {
        return Ok(Item::Ignored("system"));
    }
    // Rules G1: a participant writing in a group opens the group's window.
    let group = m.group_id.map(|g| g.0).filter(|g| !g.is_empty());
    let (waba, phone) = who.as_ref().map_err(Clone::clone)?;
    let referral = !is_null(m.referral);
    if let Some(r) = m.referral.filter(|_| referral)
        && !r.get().starts_with('{')
    {
        return Err(invalid(path, "`referral` must be an object"));
    }
    let (user, bsuid) = user_ids(m.from, m.from_user_id, path, "from")?;
    Ok(Item::Event(Event {
        ts: timestamp(m.timestamp, path, "timestamp")?,
        waba: waba.clone(),
        phone: phone.clone(),
        user,
        also: Also::boxed(bsuid, group),
        id: required_id(m.id, path, "id")?,
        body: EventBody::Inbound { referral },
        verdict: None,
    }))
}

fn status_item<'a>(
    s: StatusItem<'a>,
    path: &str,
    who: &Who<'a>,
    boxes: &mut crate::parsed::Boxes<'a>,
) -> Result<Item<'a>, InputError> {
    // A payment's progress (WhatsApp Pay), not a message's delivery.
    if s.kind.as_deref() == Some("payment") {
        return Ok(Item::Ignored("payment"));
    }
    let (waba, phone) = who.as_ref().map_err(Clone::clone)?;
    let recipient = s.recipient_id.or(s.message.and_then(|m| m.recipient_id));
    let status = s
        .status
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing(path, "status"))?;
    let ts = timestamp(s.timestamp, path, "timestamp")?;
    let mut id = required_id(s.id, path, "id")?;
    let verdict = crate::verdict::webhook(s.pricing, s.conversation, path, boxes)?;
    let (user, bsuid, group) = if s.recipient_type.as_deref() == Some("group") {
        let Some((user, bsuid)) = participant(
            &s.recipient_participant_id,
            &s.recipient_participant_user_id,
            path,
        )?
        else {
            return no_participant(&status, path);
        };
        // Rules G1: billed per participant delivered to, so one event per
        // (message, participant).
        id = Cow::Owned(format!("{id}#{user}"));
        let group = recipient.map(|g| g.0).filter(|g| !g.is_empty());
        let Some(group) = group else {
            return Err(invalid(
                path,
                "a group status without its group (`recipient_id`)",
            ));
        };
        (user, bsuid, Some(group))
    } else {
        let (user, bsuid) = user_ids(recipient, s.recipient_user_id, path, "recipient_id")?;
        (user, bsuid, None)
    };
    Ok(Item::Event(Event {
        ts,
        waba: waba.clone(),
        phone: phone.clone(),
        user,
        also: Also::boxed(bsuid, group),
        id,
        body: EventBody::Status(Status::parse(status)),
        verdict,
    }))
}

/// The top-level lists of an On-Premises body.
pub(crate) struct OnPremisesTop<'a> {
    pub messages: Option<&'a RawValue>,
    pub statuses: Option<&'a RawValue>,
    pub contacts: Option<&'a RawValue>,
}

pub(crate) fn on_premises_body<'a>(
    top: OnPremisesTop<'a>,
    route: Route<'_>,
    out: &mut Parsed<'a>,
) -> Result<(), InputError> {
    // The lists are the envelope: one that is not an array is refused.
    let raws = [(top.messages, "messages"), (top.statuses, "statuses")]
        .map(|(raw, name)| granular::list(raw, name));
    let [messages, statuses] = raws;
    let (messages, statuses) = (messages?, statuses?);
    if messages.is_empty() && statuses.is_empty() {
        return Ok(());
    }
    let (Some(waba), Some(phone)) = (route.waba, route.phone) else {
        return Err(InputError::Shape(
            "an On-Premises body carries no WABA or phone: give them (--waba and --phone)"
                .to_owned(),
        ));
    };
    let envelope = out.envelope(Envelope::OnPremises {
        messages: top.messages,
        statuses: top.statuses,
        contacts: top.contacts,
        waba: waba.to_owned(),
    });
    let who = || Ok((Cow::Owned(waba.to_owned()), Cow::Owned(phone.to_owned())));
    // Typed in one pass when every item is of the right JSON types; else
    // item by item.
    let typed = (
        top.messages
            .map(|r| serde_json::from_str::<Option<Vec<InboundItem<'a>>>>(r.get()))
            .transpose(),
        top.statuses
            .map(|r| serde_json::from_str::<Option<Vec<StatusItem<'a>>>>(r.get()))
            .transpose(),
    );
    match typed {
        (Ok(m), Ok(s)) => {
            let items = Items {
                messages: m.flatten().unwrap_or_default(),
                statuses: s.flatten().unwrap_or_default(),
                change: None,
                envelope,
            };
            read_items(items, who(), out);
        }
        _ => granular::items(messages, statuses, None, envelope, &who(), out),
    }
    Ok(())
}
