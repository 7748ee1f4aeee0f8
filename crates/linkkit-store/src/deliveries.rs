//! Events that were fanned out, their deliveries and every attempt of each.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

use linkkit_core::{DeliveryId, EndpointId, Envelope, WorkspaceId};
use sqlx::PgPool;

use crate::endpoints::Subscribers;
use crate::links::Visit;
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

/// An event to store, with the endpoints it goes to and, for a click or a scan, its visit.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub workspace_id: WorkspaceId,
    pub event: Envelope,
    pub subscribers: Subscribers,
    /// Counted on its link in the same statement, the first time the event is stored only.
    pub visit: Option<Visit>,
    /// Enabled subscribers whose jobs a sender is parking, with for how long: their
    /// deliveries are stored parked (see `crate::parked`) and get no job now.
    pub parked_for: HashMap<EndpointId, Duration>,
}

/// What storing a [`NewEvent`] made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredEvent {
    /// The deliveries whose job is to be published: every enabled subscriber's when the event
    /// is stored now; when it was stored before, only those still `pending` (the worker that
    /// stored them may have died before publishing their jobs). A delivery that succeeded or
    /// failed (its retry waits in a queue) had its job published already, one that is dead
    /// waits for a replay through the API, and a copy of the event must not send either again,
    /// however long after it comes.
    pub deliveries: Vec<PendingDelivery>,
    /// False when the event had been stored before: its visit was counted then.
    pub first_time: bool,
    /// Deliveries this statement stored parked (see [`NewEvent::parked_until`]).
    pub parked: usize,
}

/// A delivery waiting for its job, in its current generation. A parked delivery waits for
/// none: a sweep publishes its job when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    pub id: DeliveryId,
    pub endpoint_id: EndpointId,
    pub generation: u32,
}

/// Stores the event with one delivery per subscriber — `pending` for enabled endpoints, `dead`
/// for disabled ones (replayable once they are enabled) — and returns each enabled endpoint's
/// delivery whose job is to be published (see [`StoredEvent::deliveries`]). Running it again
/// for the same event finds the deliveries made the first time.
pub async fn create_for_event(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    event: &Envelope,
    subscribers: &Subscribers,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let one = [NewEvent {
        workspace_id: workspace_id.clone(),
        event: event.clone(),
        subscribers: subscribers.clone(),
        visit: None,
        parked_for: HashMap::new(),
    }];
    Ok(create_for_events(pool, &one)
        .await?
        .pop()
        .unwrap_or_default()
        .deliveries)
}

