//! Who may call: Meta's signature, provider routes' static secrets, and
//! the platform API's bearer keys with their WABA scopes. Secrets are
//! compared digest to digest, so a comparison takes the same time wherever
//! the secrets differ.

use axum::http::{HeaderMap, header};
use ring::digest;

use super::error::{ApiError, ErrorCode};
use super::{App, rejected};
use crate::config::{ApiKey, Provider, RouteConfig};

pub(super) fn sha256(bytes: &[u8]) -> digest::Digest {
    digest::digest(&digest::SHA256, bytes)
}

pub(super) fn same_secret(given: &[u8], expected: &digest::Digest) -> bool {
    sha256(given).as_ref() == expected.as_ref()
}

/// The signature `X-Hub-Signature-256: sha256=<hex>` carries, if the
/// header is there and is hex.
pub(super) fn given_signature(headers: &HeaderMap) -> Option<Vec<u8>> {
    headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
}

/// `X-Hub-Signature-256: sha256=<hex>` over the raw body, verified in
/// constant time by ring.
pub(super) fn signature_ok(app: &App, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(meta) = &app.service.meta else {
        return false;
    };
    let Some(given) = given_signature(headers) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, meta.app_secret.0.as_bytes());
    ring::hmac::verify(&key, body, &given).is_ok()
}

/// The provider route named `name`; its static secret header must match.
pub(super) fn route_of<'a>(
    app: &'a App,
    name: &str,
    provider: Provider,
    headers: &HeaderMap,
) -> Result<&'a RouteConfig, ApiError> {
    let route = app
        .service
        .routes
        .get(name)
        .filter(|r| r.provider == provider)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownRoute,
                format!("no {} route named {name:?}", provider.as_str()),
            )
        })?;
    let given = headers.get(route.header.as_str()).map(|v| v.as_bytes());
    let expected = app.route_secrets.get(name);
    if !given
        .zip(expected)
        .is_some_and(|(g, expected)| same_secret(g, expected))
    {
        rejected(provider.as_str(), 1);
        return Err(ApiError::new(
            ErrorCode::BadSecret,
            format!("header {} is missing or does not match", route.header),
        ));
    }
    Ok(route)
}

/// The platform API key of `Authorization: Bearer <token>`.
pub(super) fn api_key<'a>(app: &'a App, headers: &HeaderMap) -> Result<&'a ApiKey, ApiError> {
    key_of(&app.service, headers)
}

/// [`api_key`] among `service`'s keys (a cluster's redirects: only a
/// caller with a key learns where a partition's owner answers).
pub fn key_of<'a>(
    service: &'a crate::ServiceConfig,
    headers: &HeaderMap,
) -> Result<&'a ApiKey, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "missing `Authorization: Bearer <token>`",
            )
        })?;
    let hash = sha256(token.as_bytes());
    service
        .api_keys
        .iter()
        .find(|k| k.sha256 == hash.as_ref())
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "unknown API key"))
}

/// The WABAs a key may see quarantined items of (on some date).
pub(super) fn key_scope(key: &ApiKey) -> crate::state::Scope {
    match &key.wabas {
        None => crate::state::Scope::All,
        Some(list) => {
            let mut wabas = list.clone();
            wabas.extend(key.spans.iter().map(|(w, _)| w.clone()));
            wabas.sort_unstable();
            wabas.dedup();
            crate::state::Scope::Wabas(wabas)
        }
    }
}

fn forbidden(what: String) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!("this API key may not access {what}"),
    )
}

/// The key may read and write `waba` at `at` (its local date).
pub(super) fn scope_at(
    key: &ApiKey,
    config: &wabill_engine::EngineConfig,
    waba: &str,
    at: wabill_engine::Instant,
) -> Result<(), ApiError> {
    if key.all_dates(waba) {
        return Ok(());
    }
    let date = at.local_date(&config.waba(waba).timezone);
    if key.allows_on(waba, date) {
        Ok(())
    } else {
        Err(forbidden(format!("WABA {waba:?} on {date}")))
    }
}

/// The key may write `event`: its WABA at its time, and the WABA billed
/// for it when its phone has periods (rules P6).
pub(super) fn scope_event(
    key: &ApiKey,
    config: &wabill_engine::EngineConfig,
    e: &wabill_engine::Event<'_>,
) -> Result<(), ApiError> {
    let may_write = |waba: &str| {
        if key.all_dates(waba) {
            return Ok(());
        }
        let date = e.ts.local_date(&config.waba(waba).timezone);
        if key.allows_write_on(waba, date) {
            Ok(())
        } else {
            Err(forbidden(format!("writing WABA {waba:?} on {date}")))
        }
    };
    scope(key, &e.waba)?;
    // Rules P6: the WABAs of a moved number share its events (ids, links,
    // windows): a key writes them only if it reaches every one.
    if let Some(history) = config
        .phones
        .get(&*e.phone)
        .filter(|h| h.names_waba(&e.waba))
    {
        for c in &history.carriers {
            scope(key, &c.waba)?;
        }
    }
    may_write(&e.waba)?;
    match config.carrier_at(&e.waba, &e.phone, e.ts) {
        Some(c) if c.waba != *e.waba => may_write(&c.waba),
        _ => Ok(()),
    }
}

/// The key may read the whole of `waba`'s `month`.
pub(super) fn scope_month(
    key: &ApiKey,
    waba: &str,
    month: wabill_engine::time::Month,
) -> Result<(), ApiError> {
    if key.allows_month(waba, month) {
        Ok(())
    } else {
        Err(forbidden(format!("WABA {waba:?} in {month}")))
    }
}

/// The key may read and write `waba`.
pub(super) fn scope(key: &ApiKey, waba: &str) -> Result<(), ApiError> {
    if key.allows(waba) {
        Ok(())
    } else {
        Err(forbidden(format!("WABA {waba:?}")))
    }
}
