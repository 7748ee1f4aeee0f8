//! `/api/v1/session`: the dashboard's sign-in with an API key, who is signed in, sign-out.
//!
//! Signing in checks the key and sets a random session token in a cookie that is `HttpOnly`
//! (scripts cannot read it), `SameSite=Strict` (other sites' requests do not carry it) and
//! `Secure` unless the dashboard is reached on a loopback host over plain HTTP (local use). The
//! database keeps only the token's hash, with an expiry; the session stands for the key, so
//! revoking the key ends it. Every session route, sign-in included, wants the
//! `X-Linkkit-Dashboard: 1` header, like every cookie-authenticated API request (see `auth`).

use std::net::IpAddr;

use axum::extract::State;
use axum::http::header::{COOKIE, HOST, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use linkkit_core::event::rfc3339_seconds;
use linkkit_core::session_token::{hash_session_token, looks_like_session_token, SessionToken};
use linkkit_store::sessions::{self, Session};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{api_key_owner, check_rate_limit};
use crate::error::ErrorBody;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// The cookie that holds the session token.
pub const COOKIE_NAME: &str = "linkkit_session";
/// The header a cookie-authenticated request must carry, with the value `1`.
pub const DASHBOARD_HEADER: &str = "x-linkkit-dashboard";
/// How long a sign-in lasts.
pub const SESSION_LIFETIME_HOURS: i64 = 12;

pub fn routes() -> Router<AppState> {
    Router::new().route("/session", post(sign_in).get(current).delete(sign_out))
}

/// Sign in with an API key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    /// An API key of the workspace (`lk_…`).
    #[schema(
        pattern = r"[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    api_key: String,
}

/// The value the `X-Linkkit-Dashboard` header must have.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a vocabulary of the OpenAPI document")]
pub(crate) enum DashboardFlag {
    #[serde(rename = "1")]
    One,
}

// The key must never reach a log line.
impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIn { api_key: <redacted> }")
    }
}

/// What the dashboard shows about the signed-in workspace.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    workspace_id: String,
    workspace_name: String,
    key_prefix: String,
    #[serde(with = "rfc3339_seconds")]
    expires_at: DateTime<Utc>,
}

impl From<Session> for SessionView {
    fn from(session: Session) -> Self {
        Self {
            workspace_id: session.owner.workspace_id.to_string(),
            workspace_name: session.workspace_name,
            key_prefix: session.key_prefix,
            expires_at: session.expires_at,
        }
    }
}

#[utoipa::path(
    post,
    path = "/session",
    tag = "session",
    security(()),
    params(("x-linkkit-dashboard" = DashboardFlag, Header, description = "Must be `1` (the dashboard's CSRF guard)")),
    request_body = SignIn,
    responses(
        (status = 201, description = "Signed in; the session cookie is set", body = SessionView,
            headers(("set-cookie" = String, description = "`linkkit_session=…; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict` (and `Secure` unless on a loopback host over HTTP)"))),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "The API key is unknown or revoked", body = ErrorBody),
        (status = 403, description = "No `X-Linkkit-Dashboard: 1` header", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 422, description = "No key, or an unknown field", body = ErrorBody),
        (status = 429, description = "Over this key's rate limit", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; retry", body = ErrorBody),
    )
)]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    require_dashboard_header(&headers)?;
    let key = request.api_key.trim();
    if key.is_empty() {
        return Err(ApiError::invalid(
            "invalid_field",
            "api_key: enter an API key",
        ));
    }
    let owner = api_key_owner(&state, key).await?;
    check_rate_limit(&state, &owner).await?;
    // A new token on every sign-in (never one the browser brought), and the old one ends.
    if let Some(old) = token_of(&headers) {
        sessions::delete(&state.pool, &hash_session_token(old)).await?;
    }
    let token = SessionToken::generate();
    let expires_at = Utc::now().trunc_subsecs(0) + Duration::hours(SESSION_LIFETIME_HOURS);
    let session = sessions::create(&state.pool, &token.hash(), &owner.key_id, expires_at)
        .await?
        .ok_or(ApiError::Unauthorized("the API key is not valid"))?;
    tracing::info!(workspace_id = %session.owner.workspace_id, key_id = %session.owner.key_id, "dashboard session opened");
    let cookie = session_cookie(token.expose(), SESSION_LIFETIME_HOURS * 3600, &headers);
    let mut response = (StatusCode::CREATED, Json(SessionView::from(session))).into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    security(("session" = [])),
    params(("x-linkkit-dashboard" = DashboardFlag, Header, description = "Must be `1` (the dashboard's CSRF guard)")),
    responses((status = 200, description = "Who the cookie is signed in as", body = SessionView))
)]
pub(crate) async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionView>, ApiError> {
    let session = from_cookie(&headers, &state).await?;
    check_rate_limit(&state, &session.owner).await?;
    Ok(Json(SessionView::from(session)))
}

