//! Rules section 3: four conversation categories (`cbp-2023`).

use super::{EraRules, FreeTierPool};
use crate::conversation::{Conversation, Delivery, Free, PairState, PairView};
use crate::era::EraKind;
use crate::tariff::{Category, Family};
use crate::time::{HOURS_24, HOURS_72};

pub struct Cbp2023;

impl EraRules for Cbp2023 {
    fn family(&self) -> Family {
        Family::Cbp2023
    }

    fn deliver(&self, state: &mut PairState, msg: &Delivery, view: &PairView<'_>) {
        let at = msg.at;
        // B5: an open free entry point conversation takes everything (B7a:
        // whichever era opened it).
        if let Some(fep) = state.open_of(at, Category::FreeEntryPoint) {
            return state.join(fep);
        }
        // B5: a reply to an unused entry point opens one, closing the others.
        if view.unused_entry_point(at, state.last_fep_open) {
            state.close_open_at(at);
            state.start_fep(at, HOURS_72);
            return state.open(Conversation {
                start: at,
                end: at.plus(HOURS_72),
                era: EraKind::Cbp2023,
                category: Category::FreeEntryPoint,
                free: Free::FreeEntryPoint,
                opened_by: msg.msg,
                messages: 1,
            });
        }
        let (category, free) = match msg.template {
            // B2: one open conversation per template category.
            Some(template) => {
                let category = Category::from(template);
                if let Some(open) = state.open_of(at, category) {
                    return state.join(open);
                }
                (category, Free::None)
            }
            // B3: a non-template joins whatever is open (cli.md: the service
            // conversation first, else the earliest opened); B7a: cbp-2022
            // conversations count as open ones.
            None => {
                let open = state
                    .open_of(at, Category::Service)
                    .or_else(|| state.open_at(at).next());
                if let Some(open) = open {
                    return state.join(open);
                }
                // B7: service is free and unlimited from 2024-11-01 local.
                let free = if at >= view.free_service_from {
                    Free::FreeCustomerService
                } else {
                    Free::None
                };
                (Category::Service, free)
            }
        };
        state.open(Conversation {
            start: at,
            end: at.plus(HOURS_24),
            era: EraKind::Cbp2023,
            category,
            free,
            opened_by: msg.msg,
            messages: 1,
        })
    }

    /// D2: free entry point conversations, and service ones once B7 made
    /// them free, show unit price 0 and need no rate.
    fn priced_at_zero(&self, category: Category, free: Free) -> bool {
        category == Category::FreeEntryPoint
            || (category == Category::Service && free == Free::FreeCustomerService)
    }

    /// B7: only service conversations, and only before they became free.
    fn free_tier_pool(&self, category: Category, free: Free) -> Option<FreeTierPool> {
        (category == Category::Service && free == Free::None).then_some(FreeTierPool::Waba)
    }
}
