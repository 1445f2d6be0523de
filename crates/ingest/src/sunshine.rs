//! Zendesk Sunshine Conversations v2 webhook bodies (events.md section 4) →
//! engine events. Pure, like the other parsers: text in, events and what
//! became of each Sunshine event out; a bad event is quarantined, not its
//! body (section 5).
//!
//! The shapes are those of Sunshine's OpenAPI spec (reference Z1,
//! `zendesk/sunshine-conversations-api-spec`, `openapi.yaml`): a body is
//! `{"app", "webhook", "events": [{"id", "type", "createdAt", "payload"}]}`.
//! What each event becomes (docs/decisions.md has the reasons):
//!
//! - `conversation:message` by an author of type `user` → `inbound`. Its id is
//!   the channel's own id (`source.originalMessageId`, the wamid) when given,
//!   else Sunshine's `message.id`; its time the channel's
//!   (`source.originalMessageTimestamp`), else `message.received`, else the
//!   event's `createdAt`. Messages by `business` give nothing: outbound records
//!   come from the sending side, as for the Cloud API.
//! - `conversation:message:delivery:user` → `delivered`, `…:delivery:failure`
//!   → `failed`, at the event's `createdAt` (the only time they carry), with
//!   Sunshine's `message.id` (the id the sending side recorded the outbound
//!   message under), else one per WhatsApp message id in `externalMessages`.
//! - Referrals: Sunshine reports them as their own events, not on the message
//!   (Z2): `conversation:create` with a `referral` (or, for WhatsApp, the
//!   client's `raw.referral`) and `conversation:referral`. One marks the
//!   earliest user message of the same conversation in the same body as an
//!   entry point.
//! - Everything else (`…:delivery:channel`, typing, read, switchboard, …) and
//!   anything from a channel other than WhatsApp gives nothing and is no
//!   error: it is counted as ignored.
//!
//! The user is the route's mapping of Sunshine `userId` first, else the
//! WhatsApp client's `externalId` (present with `includeFullSource`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use wabill_engine::event::{Event, EventBody, Status};

use crate::parsed::{self, ItemPath, List, Origin, Parsed};
use crate::{Id, InputError, invalid, is_null, missing, parse_at, timestamp, user_digits};

/// One Zendesk route's configuration: Sunshine bodies name neither WABA nor
/// phone, and name users by Sunshine ids (events.md section 4).
#[derive(Copy, Clone, Debug)]
pub struct SunshineMap<'m> {
    pub waba: &'m str,
    pub phone: &'m str,
    /// Sunshine `userId` → the user's WhatsApp number (digits, an optional
    /// leading `+`).
    pub users: &'m BTreeMap<String, String>,
}

/// Sunshine's name for the WhatsApp channel (`source.type`,
/// `destination.type`, `client.type`).
const WHATSAPP: &str = "whatsapp";

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    events: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "createdAt")]
    created_at: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// `{"id": …}`: a conversation, user, message or external message reference.
#[derive(Deserialize)]
struct IdRef<'a> {
    #[serde(borrow)]
    id: Option<Id<'a>>,
}

#[derive(Deserialize)]
struct MessagePayload<'a> {
    #[serde(borrow)]
    conversation: Option<IdRef<'a>>,
    #[serde(borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    received: Option<&'a RawValue>,
    #[serde(borrow)]
    author: Option<Author<'a>>,
    #[serde(borrow)]
    source: Option<Source<'a>>,
}

#[derive(Deserialize)]
struct Author<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "userId")]
    user_id: Option<Id<'a>>,
    #[serde(borrow)]
    user: Option<IdRef<'a>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "originalMessageId")]
    original_message_id: Option<Id<'a>>,
    #[serde(borrow, rename = "originalMessageTimestamp")]
    original_message_timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    client: Option<Client<'a>>,
}

impl Source<'_> {
    /// A source of another channel: not WhatsApp traffic. No `type` is taken
    /// as WhatsApp, the route's channel.
    fn is_other_channel(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| k != WHATSAPP)
    }
}

#[derive(Deserialize)]
struct Client<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "externalId")]
    external_id: Option<Id<'a>>,
    /// "Raw properties that vary for each client platform": only looked into
    /// when it is an object.
    #[serde(borrow)]
    raw: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ClientRaw<'a> {
    #[serde(borrow)]
    referral: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct DeliveryPayload<'a> {
    #[serde(borrow)]
    user: Option<IdRef<'a>>,
    #[serde(borrow)]
    message: Option<IdRef<'a>>,
    #[serde(borrow)]
    destination: Option<Destination<'a>>,
    #[serde(borrow, rename = "externalMessages")]
    external_messages: Option<Vec<IdRef<'a>>>,
}

#[derive(Deserialize)]
struct Destination<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

