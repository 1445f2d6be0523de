//! A body read part by part: each entry, change, value and item parsed on
//! its own, so that one of the wrong JSON type is quarantined at its own
//! path and the others are kept. Taken only when the typed pass refuses a
//! body.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::{InboundItem, Metadata, StatusItem, envelope_ids, inbound_item, settle, status_item};
use crate::locate::{RawChange, RawEntry, RawValueParts, waba_of};
use crate::parsed::{Envelope, ItemPath, List, Parsed};
use crate::{Id, InputError, invalid, is_null, parse_at};

/// A list of items: absent or null is empty; anything but an array is the
/// error.
pub(super) fn list<'a>(
    raw: Option<&'a RawValue>,
    path: &str,
) -> Result<Vec<&'a RawValue>, InputError> {
    match raw.filter(|r| !is_null(Some(r))) {
        None => Ok(Vec::new()),
        Some(r) => serde_json::from_str(r.get()).map_err(|_| invalid(path, "must be an array")),
    }
}

pub(super) fn cloud_body<'a>(raw: &'a RawValue, out: &mut Parsed<'a>) -> Result<(), InputError> {
    // The envelope: without an array of entries nothing can be read.
    let entries = list(Some(raw), "entry")?;
    let envelope = out.envelope(Envelope::Cloud { entry: raw });
    for (e, raw_entry) in entries.into_iter().enumerate() {
        let entry_path = format!("entry[{e}]");
        let entry: RawEntry<'a> = match parse_at(raw_entry.get(), &entry_path) {
            Ok(entry) => entry,
            Err(err) => {
                let reason = err.reason_at(&entry_path);
                out.quarantine_part(entry_path, raw_entry.get(), None, reason);
                continue;
            }
        };
        let changes_path = format!("{entry_path}.changes");
        let changes = match list(entry.changes, &changes_path) {
            Ok(changes) => changes,
            Err(err) => {
                let raw = entry.changes.map_or("null", RawValue::get);
                let reason = err.reason_at(&changes_path);
                out.quarantine_part(changes_path, raw, waba_of(entry.id), reason);
                continue;
            }
        };
        for (c, raw_change) in changes.into_iter().enumerate() {
            cloud_change(&entry, (e, c), raw_change, envelope, out);
        }
    }
    Ok(())
}

/// One `entry[e].changes[c]`.
fn cloud_change<'a>(
    entry: &RawEntry<'a>,
    (e, c): (usize, usize),
    raw: &'a RawValue,
    envelope: u32,
    out: &mut Parsed<'a>,
) {
    let change_path = format!("entry[{e}].changes[{c}]");
    let change: RawChange<'a> = match parse_at(raw.get(), &change_path) {
        Ok(change) => change,
        Err(err) => {
            let reason = err.reason_at(&change_path);
            out.quarantine_part(change_path, raw.get(), waba_of(entry.id), reason);
            return;
        }
    };
    if let Some(field) = change.field.as_deref()
        && field != "messages"
    {
        out.ignore(field);
        return;
    }
    let Some(raw_value) = change.value.filter(|v| !is_null(Some(v))) else {
        return;
    };
    let path = format!("{change_path}.value");
    let value = match parse_at::<RawValueParts<'a>>(raw_value.get(), &path) {
        Ok(value) => value,
        Err(err) => {
            let reason = err.reason_at(&path);
            out.quarantine_part(path, raw_value.get(), waba_of(entry.id), reason);
            return;
        }
    };
    // A list that is no array is held whole; the other list is still read.
    let mut list_at = |raw: Option<&'a RawValue>, name: &str| {
        let at = format!("{path}.{name}");
        list(raw, &at).unwrap_or_else(|err| {
            let reason = err.reason_at(&at);
            let text = raw.map_or("null", RawValue::get);
            out.quarantine_part(at, text, waba_of(entry.id), reason);
            Vec::new()
        })
    };
    let messages = list_at(value.messages, "messages");
    let statuses = list_at(value.statuses, "statuses");
    if messages.is_empty() && statuses.is_empty() {
        if !is_null(value.errors) {
            out.ignore("errors");
        }
        return;
    }
    let waba: Result<Option<Id<'a>>, InputError> = match entry.id {
        Some(r) if !is_null(Some(r)) => serde_json::from_str(r.get())
            .map(Some)
            .map_err(|_| invalid(&format!("entry[{e}]"), "`id` must be a string")),
        _ => Ok(None),
    };
    let meta_path = format!("{path}.metadata");
    let metadata: Result<Option<Metadata<'a>>, InputError> = match value.metadata {
        Some(r) if !is_null(Some(r)) => parse_at(r.get(), &meta_path).map(Some),
        _ => Ok(None),
    };
    let who = waba.and_then(|w| envelope_ids(w, metadata?, (e, c)));
    let change = Some((e as u32, c as u32));
    items(messages, statuses, change, envelope, &who, out);
}

/// Each raw item parsed on its own: one of the wrong JSON type is
/// quarantined, the others read as in the typed pass.
pub(super) fn items<'a>(
    messages: Vec<&'a RawValue>,
    statuses: Vec<&'a RawValue>,
    change: Option<(u32, u32)>,
    envelope: u32,
    who: &Result<(Cow<'a, str>, Cow<'a, str>), InputError>,
    out: &mut Parsed<'a>,
) {
    let path = |list, i: usize| ItemPath {
        change,
        list,
        index: i as u32,
    };
    for (i, raw) in messages.into_iter().enumerate() {
        let at = path(List::Messages, i);
        let text = at.to_string();
        let item =
            parse_at::<InboundItem<'a>>(raw.get(), &text).and_then(|m| inbound_item(m, &text, who));
        settle(item, envelope, at, out);
    }
    for (i, raw) in statuses.into_iter().enumerate() {
        let at = path(List::Statuses, i);
        let text = at.to_string();
        let item = parse_at::<StatusItem<'a>>(raw.get(), &text)
            .and_then(|s| status_item(s, &text, who, &mut out.boxes));
        settle(item, envelope, at, out);
    }
}
