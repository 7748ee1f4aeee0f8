//! Events that were fanned out, their deliveries and every attempt of each.

use chrono::{DateTime, Utc};
use linkkit_core::{DeliveryId, EndpointId, Envelope, WorkspaceId};
use sqlx::PgPool;

use crate::endpoints::Subscribers;
use crate::{Page, StoreError};

/// Where a delivery stands (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    /// Failed at least once and waiting for its next retry.
    Failed,
    /// Retries exhausted (or endpoint gone): in the dead-letter queue, replayable.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub generation: i32,
    pub workspace_id: String,
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

const COLUMNS: &str =
    "id, generation, workspace_id, event_id, event_type, endpoint_id, status, attempt_count, \
                       next_attempt_at, created_at, delivered_at";

/// Stores the event with one delivery per subscriber — `pending` for enabled endpoints, `dead`
/// for disabled ones (replayable once they are enabled) — and returns the delivery id of each
/// enabled endpoint. Running it again for the same event finds the deliveries made the first
/// time.
pub async fn create_for_event(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    event: &Envelope,
    subscribers: &Subscribers,
) -> Result<Vec<(DeliveryId, EndpointId)>, StoreError> {
    let endpoints: Vec<(&EndpointId, DeliveryStatus)> = subscribers
        .enabled
        .iter()
        .map(|id| (id, DeliveryStatus::Pending))
        .chain(
            subscribers
                .disabled
                .iter()
                .map(|id| (id, DeliveryStatus::Dead)),
        )
        .collect();
    let new_ids: Vec<String> = endpoints
        .iter()
        .map(|_| DeliveryId::generate().to_string())
        .collect();
    let endpoint_ids: Vec<&str> = endpoints.iter().map(|(id, _)| id.as_str()).collect();
    let statuses: Vec<&str> = endpoints
        .iter()
        .map(|(_, status)| status.as_str())
        .collect();
    // One statement (one round trip, one commit) stores the event and its deliveries. The no-op
    // update makes RETURNING report deliveries that already existed, with their old ids.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "WITH event AS ( \
             INSERT INTO events (id, workspace_id, event_type, payload) VALUES ($2, $1, $3, $7) \
             ON CONFLICT (id) DO NOTHING) \
         INSERT INTO deliveries (id, workspace_id, event_id, event_type, endpoint_id, status) \
         SELECT d.id, $1, $2, $3, d.endpoint_id, d.status \
         FROM UNNEST($4::text[], $5::text[], $6::text[]) AS d(id, endpoint_id, status) \
         ON CONFLICT (event_id, endpoint_id) DO UPDATE SET event_id = EXCLUDED.event_id \
         RETURNING id, endpoint_id",
    )
    .bind(workspace_id.as_str())
    .bind(event.id.as_str())
    .bind(event.event.as_str())
    .bind(&new_ids)
    .bind(&endpoint_ids)
    .bind(&statuses)
    .bind(serde_json::to_value(event).expect("an envelope serializes"))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(delivery, endpoint)| {
            let endpoint = EndpointId::parse(&endpoint).ok()?;
            subscribers
                .enabled
                .contains(&endpoint)
                .then_some((DeliveryId::parse(&delivery).ok()?, endpoint))
        })
        .collect())
}

/// What one attempt produced, and where the delivery stands after it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub duration_ms: u32,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub new_status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Appends the attempt and moves the delivery to its new status, in one transaction.
pub async fn record_attempt(
    pool: &PgPool,
    delivery_id: &DeliveryId,
    endpoint_id: &EndpointId,
    record: &AttemptRecord,
) -> Result<(), StoreError> {
    let succeeded = record.new_status == DeliveryStatus::Succeeded;
    // One statement, so one round trip and one commit: the attempt, the delivery's new status,
    // and (after a success) the endpoint's last success, refreshed at most every 30 s.
    sqlx::query(
        "WITH attempt AS ( \
             INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, duration_ms, error, response_body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)), \
         healthy AS ( \
             UPDATE endpoints SET last_success_at = $3 WHERE $11 AND id = $10 \
             AND (last_success_at IS NULL OR last_success_at < $3 - interval '30 seconds')) \
         UPDATE deliveries SET status = $8, attempt_count = attempt_count + 1, next_attempt_at = $9, \
             delivered_at = CASE WHEN $11 THEN $3 ELSE delivered_at END \
         WHERE id = $1",
    )
    .bind(delivery_id.as_str())
    .bind(record.attempt as i32)
    .bind(record.at)
    .bind(record.status_code.map(i32::from))
    .bind(record.duration_ms as i32)
    .bind(&record.error)
    .bind(&record.response_body)
    .bind(record.new_status.as_str())
    .bind(record.next_attempt_at)
    .bind(endpoint_id.as_str())
    .bind(succeeded)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets a delivery's status without an attempt (dead-lettered because its endpoint is gone or
/// disabled, or requeued by a resend).
pub async fn set_status(
    pool: &PgPool,
    delivery_id: &DeliveryId,
    status: DeliveryStatus,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE deliveries SET status = $2, next_attempt_at = NULL WHERE id = $1")
        .bind(delivery_id.as_str())
        .bind(status.as_str())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn list_for_endpoint(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    endpoint_id: &EndpointId,
    status: Option<DeliveryStatus>,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Page<DeliveryRow>, StoreError> {
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE workspace_id = $1 AND endpoint_id = $2 \
         AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
    ))
    .bind(workspace_id.as_str())
    .bind(endpoint_id.as_str())
    .bind(status.map(DeliveryStatus::as_str))
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, limit, |row: &DeliveryRow| &row.id))
}

pub async fn get(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    id: &DeliveryId,
) -> Result<Option<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?)
}

/// A delivery by id alone, for operator tools that act across workspaces.
pub async fn find(pool: &PgPool, id: &DeliveryId) -> Result<Option<DeliveryRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn attempts(pool: &PgPool, id: &DeliveryId) -> Result<Vec<AttemptRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT attempt, at, status_code, duration_ms, error, response_body FROM delivery_attempts \
         WHERE delivery_id = $1 ORDER BY id",
    )
    .bind(id.as_str())
    .fetch_all(pool)
    .await?)
}

/// The event a delivery carries.
pub async fn event_of(
    pool: &PgPool,
    delivery: &DeliveryRow,
) -> Result<Option<Envelope>, StoreError> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as("SELECT payload FROM events WHERE id = $1")
            .bind(&delivery.event_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(payload,)| serde_json::from_value(payload).ok()))
}

/// Starts a new generation of a delivery (resend, replay): back to `pending`, and the number
/// of the generation to send.
pub async fn start_generation(pool: &PgPool, delivery_id: &DeliveryId) -> Result<u32, StoreError> {
    let (generation,): (i32,) = sqlx::query_as(
        "UPDATE deliveries SET generation = generation + 1, status = 'pending', next_attempt_at = NULL \
         WHERE id = $1 RETURNING generation",
    )
    .bind(delivery_id.as_str())
    .fetch_one(pool)
    .await?;
    Ok(generation as u32)
}

/// Every dead delivery of an endpoint, oldest first.
pub async fn dead_for_endpoint(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    endpoint_id: &EndpointId,
) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE workspace_id = $1 AND endpoint_id = $2 AND status = 'dead' ORDER BY id"
    ))
    .bind(workspace_id.as_str())
    .bind(endpoint_id.as_str())
    .fetch_all(pool)
    .await?)
}
