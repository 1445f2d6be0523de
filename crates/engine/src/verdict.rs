//! Meta's own verdict on a message: what a status's `pricing` and
//! `conversation` objects say it charges (events.md section 2; `meta` of a
//! normalized status, section 1). Kept as received: every field may be
//! absent, and values Meta adds without notice are kept as text.

use std::borrow::Cow;

use crate::event::TemplateCategory;
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

    /// Its texts in one order: pricing model, category, type, conversation
    /// id, origin, cost.
    pub fn texts(&self) -> [Option<&str>; 6] {
        [
            self.pricing_model.as_deref(),
            self.category.as_deref(),
            self.pricing_type.as_deref(),
            self.conversation_id.as_deref(),
            self.origin.as_deref(),
            self.cost.as_deref(),
        ]
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

    /// The category this verdict gives a delivered message that has no
    /// outbound record (rules F3): `pricing.category`, or under conversation
    /// pricing (`CBP`) `conversation.origin.type`, each falling back on the
    /// other; group categories and `marketing_lite` count as their base
    /// category. None for `service`, a free entry point, or a value wabill
    /// does not know (the message is then a non-template one).
    pub fn template(&self) -> Option<TemplateCategory> {
        let conversation_pricing = self
            .pricing_model
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("CBP"));
        let (first, second) = if conversation_pricing {
            (&self.origin, &self.category)
        } else {
            (&self.category, &self.origin)
        };
        let says = first.as_deref().or(second.as_deref())?;
        base_template(says)
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

/// A category of Meta's, as the template category it is priced as.
fn base_template(category: &str) -> Option<TemplateCategory> {
    let c = category.to_ascii_lowercase();
    match c.as_str() {
        "marketing" | "marketing_lite" | "group_marketing" => Some(TemplateCategory::Marketing),
        "utility" | "group_utility" => Some(TemplateCategory::Utility),
        "authentication" | "authentication-international" | "authentication_international" => {
            Some(TemplateCategory::Authentication)
        }
        // Conversation pricing before June 2023: a business-initiated
        // conversation is opened by a template (its category is not priced).
        "business_initiated" => Some(TemplateCategory::Marketing),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(
        model: Option<&'static str>,
        category: Option<&'static str>,
        origin: Option<&'static str>,
    ) -> Verdict<'static> {
        Verdict {
            pricing_model: model.map(Cow::Borrowed),
            category: category.map(Cow::Borrowed),
            origin: origin.map(Cow::Borrowed),
            ..Verdict::default()
        }
    }

    #[test]
    fn a_verdict_s_category_maps_to_the_base_template_category() {
        use TemplateCategory::{Authentication, Marketing, Utility};
        for (verdict, want) in [
            (v(Some("PMP"), Some("marketing"), None), Some(Marketing)),
            (
                v(Some("PMP"), Some("marketing_lite"), None),
                Some(Marketing),
            ),
            (v(Some("PMP"), Some("group_utility"), None), Some(Utility)),
            (
                v(Some("PMP"), Some("authentication-international"), None),
                Some(Authentication),
            ),
            (v(Some("PMP"), Some("service"), Some("marketing")), None),
            (v(Some("PMP"), Some("group_service"), None), None),
            (v(Some("PMP"), None, Some("utility")), Some(Utility)),
            (
                v(Some("CBP"), Some("service"), Some("utility")),
                Some(Utility),
            ),
            (
                v(
                    Some("CBP"),
                    Some("business_initiated"),
                    Some("business_initiated"),
                ),
                Some(Marketing),
            ),
            (
                v(Some("CBP"), Some("user_initiated"), Some("user_initiated")),
                None,
            ),
            (
                v(
                    Some("CBP"),
                    Some("referral_conversion"),
                    Some("referral_conversion"),
                ),
                None,
            ),
            (v(None, Some("MARKETING"), None), Some(Marketing)),
            (v(Some("PMP"), Some("a_category_meta_adds"), None), None),
            (v(None, None, None), None),
        ] {
            assert_eq!(verdict.template(), want, "{verdict:?}");
        }
    }
}
