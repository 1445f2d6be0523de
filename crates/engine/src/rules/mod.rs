//! What each pricing era does with a delivered business message: the
//! [`EraRules`] trait and one file per era (rules sections 2 to 5). The
//! eras read and change the pair state of [`crate::conversation`]; the
//! derivation that runs them in delivery order is [`crate::derive`].

mod cbp2022;
mod cbp2023;
mod pmp;
pub mod verdict;

use crate::conversation::{Delivery, Free, PairState, PairView};
use crate::era::EraKind;
use crate::tariff::{Category, Family};

impl EraKind {
    /// The rules of this era.
    pub fn rules(self) -> &'static dyn EraRules {
        match self {
            EraKind::Cbp2022 => &cbp2022::Cbp2022,
            EraKind::Cbp2023 => &cbp2023::Cbp2023,
            EraKind::Pmp2025 => &pmp::PMP_2025,
            EraKind::Pmp2026 => &pmp::PMP_2026,
        }
    }
}

/// Which free tier a record may take a slot of.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FreeTierPool {
    /// Rules A5/B7: per WABA and local month.
    Waba,
    /// Rules section 5: per business phone number and local month.
    Phone,
}

/// The rules of one era. An era sees the pair's state (open conversations,
/// free entry point window, customer service window, entry points) and
/// decides what a delivery does. Eras share the pair state, so conversations
/// opened under one era stay open into the next (rules B7a, C6).
pub trait EraRules: Sync {
    /// The rate card family this era prices with.
    fn family(&self) -> Family;

    /// Whether the era prices delivered messages one by one (rules section
    /// 4) rather than conversations.
    fn per_message(&self) -> bool {
        false
    }

    /// Applies one delivered business message, in delivery order.
    fn deliver(&self, state: &mut PairState, msg: &Delivery, view: &PairView<'_>);

    /// The free tier a record of `category`, free by rule as `free`, may
    /// take a slot of (rules A5, B7, section 5).
    fn free_tier_pool(&self, category: Category, free: Free) -> Option<FreeTierPool>;

    /// Whether records of `category`, free by rule as `free`, show unit
    /// price 0 whatever the card says, needing no rate (rules D2: a category
    /// a rule makes free).
    fn priced_at_zero(&self, category: Category, _free: Free) -> bool {
        category == Category::FreeEntryPoint
    }
}