/// [`create_for_event`] for many events in one statement (one round trip, one commit), each
/// visit counted on its link (of the same workspace) if its event is stored for the first time,
/// so a visit counts once however often its event comes; one answer per event, in order. An
/// event needs one subscriber at least, enabled or not, to be stored.
pub async fn create_for_events(
    pool: &PgPool,
    new_events: &[NewEvent],
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = EventColumns::default();
    let mut rows = DeliveryColumns::default();
    let mut visits = VisitColumns::default();
    for new in new_events {
        let (workspace_id, event, subscribers) = (&new.workspace_id, &new.event, &new.subscribers);
        events.push(workspace_id, event);
        if let Some(visit) = &new.visit {
            visits.push(event, visit);
        }
        for (endpoint, status) in subscribers
            .enabled
            .iter()
            .map(|id| (id, DeliveryStatus::Pending))
            .chain(
                subscribers
                    .disabled
                    .iter()
                    .map(|id| (id, DeliveryStatus::Dead)),
            )
        {
            let parked_for = match status {
                DeliveryStatus::Pending => new.parked_for.get(endpoint).copied(),
                _ => None,
            };
            rows.push(workspace_id, event, endpoint, status, parked_for);
        }
    }
    // The update makes RETURNING report deliveries that already existed, with their old ids,
    // status and generation. It changes one thing: a delivery still `pending` whose endpoint
    // has been disabled since turns `dead`, as it would have been had the event come now, so a
    // delivery whose job was never published (its worker died) is replayable, not stuck.
    // `stored_events` holds only the events this statement inserted (an insert racing
    // another's waits for it, then does nothing), so `first_time` is whether it stored the
    // event; its visit counts then, unless `counted_visits` holds it (a copy counted while no
    // endpoint subscribed), on its link (see `links::count_on_links`).
    // A delivery stored parked asks for its first attempt when it is due, and says when that
    // is as its `next_attempt_at`.
    let created: Vec<(String, String, String, bool, String, i32, bool)> = sqlx::query_as(concat!(
        "WITH stored_events AS ( \
             INSERT INTO events (id, workspace_id, event_type, payload) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[]) \
             ON CONFLICT (id) DO NOTHING \
             RETURNING id), \
         counting AS ( \
             SELECT v.* FROM UNNEST($11::text[], $12::text[], $13::text[], $14::text[]) \
                  AS v(event_id, workspace_id, link_id, kind) \
             WHERE v.event_id IN (SELECT id FROM stored_events) \
             AND NOT EXISTS (SELECT 1 FROM counted_visits c WHERE c.event_id = v.event_id)), \
         ",
        crate::links::count_on_links!(),
        " \
         INSERT INTO deliveries (id, workspace_id, event_id, event_type, endpoint_id, status, \
             parked_until, parked_attempt, next_attempt_at) \
         SELECT r.id, r.workspace_id, r.event_id, r.event_type, r.endpoint_id, r.status, \
             p.until, CASE WHEN p.until IS NULL THEN NULL ELSE 1 END, p.until \
         FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
             $15::bigint[]) \
             AS r(id, workspace_id, event_id, event_type, endpoint_id, status, wait_ms), \
         LATERAL (SELECT now() + r.wait_ms * interval '1 millisecond' AS until) p \
         ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = CASE \
             WHEN deliveries.status = 'pending' AND EXCLUDED.status = 'dead' THEN 'dead' \
             ELSE deliveries.status END \
         RETURNING id, event_id, endpoint_id, event_id IN (SELECT id FROM stored_events), \
                   status, generation, parked_until IS NOT NULL"
    ))
    .bind(&events.ids)
    .bind(&events.workspace_ids)
    .bind(&events.types)
    .bind(&events.payloads)
    .bind(&rows.ids)
    .bind(&rows.workspace_ids)
    .bind(&rows.event_ids)
    .bind(&rows.event_types)
    .bind(&rows.endpoint_ids)
    .bind(&rows.statuses)
    .bind(&visits.event_ids)
    .bind(&visits.workspace_ids)
    .bind(&visits.link_ids)
    .bind(&visits.kinds)
    .bind(&rows.parked_ms)
    .fetch_all(pool)
    .await?;
    /// Delivery id, endpoint id, status, generation and whether it is parked, of one event's
    /// rows, and whether the event was stored now.
    type EventRows<'a> = (Vec<(&'a str, &'a str, &'a str, i32, bool)>, bool);
    let mut by_event: HashMap<&str, EventRows> = HashMap::new();
    for (delivery, event, endpoint, first_time, status, generation, parked) in &created {
        let (rows, stored_now) = by_event.entry(event.as_str()).or_default();
        rows.push((delivery, endpoint, status, *generation, *parked));
        *stored_now |= *first_time;
    }
    let pending = DeliveryStatus::Pending.as_str();
    Ok(new_events
        .iter()
        .map(|new| {
            let Some((rows, first_time)) = by_event.get(new.event.id.as_str()) else {
                return StoredEvent::default();
            };
            let waiting = rows.iter().filter(|(_, _, status, ..)| *status == pending);
            let parked = if *first_time {
                waiting.clone().filter(|(.., parked)| *parked).count()
            } else {
                0
            };
            let deliveries = waiting
                .filter(|(.., parked)| !*parked)
                .filter_map(|(delivery, endpoint, _, generation, _)| {
                    let endpoint_id = EndpointId::parse(endpoint).ok()?;
                    new.subscribers
                        .enabled
                        .contains(&endpoint_id)
                        .then_some(PendingDelivery {
                            id: DeliveryId::parse(delivery).ok()?,
                            endpoint_id,
                            generation: u32::try_from(*generation).ok()?,
                        })
                })
                .collect();
            StoredEvent {
                deliveries,
                first_time: *first_time,
                parked,
            }
        })
        .collect())
}

