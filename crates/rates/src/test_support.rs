//! What the tests of several modules share.

use super::*;

pub(crate) fn pmp_meta(date: Date) -> CardMeta {
    CardMeta {
        family: Family::Pmp,
        currency: "USD".into(),
        effective_from: date,
    }
}
