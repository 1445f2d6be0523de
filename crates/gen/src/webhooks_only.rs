//! A webhooks-only stream (issue 16): generated traffic as a provider that
//! points only Meta's webhooks at wabill sees it. Its `outbound` records
//! are left out; every status of a delivered message carries the `pricing`
//! (and, under conversation pricing, `conversation`) objects Meta sends,
//! from a verdict the caller gives per message id; a Cloud API stream also
//! gets items that are no billing events: payment statuses, group
//! statuses and messages from users whose number Meta withholds.

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use crate::fmt::{hex_into, mix};

/// What Meta says about one delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaVerdict {
    /// `PMP` or `CBP`.
    pub pricing_model: &'static str,
    /// `pricing.category` (under `CBP` also `conversation.origin.type`).
    pub category: String,
    /// `pricing.type` (per-message pricing only).
    pub pricing_type: Option<&'static str>,
    pub billable: bool,
    /// Under `CBP`: the conversation, named by the id of the message that
    /// opened it, and when it expires (Unix seconds).
    pub conversation: Option<(String, i64)>,
}

/// What [`webhooks_only`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhooksOnlyStats {
    pub lines: u64,
    /// `outbound` records left out.
    pub outbound_dropped: u64,
    /// Statuses given Meta's objects.
    pub priced_statuses: u64,
    /// Bodies added that hold no billing event.
    pub other_bodies: u64,
}

/// Every this many Cloud API bodies, one of each other kind is added.
const OTHER_EVERY: u64 = 400;

/// Rewrites `input` (generated NDJSON or Cloud API lines) as a
/// webhooks-only stream, asking `verdict_of` for each status's message id.
pub fn webhooks_only<W: Write>(
    input: &str,
    verdict_of: impl Fn(&str) -> Option<MetaVerdict>,
    mut out: W,
) -> io::Result<WebhooksOnlyStats> {
    let mut stats = WebhooksOnlyStats::default();
    let mut bodies = 0u64;
    for line in input.lines() {
        let Ok(mut doc) = serde_json::from_str::<Value>(line) else {
            writeln!(out, "{line}")?;
            stats.lines += 1;
            continue;
        };
        if doc.get("type").and_then(Value::as_str) == Some("outbound") {
            stats.outbound_dropped += 1;
            continue;
        }
        let cloud = doc.get("object").is_some();
        if cloud {
            for status in statuses(&mut doc) {
                stats.priced_statuses += u64::from(price(status, &verdict_of, true));
            }
        } else if doc.get("type").and_then(Value::as_str) == Some("status") {
            stats.priced_statuses += u64::from(price(&mut doc, &verdict_of, false));
        }
        writeln!(out, "{doc}")?;
        stats.lines += 1;
        if cloud {
            bodies += 1;
            if bodies.is_multiple_of(OTHER_EVERY) {
                for other in other_bodies(&doc, bodies) {
                    writeln!(out, "{other}")?;
                    stats.lines += 1;
                    stats.other_bodies += 1;
                }
            }
        }
    }
    out.flush()?;
    Ok(stats)
}

/// The statuses of a Cloud API body.
fn statuses(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    doc.get_mut("entry")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get_mut("changes").and_then(Value::as_array_mut))
        .flatten()
        .filter_map(|c| {
            c.pointer_mut("/value/statuses")
                .and_then(Value::as_array_mut)
        })
        .flatten()
}

/// Replaces what a status says Meta charges with the verdict on its
/// message; whether it has one.
fn price(
    status: &mut Value,
    verdict_of: &impl Fn(&str) -> Option<MetaVerdict>,
    cloud: bool,
) -> bool {
    let Some(object) = status.as_object_mut() else {
        return false;
    };
    for key in ["pricing", "conversation", "meta"] {
        object.remove(key);
    }
    let verdict = object
        .get("id")
        .and_then(Value::as_str)
        .and_then(verdict_of);
    let Some(v) = verdict else {
        return false;
    };
    let (pricing, conversation) = objects(&v);
    if cloud {
        object.insert("pricing".into(), pricing);
        if let Some(c) = conversation {
            object.insert("conversation".into(), c);
        }
    } else {
        let mut meta = Map::new();
        meta.insert("pricing".into(), pricing);
        if let Some(c) = conversation {
            meta.insert("conversation".into(), c);
        }
        object.insert("meta".into(), Value::Object(meta));
    }
    true
}

