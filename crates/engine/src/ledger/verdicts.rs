//! Meta's verdict per message (issue 16): of the statuses that carried one,
//! the earliest copy (ties: a `sent`, then `delivered`, `read`, `failed`,
//! other statuses; then by what the verdicts say), whatever the order of
//! arrival. The earliest is the `sent` status
//! in real traffic, the only one with the conversation's expiration.
//!
//! Kept compactly: the texts of a verdict (model, category, type, origin
//! and `billable`) as one interned combination, of which traffic has
//! a handful; a 32-hex-digit conversation id as 128 bits; one record per
//! message that has a verdict, in chunks that never move, found from the
//! message's own record (in bytes it had to spare), and nothing for the
//! others.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::event::{EventBody, Status};
use crate::grow::{CapacityError, Chunked, Limit, next_index};
use crate::hash::HashKey;
use crate::intern::Interner;
use crate::time::Instant;
use crate::verdict::{Charge, ConversationKey, MetaCharge, Verdict};

/// The combination's texts: each as its length, `:` and itself, or `-`
/// when absent (lossless whatever the texts hold).
fn encode(out: &mut String, text: Option<&str>) {
    match text {
        None => out.push('-'),
        Some(t) => {
            // Without the formatting machinery: this runs for every
            // verdict kept.
            out.push_str(itoa::Buffer::new().format(t.len()));
            out.push(':');
            out.push_str(t);
        }
    }
}

/// The next text of a combination, and the rest.
fn decode(s: &str) -> (Option<&str>, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        return (None, rest);
    }
    let Some((len, rest)) = s.split_once(':') else {
        return (None, "");
    };
    let len = len.parse::<usize>().unwrap_or(0).min(rest.len());
    match (rest.get(..len), rest.get(len..)) {
        (Some(text), Some(rest)) => (Some(text), rest),
        _ => (None, ""),
    }
}

/// The verdict a message keeps, and where its copy stands.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Kept {
    pub at: i64,
    /// `i64::MIN` when absent.
    expires: i64,
    /// 32 lowercase hex digits as 128 bits, or (interned index, 0).
    conversation: [u64; 2],
    combo: u32,
    /// Interned `pricing.cost`, or `u32::MAX`.
    cost: u32,
    pub rank: u8,
    /// 0 none, 1 hex, 2 interned.
    conversation_kind: u8,
    /// The template category the verdict gives ([`Verdict::template`]),
    /// as the ledger codes it (0: none).
    pub template: u8,
    /// [`Verdict::message_charge`] and [`Verdict::conversation_charge`],
    /// as [`Charge::code`] writes them.
    charges: [u8; 2],
}

impl Kept {
    /// What billing on Meta's basis reads of it (rules V1).
    pub fn meta_charge(&self) -> MetaCharge {
        let key = ConversationKey(self.conversation_kind, self.conversation);
        MetaCharge {
            message: Charge::decode(self.charges[0]),
            conversation: (self.conversation_kind != 0)
                .then(|| Charge::decode(self.charges[1]).map(|c| (key, c)))
                .flatten(),
            expires: (self.expires != i64::MIN).then_some(Instant(self.expires)),
        }
    }
}

/// Where a status stands among a message's statuses of the same time.
pub(super) fn rank(body: &EventBody<'_>) -> u8 {
    // `sent` first: only it carries the conversation's expiration, and a
    // webhook's times are whole seconds, often the same for sent and
    // delivered.
    match body {
        EventBody::Status(Status::Sent) => 0,
        EventBody::Status(Status::Delivered) => 1,
        EventBody::Status(Status::Read) => 2,
        EventBody::Status(Status::Failed) => 3,
        _ => 4,
    }
}

fn hex128(s: &str) -> Option<[u64; 2]> {
    let lower = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if s.len() != 32 || !s.bytes().all(lower) {
        return None;
    }
    let hi = u64::from_str_radix(s.get(..16)?, 16).ok()?;
    let lo = u64::from_str_radix(s.get(16..)?, 16).ok()?;
    Some([hi, lo])
}

/// The verdicts of a ledger's messages.
#[derive(Clone, Debug)]
pub(super) struct Verdicts {
    /// Combinations of texts, and conversation ids that are not hex.
    texts: Interner,
    /// Found from their messages' records ([`super::Message::verdict`]).
    records: Chunked<Kept>,
    /// The combination being built (kept to reuse its memory).
    scratch: String,
    /// What each combination gives (its template code and charges), which
    /// depends on nothing else: worked out once per combination.
    derived: rustc_hash::FxHashMap<u32, (u8, [u8; 2])>,
}

