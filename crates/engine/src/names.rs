//! What rating reads of the ledger once pairs are derived: the names
//! behind WABA, phone, pair and message indices, and each user's region.
//! The ledger answers; so does the copy that incremental billing keeps
//! ([`crate::incremental::Billed`]), which lets it rate months while the
//! ledger goes on taking events.

use crate::ledger::{Ledger, PairKey};
use crate::market::Region;

pub(crate) trait Names {
    fn pair(&self, pair: u32) -> PairKey;
    /// (WABA, phone, user digits).
    fn pair_names(&self, pair: u32) -> (&str, &str, &str);
    fn waba_name(&self, waba: u32) -> &str;
    fn phone_name(&self, phone: u32) -> &str;
    fn region(&self, user: u32) -> Region;
    /// The id of a message that opened a record. Rating compares ids only
    /// between records of one pair that start at the same instant.
    fn message_id(&self, msg: u32) -> &str;
}

impl Names for Ledger {
    fn pair(&self, pair: u32) -> PairKey {
        Ledger::pair(self, pair)
    }

    fn pair_names(&self, pair: u32) -> (&str, &str, &str) {
        Ledger::pair_names(self, pair)
    }

    fn waba_name(&self, waba: u32) -> &str {
        Ledger::waba_name(self, waba)
    }

    fn phone_name(&self, phone: u32) -> &str {
        Ledger::phone_name(self, phone)
    }

    fn region(&self, user: u32) -> Region {
        Ledger::region(self, user)
    }

    fn message_id(&self, msg: u32) -> &str {
        Ledger::message_id(self, msg)
    }
}