/// The visits of a group, one row per event. (An event twice in one group fails the statement,
/// which then runs again row by row; keeping one row per event keeps the count right anyway.)
#[derive(Default)]
struct VisitColumns {
    seen: std::collections::HashSet<String>,
    event_ids: Vec<String>,
    workspace_ids: Vec<String>,
    link_ids: Vec<String>,
    kinds: Vec<&'static str>,
}

impl VisitColumns {
    fn push(&mut self, event: &Envelope, visit: &Visit) {
        let event_id = event.id.to_string();
        if !self.seen.insert(event_id.clone()) {
            return;
        }
        self.event_ids.push(event_id);
        self.workspace_ids.push(visit.workspace_id.to_string());
        self.link_ids.push(visit.link_id.to_string());
        self.kinds.push(visit.kind.as_str());
    }
}

#[derive(Default)]
struct EventColumns {
    ids: Vec<String>,
    workspace_ids: Vec<String>,
    types: Vec<&'static str>,
    payloads: Vec<serde_json::Value>,
}

impl EventColumns {
    fn push(&mut self, workspace_id: &WorkspaceId, event: &Envelope) {
        self.ids.push(event.id.to_string());
        self.workspace_ids.push(workspace_id.to_string());
        self.types.push(event.event.as_str());
        self.payloads
            .push(serde_json::to_value(event).expect("an envelope serializes"));
    }
}

#[derive(Default)]
struct DeliveryColumns {
    ids: Vec<String>,
    workspace_ids: Vec<String>,
    event_ids: Vec<String>,
    event_types: Vec<&'static str>,
    endpoint_ids: Vec<String>,
    statuses: Vec<&'static str>,
    /// How long each is stored parked, in milliseconds (see `crate::parked::wait_ms`).
    parked_ms: Vec<Option<i64>>,
}

