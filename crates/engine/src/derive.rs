//! Per-pair derivation: a pair's inbound messages and delivered business
//! messages, in time order, go to the era in force at each delivery
//! ([`crate::rules`]) and become its conversations (or, under per-message
//! eras, its priced messages).

use crate::conversation::{Conversation, Delivered, Delivery, InboundItem, PairState, PairView};
use crate::era::EraClock;
use crate::time::Instant;

/// A delivery the engine could not rate: it falls before the first era of
/// the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoEra {
    pub at: Instant,
    pub msg: u32,
}

/// Runs the era rules over one pair. `inbound` and `delivered` are sorted by
/// time (ties by message id).
pub fn derive_pair(
    inbound: &[InboundItem],
    delivered: &[Delivered],
    clock: &EraClock,
    errors: &mut Vec<NoEra>,
) -> Vec<Conversation> {
    run_pair(inbound, delivered, clock, errors).conversations
}

/// [`derive_pair`], keeping the whole pair state (free entry point window
/// included) for live answers.
pub fn run_pair(
    inbound: &[InboundItem],
    delivered: &[Delivered],
    clock: &EraClock,
    errors: &mut Vec<NoEra>,
) -> PairState {
    let mut state = PairState::default();
    let mut seen = 0;
    for msg in delivered {
        while seen < inbound.len() && inbound[seen].at <= msg.at {
            seen += 1;
        }
        let Some(era) = clock.era_at(msg.at) else {
            // Ingest rejects events before the first era; kept for safety.
            errors.push(NoEra {
                at: msg.at,
                msg: msg.msg,
            });
            continue;
        };
        let view = PairView {
            inbound: &inbound[..seen],
            fep_72h_from: clock.fep_72h_from,
            free_service_from: clock.free_service_from,
        };
        era.rules().deliver(&mut state, &Delivery::from(msg), &view);
    }
    state
}
