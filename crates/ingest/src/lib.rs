//! The input shapes of events.md, detected per line, parsed into engine
//! events that borrow from the input. Pure: text in, events and what became
//! of each item out ([`Parsed`]), or the reason a line is refused whole.
//!
//! A body is read item by item (events.md section 5): a bad item is
//! quarantined and its body's other items kept, because a sender that
//! retries the body would lose them all.

mod analytics;
mod body;
mod ids;
mod locate;
mod parsed;
mod scan;
mod sunshine;
mod timestamp;
mod verdict;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use wabill_engine::event::{Also, Event, EventBody, Status, TemplateCategory, is_bsuid};

pub use analytics::{AnalyticsError, parse_analytics};
pub use ids::Id;
pub use parsed::{ItemPath, List, Origin, Parsed, Quarantined};
pub use sunshine::{SunshineMap, parse_sunshine};
pub use timestamp::{parse_timestamp, parse_timestamp_str};
#[doc(hidden)]
pub use verdict::verdict_of_objects;

/// Why a line or body was rejected. The shell adds where (file and line, or
/// request).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Shape(String),
    #[error("{path}: missing `{field}`")]
    Missing { path: String, field: &'static str },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl InputError {
    /// The reason without the leading `path` it names (for an item shown
    /// with its path).
    pub fn reason_at(&self, path: &str) -> String {
        let text = self.to_string();
        match text.strip_prefix(path) {
            Some(rest) => rest
                .strip_prefix(": ")
                .or_else(|| rest.strip_prefix('.'))
                .unwrap_or(rest)
                .to_owned(),
            None => text,
        }
    }
}

pub(crate) fn invalid(path: &str, reason: impl Into<String>) -> InputError {
    InputError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

pub(crate) fn missing(path: &str, field: &'static str) -> InputError {
    InputError::Missing {
        path: path.to_owned(),
        field,
    }
}

/// The shape a line was detected as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    Blank,
    Normalized,
    CloudApi,
    OnPremises,
}

/// What the receiving side supplies for On-Premises bodies, which carry
/// neither WABA nor phone (events.md section 3).
#[derive(Copy, Clone, Debug, Default)]
pub struct Route<'r> {
    pub waba: Option<&'r str>,
    pub phone: Option<&'r str>,
    /// The provider the input came through, when the receiving side
    /// knows it (rules P6).
    pub provider: Option<wabill_engine::carriers::Provider>,
}

impl Route<'_> {
    /// The provider of a line of `shape`: the route's, else 360dialog for
    /// On-Premises bodies (the one provider that passes them on).
    pub fn provider_of(&self, shape: Shape) -> Option<wabill_engine::carriers::Provider> {
        self.provider.or(match shape {
            Shape::OnPremises => Some(wabill_engine::carriers::Provider::Dialog360),
            _ => None,
        })
    }
}

/// Every top-level key any shape uses; what is present decides the shape.
/// `meta` is read typed in the same pass ([`verdict::MetaFast`]); a line
/// whose `meta` has other JSON types is read again with it raw, leniently.
#[derive(Deserialize)]
struct Top<'a, M = &'a RawValue> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Id<'a>>,
    #[serde(borrow)]
    waba: Option<Id<'a>>,
    #[serde(borrow)]
    phone: Option<Id<'a>>,
    #[serde(borrow)]
    user: Option<Id<'a>>,
    #[serde(borrow)]
    user_id: Option<Id<'a>>,
    #[serde(borrow)]
    group: Option<Id<'a>>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    referral: Option<&'a RawValue>,
    #[serde(borrow)]
    template: Option<&'a RawValue>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entry: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    statuses: Option<&'a RawValue>,
    #[serde(borrow)]
    contacts: Option<&'a RawValue>,
    #[serde(borrow)]
    provider: Option<&'a RawValue>,
    meta: Option<M>,
}

impl<'a, M> Top<'a, M> {
    /// The fields of a normalized line, taken out.
    fn fields(&mut self) -> Fields<'a, M> {
        let raw = |r: Option<&'a RawValue>| r.map(RawValue::get);
        Fields {
            id: self.id.take(),
            waba: self.waba.take(),
            phone: self.phone.take(),
            user: self.user.take(),
            user_id: self.user_id.take(),
            group: self.group.take(),
            ts: raw(self.ts),
            referral: raw(self.referral),
            template: raw(self.template),
            status: self.status.take(),
            provider: raw(self.provider),
            meta: self.meta.take(),
        }
    }
}