/// A verdict as Meta writes it: `pricing`, and under conversation pricing
/// `conversation`.
fn objects(v: &MetaVerdict) -> (Value, Option<Value>) {
    let mut pricing = json!({
        "billable": v.billable,
        "pricing_model": v.pricing_model,
        "category": v.category,
    });
    if let (Some(kind), Some(p)) = (v.pricing_type, pricing.as_object_mut()) {
        p.insert("type".into(), kind.into());
    }
    let conversation = v.conversation.as_ref().map(|(opener, expires)| {
        // Meta spells the origin with an underscore where the category has
        // a hyphen.
        let origin = v.category.replace('-', "_");
        json!({
            "id": conversation_id(opener),
            "expiration_timestamp": expires.to_string(),
            "origin": { "type": origin },
        })
    });
    (pricing, conversation)
}

/// A 32-hex-digit conversation id, a pure function of its opener's id.
fn conversation_id(opener: &str) -> String {
    let h = opener.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut hex = [0u8; 32];
    hex_into(&mut hex[..16], mix(h), false);
    hex_into(&mut hex[16..], mix(h ^ 0xA076_1D64_78BD_642F), false);
    String::from_utf8_lossy(&hex).into_owned()
}

/// A payment status, a group status and a message from a user whose number
/// Meta withholds, for the WABA and phone of `like` (events.md section 5:
/// ignored, ignored, stored: none bills anything).
fn other_bodies(like: &Value, n: u64) -> [Value; 3] {
    let waba = like.pointer("/entry/0/id").cloned().unwrap_or(Value::Null);
    let metadata = like
        .pointer("/entry/0/changes/0/value/metadata")
        .cloned()
        .unwrap_or(Value::Null);
    let ts = like
        .pointer("/entry/0/changes/0/value/statuses/0/timestamp")
        .or_else(|| like.pointer("/entry/0/changes/0/value/messages/0/timestamp"))
        .cloned()
        .unwrap_or_else(|| "1700000000".into());
    let body = |value: Value| {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": waba, "changes": [{ "field": "messages", "value": value }] }],
        })
    };
    let payment = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata,
        "statuses": [{
            "id": format!("wamid.gen-payment-{n}"), "status": "captured", "timestamp": ts,
            "recipient_id": "919515991234", "type": "payment",
            "payment": { "reference_id": format!("ref-{n}"), "amount": { "value": 100, "offset": 100 }, "currency": "INR" },
        }],
    });
    // A group message's `sent` status, which names no participant (Meta):
    // counted, billing nothing.
    let group = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata,
        "statuses": [{
            "id": format!("wamid.gen-group-{n}"), "status": "sent", "timestamp": ts,
            "recipient_id": "120363025246125486@g.us", "recipient_type": "group",
            "pricing": { "billable": true, "pricing_model": "PMP", "category": "group_marketing" },
        }],
    });
    let withheld = json!({
        "messaging_product": "whatsapp",
        "metadata": metadata,
        "contacts": [{ "profile": { "name": "Sheena Nelson" }, "user_id": format!("US.{}", 13_491_208_655_302_741_918u64 ^ n) }],
        "messages": [{
            "from_user_id": format!("US.{}", 13_491_208_655_302_741_918u64 ^ n),
            "id": format!("wamid.gen-withheld-{n}"), "timestamp": ts, "type": "text",
            "text": { "body": "Does it come in another color?" },
        }],
    });
    [body(payment), body(group), body(withheld)]
}
