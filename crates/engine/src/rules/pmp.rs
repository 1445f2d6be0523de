//! Rules sections 4 and 5: per-message pricing (`pmp-2025`, `pmp-2026`).

use super::{EraRules, FreeTierPool};
use crate::conversation::{Conversation, Delivery, Free, PairState, PairView};
use crate::era::EraKind;
use crate::tariff::{Category, Family};
use crate::time::HOURS_72;

/// The two per-message eras differ only in what the customer service
/// window makes free.
pub struct Pmp {
    kind: EraKind,
    /// Section 5: service messages and utility inside the window are charged.
    charges_service: bool,
}

pub static PMP_2025: Pmp = Pmp {
    kind: EraKind::Pmp2025,
    charges_service: false,
};

pub static PMP_2026: Pmp = Pmp {
    kind: EraKind::Pmp2026,
    charges_service: true,
};

impl EraRules for Pmp {
    fn family(&self) -> Family {
        Family::Pmp
    }

    fn per_message(&self) -> bool {
        true
    }

    fn deliver(&self, state: &mut PairState, msg: &Delivery, view: &PairView<'_>) {
        let at = msg.at;
        let category = msg.template.map_or(Category::Service, Category::from);
        // C3/C6: inside a free entry point window (or a conversation opened
        // as one before the switch) everything is free; a reply to an unused
        // entry point opens a window.
        let free = if state.in_fep(at) {
            Free::FreeEntryPoint
        } else if view.unused_entry_point(at, state.last_fep_open) {
            state.start_fep(at, HOURS_72);
            Free::FreeEntryPoint
        } else if self.charges_service {
            Free::None
        } else if category == Category::Service
            || (category == Category::Utility && view.csw_open(at))
        {
            // C1, C2.
            Free::FreeCustomerService
        } else {
            Free::None
        };
        state.open(Conversation {
            start: at,
            end: at,
            era: self.kind,
            category,
            free,
            opened_by: msg.msg,
            messages: 1,
        })
    }

    /// Section 5: a monthly allowance of service messages per phone number.
    fn free_tier_pool(&self, category: Category, free: Free) -> Option<FreeTierPool> {
        (self.charges_service && category == Category::Service && free == Free::None)
            .then_some(FreeTierPool::Phone)
    }

    /// C1: under `pmp-2025` service messages are free and need no rate.
    fn priced_at_zero(&self, category: Category, _free: Free) -> bool {
        category == Category::FreeEntryPoint
            || (!self.charges_service && category == Category::Service)
    }
}
