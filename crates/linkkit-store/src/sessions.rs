//! Dashboard sessions: a browser's sign-in, standing for the API key it was opened with.
//!
//! Only the hash of a session token is stored. Every lookup joins the key and insists it is
//! not revoked, and that the session has not expired, so neither can outlive what it rests on.

use chrono::{DateTime, Utc};
use linkkit_core::ids::ApiKeyId;
use linkkit_core::WorkspaceId;
use sqlx::PgPool;

use crate::workspaces::KeyOwner;
use crate::StoreError;

/// A live session, with what the dashboard shows about whom it is signed in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub owner: KeyOwner,
    pub workspace_name: String,
    /// The clear start of the key (`lk_abcd`), to tell keys apart.
    pub key_prefix: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    workspace_id: String,
    key_id: String,
    workspace_name: String,
    key_prefix: String,
    expires_at: DateTime<Utc>,
}

impl SessionRow {
    fn into_session(self) -> Option<Session> {
        Some(Session {
            owner: KeyOwner {
                workspace_id: WorkspaceId::parse(&self.workspace_id).ok()?,
                key_id: ApiKeyId::parse(&self.key_id).ok()?,
            },
            workspace_name: self.workspace_name,
            key_prefix: self.key_prefix,
            expires_at: self.expires_at,
        })
    }
}

const SELECT_LIVE: &str = "\
    SELECT k.workspace_id, k.id AS key_id, w.name AS workspace_name, k.prefix AS key_prefix, s.expires_at \
    FROM dashboard_sessions s \
    JOIN api_keys k ON k.id = s.api_key_id AND k.revoked_at IS NULL \
    JOIN workspaces w ON w.id = k.workspace_id \
    WHERE s.token_hash = $1 AND s.expires_at > now()";

/// Opens a session for `key_id` under the token whose hash is `token_hash`, and sweeps away
/// sessions that have expired. `None` when the key was revoked in the meantime.
pub async fn create(
    pool: &PgPool,
    token_hash: &str,
    key_id: &ApiKeyId,
    expires_at: DateTime<Utc>,
) -> Result<Option<Session>, StoreError> {
    sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= now()")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO dashboard_sessions (token_hash, api_key_id, expires_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(key_id.as_str())
    .bind(expires_at)
    .execute(pool)
    .await?;
    find(pool, token_hash).await
}

/// The live session of a presented token's hash: not expired, and its key not revoked.
pub async fn find(pool: &PgPool, token_hash: &str) -> Result<Option<Session>, StoreError> {
    let row: Option<SessionRow> = sqlx::query_as(SELECT_LIVE)
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    Ok(row.and_then(SessionRow::into_session))
}

/// Ends a session (signing out); false when there was none.
pub async fn delete(pool: &PgPool, token_hash: &str) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() > 0)
}