/// `conversation:create` and `conversation:referral`.
#[derive(Deserialize)]
struct ReferralPayload<'a> {
    #[serde(borrow)]
    conversation: Option<IdRef<'a>>,
    #[serde(borrow)]
    referral: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<Source<'a>>,
}

/// An event made from the body, with its conversation for referrals and
/// the index of the Sunshine event it came from.
struct Found<'a> {
    conversation: Option<Cow<'a, str>>,
    event: Event<'a>,
    item: usize,
}

/// Reads one Sunshine webhook body into `out`, event by event (events.md
/// section 5): a bad event is quarantined and the others kept. Only a body
/// that is not JSON or has no `events` array is refused (nothing added).
pub fn parse_sunshine<'a>(
    body: &'a str,
    map: &SunshineMap<'_>,
    out: &mut Parsed<'a>,
) -> Result<(), InputError> {
    let envelope: Envelope<'a> = serde_json::from_str(body).map_err(|e| {
        if !e.is_data() {
            InputError::Json(e.to_string())
        } else if !body.trim_start().starts_with('{') {
            InputError::Shape("not a JSON object".to_owned())
        } else {
            invalid("body", e.to_string())
        }
    })?;
    let events_raw = envelope
        .events
        .filter(|r| !is_null(Some(r)))
        .ok_or_else(|| missing("body", "events"))?;
    let events: Vec<&'a RawValue> = serde_json::from_str(events_raw.get())
        .map_err(|_| invalid("body", "`events` must be an array"))?;
    let item_envelope = out.envelope(parsed::Envelope::Sunshine {
        events: events_raw,
        waba: map.waba.to_owned(),
    });
    let item_path = |i: usize| ItemPath {
        change: None,
        list: List::Events,
        index: i as u32,
    };

    let mut found = Vec::new();
    let mut referred = Vec::new();
    // Quarantined user messages: (conversation, time if readable, index).
    let mut held = Vec::new();
    for (i, raw) in events.iter().enumerate() {
        let path = format!("events[{i}]");
        let before = (found.len(), referred.len());
        match sunshine_event(raw, &path, map, &mut found, &mut referred) {
            Ok(Some(kind)) => out.ignore(kind),
            Ok(None) => {}
            Err(e) => {
                found.truncate(before.0);
                referred.truncate(before.1);
                let reason = e.reason_at(&path);
                out.quarantine(item_envelope, item_path(i), reason);
                if let Some((conversation, at)) = held_message(raw) {
                    held.push((conversation, at, out.quarantined.len() - 1));
                }
            }
        }
        for f in &mut found[before.0..] {
            f.item = i;
        }
    }
    mark_referrals(&referred, &mut found, &held, out);
    for f in found {
        let origin = Origin::Item {
            envelope: item_envelope,
            path: item_path(f.item),
        };
        out.push(f.event, origin);
    }
    Ok(())
}

/// The conversation and time of a quarantined user message, as far as
/// they can be read: a referral of its conversation must not pass to a
/// later message because this one was held.
fn held_message<'a>(raw: &'a RawValue) -> Option<(Cow<'a, str>, Option<wabill_engine::Instant>)> {
    let header: Header<'a> = serde_json::from_str(raw.get()).ok()?;
    if header.kind.as_deref() != Some("conversation:message") {
        return None;
    }
    let p: MessagePayload<'a> = serde_json::from_str(header.payload?.get()).ok()?;
    let conversation = p.conversation.and_then(|c| non_empty(c.id))?;
    let message = p.message;
    let source_time = message
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .and_then(|s| s.original_message_timestamp);
    let received = message.as_ref().and_then(|m| m.received);
    let at = [source_time, received, header.created_at]
        .into_iter()
        .flatten()
        .find_map(|t| crate::parse_timestamp(t).ok());
    Some((conversation, at))
}

