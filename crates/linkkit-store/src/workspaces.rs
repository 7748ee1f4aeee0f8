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
    let key = insert_key(&mut tx, &workspace_id, "default").await?;
    tx.commit().await?;
    Ok((workspace_id, key))
}

/// Adds another key to a workspace.
pub async fn create_key(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    name: &str,
) -> Result<ApiKey, StoreError> {
    let mut tx = pool.begin().await?;
    let key = insert_key(&mut tx, workspace_id, name).await?;
    tx.commit().await?;
    Ok(key)
}

async fn insert_key(
    tx: &mut sqlx::PgConnection,
    workspace_id: &WorkspaceId,
    name: &str,
) -> Result<ApiKey, StoreError> {
    let key = ApiKey::generate();
    sqlx::query("INSERT INTO api_keys (id, workspace_id, key_hash, prefix, name) VALUES ($1, $2, $3, $4, $5)")
        .bind(ApiKeyId::generate().as_str())
        .bind(workspace_id.as_str())
        .bind(key.hash())
        .bind(key.display_prefix())
        .bind(name)
        .execute(tx)
        .await?;
    Ok(key)
}

/// The workspace a presented key belongs to, unless the key is unknown or revoked.
pub async fn authenticate(
    pool: &PgPool,
    presented_key: &str,
) -> Result<Option<WorkspaceId>, StoreError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash_key(presented_key))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(id,)| WorkspaceId::parse(&id).ok()))
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
