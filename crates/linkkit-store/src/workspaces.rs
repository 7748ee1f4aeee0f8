//! Workspaces and their API keys.

use chrono::{DateTime, Utc};
use linkkit_core::api_key::{hash_key, ApiKey};
use linkkit_core::ids::ApiKeyId;
use linkkit_core::WorkspaceId;
use sqlx::PgPool;

use crate::StoreError;

/// Creates a workspace with its first API key. The key is returned once and never stored.
pub async fn create_workspace(
    pool: &PgPool,
    name: &str,
) -> Result<(WorkspaceId, ApiKey), StoreError> {
    let workspace_id = WorkspaceId::generate();
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO workspaces (id, name) VALUES ($1, $2)")
        .bind(workspace_id.as_str())
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let (_, key) = insert_key(&mut tx, &workspace_id, "default").await?;
    tx.commit().await?;
    Ok((workspace_id, key))
}

/// Adds another key to an existing workspace; `None` when there is no such workspace.
pub async fn create_key(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    name: &str,
) -> Result<Option<(ApiKeyId, ApiKey)>, StoreError> {
    if get_workspace(pool, workspace_id).await?.is_none() {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    let key = insert_key(&mut tx, workspace_id, name).await?;
    tx.commit().await?;
    Ok(Some(key))
}

async fn insert_key(
    tx: &mut sqlx::PgConnection,
    workspace_id: &WorkspaceId,
    name: &str,
) -> Result<(ApiKeyId, ApiKey), StoreError> {
    let key = ApiKey::generate();
    let id = ApiKeyId::generate();
    sqlx::query("INSERT INTO api_keys (id, workspace_id, key_hash, prefix, name) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.as_str())
        .bind(workspace_id.as_str())
        .bind(key.hash())
        .bind(key.display_prefix())
        .bind(name)
        .execute(tx)
        .await?;
    Ok((id, key))
}

/// Who a presented key is: its workspace and its own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub workspace_id: WorkspaceId,
    pub key_id: ApiKeyId,
}

/// The owner of a presented key, unless the key is unknown or revoked. Keys are looked up by
/// hash on every request, so a revoked key is refused at once.
pub async fn authenticate(
    pool: &PgPool,
    presented_key: &str,
) -> Result<Option<KeyOwner>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT workspace_id, id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash_key(presented_key))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(workspace, key)| {
        Some(KeyOwner {
            workspace_id: WorkspaceId::parse(&workspace).ok()?,
            key_id: ApiKeyId::parse(&key).ok()?,
        })
    }))
}

/// An API key as operators see it: never the key itself.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct KeyRow {
    pub id: String,
    pub workspace_id: String,
    pub prefix: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn list_keys(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
) -> Result<Vec<KeyRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, workspace_id, prefix, name, created_at, revoked_at FROM api_keys WHERE workspace_id = $1 ORDER BY id",
    )
    .bind(workspace_id.as_str())
    .fetch_all(pool)
    .await?)
}

/// Revokes a key; false when there is no such key (or it was already revoked).
pub async fn revoke_key(pool: &PgPool, key_id: &ApiKeyId) -> Result<bool, StoreError> {
    let result =
        sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(key_id.as_str())
            .execute(pool)
            .await?;
    Ok(result.rows_affected() > 0)
}

#[derive(Debug, sqlx::FromRow)]
pub struct WorkspaceRow {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub async fn get_workspace(
    pool: &PgPool,
    id: &WorkspaceId,
) -> Result<Option<WorkspaceRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, name, created_at FROM workspaces WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?,
    )
}
