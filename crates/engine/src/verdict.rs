//! Meta's own verdict on a message: what a status's `pricing` and
//! `conversation` objects say it charges (events.md section 2; `meta` of a
//! normalized status, section 1). Kept as received: every field may be
//! absent, and values Meta adds without notice are kept as text.

use std::borrow::Cow;

use crate::time::Instant;

/// One status's verdict, as parsed. The objects as received ride along
/// (`pricing_json`, `conversation_json`) so that the service's log keeps
/// them whole; the ledger keeps the fields, compactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Verdict<'a> {
    /// `pricing.billable`.
    pub billable: Option<bool>,
    /// `pricing.pricing_model`: `CBP`, `PMP`, …
    pub pricing_model: Option<Cow<'a, str>>,
    /// `pricing.category`: `marketing`, `utility`, `authentication`,
    /// `authentication-international`, `service`, `marketing_lite`,
    /// `group_marketing`, … (or the conversation's category under CBP).
    pub category: Option<Cow<'a, str>>,
    /// `pricing.type`: `regular`, `free_customer_service`,
    /// `free_entry_point`, `free_group_customer_service`, …
    pub pricing_type: Option<Cow<'a, str>>,
    /// `conversation.id`.
    pub conversation_id: Option<Cow<'a, str>>,
    /// `conversation.origin.type` (or a `type` directly under
    /// `conversation`, a defect of Meta's samples).
    pub origin: Option<Cow<'a, str>>,
    /// `conversation.expiration_timestamp`.
    pub expires: Option<Instant>,
    /// `pricing.cost` (2026, maximum-price marketing): amount and currency
    /// as Meta wrote them, `"0.035 USD"`.
    pub cost: Option<Cow<'a, str>>,
    /// The `pricing` object as received, when it came from a webhook.
    pub pricing_json: Option<Cow<'a, str>>,
    /// The `conversation` object as received, when it came from a webhook.
    pub conversation_json: Option<Cow<'a, str>>,
}

impl Verdict<'_> {
    /// The same verdict owning its strings.
    pub fn into_owned(self) -> Verdict<'static> {
        let own = |s: Option<Cow<'_, str>>| s.map(|s| Cow::Owned(s.into_owned()));
        Verdict {
            billable: self.billable,
            pricing_model: own(self.pricing_model),
            category: own(self.category),
            pricing_type: own(self.pricing_type),
            conversation_id: own(self.conversation_id),
            origin: own(self.origin),
            expires: self.expires,
            cost: own(self.cost),
            pricing_json: own(self.pricing_json),
            conversation_json: own(self.conversation_json),
        }
    }

    /// The same verdict borrowing its strings from this one.
    pub fn borrowed(&self) -> Verdict<'_> {
        fn borrow<'s>(s: &'s Option<Cow<'_, str>>) -> Option<Cow<'s, str>> {
            s.as_deref().map(Cow::Borrowed)
        }
        Verdict {
            billable: self.billable,
            pricing_model: borrow(&self.pricing_model),
            category: borrow(&self.category),
            pricing_type: borrow(&self.pricing_type),
            conversation_id: borrow(&self.conversation_id),
            origin: borrow(&self.origin),
            expires: self.expires,
            cost: borrow(&self.cost),
            pricing_json: borrow(&self.pricing_json),
            conversation_json: borrow(&self.conversation_json),
        }
    }

    /// Whether it says anything at all.
    pub fn is_empty(&self) -> bool {
        self.billable.is_none()
            && self.pricing_model.is_none()
            && self.category.is_none()
            && self.pricing_type.is_none()
            && self.conversation_id.is_none()
            && self.origin.is_none()
            && self.expires.is_none()
            && self.cost.is_none()
    }
}
