//! The queries fan-out and sender workers run for every message, as grouped queries (see
//! [`crate::group`]): whatever concurrent handlers ask at the same moment becomes one statement.
//!
//! Each one answers exactly what its single-row counterpart in `endpoints` or `deliveries`
//! answers; when a group fails as a whole (a row that breaks a constraint, a deadlock with
//! another process), its rows are run one by one through that counterpart, so each caller
//! gets its own outcome.

use std::collections::{HashMap, HashSet};

use linkkit_core::{DeliveryId, EndpointId, Envelope, EventType, WorkspaceId};
use sqlx::PgPool;

use crate::deliveries::{self, AttemptRecord, DeliveryStatus};
use crate::endpoints::{self, EndpointRow, Subscribers};
use crate::group::GroupQuery;
use crate::StoreError;

/// Workspace, endpoint id, enabled, subscribed event types.
type SubscriptionRow = (String, String, bool, Vec<String>);

/// The endpoints of a workspace subscribed to an event type (fan-out).
#[derive(Debug, Clone)]
pub struct SubscribedEndpoints(pub PgPool);

impl GroupQuery for SubscribedEndpoints {
    const NAME: &'static str = "subscribed_endpoints";
    type Input = (WorkspaceId, EventType);
    type Output = Subscribers;

    async fn run(&self, inputs: Vec<Self::Input>) -> Vec<Result<Subscribers, StoreError>> {
        let workspaces: Vec<&str> = distinct(inputs.iter().map(|(w, _)| w.as_str()));
        let types: Vec<&str> = distinct(inputs.iter().map(|(_, t)| t.as_str()));
        let rows: Result<Vec<SubscriptionRow>, sqlx::Error> = sqlx::query_as(
            "SELECT workspace_id, id, enabled, events FROM endpoints \
             WHERE workspace_id = ANY($1) AND events && $2::text[] ORDER BY id",
        )
        .bind(&workspaces)
        .bind(&types)
        .fetch_all(&self.0)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => return one_by_one(inputs, error, |(w, t)| self.single(w, t)).await,
        };
        inputs
            .iter()
            .map(|(workspace_id, event_type)| {
                let mut subscribers = Subscribers::default();
                for (workspace, id, enabled, events) in &rows {
                    if workspace != workspace_id.as_str()
                        || !events.iter().any(|e| e == event_type.as_str())
                    {
                        continue;
                    }
                    let Ok(id) = EndpointId::parse(id) else {
                        continue;
                    };
                    match enabled {
                        true => subscribers.enabled.push(id),
                        false => subscribers.disabled.push(id),
                    }
                }
                Ok(subscribers)
            })
            .collect()
    }
}

impl SubscribedEndpoints {
    async fn single(
        &self,
        workspace_id: WorkspaceId,
        event_type: EventType,
    ) -> Result<Subscribers, StoreError> {
        endpoints::subscribed(&self.0, &workspace_id, event_type).await
    }
}

/// One endpoint of a workspace, or `None` if it is gone (sender).
#[derive(Debug, Clone)]
pub struct EndpointById(pub PgPool);

impl GroupQuery for EndpointById {
    const NAME: &'static str = "endpoint_by_id";
    type Input = (WorkspaceId, EndpointId);
    type Output = Option<EndpointRow>;

    async fn run(&self, inputs: Vec<Self::Input>) -> Vec<Result<Option<EndpointRow>, StoreError>> {
        let ids: Vec<&str> = distinct(inputs.iter().map(|(_, e)| e.as_str()));
        let rows: Result<Vec<EndpointRow>, sqlx::Error> = sqlx::query_as(&format!(
            "SELECT {} FROM endpoints WHERE id = ANY($1)",
            endpoints::COLUMNS
        ))
        .bind(&ids)
        .fetch_all(&self.0)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                return one_by_one(inputs, error, |(w, e)| async move {
                    endpoints::get(&self.0, &w, &e).await
                })
                .await
            }
        };
        inputs
            .iter()
            .map(|(workspace_id, endpoint_id)| {
                Ok(rows
                    .iter()
                    .find(|row| {
                        row.id == endpoint_id.as_str() && row.workspace_id == workspace_id.as_str()
                    })
                    .cloned())
            })
            .collect()
    }
}

/// Stores an event and its deliveries (fan-out); answers the delivery of each enabled
/// subscriber, as [`deliveries::create_for_event`] does.
#[derive(Debug, Clone)]
pub struct CreateDeliveries(pub PgPool);

impl GroupQuery for CreateDeliveries {
    const NAME: &'static str = "create_deliveries";
    type Input = (WorkspaceId, Envelope, Subscribers);
    type Output = Vec<(DeliveryId, EndpointId)>;

