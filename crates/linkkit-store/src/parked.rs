//! Deliveries parked in Postgres: jobs whose endpoint's circuit is open, or whose endpoint is
//! stuck, wait here until they are due, then a sender's sweep publishes them again.
//!
//! A parked delivery keeps its status (`pending` or `failed`) and gains `parked_until` (when
//! its job is published again) and `parked_attempt` (which attempt that job asks for). A row
//! enters this state in one of two ways: the fan-out stores it parked when a sender has said
//! the endpoint is parked (see `create_for_events`), or a sender parks a job it turned away
//! ([`park`]). It leaves it through [`take_due`]: the rows that are due are locked
//! (`FOR UPDATE SKIP LOCKED`, so sweeps in many processes share them), their jobs published,
//! and only then, in the same transaction, are they released or parked again. A sweep that
//! dies before it commits releases nothing: its rows are due again at once, and the sender
//! checks a job from a sweep against the delivery's status before it sends it. Every park is
//! a wait that Postgres adds to its own clock, the one that says what is due, so a process
//! whose clock lags cannot make rows due again at once.

use std::time::Duration;

use linkkit_core::{DeliveryId, EndpointId, Envelope, WorkspaceId};
use sqlx::{PgPool, Postgres, Transaction};

use crate::StoreError;

/// A job to park: the delivery it belongs to, in its generation, for how long, and the
/// attempt it asks for.
#[derive(Debug, Clone)]
pub struct ParkRequest {
    pub delivery_id: DeliveryId,
    pub generation: u32,
    pub attempt: u32,
    pub wait: Duration,
}

/// A wait as the milliseconds the park statements add to Postgres's `now()`.
pub(crate) fn wait_ms(wait: Duration) -> i64 {
    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
}

/// Parks each job until its time, unless it is stale: its delivery gone, in another
/// generation (a resend replaced it), sent or dead. One answer per request, in order:
/// whether it was parked. A delivery already parked is parked again with this request's time,
/// and the later of the two attempts (a stale copy of an earlier attempt never sets it back).
pub async fn park(pool: &PgPool, requests: &[ParkRequest]) -> Result<Vec<bool>, StoreError> {
    let ids: Vec<&str> = requests.iter().map(|r| r.delivery_id.as_str()).collect();
    let generations: Vec<i64> = requests.iter().map(|r| i64::from(r.generation)).collect();
    let attempts: Vec<i64> = requests.iter().map(|r| i64::from(r.attempt)).collect();
    let waits: Vec<i64> = requests.iter().map(|r| wait_ms(r.wait)).collect();
    let parked: Vec<(String,)> = sqlx::query_as(
        "UPDATE deliveries d SET parked_until = i.until, \
             parked_attempt = GREATEST(i.attempt, COALESCE(d.parked_attempt, 0)), \
             next_attempt_at = i.until \
         FROM (SELECT id, generation, attempt, now() + wait_ms * interval '1 millisecond' AS until \
               FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) \
                   AS w(id, generation, attempt, wait_ms)) AS i \
         WHERE d.id = i.id AND d.generation = i.generation \
         AND d.status IN ('pending', 'failed') \
         RETURNING d.id",
    )
    .bind(&ids)
    .bind(&generations)
    .bind(&attempts)
    .bind(&waits)
    .fetch_all(pool)
    .await?;
    let parked: std::collections::HashSet<String> = parked.into_iter().map(|(id,)| id).collect();
    Ok(requests
        .iter()
        .map(|r| parked.contains(r.delivery_id.as_str()))
        .collect())
}

/// A parked delivery that is due, as [`take_due`] found it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: DeliveryId,
    pub workspace_id: WorkspaceId,
    pub endpoint_id: EndpointId,
    pub generation: u32,
    pub attempt: u32,
    /// `None` when the delivery is no longer to send (sent or dead since it was parked): it
    /// is released with no job.
    pub event: Option<Envelope>,
}

/// The transaction that holds the due rows [`take_due`] locked, until [`Unparking::finish`]
/// says what became of each. Dropped unfinished, it releases nothing.
#[derive(Debug)]
pub struct Unparking {
    transaction: Transaction<'static, Postgres>,
}

/// What a sweep did with a due delivery.
#[derive(Debug, Clone)]
pub enum Unparked {
    /// Its job was published, or it had none to publish: it is parked no longer.
    Released(DeliveryId),
    /// Its endpoint is still parked: due again this long from now (Postgres's now), with no
    /// job published.
    ParkedAgain(DeliveryId, Duration),
}