/// Ends the session of the cookie (if any is still live) and clears the cookie.
#[utoipa::path(
    delete,
    path = "/session",
    tag = "session",
    security(()),
    params(("x-linkkit-dashboard" = DashboardFlag, Header, description = "Must be `1` (the dashboard's CSRF guard)")),
    responses(
        (status = 204, description = "Signed out; the cookie is cleared",
            headers(("set-cookie" = String, description = "`linkkit_session=; …; Max-Age=0`"))),
        (status = 403, description = "No `X-Linkkit-Dashboard: 1` header", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable; retry", body = ErrorBody),
    )
)]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_dashboard_header(&headers)?;
    if let Some(token) = token_of(&headers) {
        sessions::delete(&state.pool, &hash_session_token(token)).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie("", 0, &headers));
    Ok(response)
}

/// The live session of a cookie-authenticated request: the CSRF header first, then the token.
pub(crate) async fn from_cookie(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Session, ApiError> {
    require_dashboard_header(headers)?;
    let token = token_of(headers)
        .filter(|token| looks_like_session_token(token))
        .ok_or(ApiError::Unauthorized(SESSION_ENDED))?;
    sessions::find(&state.pool, &hash_session_token(token))
        .await?
        .ok_or(ApiError::Unauthorized(SESSION_ENDED))
}

const SESSION_ENDED: &str = "the dashboard session has ended; sign in again";

fn require_dashboard_header(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(DASHBOARD_HEADER) {
        Some(value) if value.as_bytes() == b"1" => Ok(()),
        _ => Err(ApiError::Forbidden(
            "a request authenticated by the dashboard's cookie must carry the header `X-Linkkit-Dashboard: 1`",
        )),
    }
}

/// The session token of the request's cookies, if it has one.
pub(crate) fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

fn session_cookie(token: &str, max_age_seconds: i64, headers: &HeaderMap) -> HeaderValue {
    let secure = if needs_secure_cookie(headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_NAME}={token}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&cookie).expect("the cookie is ASCII without control characters")
}

/// A cookie is `Secure` unless the request plainly came over HTTP to a loopback host
/// (`localhost`, `127.0.0.1`, `[::1]`), where browsers would refuse it on plain HTTP.
fn needs_secure_cookie(headers: &HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    if forwarded_https {
        return true;
    }
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    !is_loopback_host(host)
}

fn is_loopback_host(host_and_port: &str) -> bool {
    let host = if let Some(rest) = host_and_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_and_port.split(':').next().unwrap_or("")
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; linkkit_session=abc ; b=2")]);
        assert_eq!(token_of(&map), Some("abc"));
        let map = headers(&[("cookie", "a=1"), ("cookie", "linkkit_session=xyz")]);
        assert_eq!(token_of(&map), Some("xyz"));
        assert_eq!(token_of(&headers(&[("cookie", "linkkit_session=")])), None);
        assert_eq!(token_of(&headers(&[("cookie", "other_session=1")])), None);
    }

    #[test]
    fn cookies_are_secure_except_over_plain_http_on_loopback() {
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "app.localhost",
        ] {
            let map = headers(&[("host", host)]);
            assert!(!needs_secure_cookie(&map), "{host}");
        }
        for host in ["lkkt.in", "10.0.0.5:8080", "localhost.example.com"] {
            let map = headers(&[("host", host)]);
            assert!(needs_secure_cookie(&map), "{host}");
        }
        let behind_tls = headers(&[("host", "localhost:8080"), ("x-forwarded-proto", "https")]);
        assert!(needs_secure_cookie(&behind_tls));
        assert!(needs_secure_cookie(&HeaderMap::new()));
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let cookie = session_cookie("t0k3n", 60, &headers(&[("host", "lkkt.in")]));
        assert_eq!(
            cookie.to_str().unwrap(),
            "linkkit_session=t0k3n; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
