//! The internal event: what every input shape (events.md) becomes.

use std::borrow::Cow;

use crate::time::Instant;
use crate::verdict::Verdict;

/// Template categories a business message may carry (rules F3).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
}

impl TemplateCategory {
    /// Case-insensitive, as events.md allows.
    pub fn parse(s: &str) -> Option<TemplateCategory> {
        if s.eq_ignore_ascii_case("marketing") {
            Some(TemplateCategory::Marketing)
        } else if s.eq_ignore_ascii_case("utility") {
            Some(TemplateCategory::Utility)
        } else if s.eq_ignore_ascii_case("authentication") {
            Some(TemplateCategory::Authentication)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateCategory::Marketing => "marketing",
            TemplateCategory::Utility => "utility",
            TemplateCategory::Authentication => "authentication",
        }
    }
}

/// A delivery status of an outbound message.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status<'a> {
    Sent,
    Delivered,
    Read,
    Failed,
    /// `deleted`, `warning`, `played`, …: stored (for duplicate detection) and
    /// ignored for rating.
    Other(Cow<'a, str>),
}

impl<'a> Status<'a> {
    pub fn parse(s: Cow<'a, str>) -> Status<'a> {
        match &*s {
            "sent" => Status::Sent,
            "delivered" => Status::Delivered,
            "read" => Status::Read,
            "failed" => Status::Failed,
            _ => Status::Other(s),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Failed => "failed",
            Status::Other(s) => s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventBody<'a> {
    /// F1; `referral` marks an entry point (F5).
    Inbound {
        referral: bool,
    },
    /// An outbound record as sent; `template` is None for a free-form message.
    Outbound {
        template: Option<TemplateCategory>,
    },
    Status(Status<'a>),
}

/// One event, borrowing its strings from the input where it can.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event<'a> {
    pub ts: Instant,
    pub waba: Cow<'a, str>,
    pub phone: Cow<'a, str>,
    /// The user's number as digits, or, when Meta withholds it, the
    /// user's business-scoped user id ([`is_bsuid`]).
    pub user: Cow<'a, str>,
    /// Whom else it names (rules F9, G1); boxed, as most events name no
    /// one else and events are moved by the million.
    pub also: Option<Box<Also<'a>>>,
    /// The message id; for a status, the id of the message it is about.
    pub id: Cow<'a, str>,
    pub body: EventBody<'a>,
    /// Meta's verdict a status carried (`pricing`, `conversation`).
    pub verdict: Option<Box<Verdict<'a>>>,
}

impl Event<'_> {
    /// The same event owning its strings (to outlive the text it came from).
    pub fn into_owned(self) -> Event<'static> {
        Event {
            ts: self.ts,
            waba: std::borrow::Cow::Owned(self.waba.into_owned()),
            phone: std::borrow::Cow::Owned(self.phone.into_owned()),
            user: std::borrow::Cow::Owned(self.user.into_owned()),
            also: self.also.map(|a| {
                let own = |s: Option<Cow<'_, str>>| s.map(|s| Cow::Owned(s.into_owned()));
                Box::new(Also {
                    bsuid: own(a.bsuid),
                    group: own(a.group),
                })
            }),
            id: std::borrow::Cow::Owned(self.id.into_owned()),
            body: match self.body {
                EventBody::Inbound { referral } => EventBody::Inbound { referral },
                EventBody::Outbound { template } => EventBody::Outbound { template },
                EventBody::Status(Status::Other(name)) => {
                    EventBody::Status(Status::Other(std::borrow::Cow::Owned(name.into_owned())))
                }
                EventBody::Status(Status::Sent) => EventBody::Status(Status::Sent),
                EventBody::Status(Status::Delivered) => EventBody::Status(Status::Delivered),
                EventBody::Status(Status::Read) => EventBody::Status(Status::Read),
                EventBody::Status(Status::Failed) => EventBody::Status(Status::Failed),
            },
            verdict: self.verdict.map(|v| Box::new(v.into_owned())),
        }
    }

    /// The user's business-scoped user id beside the number (rules F9).
    pub fn bsuid(&self) -> Option<&str> {
        self.also.as_ref()?.bsuid.as_deref()
    }

    /// The group of a group message (rules G1).
    pub fn group(&self) -> Option<&str> {
        self.also.as_ref()?.group.as_deref()
    }

    /// The normalized `type` this event has (events.md section 1).
    pub fn kind_str(&self) -> &'static str {
        match self.body {
            EventBody::Inbound { .. } => "inbound",
            EventBody::Outbound { .. } => "outbound",
            EventBody::Status(_) => "status",
        }
    }
}

/// Whom else an event names besides its user.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Also<'a> {
    /// The user's business-scoped user id when the event also names the
    /// number (`user`): what links the two (rules F9).
    pub bsuid: Option<Cow<'a, str>>,
    /// The group a group message was sent in or to (rules G1): `user` is
    /// then the participant who wrote, or to whom it was delivered.
    pub group: Option<Cow<'a, str>>,
}

impl<'a> Also<'a> {
    /// None when it names no one.
    pub fn boxed(
        bsuid: Option<Cow<'a, str>>,
        group: Option<Cow<'a, str>>,
    ) -> Option<Box<Also<'a>>> {
        (bsuid.is_some() || group.is_some()).then(|| Box::new(Also { bsuid, group }))
    }
}

/// Whether `s` is a business-scoped user id (Meta, 2026): an ISO 3166
/// alpha-2 country code in capitals, a period, then letters and digits
/// (a parent id has another period: `US.ENT.1181…`), at most 160 bytes.
pub fn is_bsuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 3
        && b.len() <= 160
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2] == b'.'
        && b[3..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.')
        && b[3..].iter().any(u8::is_ascii_alphanumeric)
}

/// The country a business-scoped user id names.
pub fn bsuid_region(s: &str) -> Option<crate::market::Region> {
    if is_bsuid(s) {
        crate::market::Region::parse(s.get(..2)?)
    } else {
        None
    }
}