/// A normalized line's fields (events.md section 1) as serde ([`Top`]) or
/// the scanner ([`scan::normalized`]) read them; a value kept raw is its
/// JSON text, null as absent.
#[derive(Default)]
struct Fields<'a, M> {
    id: Option<Id<'a>>,
    waba: Option<Id<'a>>,
    phone: Option<Id<'a>>,
    user: Option<Id<'a>>,
    user_id: Option<Id<'a>>,
    group: Option<Id<'a>>,
    ts: Option<&'a str>,
    referral: Option<&'a str>,
    template: Option<&'a str>,
    status: Option<Cow<'a, str>>,
    provider: Option<&'a str>,
    meta: Option<M>,
}

fn json_error(e: &serde_json::Error) -> InputError {
    InputError::Json(e.to_string())
}

/// Valid JSON with a field of the wrong type: parse again, on this rare
/// path only, to name the field.
fn field_error(line: &str) -> InputError {
    let mut de = serde_json::Deserializer::from_str(line);
    match serde_path_to_error::deserialize::<_, Top<'_>>(&mut de) {
        Err(e) => invalid("event", format!("`{}`: {}", e.path(), e.inner())),
        Ok(_) => InputError::Shape("invalid event".to_owned()),
    }
}

/// Reads one line (or body) into `out` (events, ignored and quarantined
/// items). On error, which refuses the line whole, nothing is added.
pub fn parse_line<'a>(
    line: &'a str,
    route: Route<'_>,
    out: &mut Parsed<'a>,
) -> Result<Shape, InputError> {
    read_line(line, route, out, true)
}

/// [`parse_line`] without the scanners of plain normalized lines and of
/// Meta's `pricing`/`conversation` objects: serde reads everything. For
/// tests and fuzzing, which check that both agree.
#[doc(hidden)]
pub fn parse_line_with_serde<'a>(
    line: &'a str,
    route: Route<'_>,
    out: &mut Parsed<'a>,
) -> Result<Shape, InputError> {
    read_line(line, route, out, false)
}

/// Whether the scanner reads `line` (else serde does). For tests.
#[doc(hidden)]
pub fn is_plain_normalized(line: &str) -> bool {
    scan::normalized(line).is_some()
}

fn read_line<'a>(
    line: &'a str,
    route: Route<'_>,
    out: &mut Parsed<'a>,
    scan: bool,
) -> Result<Shape, InputError> {
    if line.trim().is_empty() {
        return Ok(Shape::Blank);
    }
    out.boxes.serde_only = !scan;
    if scan && let Some((kind, fields)) = scan::normalized(line) {
        // The same reading of the fields as serde's below.
        let provider = parsed::line_provider(fields.provider);
        let event = normalized(kind, fields, &mut out.boxes)?;
        out.push(event, Origin::Line);
        out.provider = provider;
        return Ok(Shape::Normalized);
    }
    let start = (out.events.len(), out.quarantined.len());
    // `meta` read typed in the same pass (boxed: the top struct stays
    // small to move for every line); raw, leniently, when its fields have
    // other JSON types.
    let typed = serde_json::from_str::<Top<'a, Box<verdict::MetaFast<'a>>>>(line)
        .map(|mut top| dispatch(&mut top, route, out));
    let result = match typed {
        Ok(result) => result,
        Err(_) => {
            let mut top: Top<'a> = serde_json::from_str(line).map_err(|e| {
                if !e.is_data() {
                    json_error(&e)
                } else if !line.trim_start().starts_with('{') {
                    InputError::Shape("not a JSON object".to_owned())
                } else {
                    field_error(line)
                }
            })?;
            dispatch(&mut top, route, out)
        }
    };
    if result.is_err() {
        out.events.truncate(start.0);
        out.origins.truncate(start.0);
        out.quarantined.truncate(start.1);
    }
    result
}

pub(crate) fn is_null(raw: Option<&RawValue>) -> bool {
    is_null_text(raw.map(RawValue::get))
}

/// [`is_null`] of a raw value's text.
pub(crate) fn is_null_text(raw: Option<&str>) -> bool {
    raw.is_none_or(|r| r == "null")
}