    async fn run(
        &self,
        inputs: Vec<Self::Input>,
    ) -> Vec<Result<Vec<(DeliveryId, EndpointId)>, StoreError>> {
        let mut events = EventColumns::default();
        let mut rows = DeliveryColumns::default();
        for (workspace_id, event, subscribers) in &inputs {
            events.push(workspace_id, event);
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
                rows.push(workspace_id, event, endpoint, status);
            }
        }
        // As in the single-event statement, the no-op update makes RETURNING report deliveries
        // that already existed, with their old ids.
        let created: Result<Vec<(String, String, String)>, sqlx::Error> = sqlx::query_as(
            "WITH stored_events AS ( \
                 INSERT INTO events (id, workspace_id, event_type, payload) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[]) \
                 ON CONFLICT (id) DO NOTHING) \
             INSERT INTO deliveries (id, workspace_id, event_id, event_type, endpoint_id, status) \
             SELECT * FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) \
             ON CONFLICT (event_id, endpoint_id) DO UPDATE SET event_id = EXCLUDED.event_id \
             RETURNING id, event_id, endpoint_id",
        )
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
        .fetch_all(&self.0)
        .await;
        let created = match created {
            Ok(created) => created,
            Err(error) => {
                return one_by_one(inputs, error, |(w, e, s)| async move {
                    deliveries::create_for_event(&self.0, &w, &e, &s).await
                })
                .await
            }
        };
        let mut by_event: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
        for (delivery, event, endpoint) in &created {
            by_event
                .entry(event.as_str())
                .or_default()
                .push((delivery, endpoint));
        }
        inputs
            .iter()
            .map(|(_, event, subscribers)| {
                let rows = by_event.get(event.id.as_str()).map(Vec::as_slice);
                Ok(rows
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|(delivery, endpoint)| {
                        let endpoint = EndpointId::parse(endpoint).ok()?;
                        subscribers
                            .enabled
                            .contains(&endpoint)
                            .then_some((DeliveryId::parse(delivery).ok()?, endpoint))
                    })
                    .collect())
            })
            .collect()
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
}

impl DeliveryColumns {
    fn push(
        &mut self,
        workspace_id: &WorkspaceId,
        event: &Envelope,
        endpoint_id: &EndpointId,
        status: DeliveryStatus,
    ) {
        self.ids.push(DeliveryId::generate().to_string());
        self.workspace_ids.push(workspace_id.to_string());
        self.event_ids.push(event.id.to_string());
        self.event_types.push(event.event.as_str());
        self.endpoint_ids.push(endpoint_id.to_string());
        self.statuses.push(status.as_str());
    }
}

/// Appends an attempt and moves its delivery on (sender), as [`deliveries::record_attempt`].
#[derive(Debug, Clone)]
pub struct RecordAttempts(pub PgPool);

impl GroupQuery for RecordAttempts {
    const NAME: &'static str = "record_attempts";
    type Input = (DeliveryId, EndpointId, AttemptRecord);
    type Output = ();

    async fn run(&self, inputs: Vec<Self::Input>) -> Vec<Result<(), StoreError>> {
        let delivery_ids: Vec<&str> = inputs.iter().map(|(d, _, _)| d.as_str()).collect();
        let endpoint_ids: Vec<&str> = inputs.iter().map(|(_, e, _)| e.as_str()).collect();
        let attempts: Vec<i32> = inputs.iter().map(|(_, _, r)| r.attempt as i32).collect();
        let at: Vec<_> = inputs.iter().map(|(_, _, r)| r.at).collect();
        let status_codes: Vec<Option<i32>> = inputs
            .iter()
            .map(|(_, _, r)| r.status_code.map(i32::from))
            .collect();
        let durations: Vec<i32> = inputs
            .iter()
            .map(|(_, _, r)| r.duration_ms.min(i32::MAX as u32) as i32)
            .collect();
        let errors: Vec<Option<&str>> = inputs.iter().map(|(_, _, r)| r.error.as_deref()).collect();
        let bodies: Vec<Option<&str>> = inputs
            .iter()
            .map(|(_, _, r)| r.response_body.as_deref())
            .collect();
        let statuses: Vec<&str> = inputs
            .iter()
            .map(|(_, _, r)| r.new_status.as_str())
            .collect();
        let next_at: Vec<_> = inputs.iter().map(|(_, _, r)| r.next_attempt_at).collect();
        let succeeded: Vec<bool> = inputs
            .iter()
            .map(|(_, _, r)| r.new_status == DeliveryStatus::Succeeded)
            .collect();
        // The single-row statement for many rows: the attempts, each delivery's new status, and
        // each endpoint's last success (refreshed at most every 30 s).
        let result = sqlx::query(
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
        .execute(&self.0)
        .await;
        match result {
            Ok(_) => inputs.iter().map(|_| Ok(())).collect(),
            Err(error) => {
                one_by_one(inputs, error, |(d, e, r)| async move {
                    deliveries::record_attempt(&self.0, &d, &e, &r).await
                })
                .await
            }
        }
    }
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// After a group failed: a lone row gets the group's error; several are run one by one, so
/// each gets its own outcome.
async fn one_by_one<I, O, F, Fut>(
    inputs: Vec<I>,
    group_error: sqlx::Error,
    single: F,
) -> Vec<Result<O, StoreError>>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = Result<O, StoreError>>,
{
    if inputs.len() == 1 {
        return vec![Err(group_error.into())];
    }
    tracing::debug!(rows = inputs.len(), error = %group_error, "a grouped query failed; running its rows one by one");
    let mut outcomes = Vec::with_capacity(inputs.len());
    for input in inputs {
        outcomes.push(single(input).await);
    }
    outcomes
}
