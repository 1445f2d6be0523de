//! `GET /v1/customers/{id}/invoices/{month}`: a customer's invoice (cli.md
//! "Customer invoices"), built by the engine from the settled WABA months
//! of the customer's WABAs.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use wabill_engine::EngineConfig;
use wabill_engine::billing::WabaMonth;
use wabill_engine::customers::invoices_of;

use super::api::settled_json;
use super::auth::api_key;
use super::error::{ApiError, ErrorCode, cannot_bill};
use super::query::{bad_path, parse_month};
use super::{Answer, Shared};
use crate::state::Settled;

pub(super) async fn get_customer_invoice(
    AxState(app): AxState<Shared>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let key = api_key(&app, &headers)?;
    let Path((id, month)) = path.map_err(bad_path)?;
    if !key.allows_customer(&id) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("this API key may not access customer {id:?}"),
        ));
    }
    let month = parse_month(&month)?;
    let state = std::sync::Arc::clone(&app.state);
    settled_json(&app, move |settled| {
        let config = &state.config;
        let customer = config.customers.customer(&id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no customer {id:?} is configured"),
            )
        })?;
        let not_found = || {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no invoice for customer {id:?} in {month}: nothing billed or due (yet)"),
            )
        };
        // Every WABA's latest month bounds the invoices, as on the command
        // line (in a cluster, every partition's).
        let cluster = state.cluster_horizon.lock().ok().and_then(|h| *h);
        let last = settled
            .billed
            .months()
            .map(|m| m.month)
            .chain(cluster)
            .max()
            .ok_or_else(not_found)?;
        let months = customer_months(settled, config, &id);
        let invoices = invoices_of(config, customer, &months, last);
        let (_, _, invoice) = invoices
            .into_iter()
            .find(|(_, m, _)| *m == month)
            .ok_or_else(not_found)?;
        match invoice {
            Ok(invoice) => Ok(wabill_report::CustomerInvoiceJson::from(&invoice)),
            Err(errors) => Err(cannot_bill(&errors)),
        }
    })
    .await
}

/// The settled months of every WABA customer `id` ever had.
pub(super) fn customer_months<'s>(
    settled: &'s Settled<'_>,
    config: &EngineConfig,
    id: &str,
) -> Vec<&'s WabaMonth> {
    let wabas = config.customers.wabas_of(id);
    settled
        .billed
        .months()
        .filter(|m| wabas.contains(&m.waba.as_str()))
        .map(|m| &**m)
        .collect()
}
