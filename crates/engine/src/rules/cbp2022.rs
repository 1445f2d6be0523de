//! Rules section 2: the two-category conversation model (`cbp-2022`).

use super::{EraRules, FreeTierPool};
use crate::conversation::{Conversation, Delivery, Free, PairState, PairView};
use crate::era::EraKind;
use crate::tariff::{Category, Family};
use crate::time::HOURS_24;

pub struct Cbp2022;

impl EraRules for Cbp2022 {
    fn family(&self) -> Family {
        Family::Cbp2022
    }

    fn deliver(&self, state: &mut PairState, msg: &Delivery, view: &PairView<'_>) {
        // A1: a delivery inside an open conversation joins it, templates too.
        let open = state.open_at(msg.at).next();
        if let Some(open) = open {
            return state.join(open);
        }
        // A3: the category is decided by timing, not by message type.
        let (category, length) = if view.unused_entry_point(msg.at, state.last_fep_open) {
            let length = view.fep_length(msg.at);
            state.start_fep(msg.at, length);
            (Category::FreeEntryPoint, length)
        } else if view.csw_open(msg.at) {
            (Category::UserInitiated, HOURS_24)
        } else {
            (Category::BusinessInitiated, HOURS_24)
        };
        state.open(Conversation {
            start: msg.at,
            end: msg.at.plus(length),
            era: EraKind::Cbp2022,
            category,
            free: if category == Category::FreeEntryPoint {
                Free::FreeEntryPoint
            } else {
                Free::None
            },
            opened_by: msg.msg,
            messages: 1,
        })
    }

    /// A5: every conversation but a free entry point one takes a free slot.
    fn free_tier_pool(&self, category: Category, _free: Free) -> Option<FreeTierPool> {
        (category != Category::FreeEntryPoint).then_some(FreeTierPool::Waba)
    }
}
