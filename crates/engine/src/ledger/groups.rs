//! Rules G1: group messages. A message sent in or to a group is derived
//! with the group's other messages (one customer service window for the
//! whole group: its pair is the group's), and each delivery of it to a
//! participant is billed in the participant's market (its record's pair is
//! the participant's).

use super::Ledger;
use crate::event::Event;
use crate::grow::CapacityError;

impl Ledger {
    /// The pair billing derives message `msg` with: its group's when it
    /// is a group message, else the canonical pair of `slot_pair` (the pair
    /// one of its events came with, rules F9).
    pub(crate) fn billing_pair(&self, msg: u32, slot_pair: u32) -> u32 {
        if !self.groups.is_empty()
            && let Some(&group) = self.groups.get(&msg)
        {
            return group;
        }
        self.canonical_pair(slot_pair)
    }

    /// The pair a group message's delivery is billed to: the participant's
    /// (None for a message outside any group, or one not delivered).
    pub(crate) fn participant_pair(&self, msg: u32) -> Option<u32> {
        if self.groups.is_empty() || !self.groups.contains_key(&msg) {
            return None;
        }
        let delivery = self.messages.records.get(msg as usize)?.delivery.get()?;
        Some(self.canonical_pair(delivery.pair))
    }

    /// The group messages, in index order.
    pub(crate) fn group_messages(&self) -> Vec<u32> {
        let mut msgs: Vec<u32> = self.groups.keys().copied().collect();
        msgs.sort_unstable();
        msgs
    }

    /// Whether folding `event` (of message `msg`, if known) would put its
    /// message in another group: a message is in the smallest (WABA,
    /// phone, group) any copy of its events named (byte order), whatever
    /// their order.
    pub(super) fn would_regroup(&self, msg: Option<u32>, event: &Event<'_>) -> bool {
        let Some(group) = event.group() else {
            return false;
        };
        let Some(current) = msg.and_then(|m| self.groups.get(&m)) else {
            return true;
        };
        (&*event.waba, &*event.phone, group) < self.pairs.names(*current)
    }

    /// Puts message `msg` in `event`'s group (rules G1).
    pub(super) fn note_group(
        &mut self,
        msg: u32,
        event: &Event<'_>,
        region: crate::market::Region,
    ) -> Result<(), CapacityError> {
        if !self.would_regroup(Some(msg), event) {
            return Ok(());
        }
        let Some(group) = event.group() else {
            return Ok(());
        };
        let (pair, new) = self.pairs.intern_names(&event.waba, &event.phone, group)?;
        if new.user {
            // Every user index has a region; a group's is never priced.
            self.regions.push(region);
        }
        self.groups.insert(msg, pair);
        Ok(())
    }
}
