//! `GET /v1/quote`: what delivering one message now would do and cost.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use serde::Serialize;
use wabill_engine::billing::WabaMonth;
use wabill_engine::conversation::Free;
use wabill_engine::era::FreeTierPool;
use wabill_engine::event::TemplateCategory;
use wabill_engine::live;
use wabill_engine::rates::Category;
use wabill_engine::time::Month;

use super::api::{clock_of, settled, with_pair};
use super::auth::{api_key, scope};
use super::error::{ApiError, ErrorCode};
use super::query::{PairQuery, parse_at, user_digits};
use super::{Answer, Shared};

/// `GET /v1/quote`'s answer (service.md), keys in byte order.
#[derive(Serialize)]
pub(super) struct QuoteAnswer<'a> {
    pub allowed: bool,
    pub category: &'static str,
    pub era: &'static str,
    pub free: &'static str,
    pub free_tier_left: u64,
    pub market: &'a str,
    pub meta_price: String,
    pub opens_conversation: bool,
    pub platform_fee: String,
}

/// Free-tier slots of `pool` used in a WABA-month so far, for a phone when
/// the pool is per phone.
fn free_tier_used(
    month: Option<&WabaMonth>,
    pool: FreeTierPool,
    phone: &str,
    ledger: &wabill_engine::Ledger,
) -> u64 {
    let Some(month) = month else { return 0 };
    month
        .records
        .iter()
        .filter(|r| {
            r.free == Free::FreeTier
                && r.era.rules().free_tier_pool(r.category, Free::None) == Some(pool)
        })
        .filter(|r| pool == FreeTierPool::Waba || ledger.pair_names(r.pair).1 == phone)
        .count() as u64
}

// Long: moved as it was; its billing part is to become one engine call.
pub(super) async fn get_quote(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let q = PairQuery::parse(uri.query())?;
    scope(key, &q.waba)?;
    let at = parse_at(q.at.as_deref())?;
    let template = match (q.kind.as_deref(), q.category.as_deref()) {
        (Some("freeform"), None) => None,
        (Some("template"), Some(c)) => Some(TemplateCategory::parse(c).ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadQuery,
                format!("category {c:?} is not marketing, utility or authentication"),
            )
        })?),
        (Some("template"), None) => {
            return Err(ApiError::new(
                ErrorCode::BadQuery,
                "kind=template needs `category`",
            ));
        }
        (Some("freeform"), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::BadQuery,
                "kind=freeform takes no `category`",
            ));
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::BadQuery,
                "`kind` must be freeform or template",
            ));
        }
    };
    let user = user_digits(&q.user);
    let region = app.regions.region_of(user).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadQuery,
            format!("user {user:?} is not an international number whose country can be determined"),
        )
    })?;
    let clock = clock_of(&app, &q.waba);
    let (window, outcome) = with_pair(&app, &q, |log| {
        (
            live::window(log, &clock, at),
            live::simulate(log, &clock, at, template),
        )
    });
    let allowed = template.is_some() || window.freeform_allowed();
    let outcome =
        outcome.ok_or_else(|| ApiError::new(ErrorCode::NoEra, "no pricing era applies at `at`"))?;
    let config = &app.state.config;
    let conversation = &outcome.conversation;
    let rules = outcome.era.rules();
    // The free tier left this month (per WABA, or per phone in pmp-2026).
    // Categories the free tier never covers still show the month's pool.
    let covers = rules.free_tier_pool(conversation.category, Free::None);
    let pool = covers.or_else(|| rules.free_tier_pool(Category::Service, Free::None));
    let month = Month::of(at.local_date(&config.waba(&q.waba).timezone));
    let (waba_month, used) = settled(&app, {
        let (waba, phone) = (q.waba.to_string(), q.phone.to_string());
        move |engine| {
            let waba_month = engine.month(&waba, month).cloned();
            let used = pool.map_or(0, |pool| {
                free_tier_used(waba_month.as_deref(), pool, &phone, engine.ledger())
            });
            (waba_month, used)
        }
    })
    .await?;
    let cap = match pool {
        Some(FreeTierPool::Waba) => config.free_tier_per_month,
        Some(FreeTierPool::Phone) => config.pmp_2026_free_service_per_phone,
        None => 0,
    };
    let free_tier_left = cap.saturating_sub(used);
    let charged_here = outcome.opens_conversation || rules.per_message();
    let free = if conversation.free.by_rule() {
        conversation.free
    } else if charged_here && covers.is_some() && free_tier_left > 0 {
        Free::FreeTier
    } else {
        Free::None
    };
    let category = conversation.category;
    // The conversation's own era prices it (it may have opened before an
    // era switch, B7a); a rate is needed only for what is charged.
    let (card, market) = live::card_and_market(
        &app.state.book,
        config,
        (&q.waba, user, region),
        conversation.era,
        conversation.start,
    )
    .ok_or_else(|| {
        ApiError::new(
            ErrorCode::NoCard,
            format!(
                "no {} rate card is in force at `at`",
                conversation.era.as_str()
            ),
        )
    })?;
    let conversation_rules = conversation.era.rules();
    let charged = charged_here
        && free == Free::None
        && !conversation_rules.priced_at_zero(category, conversation.free);
    // What this delivery adds to Meta's bill: nothing when it joins an open
    // conversation or is free.
    let meta_price = if charged {
        live::rate(card, market, category).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoRate,
                format!(
                    "rate card {} has no rate for market {:?}, category {}",
                    card.source,
                    app.state.book.market_name(market),
                    category.as_str()
                ),
            )
        })?
    } else {
        rust_decimal::Decimal::ZERO
    };
    // D4/D5: the fee is charged on fee-bearing conversations beyond the
    // plan's included ones, counted in the month so far.
    let fee_bearing_so_far = waba_month
        .as_deref()
        .and_then(|m| m.invoice.as_ref().ok())
        .map_or(0, |i| match config.platform.fee_applies_to {
            wabill_engine::config::FeeAppliesTo::Paid => i.conversations.paid + i.messages.paid,
            wabill_engine::config::FeeAppliesTo::All => i.conversations.total + i.messages.total,
        });
    let fee_bearing = match config.platform.fee_applies_to {
        wabill_engine::config::FeeAppliesTo::All => charged_here,
        wabill_engine::config::FeeAppliesTo::Paid => charged_here && free == Free::None,
    };
    let included = config.waba(&q.waba).included_conversations;
    let platform_fee = if fee_bearing && fee_bearing_so_far >= included {
        config.platform.fee_per_conversation
    } else {
        rust_decimal::Decimal::ZERO
    };
    let market = app.state.book.market_name(market);
    Ok(axum::Json(QuoteAnswer {
        allowed,
        category: category.as_str(),
        era: outcome.era.as_str(),
        free: free.as_str(),
        free_tier_left,
        market,
        meta_price: meta_price.to_string(),
        opens_conversation: outcome.opens_conversation,
        platform_fee: platform_fee.to_string(),
    })
    .into_response())
}