/// Locks up to `limit` parked deliveries that are due, oldest first, skipping those another
/// sweep holds. Publish their jobs, then [`Unparking::finish`], even when none is due: a row
/// no job can be made of is settled here (committed by `finish`), so it never stays at the
/// head of the queue: one whose event cannot be read turns `dead` (visible, and logged), one
/// whose ids cannot be parsed is released.
pub async fn take_due(
    pool: &PgPool,
    limit: i64,
) -> Result<(Unparking, Vec<DueDelivery>), StoreError> {
    let mut transaction = pool.begin().await?;
    type Row = (
        String,
        String,
        String,
        i32,
        Option<i32>,
        bool,
        Option<serde_json::Value>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT d.id, d.workspace_id, d.endpoint_id, d.generation, d.parked_attempt, \
             d.status IN ('pending', 'failed'), e.payload \
         FROM deliveries d LEFT JOIN events e ON e.id = d.event_id \
         WHERE d.parked_until <= now() \
         ORDER BY d.parked_until LIMIT $1 \
         FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *transaction)
    .await?;
    let mut due = Vec::with_capacity(rows.len());
    let (mut settled, mut unreadable) = (Vec::new(), Vec::new());
    for (id, workspace, endpoint, generation, attempt, to_send, payload) in rows {
        let event = match (to_send, payload.map(serde_json::from_value::<Envelope>)) {
            (false, _) => None,
            (true, Some(Ok(event))) => Some(event),
            (true, read) => {
                let error = read.and_then(Result::err).map(|e| e.to_string());
                tracing::warn!(delivery_id = %id, error = error.as_deref().unwrap_or("no event row"), "a parked delivery's event cannot be read; marking it dead");
                unreadable.push(id.clone());
                settled.push(id);
                continue;
            }
        };
        match due_delivery(&id, &workspace, &endpoint, generation, attempt, event) {
            Some(delivery) => due.push(delivery),
            None => {
                tracing::warn!(delivery_id = %id, "a parked delivery's ids cannot be read; releasing it");
                settled.push(id);
            }
        }
    }
    if !settled.is_empty() {
        sqlx::query(
            "UPDATE deliveries SET parked_until = NULL, parked_attempt = NULL, \
                 status = CASE WHEN id = ANY($2) THEN 'dead' ELSE status END \
             WHERE id = ANY($1)",
        )
        .bind(&settled)
        .bind(&unreadable)
        .execute(&mut *transaction)
        .await?;
    }
    Ok((Unparking { transaction }, due))
}

/// A due row as a [`DueDelivery`], or `None` if one of its ids cannot be parsed.
fn due_delivery(
    id: &str,
    workspace: &str,
    endpoint: &str,
    generation: i32,
    attempt: Option<i32>,
    event: Option<Envelope>,
) -> Option<DueDelivery> {
    Some(DueDelivery {
        id: DeliveryId::parse(id).ok()?,
        workspace_id: WorkspaceId::parse(workspace).ok()?,
        endpoint_id: EndpointId::parse(endpoint).ok()?,
        generation: u32::try_from(generation).ok()?,
        attempt: attempt
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(1)
            .max(1),
        event,
    })
}

impl Unparking {
    /// Releases or parks again each delivery the sweep took, and commits.
    pub async fn finish(mut self, outcomes: &[Unparked]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            self.transaction.commit().await?;
            return Ok(());
        }
        let mut ids = Vec::with_capacity(outcomes.len());
        let mut waits_ms: Vec<Option<i64>> = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            match outcome {
                Unparked::Released(id) => {
                    ids.push(id.as_str());
                    waits_ms.push(None);
                }
                Unparked::ParkedAgain(id, wait) => {
                    ids.push(id.as_str());
                    waits_ms.push(Some(wait_ms(*wait)));
                }
            }
        }
        sqlx::query(
            "UPDATE deliveries d SET parked_until = i.until, \
                 parked_attempt = CASE WHEN i.until IS NULL THEN NULL ELSE d.parked_attempt END, \
                 next_attempt_at = COALESCE(i.until, d.next_attempt_at) \
             FROM (SELECT id, now() + wait_ms * interval '1 millisecond' AS until \
                   FROM UNNEST($1::text[], $2::bigint[]) AS w(id, wait_ms)) AS i \
             WHERE d.id = i.id",
        )
        .bind(&ids)
        .bind(&waits_ms)
        .execute(&mut *self.transaction)
        .await?;
        self.transaction.commit().await?;
        Ok(())
    }
}

/// How many deliveries are parked, for the `linkkit_parked_deliveries` gauge.
pub async fn count(pool: &PgPool) -> Result<i64, StoreError> {
    let (parked,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM deliveries WHERE parked_until IS NOT NULL")
            .fetch_one(pool)
            .await?;
    Ok(parked)
}
