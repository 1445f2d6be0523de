//! A scanner for the plain normalized line (events.md section 1): one JSON
//! object whose values are strings without escapes, integers, booleans and
//! nulls, with `meta` (and `referral`, `template`, unknown keys) one level
//! of the same. It reads such a line in one pass, without serde's
//! per-field machinery, where a batch's parse threads spent most of their
//! time.
//!
//! Whatever it is not sure of (an escape or control character in a string,
//! a deeper value, a repeated key, an id or time that is not a plain
//! string or integer, a body's keys, an unknown `type`) it leaves to
//! serde_json by answering None, and serde reads the line as before. On
//! every line it reads, both give the same event or the same error: the
//! `normalized` fuzz target and `tests/scan.rs` check it.

use std::borrow::Cow;

use crate::verdict::{ConversationFields, Flat, PricingFields};
use crate::{Fields, Id};

/// A value the scanner read: its raw JSON text (what serde's `RawValue`
/// would hold) and what it is.
#[derive(Copy, Clone)]
struct Value<'a> {
    raw: &'a str,
    kind: Kind<'a>,
}

#[derive(Copy, Clone)]
enum Kind<'a> {
    /// A string's contents (between the quotes).
    Str(&'a str),
    /// A number; `plain` when it is digits only and fits a u64 (serde
    /// reads it as a u64, whose decimal text it is).
    Num {
        plain: bool,
    },
    Bool(bool),
    Null,
    /// An object of keys and scalars.
    Object,
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Skips JSON whitespace; the byte after it.
    fn next(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.byte() {
            self.at += 1;
        }
        self.byte()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then(|| self.at += 1)
    }

    /// A string at the cursor: its contents. None for an escape or a
    /// control character (serde unescapes the one and refuses the other).
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let end = start + string_end(self.text.as_bytes().get(start..)?)?;
        if self.text.as_bytes().get(end) != Some(&b'"') {
            return None;
        }
        let contents = self.text.get(start..end)?;
        self.at = end + 1;
        Some(contents)
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.byte().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }

    /// A number in JSON's grammar: `-`? (`0` | [1-9] digits) fraction?
    /// exponent?
    fn number(&mut self) -> Option<Kind<'a>> {
        let start = self.at;
        let negative = self.byte() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let leading_zero = self.byte() == Some(b'0');
        let int = self.digits();
        if int == 0 || (leading_zero && int > 1) {
            return None;
        }
        let mut plain = !negative;
        if self.byte() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
            plain = false;
        }
        if let Some(b'e' | b'E') = self.byte() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.byte() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            plain = false;
        }
        let text = self.text.get(start..self.at)?;
        let plain = plain && text.parse::<u64>().is_ok();
        Some(Kind::Num { plain })
    }

    fn word(&mut self, word: &str, kind: Kind<'a>) -> Option<Kind<'a>> {
        let rest = self.text.get(self.at..)?;
        rest.starts_with(word).then(|| {
            self.at += word.len();
            kind
        })
    }

    /// A scalar, or an object of keys and scalars when `nested`.
    fn value(&mut self, nested: bool) -> Option<Value<'a>> {
        let first = self.next()?;
        let start = self.at;
        let kind = match first {
            b'"' => Kind::Str(self.string()?),
            b'-' | b'0'..=b'9' => self.number()?,
            b't' => self.word("true", Kind::Bool(true))?,
            b'f' => self.word("false", Kind::Bool(false))?,
            b'n' => self.word("null", Kind::Null)?,
            b'{' if nested => {
                self.object(|_, c| c.value(false).map(|_| ()))?;
                Kind::Object
            }
            _ => return None,
        };
        let raw = self.text.get(start..self.at)?;
        Some(Value { raw, kind })
    }

    /// An object at the cursor: `field` reads each key's value.
    fn object(&mut self, mut field: impl FnMut(&'a str, &mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.next()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            field(key, self)?;
            match self.next()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// Where a string's contents end: the first quote, backslash or control
/// character of `bytes`. Eight bytes at a time (strings are most of a
/// line): in each word, the lowest byte flagged by these tests is the
/// first that matches, as a borrow only runs upwards from a match.
fn string_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let hits = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = chunks.remainder();
    let i = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + i)
}

/// The keys the scanner reads, one bit each (a key seen twice is serde's
/// "duplicate field" error: left to it).
fn once(seen: &mut u32, bit: u32) -> Option<()> {
    let fresh = *seen & bit == 0;
    *seen |= bit;
    fresh.then_some(())
}

