//! The service's error answers: `{"error": {"code", "message"}}` with a
//! stable code. Every code, its HTTP status and what it means are listed
//! once, in [`ErrorCode`]; a handler can only answer a code listed there.
//! docs/errors.md and the OpenAPI document's `Error` schema list the same
//! table (tests compare them).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Declares [`ErrorCode`] and its table from one list, so that a code,
/// its status and its meaning cannot be given apart.
macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:ident, $meaning:literal),)*) => {
        /// Every error code the service answers.
        #[derive(Copy, Clone, Debug, PartialEq, Eq)]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable `code` of the answer's body.
            pub fn code(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            /// What it means, in one line (docs/errors.md).
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }
        }
    };
}

error_codes! {
    BadBody => ("bad_body", BAD_REQUEST,
        "The body could not be read, is empty, not UTF-8 or JSON, not the provider's webhook shape, or has no readable envelope (a bad item is quarantined instead, events.md section 5); nothing stored."),
    BadQuery => ("bad_query", BAD_REQUEST,
        "A query or path parameter is missing, repeated or malformed."),
    Unauthorized => ("unauthorized", UNAUTHORIZED,
        "No `Authorization: Bearer` key, or an unknown one."),
    BadSignature => ("bad_signature", UNAUTHORIZED,
        "Meta's `X-Hub-Signature-256` is missing or does not match the body."),
    BadSecret => ("bad_secret", UNAUTHORIZED,
        "A provider route's secret header is missing or does not match."),
    Forbidden => ("forbidden", FORBIDDEN,
        "The API key may not access that WABA (a request with one event of such a WABA is refused whole)."),
    VerifyTokenMismatch => ("verify_token_mismatch", FORBIDDEN,
        "Meta's verification handshake: `hub.mode` or `hub.verify_token` does not match."),
    NotFound => ("not_found", NOT_FOUND,
        "No endpoint at that path, or no invoice for that WABA and month (nothing billed yet)."),
    NotConfigured => ("not_configured", NOT_FOUND,
        "Meta's webhook is called but no `[meta]` table is configured."),
    UnknownRoute => ("unknown_route", NOT_FOUND,
        "No provider route of that name (and provider) is configured."),
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED,
        "The path is served, but not with that method."),
    BodyTooLarge => ("body_too_large", PAYLOAD_TOO_LARGE,
        "The body is over its path's limit (`server.api_body_limit_bytes` for `POST /v1/events`, `server.body_limit_bytes` for any other); nothing stored."),
    BodyTimeout => ("body_timeout", REQUEST_TIMEOUT,
        "The body did not arrive within `server.body_timeout_secs` of the request's head; nothing stored, and the connection is closed."),
    TooManyEvents => ("too_many_events", PAYLOAD_TOO_LARGE,
        "More than 10 000 events in one `POST /v1/events`; nothing stored."),
    NoEra => ("no_era", UNPROCESSABLE_ENTITY,
        "No pricing era applies at the quoted instant."),
    NoCard => ("no_card", UNPROCESSABLE_ENTITY,
        "No rate card of the conversation's era is in force at the quoted instant."),
    NoRate => ("no_rate", UNPROCESSABLE_ENTITY,
        "The rate card in force has no rate for the market and category."),
    CannotBill => ("cannot_bill", UNPROCESSABLE_ENTITY,
        "The month cannot be billed (a rate is missing, ...); the message lists why."),
    Clock => ("clock", INTERNAL_SERVER_ERROR,
        "The server's clock is outside the range of instants the engine knows."),
    Internal => ("internal", INTERNAL_SERVER_ERROR,
        "Billing failed inside the service."),
    Unavailable => ("unavailable", SERVICE_UNAVAILABLE,
        "The service is shutting down; nothing stored."),
    StoreFailed => ("store_failed", SERVICE_UNAVAILABLE,
        "The event log (in a cluster: the stream) could not take the write; retry: what was taken counts as duplicates then. The answer names no cause (server paths stay private); the service logs it at error level."),
    NoOwner => ("no_owner", SERVICE_UNAVAILABLE,
        "Cluster: no worker owns the partition of what was read just now (one is taking it over); try again after `Retry-After`."),
    StoreUnwritable => ("store_unwritable", SERVICE_UNAVAILABLE,
        "`/healthz`, `/readyz`: the event log did not take a probe write just now, or its disk has less than `server.min_free_bytes` free."),
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// The answer's JSON body.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.code(),
                message: &self.message,
            },
        }
    }
}

/// `{"error": {"code", "message"}}`, keys in byte order.
#[derive(Serialize)]
pub struct ErrorBody<'e> {
    error: ErrorDetail<'e>,
}

#[derive(Serialize)]
struct ErrorDetail<'e> {
    code: &'static str,
    message: &'e str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code.status(), axum::Json(self.body())).into_response()
    }
}

/// 422 `cannot_bill`, naming every reason.
pub fn cannot_bill<E: std::fmt::Display>(errors: &[E]) -> ApiError {
    let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
    ApiError::new(ErrorCode::CannotBill, reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_the_body_is_as_before() {
        let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        let e = ApiError::new(ErrorCode::BadQuery, "x \"y\"");
        let old = serde_json::json!({"error": {"code": "bad_query", "message": "x \"y\""}});
        assert_eq!(
            serde_json::to_string(&e.body()).ok(),
            serde_json::to_string(&old).ok()
        );
    }

    /// docs/errors.md's table is this one, row for row.
    #[test]
    fn docs_errors_md_lists_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let rows: Vec<String> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(str::to_owned)
            .collect();
        let expected: Vec<String> = ErrorCode::ALL.iter().map(|c| table_row(*c)).collect();
        assert_eq!(
            rows, expected,
            "docs/errors.md's rows, as the table has them"
        );
    }

    fn table_row(c: ErrorCode) -> String {
        format!(
            "| `{}` | {} | {} |",
            c.code(),
            c.status().as_u16(),
            c.meaning()
        )
    }
}