fn dispatch<'a, M: verdict::MetaSource<'a>>(
    top: &mut Top<'a, M>,
    route: Route<'_>,
    out: &mut Parsed<'a>,
) -> Result<Shape, InputError> {
    if let Some(object) = &top.object {
        if object == "whatsapp_business_account" {
            body::cloud_body(top.entry, out)?;
            return Ok(Shape::CloudApi);
        }
        return Err(InputError::Shape(format!(
            "unknown shape: `object` is {object:?} (expected \"whatsapp_business_account\")"
        )));
    }
    if let Some(kind) = top.kind.clone() {
        if let kind_text @ ("inbound" | "outbound" | "status") = &*kind {
            let fields = top.fields();
            let provider = parsed::line_provider(fields.provider);
            let event = normalized(kind_text, fields, &mut out.boxes)?;
            out.push(event, Origin::Line);
            out.provider = provider;
            return Ok(Shape::Normalized);
        }
        if top.messages.is_none() && top.statuses.is_none() && top.contacts.is_none() {
            return Err(InputError::Shape(format!(
                "unknown shape: `type` is {kind:?} (expected \"inbound\", \"outbound\" or \"status\")"
            )));
        }
    }
    if top.messages.is_some() || top.statuses.is_some() || top.contacts.is_some() {
        let lists = body::OnPremisesTop {
            messages: top.messages,
            statuses: top.statuses,
            contacts: top.contacts,
        };
        body::on_premises_body(lists, route, out)?;
        return Ok(Shape::OnPremises);
    }
    Err(InputError::Shape(
        "unknown shape: neither a normalized event (`type`), a Cloud API body (`object`) nor an On-Premises body (`messages`/`statuses`)"
            .to_owned(),
    ))
}

pub(crate) fn required_id<'a>(
    value: Option<Id<'a>>,
    path: &str,
    field: &'static str,
) -> Result<Cow<'a, str>, InputError> {
    let id = value.ok_or_else(|| missing(path, field))?.0;
    if id.is_empty() {
        return Err(invalid(path, format!("`{field}` is empty")));
    }
    Ok(id)
}

/// The user an item names (rules F9): its number (events.md: digits, an
/// optional leading `+` dropped) with the business-scoped user id when it
/// names one too, or, when Meta withholds the number, that id alone. An id
/// of another shape beside a number links nothing (the number bills); alone
/// it is no user.
pub(crate) fn user_ids<'a>(
    number: Option<Id<'a>>,
    bsuid: Option<Id<'a>>,
    path: &str,
    field: &'static str,
) -> Result<(Cow<'a, str>, Option<Cow<'a, str>>), InputError> {
    let bsuid = bsuid.map(|b| b.0).filter(|b| !b.is_empty());
    let withheld = number.as_ref().is_none_or(|n| n.0.is_empty());
    match (number, bsuid) {
        (_, Some(b)) if withheld && is_bsuid(&b) => Ok((b, None)),
        (_, Some(b)) if withheld => Err(invalid(
            path,
            format!(
                "the user's phone number is withheld and {b:?} is no business-scoped user id (a country code, a period, letters and digits)"
            ),
        )),
        (Some(n), bsuid) if is_bsuid(&n.0) => Ok((n.0, bsuid.filter(|b| is_bsuid(b)))),
        (number, bsuid) => Ok((
            user_digits(number, path, field)?,
            bsuid.filter(|b| is_bsuid(b)),
        )),
    }
}

/// events.md: digits with an optional leading `+` (dropped).
pub(crate) fn user_digits<'a>(
    value: Option<Id<'a>>,
    path: &str,
    field: &'static str,
) -> Result<Cow<'a, str>, InputError> {
    let user = value.ok_or_else(|| missing(path, field))?.0;
    let digits_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match user {
        Cow::Borrowed(s) => {
            let d = s.strip_prefix('+').unwrap_or(s);
            if digits_ok(d) {
                return Ok(Cow::Borrowed(d));
            }
        }
        Cow::Owned(s) => {
            let d = s.strip_prefix('+').unwrap_or(&s);
            if digits_ok(d) {
                return Ok(Cow::Owned(d.to_owned()));
            }
        }
    }
    Err(invalid(
        path,
        format!("`{field}` must be the user's number as digits (an optional leading +)"),
    ))
}

pub(crate) fn timestamp(
    raw: Option<&RawValue>,
    path: &str,
    field: &'static str,
) -> Result<wabill_engine::Instant, InputError> {
    timestamp_text(raw.map(RawValue::get), path, field)
}

/// [`timestamp`] of a raw value's text.
pub(crate) fn timestamp_text(
    raw: Option<&str>,
    path: &str,
    field: &'static str,
) -> Result<wabill_engine::Instant, InputError> {
    let raw = raw.ok_or_else(|| missing(path, field))?;
    timestamp::parse_timestamp_json(raw)
        .map_err(|reason| invalid(path, format!("`{field}` {reason}")))
}

#[derive(Deserialize)]
struct Template<'a> {
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
}

