//! Service's `GET /v1/quote`: what delivering one more business message to
//! a pair at an instant would do, decided by the code billing uses: the era
//! rules ([`crate::live::simulate`]), the month's free tiers ([`FreeTiers`]),
//! the market ([`RateBook::market_under`]) and the platform fee (D4, D5).
//! Two things are the quote's own: the card by local date
//! ([`RateBook::card_at`]; billing caches the same choice as instants), and
//! a volume-tiered rate quoted at its first band (the message's rank in the
//! month is not known until it is delivered).

use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::billing::{FreeTiers, WabaMonth, fee_quantity};
use crate::config::EngineConfig;
use crate::conversation::Free;
use crate::era::{EraClock, EraKind};
use crate::event::TemplateCategory;
use crate::live::{self, PairLog};
use crate::market::{MarketId, Region};
use crate::tariff::{Category, RateBook, RateCard};
use crate::time::{Instant, Month};

/// The message a quote is asked about.
#[derive(Clone, Debug)]
pub struct Ask<'a> {
    pub waba: &'a str,
    pub phone: &'a str,
    /// The user's digits (no `+`).
    pub user: &'a str,
    /// The user's region (rules D1), which the shell looked up.
    pub region: Region,
    pub at: Instant,
    /// None: a free-form (non-template) message.
    pub template: Option<TemplateCategory>,
}

/// What delivering the message would do (service.md `GET /v1/quote`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Free-form needs the customer service window (F4); templates may
    /// always be sent.
    pub allowed: bool,
    pub era: EraKind,
    pub opens_conversation: bool,
    pub category: Category,
    pub market: MarketId,
    pub free: Free,
    /// What the delivery adds to Meta's bill.
    pub meta_price: Decimal,
    /// What it adds to the platform's fee.
    pub platform_fee: Decimal,
    /// Free-tier slots left this month in the pool that would cover it (or
    /// the month's service pool when none covers its category).
    pub free_tier_left: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("no pricing era applies at `at`")]
    NoEra,
    #[error("no {} rate card is in force at `at`", era.as_str())]
    NoCard { era: EraKind },
    #[error("rate card {card} has no rate for market {market:?}, category {}", category.as_str())]
    NoRate {
        card: String,
        market: String,
        category: Category,
    },
}

/// What the quote reads of the engine: the rates, the configuration, the
/// pair's log and its WABA's era clock, and the WABA-month billed so far.
pub struct QuoteInputs<'a> {
    pub book: &'a RateBook,
    pub config: &'a EngineConfig,
    pub clock: &'a EraClock,
    pub log: &'a PairLog,
    /// The WABA-month of `at`, settled; None when nothing is billed in it.
    pub month: Option<&'a WabaMonth>,
}

/// The local month of `at` for `waba`: the one [`QuoteInputs::month`]
/// must be.
pub fn month_of(config: &EngineConfig, waba: &str, at: Instant) -> Month {
    Month::of(at.local_date(&config.waba(waba).timezone))
}

pub fn quote(inputs: &QuoteInputs<'_>, ask: &Ask<'_>) -> Result<Quote, QuoteError> {
    let QuoteInputs {
        book,
        config,
        clock,
        log,
        month,
    } = *inputs;
    let at = ask.at;
    let window = live::window(log, clock, at);
    let outcome = live::simulate(log, clock, at, ask.template).ok_or(QuoteError::NoEra)?;
    let conversation = &outcome.conversation;
    let rules = outcome.era.rules();
    // Charged here: it opens a conversation, or its era prices each message.
    let charged_here = outcome.opens_conversation || rules.per_message();

    // A5, B7, section 5: the free tier that covers it, and what the month
    // has left of it (categories no free tier covers still show the
    // month's service pool).
    let covers = rules.free_tier_pool(conversation.category, Free::None);
    let pool = covers.or_else(|| rules.free_tier_pool(Category::Service, Free::None));
    let fresh;
    let free_tiers = match month {
        Some(m) => &m.free_tiers,
        None => {
            fresh = FreeTiers::new(config);
            &fresh
        }
    };
    let free_tier_left = pool.map_or(0, |pool| free_tiers.left(pool, ask.phone));
    let free = if conversation.free.by_rule() {
        conversation.free
    } else if charged_here && covers.is_some_and(|p| free_tiers.left(p, ask.phone) > 0) {
        Free::FreeTier
    } else {
        Free::None
    };

    // The conversation's own era prices it (it may have opened before an
    // era switch, B7a); a rate is needed only for what is charged.
    let waba = config.waba(ask.waba);
    let (card, market) = card_and_market(
        book,
        config,
        (ask.user, ask.region),
        conversation.era,
        (ask.waba, conversation.start.local_date(&waba.timezone)),
    )
    .ok_or(QuoteError::NoCard {
        era: conversation.era,
    })?;
    let category = priced_category(book, card, market, waba, conversation.category);
    let charged = charged_here
        && free == Free::None
        && !conversation
            .era
            .rules()
            .priced_at_zero(category, conversation.free);
    let meta_price = if charged {
        rate(card, market, category).ok_or_else(|| QuoteError::NoRate {
            card: card.source.clone(),
            market: book.market_name(market).to_owned(),
            category,
        })?
    } else {
        Decimal::ZERO
    };
    let platform_fee = platform_fee(config, ask.waba, month, charged_here, free);
    Ok(Quote {
        allowed: ask.template.is_some() || window.freeform_allowed(),
        era: outcome.era,
        opens_conversation: outcome.opens_conversation,
        category,
        market,
        free,
        meta_price,
        platform_fee,
        free_tier_left,
    })
}

/// D4/D5: the fee one more conversation or message adds: the unit fee when
/// it bears the fee and the month's fee-bearing units so far have used up
/// the plan's included volume.
fn platform_fee(
    config: &EngineConfig,
    waba: &str,
    month: Option<&WabaMonth>,
    charged_here: bool,
    free: Free,
) -> Decimal {
    let applies_to = config.platform.fee_applies_to;
    let so_far = month
        .and_then(|m| m.invoice.as_ref().ok())
        .map_or(0, |i| applies_to.fee_bearing(&i.conversations, &i.messages));
    let included = config.waba(waba).included_conversations;
    let bears_fee = charged_here && applies_to.bears_fee(free);
    if bears_fee && fee_quantity(so_far.saturating_add(1), included) > 0 {
        config.platform.fee_per_conversation
    } else {
        Decimal::ZERO
    }
}

/// The card of `era`'s family in force on the WABA-local `date` (rules
/// D2) and the user's market under it (D1).
fn card_and_market<'b>(
    book: &'b RateBook,
    config: &EngineConfig,
    (user, region): (&str, Region),
    era: EraKind,
    (waba, date): (&str, Date),
) -> Option<(&'b RateCard, MarketId)> {
    let card = book.card_at(era.rules().family(), config.currency_on(waba, date), date)?;
    Some((card, book.market_under(card, || user, region)?))
}

/// Rules D6: the category a derived conversation or message is priced at.
fn priced_category(
    book: &RateBook,
    card: &RateCard,
    market: MarketId,
    waba: &crate::config::WabaConfig,
    category: Category,
) -> Category {
    match category {
        Category::Authentication if book.international(card, market, waba.business_country) => {
            Category::AuthenticationInternational
        }
        category => category,
    }
}

/// A card's rate for a market and category; where the card has volume
/// tiers (rules C4), the first band's.
fn rate(card: &RateCard, market: MarketId, category: Category) -> Option<Decimal> {
    card.rate(market, category)
        .or_else(|| card.bands(market, category)?.first().map(|b| b.price))
}
