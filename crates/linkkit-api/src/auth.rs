//! Who is calling → the workspace every query of the request is scoped to, after the key's
//! rate limit.
//!
//! Two ways in: `Authorization: Bearer <api key>` (integrations), or the dashboard's session
//! cookie. A cookie is sent by the browser on its own, so a cookie-authenticated request must
//! also carry the `X-Linkkit-Dashboard: 1` header, which another site cannot add without a CORS
//! preflight that this API never grants: that is the CSRF protection. Either way the request
//! counts against the rate limit of the API key behind it.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use linkkit_cache::Verdict;
use linkkit_core::WorkspaceId;
use linkkit_store::workspaces::KeyOwner;

use crate::session;
use crate::{ApiError, AppState};

/// The authenticated workspace of a request.
#[derive(Debug, Clone)]
pub struct Workspace(pub WorkspaceId);

impl FromRequestParts<AppState> for Workspace {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let owner = match parts.headers.get(AUTHORIZATION) {
            Some(header) => key_owner(header, state).await?,
            None if session::token_of(&parts.headers).is_some() => {
                session::from_cookie(&parts.headers, state).await?.owner
            }
            None => {
                return Err(ApiError::Unauthorized(
                    "missing `Authorization: Bearer <api key>` header",
                ))
            }
        };
        check_rate_limit(state, &owner).await?;
        Ok(Workspace(owner.workspace_id))
    }
}

/// The owner of the key in an `Authorization: Bearer` header.
async fn key_owner(header: &HeaderValue, state: &AppState) -> Result<KeyOwner, ApiError> {
    let key = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <api key>`",
        ))?;
    api_key_owner(state, key).await
}

/// The owner of a presented API key, or `401`.
pub(crate) async fn api_key_owner(state: &AppState, key: &str) -> Result<KeyOwner, ApiError> {
    linkkit_store::workspaces::authenticate(&state.pool, key)
        .await?
        .ok_or(ApiError::Unauthorized("the API key is not valid"))
}

/// Counts the request against the key's budget (a dashboard session spends its key's).
pub(crate) async fn check_rate_limit(state: &AppState, owner: &KeyOwner) -> Result<(), ApiError> {
    if let Some(limiter) = &state.rate_limiter {
        if let Verdict::Limited {
            retry_after_seconds,
        } = limiter.check(owner.key_id.as_str()).await
        {
            return Err(ApiError::RateLimited {
                retry_after_seconds,
            });
        }
    }
    Ok(())
}
