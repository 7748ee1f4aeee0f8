//! `Authorization: Bearer <api key>` → the workspace every query of the request is scoped to,
//! after the key's rate limit.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use linkkit_cache::Verdict;
use linkkit_core::WorkspaceId;

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
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "missing `Authorization: Bearer <api key>` header",
            ))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <api key>`",
            ))?;
        let owner = linkkit_store::workspaces::authenticate(&state.pool, key)
            .await?
            .ok_or(ApiError::Unauthorized("the API key is not valid"))?;
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
        Ok(Workspace(owner.workspace_id))
    }
}
