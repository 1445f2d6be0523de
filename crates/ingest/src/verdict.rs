//! Meta's verdict on a message (issue 16): the `pricing` and `conversation`
//! objects of a webhook status (events.md section 2), or `meta` of a
//! normalized status (section 1). Read leniently: Meta adds fields and
//! values without notice and its samples have known defects (`type` right
//! under `conversation`, `pricing` inside `conversation`, `billable` as a
//! string), so what cannot be read is left out, never a reason to refuse
//! the status; only an expiration time that is no time is (section 5).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use wabill_engine::Verdict;

use crate::timestamp::parse_timestamp_json;
use crate::{Id, InputError, invalid, is_null, is_null_text, missing};

/// `path` and `sub` joined (`statuses[0]` and `conversation`), built only
/// for an error.
fn join(path: &str, sub: &str) -> String {
    if sub.is_empty() {
        path.to_owned()
    } else {
        format!("{path}.{sub}")
    }
}

/// A time at `path`.`sub`, or why it is none.
fn time_at(
    raw: Option<&RawValue>,
    at: (&str, &str),
    field: &'static str,
) -> Result<wabill_engine::Instant, InputError> {
    time_at_text(raw.map(RawValue::get), at, field)
}

/// [`time_at`] of a raw value's text.
fn time_at_text(
    raw: Option<&str>,
    (path, sub): (&str, &str),
    field: &'static str,
) -> Result<wabill_engine::Instant, InputError> {
    let raw = raw.ok_or_else(|| missing(&join(path, sub), field))?;
    parse_timestamp_json(raw)
        .map_err(|reason| invalid(&join(path, sub), format!("`{field}` {reason}")))
}

#[derive(Deserialize, Default)]
struct ConversationObj<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    expiration_timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    origin: Option<&'a RawValue>,
    /// Meta's sample defect: the category right under `conversation`.
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    /// Meta's sample defect: `pricing` inside `conversation`.
    #[serde(borrow)]
    pricing: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct OriginObj<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct PricingObj<'a> {
    #[serde(borrow)]
    billable: Option<&'a RawValue>,
    #[serde(borrow)]
    pricing_model: Option<&'a RawValue>,
    #[serde(borrow)]
    category: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    cost: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CostObj<'a> {
    #[serde(borrow)]
    amount: Option<&'a RawValue>,
    #[serde(borrow)]
    currency: Option<&'a RawValue>,
}

/// The typed forms, read first: one pass when every field has the usual
/// JSON type; the lenient forms above read the rest.
#[derive(Deserialize)]
struct PricingFast<'a> {
    billable: Option<bool>,
    #[serde(borrow)]
    pricing_model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cost: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct OriginFast<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ConversationFast<'a> {
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    expiration_timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    origin: Option<OriginFast<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pricing: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct MetaFast<'a> {
    #[serde(borrow)]
    conversation_id: Option<Id<'a>>,
    #[serde(borrow)]
    origin: Option<Cow<'a, str>>,
    #[serde(borrow)]
    expires: Option<&'a RawValue>,
    billable: Option<bool>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pricing_model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pricing_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cost: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pricing: Option<&'a RawValue>,
    #[serde(borrow)]
    conversation: Option<&'a RawValue>,
}

fn given<'a>(s: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    s.filter(|s| !s.is_empty())
}

/// `meta` of a normalized status (events.md section 1).
#[derive(Deserialize, Default)]
struct MetaObj<'a> {
    #[serde(borrow)]
    conversation_id: Option<&'a RawValue>,
    #[serde(borrow)]
    origin: Option<&'a RawValue>,
    #[serde(borrow)]
    expires: Option<&'a RawValue>,
    #[serde(borrow)]
    billable: Option<&'a RawValue>,
    #[serde(borrow)]
    category: Option<&'a RawValue>,
    #[serde(borrow)]
    pricing_model: Option<&'a RawValue>,
    #[serde(borrow)]
    pricing_type: Option<&'a RawValue>,
    #[serde(borrow)]
    cost: Option<&'a RawValue>,
    #[serde(borrow)]
    pricing: Option<&'a RawValue>,
    #[serde(borrow)]
    conversation: Option<&'a RawValue>,
}

/// A JSON string's text (ids as numbers too); anything else is unread.
fn text<'a>(raw: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    let raw = raw.filter(|r| !is_null(Some(r)))?;
    serde_json::from_str::<Id<'a>>(raw.get())
        .ok()
        .map(|id| id.0)
        .filter(|s| !s.is_empty())
}