/// An id: a string as itself, an integer as its digits (serde's `Id`
/// writes a u64 in decimal, which is the same text); null as absent.
fn id(v: Value<'_>) -> Option<Option<Id<'_>>> {
    match v.kind {
        Kind::Str(s) => Some(Some(Id(Cow::Borrowed(s)))),
        Kind::Num { plain: true } => Some(Some(Id(Cow::Borrowed(v.raw)))),
        Kind::Null => Some(None),
        _ => None,
    }
}

fn text(v: Value<'_>) -> Option<Option<Cow<'_, str>>> {
    match v.kind {
        Kind::Str(s) => Some(Some(Cow::Borrowed(s))),
        Kind::Null => Some(None),
        _ => None,
    }
}

/// `true` or `false`; null as absent.
fn flag(v: Value<'_>) -> Option<Option<bool>> {
    match v.kind {
        Kind::Bool(b) => Some(Some(b)),
        Kind::Null => Some(None),
        _ => None,
    }
}

/// A value serde keeps raw (`&RawValue`): any, null as absent.
fn raw_of(v: Value<'_>) -> Option<&str> {
    match v.kind {
        Kind::Null => None,
        _ => Some(v.raw),
    }
}

/// `meta`'s flat keys, as [`crate::verdict::MetaFast`] reads them; a
/// `pricing` or `conversation` object is left to serde.
fn meta<'a>(c: &mut Cursor<'a>) -> Option<Flat<'a>> {
    let mut m = Flat::default();
    let mut seen = 0;
    c.object(|key, c| {
        let v = c.value(true)?;
        match key {
            "conversation_id" => {
                once(&mut seen, 1)?;
                m.conversation_id = id(v)?.map(|i| i.0);
            }
            "origin" => {
                once(&mut seen, 2)?;
                m.origin = text(v)?;
            }
            "expires" => {
                once(&mut seen, 4)?;
                m.expires = raw_of(v);
            }
            "billable" => {
                once(&mut seen, 8)?;
                m.billable = flag(v)?;
            }
            "category" => {
                once(&mut seen, 16)?;
                m.category = text(v)?;
            }
            "pricing_model" => {
                once(&mut seen, 32)?;
                m.pricing_model = text(v)?;
            }
            "pricing_type" => {
                once(&mut seen, 64)?;
                m.pricing_type = text(v)?;
            }
            "cost" => {
                once(&mut seen, 128)?;
                m.cost = text(v)?;
            }
            "pricing" | "conversation" => match v.kind {
                Kind::Null => once(&mut seen, if key == "pricing" { 256 } else { 512 })?,
                _ => return None,
            },
            _ => {}
        }
        Some(())
    })?;
    Some(m)
}

/// A webhook status's `pricing` object, as [`crate::verdict::PricingFast`]
/// reads it; None to leave it to serde.
pub(crate) fn pricing(raw: &str) -> Option<PricingFields<'_>> {
    let mut c = Cursor { text: raw, at: 0 };
    let mut p = PricingFields::default();
    let mut seen = 0;
    c.object(|key, c| {
        let v = c.value(true)?;
        match key {
            "billable" => {
                once(&mut seen, 1)?;
                p.billable = flag(v)?;
            }
            "pricing_model" => {
                once(&mut seen, 2)?;
                p.pricing_model = text(v)?;
            }
            "category" => {
                once(&mut seen, 4)?;
                p.category = text(v)?;
            }
            "type" => {
                once(&mut seen, 8)?;
                p.kind = text(v)?;
            }
            "cost" => {
                once(&mut seen, 16)?;
                p.cost = raw_of(v);
            }
            _ => {}
        }
        Some(())
    })?;
    c.next().is_none().then_some(p)
}

/// A webhook status's `conversation` object, as
/// [`crate::verdict::ConversationFast`] reads it (`origin` an object of a
/// `type`); None to leave it to serde.
pub(crate) fn conversation(raw: &str) -> Option<ConversationFields<'_>> {
    let mut c = Cursor { text: raw, at: 0 };
    let mut f = ConversationFields::default();
    let mut seen = 0;
    c.object(|key, c| {
        match key {
            "id" => {
                once(&mut seen, 1)?;
                f.id = id(c.value(true)?)?.map(|i| i.0);
            }
            "expiration_timestamp" => {
                once(&mut seen, 2)?;
                f.expires = raw_of(c.value(true)?);
            }
            "origin" => {
                once(&mut seen, 4)?;
                if c.next()? == b'{' {
                    let mut kind_seen = 0;
                    c.object(|key, c| {
                        let v = c.value(true)?;
                        if key == "type" {
                            once(&mut kind_seen, 1)?;
                            f.origin = text(v)?;
                        }
                        Some(())
                    })?;
                } else {
                    (c.value(false)?.raw == "null").then_some(())?;
                }
            }
            "type" => {
                once(&mut seen, 8)?;
                f.kind = text(c.value(true)?)?;
            }
            "pricing" => {
                once(&mut seen, 16)?;
                (c.value(false)?.raw == "null").then_some(())?;
            }
            _ => {
                c.value(true)?;
            }
        }
        Some(())
    })?;
    c.next().is_none().then_some(f)
}