/// Marks, for each referred conversation, its earliest user message as an
/// entry point. When that is a quarantined one (or one whose time could
/// not be read), no other message is marked and the referral event goes
/// into the quarantined item's body, so that re-reading it marks it.
fn mark_referrals<'a>(
    referred: &[(Cow<'a, str>, &'a RawValue)],
    found: &mut [Found<'a>],
    held: &[(Cow<'a, str>, Option<wabill_engine::Instant>, usize)],
    out: &mut Parsed<'a>,
) {
    for (conversation, referral) in referred {
        let first = found
            .iter_mut()
            .filter(|f| f.conversation.as_ref() == Some(conversation))
            .filter(|f| matches!(f.event.body, EventBody::Inbound { .. }))
            .min_by_key(|f| f.event.ts);
        let first_at = first.as_ref().map(|f| f.event.ts);
        let earlier_held = held
            .iter()
            .filter(|(c, at, _)| {
                c == conversation && at.is_none_or(|at| first_at.is_none_or(|f| at <= f))
            })
            .min_by_key(|(_, at, _)| at.map_or(i64::MIN, |at| at.0));
        match earlier_held {
            Some(&(_, _, q)) => {
                if let Some(item) = out.quarantined.get_mut(q) {
                    item.body = format!("{{\"events\":[{},{}]}}", referral.get(), item.item);
                }
            }
            None => {
                if let Some(f) = first {
                    f.event.body = EventBody::Inbound { referral: true };
                }
            }
        }
    }
}

/// One Sunshine event: its events go to `found` (the caller sets their
/// item index), a referral's conversation to `referred`; Some kind when it
/// is no billing event.
fn sunshine_event<'a>(
    raw: &'a RawValue,
    path: &str,
    map: &SunshineMap<'_>,
    found: &mut Vec<Found<'a>>,
    referred: &mut Vec<(Cow<'a, str>, &'a RawValue)>,
) -> Result<Option<&'static str>, InputError> {
    let header: Header<'a> = parse_at(raw.get(), path)?;
    let kind = header.kind.ok_or_else(|| missing(path, "type"))?;
    let payload = || {
        header
            .payload
            .filter(|p| !is_null(Some(p)))
            .ok_or_else(|| missing(path, "payload"))
    };
    match &*kind {
        "conversation:message" => match inbound(payload()?, header.created_at, path, map)? {
            Some(f) => found.push(f),
            None => return Ok(Some("business_or_other_channel_message")),
        },
        "conversation:message:delivery:user" | "conversation:message:delivery:failure" => {
            let s = if kind.ends_with("user") {
                Status::Delivered
            } else {
                Status::Failed
            };
            if !statuses(payload()?, header.created_at, path, s, map, found)? {
                return Ok(Some("other_channel_delivery"));
            }
        }
        // Not billing events themselves: a referral marks a user message.
        "conversation:create" | "conversation:referral" => {
            let conversation = referral_conversation(payload()?, path)?;
            referred.extend(conversation.map(|c| (c, raw)));
            return Ok(Some("conversation_event"));
        }
        // `…:delivery:channel` means WhatsApp accepted the message, not
        // that the user got it; the rest is not about billable messages.
        _ => return Ok(Some("other_sunshine_event")),
    }
    Ok(None)
}

fn non_empty(id: Option<Id<'_>>) -> Option<Cow<'_, str>> {
    id.map(|i| i.0).filter(|s| !s.is_empty())
}

/// The number the route maps this Sunshine user to, if it maps it.
fn mapped<'a>(
    map: &SunshineMap<'_>,
    user_id: Option<&Id<'_>>,
    path: &str,
) -> Result<Option<Cow<'a, str>>, InputError> {
    let Some((id, number)) = user_id.and_then(|id| map.users.get(&*id.0).map(|n| (id, n))) else {
        return Ok(None);
    };
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            path,
            format!(
                "the route maps Sunshine user {:?} to {number:?}, not a WhatsApp number (digits, an optional leading +)",
                id.0
            ),
        ));
    }
    Ok(Some(Cow::Owned(digits.to_owned())))
}

fn unmapped(path: &str, user_id: Option<&Id<'_>>) -> InputError {
    let who = user_id.map_or_else(
        || "no Sunshine user id".to_owned(),
        |id| format!("{:?}", id.0),
    );
    invalid(
        path,
        format!(
            "no WhatsApp number mapped ({who}: not in the route's users, and no WhatsApp client `externalId` in the payload)"
        ),
    )
}

