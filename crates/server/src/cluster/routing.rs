//! Reads in a cluster: each is answered by the worker that owns the
//! partition of the WABA it names. A receiver, or a worker that does not
//! own it, redirects (307) to the owner; `/p/<N>/…` names a partition
//! outright (its quarantine, its `/v1/…` reads).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use wabill_engine::customers::Customers;
use wabill_engine::partition::Partitions;

use crate::http::{ApiError, ErrorCode};

/// Where each partition's owner answers, as the cluster's tables last
/// said (refreshed every second).
pub type Owners = Arc<RwLock<BTreeMap<u32, String>>>;

/// The partition a request is a read of, and the path its partition's
/// own service answers it at; None for a request of no one partition.
pub fn partition_of(
    parts: &Partitions,
    customers: &Customers,
    method: &Method,
    uri: &Uri,
) -> Option<(u32, String)> {
    let path = uri.path();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    // Reads only: a write through a partition's service would store
    // events of other partitions' WABAs there.
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if let Some(rest) = path.strip_prefix("/p/") {
        let (n, inner) = rest.split_once('/').unwrap_or((rest, ""));
        let part = n.parse::<u32>().ok().filter(|p| *p < parts.count())?;
        return Some((part, format!("/{inner}{query}")));
    }
    // Path segments as axum's `Path` reads them; a query's values are
    // decoded once, by its parser.
    let segment = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let segments: Vec<&str> = path.split('/').collect();
    let waba = match segments.as_slice() {
        ["", "v1", "invoices" | "reconciliation", waba, _month] => segment(waba),
        ["", "v1", "customers", id, "invoices", _month] => {
            let id = segment(id);
            customers
                .wabas_of(&id)
                .first()
                .map_or(id.clone(), |w| w.to_string())
        }
        [
            "",
            "v1",
            "window" | "quote" | "conversations" | "quarantine",
        ] => form_urlencoded::parse(uri.query()?.as_bytes())
            .find(|(k, _)| k == "waba")?
            .1
            .into_owned(),
        _ => return None,
    };
    Some((parts.of(&waba), format!("{path}{query}")))
}

/// 307 to the owner of `part`, or 503 while none is known.
pub fn redirect(owners: &Owners, part: u32, uri: &Uri) -> Response {
    let owner = owners.read().ok().and_then(|o| o.get(&part).cloned());
    let Some(owner) = owner else {
        return no_owner(part);
    };
    let target = format!(
        "{}{}",
        owner.trim_end_matches('/'),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    match HeaderValue::from_str(&target) {
        Ok(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => no_owner(part),
    }
}

pub fn no_owner(part: u32) -> Response {
    let mut answer = ApiError::new(
        ErrorCode::NoOwner,
        format!("no worker owns partition {part} just now; try again"),
    )
    .into_response();
    answer
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_names_its_partition_by_its_waba_and_a_write_names_none() {
        let parts = Partitions::new(&wabill_engine::EngineConfig::new(), 8);
        let customers = Customers::default();
        let of = |method: Method, uri: &str| {
            let uri: Uri = uri.parse().unwrap_or_else(|e| panic!("{e}"));
            partition_of(&parts, &customers, &method, &uri)
        };
        let w = parts.of("1234");
        assert_eq!(
            of(Method::GET, "/v1/invoices/1234/2025-06"),
            Some((w, "/v1/invoices/1234/2025-06".into()))
        );
        assert_eq!(
            of(Method::GET, "/v1/window?phone=P&waba=1234&user=5"),
            Some((w, "/v1/window?phone=P&waba=1234&user=5".into()))
        );
        assert_eq!(of(Method::GET, "/v1/window?phone=P"), None);
        let encoded = parts.of("%41");
        assert_eq!(
            of(Method::GET, "/v1/window?waba=%2541").map(|(p, _)| p),
            Some(encoded),
            "a query value is decoded once"
        );
        assert_eq!(
            of(Method::GET, "/v1/invoices/%2541/2025-06").map(|(p, _)| p),
            Some(encoded),
            "a path segment too"
        );
        assert_eq!(of(Method::POST, "/v1/events"), None);
        assert_eq!(
            of(Method::GET, "/p/3/v1/quarantine?limit=2"),
            Some((3, "/v1/quarantine?limit=2".into()))
        );
        assert_eq!(
            of(Method::GET, "/p/8/v1/quarantine"),
            None,
            "only 8 partitions"
        );
        assert_eq!(
            of(Method::POST, "/p/3/v1/quarantine/reprocess"),
            None,
            "reads only"
        );
    }
}