/// `true`/`false`, or the same as a string (a defect of Meta's samples).
fn flag(raw: Option<&RawValue>) -> Option<bool> {
    match raw?.get() {
        "true" | "\"true\"" => Some(true),
        "false" | "\"false\"" => Some(false),
        _ => None,
    }
}

/// `pricing.cost` as `"<amount> <currency>"`: the amount as a JSON number
/// is written, or the text of a string; anything else is no cost.
fn cost(raw: Option<&str>) -> Option<Cow<'_, str>> {
    let raw = raw.filter(|r| r.starts_with('{'))?;
    let c: CostObj<'_> = serde_json::from_str(raw).ok()?;
    let amount = c.amount?;
    let amount = match serde_json::from_str::<serde_json::Number>(amount.get()) {
        Ok(n) => Cow::Owned(n.to_string()),
        Err(_) => serde_json::from_str::<Cow<'_, str>>(amount.get()).ok()?,
    };
    if amount.is_empty() {
        return None;
    }
    match text(c.currency) {
        Some(currency) => Some(Cow::Owned(format!("{amount} {currency}"))),
        None => Some(amount),
    }
}

/// An object leniently: one that is not an object, or has a field of a
/// type nothing can read, reads as empty.
fn object<'a, T: Deserialize<'a> + Default>(raw: Option<&'a str>) -> Option<T> {
    let raw = raw.filter(|r| r.starts_with('{'))?;
    Some(serde_json::from_str(raw).unwrap_or_default())
}

/// A `pricing` object's fields as its typed form reads them (`cost` raw),
/// from the scanner ([`crate::scan::pricing`]) or serde.
#[derive(Default)]
pub(crate) struct PricingFields<'a> {
    pub billable: Option<bool>,
    pub pricing_model: Option<Cow<'a, str>>,
    pub category: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub cost: Option<&'a str>,
}

/// A `conversation` object's fields as its typed form reads them (`origin`
/// as its `type`; times and `pricing` raw).
#[derive(Default)]
pub(crate) struct ConversationFields<'a> {
    pub id: Option<Cow<'a, str>>,
    pub expires: Option<&'a str>,
    pub origin: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub pricing: Option<&'a str>,
}

/// Fills `v` from a `pricing` object (`scan`: the scanner may read it).
fn read_pricing<'a>(v: &mut Verdict<'a>, raw: Option<&'a str>, scan: bool) {
    let typed = raw.and_then(|r| {
        let scanned = if scan { crate::scan::pricing(r) } else { None };
        scanned.or_else(|| {
            let p = serde_json::from_str::<PricingFast<'a>>(r).ok()?;
            Some(PricingFields {
                billable: p.billable,
                pricing_model: p.pricing_model,
                category: p.category,
                kind: p.kind,
                cost: p.cost.map(RawValue::get),
            })
        })
    });
    if let Some(p) = typed {
        v.billable = v.billable.or(p.billable);
        v.pricing_model = v.pricing_model.take().or(given(p.pricing_model));
        v.category = v.category.take().or(given(p.category));
        v.pricing_type = v.pricing_type.take().or(given(p.kind));
        v.cost = v.cost.take().or(cost(p.cost));
        return;
    }
    let Some(p) = object::<PricingObj<'a>>(raw) else {
        return;
    };
    v.billable = v.billable.or(flag(p.billable));
    v.pricing_model = v.pricing_model.take().or(text(p.pricing_model));
    v.category = v.category.take().or(text(p.category));
    v.pricing_type = v.pricing_type.take().or(text(p.kind));
    v.cost = v.cost.take().or(cost(p.cost.map(RawValue::get)));
}

/// Fills `v` from a `conversation` object; its expiration must parse.
fn read_conversation<'a>(
    v: &mut Verdict<'a>,
    raw: Option<&'a str>,
    at: (&str, &str),
    scan: bool,
) -> Result<(), InputError> {
    let typed = raw.and_then(|r| {
        let scanned = if scan {
            crate::scan::conversation(r)
        } else {
            None
        };
        scanned.or_else(|| {
            let c = serde_json::from_str::<ConversationFast<'a>>(r).ok()?;
            Some(ConversationFields {
                id: c.id.map(|id| id.0),
                expires: c.expiration_timestamp.map(RawValue::get),
                origin: c.origin.and_then(|o| o.kind),
                kind: c.kind,
                pricing: c.pricing.map(RawValue::get),
            })
        })
    });
    if let Some(c) = typed {
        if !is_null_text(c.expires) {
            v.expires = Some(time_at_text(c.expires, at, "expiration_timestamp")?);
        }
        v.conversation_id = c.id.filter(|s| !s.is_empty());
        v.origin = given(c.origin).or_else(|| given(c.kind));
        read_pricing(v, c.pricing, scan);
        return Ok(());
    }
    let Some(c) = object::<ConversationObj<'a>>(raw) else {
        return Ok(());
    };
    if !is_null(c.expiration_timestamp) {
        v.expires = Some(time_at(c.expiration_timestamp, at, "expiration_timestamp")?);
    }
    v.conversation_id = text(c.id);
    // `origin` is an object with a `type`; a plain string is read too.
    let origin = c
        .origin
        .and_then(|o| serde_json::from_str::<OriginObj<'a>>(o.get()).ok())
        .and_then(|o| text(o.kind))
        .or_else(|| text(c.origin));
    v.origin = origin.or_else(|| text(c.kind));
    read_pricing(v, c.pricing.map(RawValue::get), scan);
    Ok(())
}

