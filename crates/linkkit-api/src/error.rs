//! How the API says no: every error is `{"error": {"code", "message"}}` with a fitting status.
//!
//! Handlers return `ApiError`. Bad input is a 4xx that names the problem; an unexpected failure
//! (database down, broker gone) is logged with its cause and answered with an opaque 500 — the
//! cause never reaches the client, so no internal detail or secret can leak through it.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linkkit_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but the request is not allowed in this form (a dashboard cookie without
    /// the dashboard's CSRF header).
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {} bytes", crate::MAX_BODY_BYTES)]
    PayloadTooLarge,
    /// A field that parsed but is not acceptable; `code` names the rule.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("too many requests for this API key; retry after {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `not_found`, `invalid_slug`, `rate_limited`…
    #[schema(example = "invalid_slug")]
    pub code: String,
    /// For people: names the field and the rule.
    #[schema(example = "slug: `a b` is not a valid slug")]
    pub message: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "request failed");
                "something went wrong on our side; the request can be retried".to_owned()
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "request failed on a dependency");
                "a dependency is unavailable; retry shortly".to_owned()
            }
            other => other.to_string(),
        };
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        });
        let mut response = (status, body).into_response();
        if let ApiError::RateLimited {
            retry_after_seconds,
        } = self
        {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::SlugTaken => ApiError::Conflict("the slug is already taken".into()),
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                ApiError::Unavailable(error.to_string())
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }
}
