//! `GET /v1/quote`: what delivering one message now would do and cost. The
//! engine decides ([`wabill_engine::quote`]); this handler parses the
//! request and renders the answer.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use serde::Serialize;
use wabill_engine::customers::{CustomerQuote, QuotedUnit, customer_quote};
use wabill_engine::event::TemplateCategory;
use wabill_engine::event::{bsuid_region, is_bsuid};
use wabill_engine::live::PairLog;
use wabill_engine::quote::{self, Ask, Quote, QuoteError, QuoteInputs};

use crate::state::Settled;

use super::api::{clock_of, settled};
use super::error::{ApiError, ErrorCode};
use super::query::{pair_request, query_length, user_digits};
use super::{Answer, Shared};

/// `GET /v1/quote`'s answer (service.md), keys in byte order.
#[derive(Serialize)]
pub(super) struct QuoteAnswer<'a> {
    pub allowed: bool,
    pub category: &'static str,
    pub customer: Option<CustomerAnswer>,
    pub era: &'static str,
    pub free: &'static str,
    pub free_tier_left: u64,
    pub market: &'a str,
    pub meta_price: String,
    pub opens_conversation: bool,
    pub platform_fee: String,
}

/// What the customer the WABA is billed to pays for the message
/// (service.md), keys in byte order.
#[derive(Serialize)]
pub(super) struct CustomerAnswer {
    pub currency: String,
    pub id: String,
    pub included: bool,
    pub markup: String,
    pub meta_price: String,
    pub platform_price: String,
    pub price: String,
}

impl From<CustomerQuote> for CustomerAnswer {
    fn from(c: CustomerQuote) -> Self {
        CustomerAnswer {
            currency: c.currency,
            id: c.customer,
            included: c.included,
            markup: c.markup.to_string(),
            meta_price: c.meta_price.to_string(),
            platform_price: c.platform_price.to_string(),
            price: c.price.to_string(),
        }
    }
}

impl<'a> QuoteAnswer<'a> {
    fn new(q: &Quote, market: &'a str, customer: Option<CustomerQuote>) -> QuoteAnswer<'a> {
        QuoteAnswer {
            allowed: q.allowed,
            category: q.category.as_str(),
            customer: customer.map(CustomerAnswer::from),
            era: q.era.as_str(),
            free: q.free.as_str(),
            free_tier_left: q.free_tier_left,
            market,
            meta_price: q.meta_price.to_string(),
            opens_conversation: q.opens_conversation,
            platform_fee: q.platform_fee.to_string(),
        }
    }
}

/// The message a quote asks about: `kind=freeform`, or `kind=template`
/// with its `category`.
fn template_of(
    kind: Option<&str>,
    category: Option<&str>,
) -> Result<Option<TemplateCategory>, ApiError> {
    let bad = |message: String| Err(ApiError::new(ErrorCode::BadQuery, message));
    match (kind, category) {
        (Some("freeform"), None) => Ok(None),
        (Some("template"), Some(c)) => match TemplateCategory::parse(c) {
            Some(category) => Ok(Some(category)),
            None => bad(format!(
                "category {c:?} is not marketing, utility or authentication"
            )),
        },
        (Some("template"), None) => bad("kind=template needs `category`".to_owned()),
        (Some("freeform"), Some(_)) => bad("kind=freeform takes no `category`".to_owned()),
        _ => bad("`kind` must be freeform or template".to_owned()),
    }
}

/// The user a query names, as the ledger keeps it (a leading `+`
/// dropped), and its market's region: a number whose country can be
/// determined, or a business-scoped id of a known country (rules F9). Every
/// endpoint that takes a `user` answers the same 400 for any other.
pub(super) fn user_of(
    app: &super::App,
    user: &str,
) -> Result<(String, wabill_engine::market::Region), ApiError> {
    let user = user_digits(user);
    query_length("user", user, wabill_engine::ledger::limits::USER)?;
    let region = if is_bsuid(user) {
        bsuid_region(user).filter(|r| app.regions.knows(*r))
    } else {
        app.regions.region_of(user)
    };
    let region = region.ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadQuery,
            format!("user {user:?} is not an international number whose country can be determined"),
        )
    })?;
    Ok((user.to_owned(), region))
}

