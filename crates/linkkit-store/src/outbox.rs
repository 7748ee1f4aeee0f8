//! The transactional outbox: an event written in the same transaction as the change it
//! describes, so a change that committed is an event that will be published.
//!
//! Writers call [`enqueue`] inside their transaction; the relay calls [`claim_batch`] in its own
//! transaction, publishes, then [`remove`]s what the broker confirmed and commits. Rows are
//! locked with `SKIP LOCKED`, so several relays share the work without publishing a row twice
//! while it is being handled.

use linkkit_core::{Envelope, WorkspaceId};
use sqlx::PgConnection;

use crate::StoreError;

/// The Postgres notification channel that wakes the relay when a row is written.
pub const NOTIFY_CHANNEL: &str = "linkkit_outbox";

#[derive(Debug, sqlx::FromRow)]
pub struct OutboxRow {
    pub seq: i64,
    pub workspace_id: String,
    pub payload: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn enqueue(
    tx: &mut PgConnection,
    workspace_id: &WorkspaceId,
    event: &Envelope,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (workspace_id, event_type, payload) VALUES ($1, $2, $3)")
        .bind(workspace_id.as_str())
        .bind(event.event.as_str())
        .bind(serde_json::to_value(event).expect("an envelope serializes"))
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(tx)
        .await?;
    Ok(())
}

/// The oldest unpublished rows, locked for this transaction.
pub async fn claim_batch(tx: &mut PgConnection, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT seq, workspace_id, payload, created_at FROM outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(tx)
    .await?)
}

pub async fn remove(tx: &mut PgConnection, seqs: &[i64]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
        .bind(seqs)
        .execute(tx)
        .await?;
    Ok(())
}

/// Rows waiting to be published (for `/readyz` detail and tests).
pub async fn pending(pool: &sqlx::PgPool) -> Result<i64, StoreError> {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await?;
    Ok(count)
}