/// A plain normalized line: its `type` and fields; None to leave the line
/// to serde.
pub(crate) fn normalized(line: &str) -> Option<(&str, Fields<'_, Flat<'_>>)> {
    let mut c = Cursor { text: line, at: 0 };
    let mut f = Fields::default();
    let mut kind = None;
    let mut seen = 0;
    c.object(|key, c| {
        if key == "meta" {
            once(&mut seen, 1)?;
            if c.next()? == b'{' {
                f.meta = Some(meta(c)?);
            } else {
                (c.value(false)?.raw == "null").then_some(())?;
            }
            return Some(());
        }
        let v = c.value(true)?;
        match key {
            "type" => match v.kind {
                Kind::Str(s) => {
                    once(&mut seen, 2)?;
                    kind = Some(s);
                }
                _ => return None,
            },
            "id" => {
                once(&mut seen, 4)?;
                f.id = id(v)?;
            }
            "waba" => {
                once(&mut seen, 8)?;
                f.waba = id(v)?;
            }
            "phone" => {
                once(&mut seen, 16)?;
                f.phone = id(v)?;
            }
            "user" => {
                once(&mut seen, 32)?;
                f.user = id(v)?;
            }
            "user_id" => {
                once(&mut seen, 64)?;
                f.user_id = id(v)?;
            }
            "group" => {
                once(&mut seen, 128)?;
                f.group = id(v)?;
            }
            "ts" => {
                once(&mut seen, 256)?;
                f.ts = raw_of(v);
            }
            "referral" => {
                once(&mut seen, 512)?;
                f.referral = raw_of(v);
            }
            "template" => {
                once(&mut seen, 1024)?;
                f.template = raw_of(v);
            }
            "status" => {
                once(&mut seen, 2048)?;
                f.status = text(v)?;
            }
            "provider" => {
                once(&mut seen, 4096)?;
                f.provider = raw_of(v);
            }
            // The keys of bodies: another shape.
            "object" | "entry" | "messages" | "statuses" | "contacts" => return None,
            _ => {}
        }
        Some(())
    })?;
    if c.next().is_some() {
        return None;
    }
    let kind = kind.filter(|k| matches!(*k, "inbound" | "outbound" | "status"))?;
    Some((kind, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `string_end` finds what a byte-by-byte search finds, wherever the
    /// first stop is and whatever bytes surround it (those just above and
    /// below each tested value included).
    #[test]
    fn string_end_finds_the_first_quote_backslash_or_control_byte() {
        let fillers = [b'a', b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xa0, 0xff];
        let stops = [b'"', b'\\', 0x00, 0x1f, b'\n'];
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        for len in 0..24 {
            for filler in fillers {
                let plain = vec![filler; len];
                assert_eq!(string_end(&plain), naive(&plain));
                for at in 0..len {
                    for stop in stops {
                        let mut bytes = plain.clone();
                        bytes[at] = stop;
                        // A second stop later must not hide the first.
                        if at + 3 < len {
                            bytes[at + 3] = b'"';
                        }
                        assert_eq!(string_end(&bytes), naive(&bytes), "{bytes:?}");
                    }
                }
            }
        }
    }

    /// The objects Meta sends are read by the scanner, not left to serde.
    #[test]
    fn meta_s_usual_objects_are_scanned() {
        let pricing_obj =
            r#"{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}"#;
        let p = pricing(pricing_obj).expect("scanned");
        assert_eq!(p.category.as_deref(), Some("marketing"));
        assert_eq!(p.kind.as_deref(), Some("regular"));
        let conversation_obj = r#"{"id":"902dd05035776d37a2bfcb42f6d16669","expiration_timestamp":"1646179205","origin":{"type":"user_initiated"}}"#;
        let c = conversation(conversation_obj).expect("scanned");
        assert_eq!(c.origin.as_deref(), Some("user_initiated"));
        assert_eq!(c.expires, Some("\"1646179205\""));
        assert!(pricing(r#"{"billable":"true"}"#).is_none());
        assert!(conversation(r#"{"origin":"service"}"#).is_none());
    }
}