impl DeliveryColumns {
    fn push(
        &mut self,
        workspace_id: &WorkspaceId,
        event: &Envelope,
        endpoint_id: &EndpointId,
        status: DeliveryStatus,
        parked_for: Option<Duration>,
    ) {
        self.ids.push(DeliveryId::generate().to_string());
        self.workspace_ids.push(workspace_id.to_string());
        self.event_ids.push(event.id.to_string());
        self.event_types.push(event.event.as_str());
        self.endpoint_ids.push(endpoint_id.to_string());
        self.statuses.push(status.as_str());
        self.parked_ms.push(parked_for.map(crate::parked::wait_ms));
    }
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

/// Appends each attempt and moves its delivery to its new status, all in one statement (one
/// round trip, one commit): the attempts, each delivery's new status, and each endpoint's last
/// success (refreshed at most every 30 s).
pub async fn record_attempts(
    pool: &PgPool,
    records: &[(DeliveryId, EndpointId, AttemptRecord)],
) -> Result<(), StoreError> {
    let delivery_ids: Vec<&str> = records.iter().map(|(d, _, _)| d.as_str()).collect();
    let endpoint_ids: Vec<&str> = records.iter().map(|(_, e, _)| e.as_str()).collect();
    let attempts: Vec<i32> = records.iter().map(|(_, _, r)| r.attempt as i32).collect();
    let at: Vec<_> = records.iter().map(|(_, _, r)| r.at).collect();
    let status_codes: Vec<Option<i32>> = records
        .iter()
        .map(|(_, _, r)| r.status_code.map(i32::from))
        .collect();
    let durations: Vec<i32> = records
        .iter()
        .map(|(_, _, r)| r.duration_ms.min(i32::MAX as u32) as i32)
        .collect();
    let errors: Vec<Option<&str>> = records.iter().map(|(_, _, r)| r.error.as_deref()).collect();
    let bodies: Vec<Option<&str>> = records
        .iter()
        .map(|(_, _, r)| r.response_body.as_deref())
        .collect();
    let statuses: Vec<&str> = records
        .iter()
        .map(|(_, _, r)| r.new_status.as_str())
        .collect();
    let next_at: Vec<_> = records.iter().map(|(_, _, r)| r.next_attempt_at).collect();
    let succeeded: Vec<bool> = records
        .iter()
        .map(|(_, _, r)| r.new_status == DeliveryStatus::Succeeded)
        .collect();
    sqlx::query(
            "WITH input AS ( \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::timestamptz[], \
                     $5::int[], $6::int[], $7::text[], $8::text[], $9::text[], \
                     $10::timestamptz[], $11::bool[]) \
                 AS t(delivery_id, endpoint_id, attempt, at, status_code, duration_ms, error, \
                      response_body, new_status, next_attempt_at, succeeded)), \
             attempts AS ( \
                 INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, duration_ms, error, response_body) \
                 SELECT delivery_id, attempt, at, status_code, duration_ms, error, response_body FROM input), \
             healthy AS ( \
                 UPDATE endpoints e SET last_success_at = s.at \
                 FROM (SELECT endpoint_id, max(at) AS at FROM input WHERE succeeded GROUP BY endpoint_id) s \
                 WHERE e.id = s.endpoint_id \
                 AND (e.last_success_at IS NULL OR e.last_success_at < s.at - interval '30 seconds')) \
             UPDATE deliveries d SET status = i.new_status, attempt_count = d.attempt_count + 1, \
                 next_attempt_at = i.next_attempt_at, \
                 delivered_at = CASE WHEN i.succeeded THEN i.at ELSE d.delivered_at END \
             FROM input i WHERE d.id = i.delivery_id",
        )
        .bind(&delivery_ids)
        .bind(&endpoint_ids)
        .bind(&attempts)
        .bind(&at)
        .bind(&status_codes)
        .bind(&durations)
        .bind(&errors)
        .bind(&bodies)
        .bind(&statuses)
        .bind(&next_at)
        .bind(&succeeded)
        .execute(pool)
        .await?;
    Ok(())
}

/// Marks the delivery `dead` for a job of `generation`, unless that job is stale: the delivery
/// gone, in another generation (a resend replaced it) or sent meanwhile. `false`: nothing was
/// changed and the job is to be dropped, not dead-lettered.
pub async fn mark_dead(
    pool: &PgPool,
    delivery_id: &DeliveryId,
    generation: u32,
) -> Result<bool, StoreError> {
    let marked = sqlx::query(
        "UPDATE deliveries SET status = 'dead', next_attempt_at = NULL, parked_until = NULL \
         WHERE id = $1 AND generation = $2 AND status <> 'succeeded'",
    )
    .bind(delivery_id.as_str())
    .bind(i64::from(generation))
    .execute(pool)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// Whether a job of `generation` is still the delivery's to send: the delivery exists, is in
/// that generation and is neither sent nor dead. A resend starts a new generation without
/// reaching the old one's retry waiting in a queue, and a copy of a job may come after its
/// delivery was sent; this is how such a job learns it is stale.
pub async fn still_to_send(
    pool: &PgPool,
    delivery_id: &DeliveryId,
    generation: u32,
) -> Result<bool, StoreError> {
    let (current,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM deliveries \
         WHERE id = $1 AND generation = $2 AND status NOT IN ('succeeded', 'dead'))",
    )
    .bind(delivery_id.as_str())
    .bind(i64::from(generation))
    .fetch_one(pool)
    .await?;
    Ok(current)
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

/// Starts a new generation of a delivery (resend, replay): back to `pending`, parked no
/// longer (the caller publishes the new generation's job), and the number of the generation
/// to send.
pub async fn start_generation(pool: &PgPool, delivery_id: &DeliveryId) -> Result<u32, StoreError> {
    let (generation,): (i32,) = sqlx::query_as(
        "UPDATE deliveries SET generation = generation + 1, status = 'pending', next_attempt_at = NULL, \
             parked_until = NULL, parked_attempt = NULL \
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