fn inbound<'a>(
    payload: &'a RawValue,
    created_at: Option<&'a RawValue>,
    path: &str,
    map: &SunshineMap<'_>,
) -> Result<Option<Found<'a>>, InputError> {
    let payload_path = format!("{path}.payload");
    let p: MessagePayload<'a> = parse_at(payload.get(), &payload_path)?;
    let message = p.message.ok_or_else(|| missing(&payload_path, "message"))?;
    let message_path = format!("{payload_path}.message");
    let author_path = format!("{message_path}.author");
    let author = message
        .author
        .ok_or_else(|| missing(&message_path, "author"))?;
    let kind = author.kind.ok_or_else(|| missing(&author_path, "type"))?;
    // Business messages reach wabill from the sending side (outbound records);
    // other channels of the same Sunshine app are not WhatsApp traffic.
    if kind != "user"
        || message
            .source
            .as_ref()
            .is_some_and(Source::is_other_channel)
    {
        return Ok(None);
    }
    let source_path = format!("{message_path}.source");
    let (wamid, channel_time, client) = match message.source {
        Some(s) => (
            s.original_message_id,
            s.original_message_timestamp,
            s.client,
        ),
        None => (None, None, None),
    };

    let id = non_empty(wamid)
        .or_else(|| non_empty(message.id))
        .ok_or_else(|| missing(&message_path, "id"))?;
    // The channel's own time is the provider's; Sunshine's are later.
    let ts = match (channel_time, message.received) {
        (Some(t), _) => timestamp(Some(t), &source_path, "originalMessageTimestamp")?,
        (None, Some(t)) => timestamp(Some(t), &message_path, "received")?,
        (None, None) => timestamp(created_at, path, "createdAt")?,
    };
    let user_id = author.user_id.or(author.user.and_then(|u| u.id));
    let user_path = format!("{author_path}.userId");
    let user = match mapped(map, user_id.as_ref(), &user_path)? {
        Some(user) => user,
        // The channel's user id: for WhatsApp, the number (Z1 `client`).
        None => match client.filter(|c| c.kind.as_deref().is_none_or(|k| k == WHATSAPP)) {
            Some(Client {
                external_id: Some(external),
                ..
            }) => user_digits(
                Some(external),
                &format!("{source_path}.client"),
                "externalId",
            )?,
            _ => return Err(unmapped(&user_path, user_id.as_ref())),
        },
    };
    Ok(Some(Found {
        item: 0,
        conversation: p.conversation.and_then(|c| non_empty(c.id)),
        event: Event {
            ts,
            waba: Cow::Owned(map.waba.to_owned()),
            phone: Cow::Owned(map.phone.to_owned()),
            user,
            id,
            body: EventBody::Inbound { referral: false },
            verdict: None,
            also: None,
        },
    }))
}

fn statuses<'a>(
    payload: &'a RawValue,
    created_at: Option<&'a RawValue>,
    path: &str,
    status: Status<'a>,
    map: &SunshineMap<'_>,
    out: &mut Vec<Found<'a>>,
) -> Result<bool, InputError> {
    let payload_path = format!("{path}.payload");
    let p: DeliveryPayload<'a> = parse_at(payload.get(), &payload_path)?;
    if p.destination
        .and_then(|d| d.kind)
        .is_some_and(|k| k != WHATSAPP)
    {
        return Ok(false);
    }
    let ts = timestamp(created_at, path, "createdAt")?;
    let user_path = format!("{payload_path}.user.id");
    let user_id = p.user.and_then(|u| u.id);
    let user = mapped(map, user_id.as_ref(), &user_path)?
        .ok_or_else(|| unmapped(&user_path, user_id.as_ref()))?;
    // The id the platform's sending side knows is Sunshine's message id
    // (Sunshine's API answers with it); its outbound record carries that
    // id, so the status must too. Only without it, the WhatsApp ids.
    let ids: Vec<Cow<'a, str>> = match p.message.and_then(|m| non_empty(m.id)) {
        Some(id) => vec![id],
        None => {
            // Listed in no guaranteed order (Z1).
            let mut ids: Vec<Cow<'a, str>> = p
                .external_messages
                .into_iter()
                .flatten()
                .filter_map(|m| non_empty(m.id))
                .collect();
            ids.sort();
            ids.dedup();
            if ids.is_empty() {
                return Err(missing(&format!("{payload_path}.message"), "id"));
            }
            ids
        }
    };
    for id in ids {
        out.push(Found {
            item: 0,
            conversation: None,
            event: Event {
                ts,
                waba: Cow::Owned(map.waba.to_owned()),
                phone: Cow::Owned(map.phone.to_owned()),
                user: user.clone(),
                id,
                body: EventBody::Status(status.clone()),
                verdict: None,
                also: None,
            },
        });
    }
    Ok(true)
}

/// The conversation a `conversation:create` / `conversation:referral` event
/// refers a WhatsApp user to, when it carries a referral.
fn referral_conversation<'a>(
    payload: &'a RawValue,
    path: &str,
) -> Result<Option<Cow<'a, str>>, InputError> {
    let payload_path = format!("{path}.payload");
    let p: ReferralPayload<'a> = parse_at(payload.get(), &payload_path)?;
    if p.source.as_ref().is_some_and(Source::is_other_channel) {
        return Ok(None);
    }
    if let Some(r) = p.referral.filter(|r| !is_null(Some(r)))
        && !r.get().starts_with('{')
    {
        return Err(invalid(&payload_path, "`referral` must be an object"));
    }
    // For WhatsApp, Meta's own referral object as the client's raw data.
    let raw_referral = p
        .source
        .and_then(|s| s.client)
        .and_then(|c| c.raw)
        .filter(|raw| raw.get().starts_with('{'))
        .and_then(|raw| serde_json::from_str::<ClientRaw<'a>>(raw.get()).ok())
        .is_some_and(|raw| !is_null(raw.referral));
    if is_null(p.referral) && !raw_referral {
        return Ok(None);
    }
    Ok(p.conversation.and_then(|c| non_empty(c.id)))
}