impl Verdicts {
    pub fn new(key: HashKey) -> Verdicts {
        Verdicts {
            texts: Interner::new(key),
            records: Chunked::default(),
            scratch: String::new(),
            derived: rustc_hash::FxHashMap::default(),
        }
    }

    /// Record `i`.
    pub fn kept(&self, i: u32) -> Option<&Kept> {
        self.records.get(i as usize)
    }

    /// The template category record `i`'s verdict gives, if any.
    pub fn template(&self, i: u32) -> Option<crate::event::TemplateCategory> {
        self.kept(i)
            .and_then(|k| crate::ledger::fold::template_of(k.template))
    }

    /// How many messages have a verdict.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The verdict of record `i`, its texts borrowed.
    pub fn get(&self, i: u32) -> Option<Verdict<'_>> {
        self.kept(i).map(|k| self.render(k))
    }

    pub fn render(&self, k: &Kept) -> Verdict<'_> {
        let combo = self.texts.get(k.combo);
        let (billable, mut rest) = match combo.as_bytes().first() {
            Some(b't') => (Some(true), &combo[1..]),
            Some(b'f') => (Some(false), &combo[1..]),
            _ => (None, combo.get(1..).unwrap_or_default()),
        };
        let mut next = || {
            let (text, after) = decode(rest);
            rest = after;
            text.map(Cow::Borrowed)
        };
        let (pricing_model, category, pricing_type, origin) = (next(), next(), next(), next());
        let cost = (k.cost != u32::MAX).then(|| Cow::Borrowed(self.texts.get(k.cost)));
        Verdict {
            billable,
            pricing_model,
            category,
            pricing_type,
            conversation_id: match k.conversation_kind {
                1 => Some(Cow::Owned(format!(
                    "{:016x}{:016x}",
                    k.conversation[0], k.conversation[1]
                ))),
                2 => Some(Cow::Borrowed(self.texts.get(k.conversation[0] as u32))),
                _ => None,
            },
            origin,
            expires: (k.expires != i64::MIN).then_some(Instant(k.expires)),
            cost,
            pricing_json: None,
            conversation_json: None,
        }
    }

    /// Keeps `v` in record `existing` (a message's, replaced), or in a new
    /// one; returns its index.
    pub fn store(
        &mut self,
        existing: Option<u32>,
        (rank, at): (u8, i64),
        v: &Verdict<'_>,
    ) -> Result<u32, CapacityError> {
        self.scratch.clear();
        self.scratch.push_str(match v.billable {
            Some(true) => "t",
            Some(false) => "f",
            None => "-",
        });
        let texts = [&v.pricing_model, &v.category, &v.pricing_type, &v.origin];
        for text in texts {
            encode(&mut self.scratch, text.as_deref());
        }
        let combo = self.texts.intern(&self.scratch)?.0;
        let (template, charges) = *self.derived.entry(combo).or_insert_with(|| {
            (
                crate::ledger::fold::template_code(v.template()),
                [
                    Charge::code(v.message_charge()),
                    Charge::code(v.conversation_charge()),
                ],
            )
        });
        // Apart: a price may differ per message (2026's maximum prices).
        let cost = match v.cost.as_deref() {
            Some(cost) => self.texts.intern(cost)?.0,
            None => u32::MAX,
        };
        let (conversation_kind, conversation) = match v.conversation_id.as_deref() {
            None => (0, [0, 0]),
            Some(id) => match hex128(id) {
                Some(bits) => (1, bits),
                None => (2, [u64::from(self.texts.intern(id)?.0), 0]),
            },
        };
        let kept = Kept {
            at,
            expires: v.expires.map_or(i64::MIN, |e| e.0),
            conversation,
            combo,
            cost,
            rank,
            conversation_kind,
            template,
            charges,
        };
        match existing {
            Some(i) => {
                *self.records.at(i as usize) = kept;
                Ok(i)
            }
            None => {
                let i = next_index(self.records.len(), Limit::Messages)?;
                self.records.push(kept);
                Ok(i)
            }
        }
    }
}

