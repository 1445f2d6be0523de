//! Why a conversation, or a whole month, could not be rated.

use jiff::civil::Date;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("no era applies to message {message} delivered {at} (WABA {waba})")]
    NoEra {
        waba: String,
        message: String,
        at: String,
    },
    #[error("no {family} rate card in {currency} is in force on {date} (WABA {waba})")]
    NoCard {
        family: &'static str,
        currency: String,
        date: Date,
        waba: String,
    },
    #[error("no market map is in force for rate card {card}")]
    NoMarketMap { card: String },
    #[error("rate card {card} has no rate for market {market:?}, category {category}")]
    MissingRate {
        card: String,
        market: String,
        category: &'static str,
    },
    #[error(
        "rate card {card} has no volume-tier band for charged message {n} of the month in market {market:?}, category {category}"
    )]
    NoTierBand {
        card: String,
        market: String,
        category: &'static str,
        n: u64,
    },
    #[error(
        "the invoice's {what} is too large or has too many decimal places to compute exactly (check rates and fees)"
    )]
    Overflow { what: &'static str },
}

/// Appends `error` unless the list has it already: a month reports each
/// missing rate once, however many records need it.
pub(crate) fn push_once(errors: &mut Vec<BillingError>, error: BillingError) {
    if !errors.contains(&error) {
        errors.push(error);
    }
}
