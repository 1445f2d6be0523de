//! A pair's state as the era rules see and change it: its conversations (or,
//! under per-message eras, its priced messages), the inbound messages that
//! open windows, the free entry point window.

use crate::era::EraKind;
use crate::event::TemplateCategory;
use crate::tariff::Category;
use crate::time::{HOURS_24, HOURS_72, Instant};

/// An inbound message of the pair (F1), with its entry-point flag (F5).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InboundItem {
    pub at: Instant,
    pub referral: bool,
}

/// A delivered business message (F2) of the pair.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub at: Instant,
    /// Index of the message in the ledger.
    pub msg: u32,
    /// F3: None when not a template (or no outbound record).
    pub template: Option<TemplateCategory>,
}

/// A delivery as the era rules see it: a ledger message's, or for a quote
/// a hypothetical one, which has no ledger index.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub at: Instant,
    pub msg: Option<u32>,
    pub template: Option<TemplateCategory>,
}

impl From<&Delivered> for Delivery {
    fn from(d: &Delivered) -> Delivery {
        Delivery {
            at: d.at,
            msg: Some(d.msg),
            template: d.template,
        }
    }
}

/// How a conversation or message is free, if it is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Free {
    None,
    FreeTier,
    FreeEntryPoint,
    FreeCustomerService,
}

impl Free {
    pub fn as_str(self) -> &'static str {
        match self {
            Free::None => "none",
            Free::FreeTier => "free_tier",
            Free::FreeEntryPoint => "free_entry_point",
            Free::FreeCustomerService => "free_customer_service",
        }
    }

    /// Free by a rule of its era, whatever the month's volume.
    pub fn by_rule(self) -> bool {
        matches!(self, Free::FreeEntryPoint | Free::FreeCustomerService)
    }
}

/// A conversation of one pair as the rules opened it, or under a
/// per-message era one delivered message (`start == end`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub start: Instant,
    pub end: Instant,
    pub era: EraKind,
    pub category: Category,
    /// Free by rule (entry point, customer service); the free tier is
    /// allotted later, per month.
    pub free: Free,
    /// Ledger index of the message whose delivery opened it (None: the
    /// hypothetical message of a quote).
    pub opened_by: Option<u32>,
    /// Delivered business messages attributed to it, its opener included.
    pub messages: u32,
}

impl Conversation {
    pub fn is_open_at(&self, at: Instant) -> bool {
        self.start <= at && at < self.end
    }
}

/// What an era may read about the pair at a delivery: its inbound messages up
/// to and including the delivery instant.
#[derive(Clone, Debug)]
pub struct PairView<'a> {
    /// The inbound messages with `at <= ` the delivery, in time order.
    pub inbound: &'a [InboundItem],
    pub fep_72h_from: Instant,
    /// From this instant service conversations are free (rules B7).
    pub free_service_from: Instant,
}

impl PairView<'_> {
    /// F4: the customer service window is open at `at`.
    pub fn csw_open(&self, at: Instant) -> bool {
        self.inbound
            .last()
            .is_some_and(|last| last.at <= at && at < last.at.plus(HOURS_24))
    }

    /// A3.1 / B5: an entry-point inbound message at `t` with
    /// `t <= at < t + 24h` that has not already opened a free entry point
    /// conversation. Entry points at or before the last free entry point
    /// opening are used up: that conversation outlives their 24 h windows.
    pub fn unused_entry_point(&self, at: Instant, last_fep_open: Option<Instant>) -> bool {
        self.inbound
            .iter()
            .rev()
            .take_while(|i| at < i.at.plus(HOURS_24))
            .any(|i| i.referral && i.at <= at && last_fep_open.is_none_or(|used| i.at > used))
    }

    /// A2: a free entry point conversation opening at `at` lasts 72 h from
    /// 2023-03-01 local, 24 h before.
    pub fn fep_length(&self, at: Instant) -> i64 {
        if at >= self.fep_72h_from {
            HOURS_72
        } else {
            HOURS_24
        }
    }
}

/// The pair's state as deliveries are applied in order.
#[derive(Clone, Debug, Default)]
pub struct PairState {
    pub conversations: Vec<Conversation>,
    /// When the last free entry point conversation opened.
    pub last_fep_open: Option<Instant>,
    /// The last free entry point conversation or window, `[start, end)`,
    /// whatever era opened it (rules C3, C6).
    pub fep: Option<(Instant, Instant)>,
    /// The conversation the last delivery opened or joined.
    pub last: Option<usize>,
}

impl PairState {
    /// Indices of the conversations open at `at`, oldest first.
    pub fn open_at(&self, at: Instant) -> impl Iterator<Item = usize> + '_ {
        (self.tail(at)..self.conversations.len())
            .filter(move |i| self.conversations[*i].is_open_at(at))
    }

    /// The open conversation of `category` at `at`, if any.
    pub fn open_of(&self, at: Instant, category: Category) -> Option<usize> {
        self.open_at(at)
            .find(|i| self.conversations[*i].category == category)
    }

    /// Rules B5: a free entry point conversation ends every other one.
    pub fn close_open_at(&mut self, at: Instant) {
        let first = self.tail(at);
        for c in &mut self.conversations[first..] {
            if c.is_open_at(at) {
                c.end = at;
            }
        }
    }

    /// Conversations start in order and none lasts over 72 h, so only the
    /// tail can still be open at `at`.
    fn tail(&self, at: Instant) -> usize {
        self.conversations
            .partition_point(|c| c.start.plus(HOURS_72) <= at)
    }

    /// Rules C3/C6: a free entry point conversation or window is open.
    pub fn in_fep(&self, at: Instant) -> bool {
        self.fep.is_some_and(|(start, end)| start <= at && at < end)
    }

    /// Records that a free entry point conversation or window opens.
    pub fn start_fep(&mut self, at: Instant, length: i64) {
        self.last_fep_open = Some(at);
        self.fep = Some((at, at.plus(length)));
    }

    pub fn open(&mut self, conversation: Conversation) {
        self.last = Some(self.conversations.len());
        self.conversations.push(conversation);
    }

    pub fn join(&mut self, index: usize) {
        self.last = Some(index);
        self.conversations[index].messages += 1;
    }
}
