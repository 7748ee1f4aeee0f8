//! `Authorization: Bearer <api key>` → the workspace every query of the request is scoped to.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
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
        let workspace = linkkit_store::workspaces::authenticate(&state.pool, key)
            .await?
            .ok_or(ApiError::Unauthorized("the API key is not valid"))?;
        Ok(Workspace(workspace))
    }
}
