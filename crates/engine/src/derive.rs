//! Per-pair derivation: a pair's inbound messages and delivered business
//! messages, in time order, go to the era in force at each delivery
//! ([`crate::rules`]) and become its conversations (or, under per-message
//! eras, its priced messages).

use crate::conversation::{Conversation, Delivered, Delivery, InboundItem, PairState, PairView};
use crate::era::EraClock;
use crate::rules::verdict;
use crate::time::Instant;
use crate::verdict::MetaCharge;

/// Meta's verdict on a ledger message, when invoices are on Meta's basis
/// (rules V1); None on wabill's own.
pub type Verdicts<'a> = Option<&'a dyn Fn(u32) -> Option<MetaCharge>>;

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
    verdicts: Verdicts<'_>,
    errors: &mut Vec<NoEra>,
) -> Vec<Conversation> {
    run_pair(inbound, delivered, clock, verdicts, errors).conversations
}

/// [`derive_pair`], keeping the whole pair state (free entry point window
/// included) for live answers.
pub fn run_pair(
    inbound: &[InboundItem],
    delivered: &[Delivered],
    clock: &EraClock,
    verdicts: Verdicts<'_>,
    errors: &mut Vec<NoEra>,
) -> PairState {
    run_pair_with(inbound, delivered, clock, verdicts, errors, |_, _| {})
}

/// [`run_pair`], telling `went` which conversation (its index in the
/// state) each delivered message opened or joined.
pub fn run_pair_with(
    inbound: &[InboundItem],
    delivered: &[Delivered],
    clock: &EraClock,
    verdicts: Verdicts<'_>,
    errors: &mut Vec<NoEra>,
    mut went: impl FnMut(u32, usize),
) -> PairState {
    let mut state = PairState::default();
    let mut opened = verdict::Opened::default();
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
        // V1: Meta's verdict where one arrived and says something usable.
        let meta = verdicts.and_then(|v| v(msg.msg));
        let by_verdict =
            meta.is_some_and(|m| verdict::deliver(&mut state, &mut opened, era, msg, &m, &view));
        if !by_verdict {
            era.rules().deliver(&mut state, &Delivery::from(msg), &view);
        }
        if let Some(i) = state.last.take() {
            went(msg.msg, i);
        }
    }
    state
}