pub(super) async fn get_quote(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    let (q, at) = pair_request(&app, &headers, &uri)?;
    let template = template_of(q.kind.as_deref(), q.category.as_deref())?;
    let (user, region) = user_of(&app, &q.user)?;
    let clock = clock_of(&app, &q.waba);
    let state = Arc::clone(&app.state);
    // Rules P6: what the message would cost the WABA that carries the
    // phone at `at` (the pair is the number's whichever WABA is asked).
    let config = &app.state.config;
    let waba = config
        .carrier_at(&q.waba, &q.phone, at)
        .map_or_else(|| q.waba.to_string(), |c| c.waba.clone());
    let phone = q.phone.to_string();
    let shared = Arc::clone(&app);
    let quoted = settled(&app, move |settled| {
        let engine = settled.engine();
        let config = &state.config;
        // Rules F9: a business-scoped id linked to a number is priced in
        // the number's market, as billing prices it.
        let linked = is_bsuid(&user)
            .then(|| engine.ledger().billing_pair_of(&waba, &phone, &user))
            .flatten()
            .map(|p| engine.ledger().pair_names(p).2.to_owned())
            .filter(|number| !is_bsuid(number));
        let (user, region) = match linked {
            Some(number) => {
                let region = shared.regions.region_of(&number).unwrap_or(region);
                (number, region)
            }
            None => (user, region),
        };
        let empty = PairLog::default();
        let inputs = QuoteInputs {
            book: &state.book,
            config,
            clock: &clock,
            log: engine.pair_log_of(&waba, &phone, &user).unwrap_or(&empty),
            month: settled
                .billed
                .month(&waba, quote::month_of(config, &waba, at))
                .map(|m| &**m),
        };
        let ask = Ask {
            waba: &waba,
            phone: &phone,
            user: &user,
            region,
            at,
            template,
        };
        let q = quote::quote(&inputs, &ask).map_err(|e| {
            let code = match e {
                QuoteError::NoEra => ErrorCode::NoEra,
                QuoteError::NoCard { .. } => ErrorCode::NoCard,
                QuoteError::NoRate { .. } => ErrorCode::NoRate,
            };
            ApiError::new(code, e.to_string())
        })?;
        // The customer's price reads billed months only: the writer may
        // fold meanwhile.
        drop(engine);
        let customer = customer_quote_of(settled, config, &waba, at, &q)
            .map_err(|e| ApiError::new(ErrorCode::CannotBill, e.to_string()))?;
        Ok::<_, ApiError>((q, customer))
    })
    .await?;
    let (q, customer) = quoted?;
    let market = app.state.book.market_name(q.market);
    Ok(axum::Json(QuoteAnswer::new(&q, market, customer)).into_response())
}

/// Rules section 8: what the customer WABA `waba` is billed to at `at`
/// pays for the quoted message, after its WABAs' settled months.
fn customer_quote_of(
    settled: &Settled<'_>,
    config: &wabill_engine::EngineConfig,
    waba: &str,
    at: wabill_engine::Instant,
    q: &Quote,
) -> Result<Option<CustomerQuote>, wabill_engine::customers::CustomerError> {
    let date = at.local_date(&config.waba(waba).timezone);
    let Some(customer) = config.customers.customer_of(waba, date) else {
        return Ok(None);
    };
    let months = super::customers::customer_months(settled, config, &customer.id);
    let unit = QuotedUnit {
        waba,
        date,
        month: quote::month_of(config, waba, at),
        category: q.category,
        free: q.free,
        new_unit: q.opens_conversation || q.era.rules().per_message(),
        meta_price: q.meta_price,
    };
    customer_quote(config, &months, &unit)
}