/// Fills `v` from a webhook status's `pricing` and `conversation` (in
/// place: a verdict is large to move).
fn fill_webhook<'a>(
    v: &mut Verdict<'a>,
    (pricing, conversation): (Option<&'a str>, Option<&'a str>),
    (path, sub): (&str, &str),
    scan: bool,
) -> Result<(), InputError> {
    let pricing = pricing.filter(|r| !is_null_text(Some(r)));
    let conversation = conversation.filter(|r| !is_null_text(Some(r)));
    v.pricing_json = pricing.map(Cow::Borrowed);
    v.conversation_json = conversation.map(Cow::Borrowed);
    read_pricing(v, pricing, scan);
    let sub = if sub.is_empty() {
        "conversation"
    } else {
        "meta.conversation"
    };
    read_conversation(v, conversation, (path, sub), scan)
}

/// The verdict of a status's `pricing` and `conversation` texts, read with
/// the scanner or by serde alone: for tests and fuzzing, which check that
/// both read the same.
#[doc(hidden)]
pub fn verdict_of_objects<'a>(
    pricing: Option<&'a str>,
    conversation: Option<&'a str>,
    scan: bool,
) -> Result<Verdict<'a>, InputError> {
    let mut v = Verdict::default();
    fill_webhook(&mut v, (pricing, conversation), ("status", ""), scan)?;
    Ok(v)
}

/// The verdict of a webhook status (`pricing`, `conversation`), if it
/// carries one.
pub(crate) fn webhook<'a>(
    pricing: Option<&'a RawValue>,
    conversation: Option<&'a RawValue>,
    path: &str,
    boxes: &mut crate::parsed::Boxes<'a>,
) -> Result<Option<Box<Verdict<'a>>>, InputError> {
    if is_null(pricing) && is_null(conversation) {
        return Ok(None);
    }
    let mut v = boxes.take();
    let objects = (pricing.map(RawValue::get), conversation.map(RawValue::get));
    fill_webhook(&mut v, objects, (path, ""), !boxes.serde_only)?;
    Ok(Some(v))
}

/// A normalized status's `meta`, read typed or raw.
pub(crate) trait MetaSource<'a> {
    /// Its verdict: its `pricing` and `conversation` objects as a webhook
    /// has them, then its flat keys for what those do not say.
    /// `v` is an empty verdict to fill (a box reused from earlier lines);
    /// `scan`: the scanner may read its objects.
    fn verdict(
        self,
        path: &str,
        v: Box<Verdict<'a>>,
        scan: bool,
    ) -> Result<Option<Box<Verdict<'a>>>, InputError>;
}

/// A `meta`'s flat keys, as read typed, leniently or by the scanner
/// (`expires` as its raw JSON text).
#[derive(Default)]
pub(crate) struct Flat<'a> {
    pub expires: Option<&'a str>,
    pub billable: Option<bool>,
    pub pricing_model: Option<Cow<'a, str>>,
    pub category: Option<Cow<'a, str>>,
    pub pricing_type: Option<Cow<'a, str>>,
    pub conversation_id: Option<Cow<'a, str>>,
    pub origin: Option<Cow<'a, str>>,
    pub cost: Option<Cow<'a, str>>,
}

