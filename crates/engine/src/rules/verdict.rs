//! Rules V2 and V3: a delivery billed as Meta's verdict says (basis
//! `meta`), in place of the era's own rules.

use crate::conversation::{Conversation, Delivered, Free, PairState, PairView};
use crate::era::EraKind;
use crate::tariff::Category;
use crate::time::{HOURS_24, HOURS_72};
use crate::verdict::{Charge, ConversationKey, MetaCharge};

/// How far back a delivery looks for the conversation its verdict names:
/// statuses of a message sent inside a conversation may arrive days later.
const JOIN_HORIZON: i64 = 7 * HOURS_24;

/// The conversations a pair's verdicts opened, by Meta's key, with their
/// place in the pair state (conversations are only ever added to it).
#[derive(Default)]
pub struct Opened(Vec<(ConversationKey, usize)>);

/// Applies `msg` as its verdict `meta` says under `era`; false when the
/// verdict says nothing usable under that era (the era's rules then apply).
pub fn deliver(
    state: &mut PairState,
    opened: &mut Opened,
    era: EraKind,
    msg: &Delivered,
    meta: &MetaCharge,
    view: &PairView<'_>,
) -> bool {
    if era.rules().per_message() {
        return match meta.message {
            Some(charge) => {
                deliver_message(state, era, msg, charge);
                true
            }
            None => false,
        };
    }
    deliver_in_conversation(state, opened, era, msg, meta, view)
}

/// V2: one message, `pricing.category` and `pricing.type`.
fn deliver_message(state: &mut PairState, era: EraKind, msg: &Delivered, charge: Charge) {
    let at = msg.at;
    // D6 decides international after derivation, from the verdict
    // (`billing::derivation::authentication`).
    let category = match charge.category {
        Category::AuthenticationInternational => Category::Authentication,
        other => other,
    };
    // C3: a message Meta frees as an entry point's opens the window for
    // the pair's messages that have no verdict.
    if charge.free == Free::FreeEntryPoint && !state.in_fep(at) {
        state.start_fep(at, HOURS_72);
    }
    state.open(Conversation {
        start: at,
        end: at,
        era,
        category,
        free: charge.free,
        opened_by: Some(msg.msg),
        messages: 1,
    });
}

/// V3: the conversation Meta names; false when the verdict names none.
fn deliver_in_conversation(
    state: &mut PairState,
    opened: &mut Opened,
    era: EraKind,
    msg: &Delivered,
    meta: &MetaCharge,
    view: &PairView<'_>,
) -> bool {
    let at = msg.at;
    let template = msg.template.map(Category::from);
    let Some((key, charge)) = meta.conversation else {
        return false;
    };
    // Conversations are in start order: look back only as far as one can
    // still be joined.
    let joined = opened
        .0
        .iter()
        .rev()
        .take_while(|(_, i)| state.conversations[*i].start.plus(JOIN_HORIZON) > at)
        .find(|(k, _)| *k == key);
    if let Some(&(_, i)) = joined {
        state.join(i);
        return true;
    }
    let category = era_category(era, charge.category, template);
    let fep = category == Category::FreeEntryPoint;
    let length = if fep { view.fep_length(at) } else { HOURS_24 };
    // Meta's expiration where it is sane; conversations never outlast 72 h
    // (the pair state relies on it).
    let end = match meta.expires {
        Some(e) if e > at && e <= at.plus(HOURS_72) => e,
        _ => at.plus(length),
    };
    if fep {
        state.last_fep_open = Some(at);
        state.fep = Some((at, end));
    }
    opened.0.push((key, state.conversations.len()));
    state.open(Conversation {
        start: at,
        end,
        era,
        category,
        free: if fep {
            Free::FreeEntryPoint
        } else {
            charge.free
        },
        opened_by: Some(msg.msg),
        messages: 1,
    });
    true
}

/// A conversation category of Meta's in the categories `era` prices.
fn era_category(era: EraKind, category: Category, template: Option<Category>) -> Category {
    use Category::*;
    match (era, category) {
        (_, FreeEntryPoint) => FreeEntryPoint,
        // In the pair state as authentication, so that a derived
        // authentication template joins it (B2); D6 decides the price.
        (EraKind::Cbp2023 | EraKind::Pmp2025 | EraKind::Pmp2026, AuthenticationInternational) => {
            Authentication
        }
        (EraKind::Cbp2022, Service | UserInitiated) => UserInitiated,
        (EraKind::Cbp2022, _) => BusinessInitiated,
        (_, UserInitiated) => Service,
        (_, BusinessInitiated) => template.unwrap_or(Marketing),
        (_, other) => other,
    }
}
