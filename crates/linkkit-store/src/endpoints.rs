//! Webhook endpoints: what the API manages, what fan-out looks up, what the sender signs with.

use chrono::{DateTime, Utc};
use linkkit_core::{EndpointId, EventType, WorkspaceId};
use sqlx::PgPool;

use crate::{Page, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_success_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, workspace_id, url, events, description, enabled, disabled_reason, secret, \
                       previous_secret, previous_secret_expires_at, created_at, updated_at, last_success_at";

pub async fn insert(pool: &PgPool, endpoint: &EndpointRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO endpoints (id, workspace_id, url, events, description, enabled, secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&endpoint.id)
    .bind(&endpoint.workspace_id)
    .bind(&endpoint.url)
    .bind(&endpoint.events)
    .bind(&endpoint.description)
    .bind(endpoint.enabled)
    .bind(&endpoint.secret)
    .bind(endpoint.created_at)
    .bind(endpoint.updated_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn get(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    id: &EndpointId,
) -> Result<Option<EndpointRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM endpoints WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?)
}

pub async fn list(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Page<EndpointRow>, StoreError> {
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM endpoints WHERE workspace_id = $1 AND ($2::text IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(workspace_id.as_str())
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, limit, |row: &EndpointRow| &row.id))
}

/// Writes the editable fields back: url, events, description, enabled and its reason.
pub async fn update(pool: &PgPool, endpoint: &EndpointRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE endpoints SET url = $3, events = $4, description = $5, enabled = $6, disabled_reason = $7, \
         updated_at = $8 WHERE workspace_id = $1 AND id = $2",
    )
    .bind(&endpoint.workspace_id)
    .bind(&endpoint.id)
    .bind(&endpoint.url)
    .bind(&endpoint.events)
    .bind(&endpoint.description)
    .bind(endpoint.enabled)
    .bind(&endpoint.disabled_reason)
    .bind(endpoint.updated_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes an endpoint and its deliveries; false when there was none.
pub async fn delete(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    id: &EndpointId,
) -> Result<bool, StoreError> {
    // No foreign keys reach the delivery tables (migration 0004): their rows go here, in the
    // same statement.
    let (deleted,): (i64,) = sqlx::query_as(
        "WITH gone AS (DELETE FROM endpoints WHERE workspace_id = $1 AND id = $2 RETURNING id), \
         its_deliveries AS ( \
             DELETE FROM deliveries WHERE endpoint_id IN (SELECT id FROM gone) RETURNING id), \
         its_attempts AS ( \
             DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM its_deliveries)) \
         SELECT count(*) FROM gone",
    )
    .bind(workspace_id.as_str())
    .bind(id.as_str())
    .fetch_one(pool)
    .await?;
    Ok(deleted > 0)
}

/// The workspace's endpoints subscribed to one event type, split by whether they are enabled.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Subscribers {
    pub enabled: Vec<EndpointId>,
    /// They get nothing now; their deliveries are recorded `dead`, to replay once enabled.
    pub disabled: Vec<EndpointId>,
}

/// Workspace, endpoint id, enabled, subscribed event types.
type SubscriptionRow = (String, String, bool, Vec<String>);

/// For each (workspace, event type), its endpoints subscribed to that type, in one statement.
pub async fn subscribed_to(
    pool: &PgPool,
    wanted: &[(WorkspaceId, EventType)],
) -> Result<Vec<Subscribers>, StoreError> {
    let workspaces: Vec<&str> = distinct(wanted.iter().map(|(w, _)| w.as_str()));
    let types: Vec<&str> = distinct(wanted.iter().map(|(_, t)| t.as_str()));
    let rows: Vec<SubscriptionRow> = sqlx::query_as(
        "SELECT workspace_id, id, enabled, events FROM endpoints \
         WHERE workspace_id = ANY($1) AND events && $2::text[] ORDER BY id",
    )
    .bind(&workspaces)
    .bind(&types)
    .fetch_all(pool)
    .await?;
    Ok(wanted
        .iter()
        .map(|(workspace_id, event_type)| {
            let mut subscribers = Subscribers::default();
            let matching = rows.iter().filter(|(workspace, _, _, events)| {
                workspace == workspace_id.as_str()
                    && events.iter().any(|e| e == event_type.as_str())
            });
            for (_, id, enabled, _) in matching {
                let Ok(id) = EndpointId::parse(id) else {
                    continue;
                };
                match enabled {
                    true => subscribers.enabled.push(id),
                    false => subscribers.disabled.push(id),
                }
            }
            subscribers
        })
        .collect())
}

/// For each (workspace, endpoint id), the endpoint if it exists in that workspace, in one
/// statement.
pub async fn get_many(
    pool: &PgPool,
    wanted: &[(WorkspaceId, EndpointId)],
) -> Result<Vec<Option<EndpointRow>>, StoreError> {
    let ids: Vec<&str> = distinct(wanted.iter().map(|(_, e)| e.as_str()));
    let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM endpoints WHERE id = ANY($1)"
    ))
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    Ok(wanted
        .iter()
        .map(|(workspace_id, endpoint_id)| {
            rows.iter()
                .find(|row| {
                    row.id == endpoint_id.as_str() && row.workspace_id == workspace_id.as_str()
                })
                .cloned()
        })
        .collect())
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// Disables an endpoint with a reason shown to its owner.
pub async fn disable(pool: &PgPool, id: &EndpointId, reason: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1")
        .bind(id.as_str())
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

/// Makes `new_secret` the signing secret; the current one keeps signing until `overlap_until`.
pub async fn rotate_secret(
    pool: &PgPool,
    endpoint: &EndpointRow,
    new_secret: &str,
    overlap_until: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE endpoints SET previous_secret = secret, previous_secret_expires_at = $3, secret = $2, \
         updated_at = now() WHERE id = $1",
    )
    .bind(&endpoint.id)
    .bind(new_secret)
    .bind(overlap_until)
    .execute(pool)
    .await?;
    Ok(())
}
