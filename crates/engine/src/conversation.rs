//! Per-pair derivation: a pair's inbound messages and delivered business
//! messages, in time order, become its conversations.

use crate::era::{DeliveryEffect, EraClock, EraKind};
use crate::event::TemplateCategory;
use crate::rates::Category;
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

/// A conversation of one pair, as the rules opened it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub start: Instant,
    pub end: Instant,
    pub era: EraKind,
    pub category: Category,
    /// Ledger index of the message whose delivery opened it.
    pub opened_by: u32,
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
}

impl PairState {
    /// Indices of the conversations open at `at`, oldest first.
    pub fn open_at(&self, at: Instant) -> impl Iterator<Item = usize> + '_ {
        // Conversations start in order and none lasts over 72 h, so only the
        // tail can still be open.
        let first = self
            .conversations
            .partition_point(|c| c.start.plus(HOURS_72) <= at);
        (first..self.conversations.len()).filter(move |i| self.conversations[*i].is_open_at(at))
    }

    pub fn open(&mut self, conversation: Conversation) -> DeliveryEffect {
        self.conversations.push(conversation);
        DeliveryEffect::Opened(self.conversations.len() - 1)
    }

    pub fn join(&mut self, index: usize) -> DeliveryEffect {
        self.conversations[index].messages += 1;
        DeliveryEffect::Joined(index)
    }
}

/// A delivery the engine could not rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// The delivery falls in an era wabill does not implement yet.
    UnsupportedEra { era: EraKind, at: Instant, msg: u32 },
    /// The delivery falls before the first era of the timeline.
    NoEra { at: Instant, msg: u32 },
}

/// Runs the era rules over one pair. `inbound` and `delivered` are sorted by
/// time (ties by message id).
pub fn derive_pair(
    inbound: &[InboundItem],
    delivered: &[Delivered],
    clock: &EraClock,
    errors: &mut Vec<DeliveryError>,
) -> Vec<Conversation> {
    let mut state = PairState::default();
    let mut seen = 0;
    for msg in delivered {
        while seen < inbound.len() && inbound[seen].at <= msg.at {
            seen += 1;
        }
        let Some(era) = clock.era_at(msg.at) else {
            // Ingest rejects events before the first era; kept for safety.
            errors.push(DeliveryError::NoEra {
                at: msg.at,
                msg: msg.msg,
            });
            continue;
        };
        let Some(rules) = era.rules() else {
            errors.push(DeliveryError::UnsupportedEra {
                era,
                at: msg.at,
                msg: msg.msg,
            });
            continue;
        };
        let view = PairView {
            inbound: &inbound[..seen],
            fep_72h_from: clock.fep_72h_from,
        };
        rules.deliver(&mut state, msg, &view);
    }
    state.conversations
}