/// Fills `v` from a `meta`: its objects first, its flat keys for the rest.
fn fill_meta<'a>(
    mut v: Box<Verdict<'a>>,
    (pricing, conversation): (Option<&'a RawValue>, Option<&'a RawValue>),
    flat: Flat<'a>,
    (path, scan): (&str, bool),
) -> Result<Option<Box<Verdict<'a>>>, InputError> {
    let objects = (pricing.map(RawValue::get), conversation.map(RawValue::get));
    fill_webhook(&mut v, objects, (path, "meta"), scan)?;
    if !is_null_text(flat.expires) {
        let expires = time_at_text(flat.expires, (path, "meta"), "expires")?;
        v.expires = v.expires.or(Some(expires));
    }
    v.billable = v.billable.or(flat.billable);
    let fill = |kept: &mut Option<Cow<'a, str>>, other: Option<Cow<'a, str>>| {
        *kept = kept.take().or(given(other));
    };
    fill(&mut v.pricing_model, flat.pricing_model);
    fill(&mut v.category, flat.category);
    fill(&mut v.pricing_type, flat.pricing_type);
    fill(&mut v.conversation_id, flat.conversation_id);
    fill(&mut v.origin, flat.origin);
    fill(&mut v.cost, flat.cost);
    Ok(kept(v))
}

impl<'a> MetaSource<'a> for Box<MetaFast<'a>> {
    fn verdict(
        self,
        path: &str,
        v: Box<Verdict<'a>>,
        scan: bool,
    ) -> Result<Option<Box<Verdict<'a>>>, InputError> {
        let m = *self;
        let flat = Flat {
            expires: m.expires.map(RawValue::get),
            billable: m.billable,
            pricing_model: m.pricing_model,
            category: m.category,
            pricing_type: m.pricing_type,
            conversation_id: m.conversation_id.map(|i| i.0),
            origin: m.origin,
            cost: m.cost,
        };
        fill_meta(v, (m.pricing, m.conversation), flat, (path, scan))
    }
}

impl<'a> MetaSource<'a> for Flat<'a> {
    /// A `meta` of flat keys only, as the scanner read it.
    fn verdict(
        self,
        path: &str,
        v: Box<Verdict<'a>>,
        scan: bool,
    ) -> Result<Option<Box<Verdict<'a>>>, InputError> {
        fill_meta(v, (None, None), self, (path, scan))
    }
}

impl<'a> MetaSource<'a> for &'a RawValue {
    /// A `meta` whose fields are not all of the usual JSON types, read
    /// leniently.
    fn verdict(
        self,
        path: &str,
        v: Box<Verdict<'a>>,
        scan: bool,
    ) -> Result<Option<Box<Verdict<'a>>>, InputError> {
        if is_null(Some(self)) {
            return Ok(None);
        }
        if !self.get().starts_with('{') {
            return Err(invalid(path, "`meta` must be an object"));
        }
        let m: MetaObj<'a> = serde_json::from_str(self.get()).unwrap_or_default();
        let flat = Flat {
            expires: m.expires.map(RawValue::get),
            billable: flag(m.billable),
            pricing_model: text(m.pricing_model),
            category: text(m.category),
            pricing_type: text(m.pricing_type),
            conversation_id: text(m.conversation_id),
            origin: text(m.origin),
            cost: text(m.cost),
        };
        fill_meta(v, (m.pricing, m.conversation), flat, (path, scan))
    }
}

/// A verdict worth keeping: one that says something, or came as objects.
fn kept(v: Box<Verdict<'_>>) -> Option<Box<Verdict<'_>>> {
    (!v.is_empty() || v.pricing_json.is_some() || v.conversation_json.is_some()).then_some(v)
}

/// The `meta` object a normalized line writes for a verdict: the objects
/// as received (when a webhook gave them) and every field as a flat key,
/// in byte order, so that reading the line gives the same verdict.
pub(crate) fn meta_json(v: &Verdict<'_>) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();
    if let Some(b) = v.billable {
        fields.push(("billable", b.to_string()));
    }
    if let Some(s) = &v.category {
        fields.push(("category", string(s)));
    }
    if let Some(s) = &v.conversation_json {
        fields.push(("conversation", s.to_string()));
    }
    if let Some(s) = &v.conversation_id {
        fields.push(("conversation_id", string(s)));
    }
    if let Some(s) = &v.cost {
        fields.push(("cost", string(s)));
    }
    if let Some(e) = v.expires {
        fields.push(("expires", string(&e.rfc3339())));
    }
    if let Some(s) = &v.origin {
        fields.push(("origin", string(s)));
    }
    if let Some(s) = &v.pricing_json {
        fields.push(("pricing", s.to_string()));
    }
    if let Some(s) = &v.pricing_model {
        fields.push(("pricing_model", string(s)));
    }
    if let Some(s) = &v.pricing_type {
        fields.push(("pricing_type", string(s)));
    }
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!("{{{}}}", body.join(","))
}