/// The normalized event of a line's fields.
fn normalized<'a, M: verdict::MetaSource<'a>>(
    kind: &str,
    mut fields: Fields<'a, M>,
    pool: &mut parsed::Boxes<'a>,
) -> Result<Event<'a>, InputError> {
    let path = "event";
    let id = required_id(fields.id.take(), path, "id")?;
    let waba = required_id(fields.waba.take(), path, "waba")?;
    let phone = required_id(fields.phone.take(), path, "phone")?;
    let (user, bsuid) = user_ids(fields.user.take(), fields.user_id.take(), path, "user")?;
    let ts = timestamp_text(fields.ts, path, "ts")?;
    let mut verdict = None;
    let body = match kind {
        "inbound" => {
            let referral = !is_null_text(fields.referral);
            if let Some(r) = fields.referral.filter(|_| referral)
                && !r.starts_with('{')
            {
                return Err(invalid(path, "`referral` must be an object"));
            }
            EventBody::Inbound { referral }
        }
        "outbound" => {
            let template = match fields.template.filter(|t| *t != "null") {
                None => None,
                Some(raw) => {
                    let t: Template<'_> = serde_json::from_str(raw)
                        .map_err(|e| invalid(path, format!("`template`: {e}")))?;
                    let category = t
                        .category
                        .ok_or_else(|| missing("event.template", "category"))?;
                    Some(TemplateCategory::parse(&category).ok_or_else(|| {
                        invalid(
                            path,
                            format!(
                                "template category {category:?} is not marketing, utility or authentication"
                            ),
                        )
                    })?)
                }
            };
            EventBody::Outbound { template }
        }
        _ => {
            let status = fields
                .status
                .take()
                .ok_or_else(|| missing(path, "status"))?;
            if status.is_empty() {
                return Err(invalid(path, "`status` must not be empty"));
            }
            verdict = match fields.meta.take() {
                None => None,
                Some(meta) => meta.verdict(path, pool.take(), !pool.serde_only)?,
            };
            EventBody::Status(Status::parse(status))
        }
    };
    Ok(Event {
        ts,
        waba,
        phone,
        user,
        also: Also::boxed(
            bsuid,
            fields.group.take().map(|g| g.0).filter(|g| !g.is_empty()),
        ),
        id,
        body,
        verdict,
    })
}

/// Parses `text` as a `T`; on failure parses again, on this rare path only,
/// to name the field that is wrong.
pub(crate) fn parse_at<'a, T: Deserialize<'a>>(text: &'a str, path: &str) -> Result<T, InputError> {
    serde_json::from_str(text).map_err(|first| {
        let mut de = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => {
                let inner = e.path().to_string();
                let at = if inner == "." {
                    path.to_owned()
                } else {
                    format!("{path}.{inner}")
                };
                invalid(&at, serde_reason(e.inner()))
            }
            Ok(_) => invalid(path, serde_reason(&first)),
        }
    })
}

/// serde's message without what only confuses here: the position (counted
/// in the item, not the body) and the parser's own type names.
fn serde_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) if e.line() != 0 => &text[..i],
        _ => &text,
    };
    match text.find("expected struct ") {
        Some(i) => format!("{}expected an object", &text[..i]),
        None => text.to_owned(),
    }
}

/// The normalized NDJSON line (events.md section 1) of an event, without
/// the trailing newline: what the service logs, and what replays it.
/// Parsing it back gives the same event.
pub fn normalized_line(e: &Event<'_>) -> String {
    // Keys in byte order, as lines logged before this struct had them.
    #[derive(serde::Serialize)]
    struct Line<'e> {
        id: &'e str,
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'e str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        meta: Option<Box<RawValue>>,
        phone: &'e str,
        #[serde(skip_serializing_if = "Option::is_none")]
        referral: Option<Empty>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<&'e str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        template: Option<Template>,
        ts: String,
        #[serde(rename = "type")]
        kind: &'static str,
        user: &'e str,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<&'e str>,
        waba: &'e str,
    }
    #[derive(serde::Serialize)]
    struct Empty {}
    #[derive(serde::Serialize)]
    struct Template {
        category: &'static str,
    }
    let line = Line {
        group: e.group(),
        id: &e.id,
        meta: e
            .verdict
            .as_deref()
            .and_then(|v| RawValue::from_string(verdict::meta_json(v)).ok()),
        phone: &e.phone,
        referral: matches!(e.body, EventBody::Inbound { referral: true }).then_some(Empty {}),
        status: match &e.body {
            EventBody::Status(status) => Some(status.as_str()),
            EventBody::Inbound { .. } | EventBody::Outbound { .. } => None,
        },
        template: match e.body {
            EventBody::Outbound {
                template: Some(category),
            } => Some(Template {
                category: category.as_str(),
            }),
            _ => None,
        },
        ts: e.ts.rfc3339(),
        kind: e.kind_str(),
        user: &e.user,
        user_id: e.bsuid(),
        waba: &e.waba,
    };
    // Serializing plain strings and structs cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}
