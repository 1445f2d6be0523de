//! Meta's own verdict on a message: what a status's `pricing` and
//! `conversation` objects say it charges (events.md section 2; `meta` of a
//! normalized status, section 1). Kept as received: every field may be
//! absent, and values Meta adds without notice are kept as text.

use std::borrow::Cow;

use crate::conversation::Free;
use crate::event::TemplateCategory;
use crate::tariff::Category;
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
    /// category. None for `service`, a free entry point, a conversation
    /// origin of the two-category model, or a value wabill does not know
    /// (the message is then a non-template one).
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

    /// Rules V2, per-message reading: `pricing.category` as a rate
    /// category and `pricing.type` as what makes the message free. None
    /// when either holds a value wabill does not know.
    pub fn message_charge(&self) -> Option<Charge> {
        let category = rate_category(self.category.as_deref().or(self.origin.as_deref())?)?;
        // Categories of conversations, not of messages: derived instead.
        if matches!(
            category,
            Category::UserInitiated | Category::BusinessInitiated | Category::FreeEntryPoint
        ) {
            return None;
        }
        Some(Charge {
            category,
            free: self.free(category)?,
        })
    }

    /// Rules V3, conversation reading: `conversation.origin.type` (else
    /// `pricing.category`) as a rate category, and what makes the
    /// conversation free. None as [`Verdict::message_charge`].
    pub fn conversation_charge(&self) -> Option<Charge> {
        let category = rate_category(self.origin.as_deref().or(self.category.as_deref())?)?;
        Some(Charge {
            category,
            free: self.free(category)?,
        })
    }

    /// What makes a charge of `category` free: `pricing.type`, else (before
    /// Meta sent a type) `billable: false` on a service conversation.
    fn free(&self, category: Category) -> Option<Free> {
        if category == Category::FreeEntryPoint {
            return Some(Free::FreeEntryPoint);
        }
        let service = matches!(category, Category::Service | Category::UserInitiated);
        match self.pricing_type.as_deref() {
            Some(t) => {
                let is = |name: &str| t.eq_ignore_ascii_case(name);
                if is("regular") {
                    Some(Free::None)
                } else if is("free_customer_service") || is("free_group_customer_service") {
                    Some(Free::FreeCustomerService)
                } else if is("free_entry_point") {
                    Some(Free::FreeEntryPoint)
                } else {
                    None
                }
            }
            None => match self.billable {
                Some(false) if service => Some(Free::FreeCustomerService),
                // Not billable for a reason wabill cannot tell.
                Some(false) => None,
                _ => Some(Free::None),
            },
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

/// Meta's verdict on one delivery read as a charge (rules V2, V3).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Charge {
    pub category: Category,
    pub free: Free,
}

impl Charge {
    const FREE: [Free; 4] = [
        Free::None,
        Free::FreeTier,
        Free::FreeEntryPoint,
        Free::FreeCustomerService,
    ];

    /// One byte: 1 + the category's place in [`Category::ALL`] and the
    /// free kind's (shifted); 0 for none.
    pub(crate) fn code(charge: Option<Charge>) -> u8 {
        let place = |c: Charge| {
            let category = Category::ALL.iter().position(|x| *x == c.category);
            let free = Charge::FREE.iter().position(|x| *x == c.free);
            match (category, free) {
                (Some(category), Some(free)) => 1 + (category | free << 4) as u8,
                _ => 0,
            }
        };
        charge.map_or(0, place)
    }

    pub(crate) fn decode(code: u8) -> Option<Charge> {
        let code = code.checked_sub(1)?;
        Some(Charge {
            category: *Category::ALL.get(usize::from(code & 0x0f))?,
            free: *Charge::FREE.get(usize::from(code >> 4))?,
        })
    }
}

/// Which conversation of Meta's a verdict names: its id as the ledger
/// keeps it (a kind and 128 bits).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConversationKey(pub u8, pub [u64; 2]);

/// What billing on Meta's basis (rules V1) reads of a delivered message's
/// verdict: its charge under each reading, the conversation it names and
/// when Meta says that conversation expires.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetaCharge {
    pub message: Option<Charge>,
    pub conversation: Option<(ConversationKey, Charge)>,
    pub expires: Option<Instant>,
}

/// A category (or conversation origin) of Meta's, as the rate category it
/// is priced at; None for a value wabill does not know.
pub fn rate_category(category: &str) -> Option<Category> {
    use Category::*;
    // Compared without case, without building a lowercase copy: it runs
    // for every verdict kept.
    const NAMES: [(&str, Category); 15] = [
        ("marketing", Marketing),
        ("marketing_lite", Marketing),
        ("group_marketing", Marketing),
        ("utility", Utility),
        ("group_utility", Utility),
        ("authentication", Authentication),
        ("group_authentication", Authentication),
        ("authentication-international", AuthenticationInternational),
        ("authentication_international", AuthenticationInternational),
        ("service", Service),
        ("group_service", Service),
        ("user_initiated", UserInitiated),
        ("business_initiated", BusinessInitiated),
        ("referral_conversion", FreeEntryPoint),
        ("free_entry_point", FreeEntryPoint),
    ];
    NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(category))
        .map(|(_, c)| *c)
}

/// A category of Meta's, as the template category it is priced as.
fn base_template(category: &str) -> Option<TemplateCategory> {
    match rate_category(category)? {
        Category::Marketing => Some(TemplateCategory::Marketing),
        Category::Utility => Some(TemplateCategory::Utility),
        Category::Authentication | Category::AuthenticationInternational => {
            Some(TemplateCategory::Authentication)
        }
        // `business_initiated` (before June 2023) names the conversation, not
        // the message: a free-form message joining one is no template, and
        // across the switch to four categories (B7a) calling it one would
        // open a marketing conversation.
        Category::BusinessInitiated
        | Category::UserInitiated
        | Category::Service
        | Category::FreeEntryPoint => None,
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
                None,
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