/// What two verdicts say, compared field by field (the objects as received
/// aside): F6's last tie-break between copies of one status.
pub(super) fn content_order(a: &Verdict<'_>, b: &Verdict<'_>) -> Ordering {
    (a.billable, a.expires, a.texts()).cmp(&(b.billable, b.expires, b.texts()))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::config::EngineConfig;
    use crate::event::Event;
    use crate::ledger::Ledger;
    use crate::ledger::fold::tests::{MARCH_2022, ev};

    fn with(body: EventBody<'static>, secs: i64, category: &'static str) -> Event<'static> {
        let mut e = ev(body, "m1", secs);
        e.verdict = Some(Box::new(Verdict {
            category: Some(Cow::Borrowed(category)),
            conversation_id: Some(Cow::Borrowed("72b14d6bd5407799e66f64d1b338e567")),
            ..Verdict::default()
        }));
        e
    }

    /// Review finding: a text holding what once separated the combination's
    /// texts was cut when kept, so two copies compared differently
    /// depending on which came first.
    #[test]
    fn a_kept_verdict_says_exactly_what_arrived_whatever_its_texts_hold() {
        let odd = ["marketing\u{1f}x", "", "-", "3:abc", "utility:", "ü\u{0}"];
        for category in odd {
            let mut ledger = Ledger::new(EngineConfig::new(), HashKey::fixed());
            let mut e = ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022);
            e.verdict = Some(Box::new(Verdict {
                billable: Some(false),
                pricing_model: Some(Cow::Borrowed("PMP")),
                category: Some(Cow::Borrowed(category)),
                origin: Some(Cow::Borrowed(":")),
                cost: Some(Cow::Borrowed("0.035 USD")),
                ..Verdict::default()
            }));
            assert!(ledger.ingest(std::slice::from_ref(&e)).is_ok());
            let kept = ledger.verdict_of("W1", "m1");
            let kept = kept.as_ref();
            assert_eq!(kept.and_then(|v| v.category.as_deref()), Some(category));
            assert_eq!(kept.and_then(|v| v.origin.as_deref()), Some(":"));
            assert_eq!(kept.and_then(|v| v.cost.as_deref()), Some("0.035 USD"));
            assert_eq!(kept.and_then(|v| v.billable), Some(false));
            // The same copy again changes nothing.
            assert!(!ledger.would_change(&e), "{category:?}");
        }
    }

    #[test]
    fn the_verdict_kept_is_the_earliest_status_s_whatever_the_order_of_arrival() {
        let statuses = [
            with(
                EventBody::Status(Status::Sent),
                MARCH_2022 + 10,
                "sent-says",
            ),
            with(
                EventBody::Status(Status::Read),
                MARCH_2022 + 20,
                "read-says",
            ),
            // At the sent status's time: the delivery's wins the tie.
            with(
                EventBody::Status(Status::Delivered),
                MARCH_2022 + 10,
                "delivered-says",
            ),
            with(
                EventBody::Status(Status::Delivered),
                MARCH_2022 + 30,
                "late-copy",
            ),
            // No verdict: it takes no part.
            ev(EventBody::Status(Status::Delivered), "m1", MARCH_2022 + 5),
        ];
        let orders: [[usize; 5]; 4] = [
            [0, 1, 2, 3, 4],
            [4, 3, 2, 1, 0],
            [3, 1, 4, 0, 2],
            [2, 0, 3, 4, 1],
        ];
        for order in orders {
            let mut ledger = Ledger::new(EngineConfig::new(), HashKey::fixed());
            for i in order {
                let e = &statuses[i];
                let before = ledger
                    .verdict_of("W1", "m1")
                    .map(|v| v.category.map(Cow::into_owned));
                let would = ledger.would_change(e);
                assert!(ledger.ingest(std::slice::from_ref(e)).is_ok());
                let after = ledger
                    .verdict_of("W1", "m1")
                    .map(|v| v.category.map(Cow::into_owned));
                // The service logs a copy only when it changes the ledger.
                if before != after {
                    assert!(would, "{order:?}: copy {i} changed the verdict unannounced");
                }
            }
            let v = ledger.verdict_of("W1", "m1");
            let v = v.as_ref();
            assert_eq!(
                v.and_then(|v| v.category.as_deref()),
                Some("sent-says"),
                "{order:?}"
            );
            assert_eq!(
                v.and_then(|v| v.conversation_id.as_deref()),
                Some("72b14d6bd5407799e66f64d1b338e567")
            );
            assert_eq!(ledger.n_verdicts(), 1);
        }
    }
}
