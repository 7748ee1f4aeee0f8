//! One event → one job per subscribed endpoint, and for a click or a scan, one more on its
//! link's counters (in the statement that stores the event, when any endpoint subscribes).
//!
//! Postgres keeps an event that comes twice from counting twice: a stored event's row is
//! written once, and a visit no endpoint subscribes to (so stored nowhere) leaves its event id
//! in `counted_visits`, pruned after a week (see `visit_ledger`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lapin::types::FieldTable;
use linkkit_bus::{
    header_string, Handled, Handler, Message, Outgoing, Publisher, QueueRoom, Reservation,
    OCCURRED_AT_HEADER, WORKSPACE_HEADER,
};
use linkkit_core::retry::RetrySchedule;
use linkkit_core::{DeliveryJob, EndpointId, Envelope, EventType, LinkId, Namespace, WorkspaceId};
use linkkit_store::deliveries::NewEvent;
use linkkit_store::endpoint_cache::CachedSubscribers;
use linkkit_store::endpoints::Subscribers;
use linkkit_store::group::Grouped;
use linkkit_store::links::{Visit, VisitKind};
use linkkit_store::worker_queries::{CountVisits, CreateDeliveries};

use crate::metrics::{EVENTS_FANNED_OUT, JOBS_FANNED_OUT, JOBS_PARKED, ROOM_WAIT, VISITS_COUNTED};
use crate::parked_view::ParkedView;

#[derive(Debug)]
pub struct FanoutHandler {
    /// The per-event lookup, from memory that endpoint changes keep fresh, and the per-event
    /// write, grouped across the events in flight.
    pub subscribers: CachedSubscribers,
    pub deliveries: Grouped<CreateDeliveries>,
    pub visits: Grouped<CountVisits>,
    pub publisher: Arc<Publisher>,
    pub namespace: Namespace,
    /// Endpoints whose jobs the senders are parking.
    pub parked: ParkedView,
    pub retry_schedule: RetrySchedule,
    /// Room in the deliveries queue, when the worker is bounded.
    pub room: Option<Arc<QueueRoom>>,
}

impl Handler for FanoutHandler {
    async fn handle(&self, message: &Message) -> Handled {
        let (workspace_id, event) = match event_of(message.headers.as_ref(), &message.body) {
            Ok(parsed) => parsed,
            Err(reason) => return Handled::Poison(reason),
        };
        let occurred_at = header_string(message.headers.as_ref(), OCCURRED_AT_HEADER)
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .unwrap_or(event.timestamp);
        self.fan_out(&workspace_id, &event, occurred_at).await
    }
}

impl FanoutHandler {
    #[tracing::instrument(skip_all, fields(event_id = %event.id, event_type = %event.event))]
    async fn fan_out(
        &self,
        workspace_id: &WorkspaceId,
        event: &Envelope,
        occurred_at: DateTime<Utc>,
    ) -> Handled {
        let subscribers = match self
            .subscribers
            .run((workspace_id.clone(), event.event))
            .await
        {
            Ok(subscribers) => subscribers,
            Err(error) => return Handled::Requeue(format!("endpoint lookup failed: {error}")),
        };
        let visit = visit_of(workspace_id, event);
        if subscribers.enabled.is_empty() && subscribers.disabled.is_empty() {
            return match visit {
                Some(visit) => self.count_visit_once(event, visit).await,
                None => {
                    EVENTS_FANNED_OUT
                        .with_label_values(&["no_subscribers"])
                        .inc();
                    Handled::Done
                }
            };
        }
        match self
            .publish_jobs(workspace_id, event, occurred_at, subscribers, visit)
            .await
        {
            Ok(()) => Handled::Done,
            Err(reason) => Handled::Requeue(reason),
        }
    }

    /// Adds the visit of an event no endpoint subscribes to (so stored nowhere) to its link's
    /// counters, once: Postgres remembers the event's id, so a redelivered or republished copy
    /// counts nothing.
    async fn count_visit_once(&self, event: &Envelope, visit: Visit) -> Handled {
        let kind = visit.kind;
        match self.visits.run((event.id.clone(), visit)).await {
            Ok(true) => {
                VISITS_COUNTED.with_label_values(&[kind.as_str()]).inc();
                EVENTS_FANNED_OUT
                    .with_label_values(&["no_subscribers"])
                    .inc();
                Handled::Done
            }
            Ok(false) => {
                EVENTS_FANNED_OUT.with_label_values(&["duplicate"]).inc();
                Handled::Done
            }
            Err(error) => Handled::Requeue(format!("counting the visit failed: {error}")),
        }
    }

    /// Stores the event with its deliveries (and counts its visit, if this statement is the
    /// one that stores the event), then publishes one job per enabled subscriber and waits for
    /// every confirm. `Err`: the reason to requeue the event. A delivery to an endpoint a
    /// sender is parking is stored parked instead, with no job: a sender's sweep publishes it
    /// when it is due (see `linkkit_store::parked`).
    ///
    /// An event that comes again (a republished or redelivered copy) is stored once: Postgres
    /// answers with the deliveries it already had, so its visit is not counted again, and the
    /// jobs of those still `pending` are published again, in case the first worker died before
    /// it published them (the senders' keys absorb a copy of a job in flight). A delivery that
    /// has been sent, or failed and waits for its retry, gets no second job, however late the
    /// copy comes.
    async fn publish_jobs(
        &self,
        workspace_id: &WorkspaceId,
        event: &Envelope,
        occurred_at: DateTime<Utc>,
        subscribers: Subscribers,
        visit: Option<Visit>,
    ) -> Result<(), String> {
        let visit_kind = visit.as_ref().map(|visit| visit.kind);
        let room = self.room_for(&subscribers).await;
        let now = Utc::now();
        let parked_for = subscribers
            .enabled
            .iter()
            .filter_map(|endpoint| Some((endpoint.clone(), self.parked_for(endpoint, now)?)))
            .collect();
        let stored = self
            .deliveries
            .run(NewEvent {
                workspace_id: workspace_id.clone(),
                event: event.clone(),
                subscribers,
                visit,
                parked_for,
            })
            .await
            .map_err(|error| format!("recording deliveries failed: {error}"))?;
        if let (Some(kind), true) = (visit_kind, stored.first_time) {
            VISITS_COUNTED.with_label_values(&[kind.as_str()]).inc();
        }
        let jobs: Vec<Outgoing> = stored
            .deliveries
            .into_iter()
            .map(|delivery| {
                let job = DeliveryJob {
                    // A copy of the event: its first copy may have published this job already,
                    // and the job may have been sent since.
                    maybe_sent: !stored.first_time,
                    ..DeliveryJob::first_attempt(
                        delivery.id,
                        workspace_id.clone(),
                        delivery.endpoint_id,
                        delivery.generation,
                        occurred_at,
                        event.clone(),
                    )
                };
                Outgoing::job(&self.namespace, &job)
            })
            .collect();
        self.publisher
            .publish_all(&jobs)
            .await
            .map_err(|error| format!("publishing jobs failed: {error}"))?;
        if let Some(room) = room {
            room.used(jobs.len());
        }
        JOBS_FANNED_OUT.inc_by(jobs.len() as u64);
        JOBS_PARKED.inc_by(stored.parked as u64);
        let outcome = if stored.first_time {
            "fanned_out"
        } else {
            "duplicate"
        };
        EVENTS_FANNED_OUT.with_label_values(&[outcome]).inc();
        tracing::debug!(jobs = jobs.len(), outcome, "event fanned out");
        Ok(())
    }

    /// Waits for room in the deliveries queue for the jobs `subscribers` are expected to get
    /// (those not parked now), and reserves it. The parked endpoints are read again after the
    /// wait, so a job is decided on what is known when it can go.
    async fn room_for(&self, subscribers: &Subscribers) -> Option<Reservation<'_>> {
        let room = self.room.as_ref()?;
        let now = Utc::now();
        let expected = subscribers
            .enabled
            .iter()
            .filter(|endpoint| self.parked.parked_until(endpoint, now).is_none())
            .count();
        let started = Instant::now();
        let reservation = room
            .reserve(u32::try_from(expected).unwrap_or(u32::MAX))
            .await;
        ROOM_WAIT.inc_by(started.elapsed().as_secs_f64());
        Some(reservation)
    }

    /// How long a new delivery to `endpoint` is stored parked, while a sender is parking its
    /// jobs: as long as the sender said, and no shorter than a sender parks a job
    /// (`RetrySchedule::park_for`). `None`: its job goes to the senders, as usual.
    fn parked_for(&self, endpoint: &EndpointId, now: DateTime<Utc>) -> Option<Duration> {
        let until = self.parked.parked_until(endpoint, now)?;
        Some(self.retry_schedule.park_for((until - now).to_std().ok()))
    }
}

/// The workspace and the envelope of a message on the events exchange; `Err` with the reason
/// for one that is not an event (it goes to the dead-letter queue).
pub(crate) fn event_of(
    headers: Option<&FieldTable>,
    body: &[u8],
) -> Result<(WorkspaceId, Envelope), String> {
    let workspace_id =
        match header_string(headers, WORKSPACE_HEADER).map(|h| WorkspaceId::parse(&h)) {
            Some(Ok(id)) => id,
            Some(Err(error)) => return Err(format!("bad {WORKSPACE_HEADER} header: {error}")),
            None => return Err(format!("no {WORKSPACE_HEADER} header")),
        };
    let event =
        serde_json::from_slice(body).map_err(|error| format!("not an event envelope: {error}"))?;
    Ok((workspace_id, event))
}

/// The visit a `link.clicked` or `qr.scanned` event records, if it names a valid link.
pub(crate) fn visit_of(workspace_id: &WorkspaceId, event: &Envelope) -> Option<Visit> {
    let kind = match event.event {
        EventType::LinkClicked => VisitKind::Click,
        EventType::QrScanned => VisitKind::Scan,
        _ => return None,
    };
    let link_id = event.data.get("link_id").and_then(|id| id.as_str());
    match link_id.map(LinkId::parse) {
        Some(Ok(link_id)) => Some(Visit {
            workspace_id: workspace_id.clone(),
            link_id,
            kind,
        }),
        _ => {
            tracing::debug!(link_id = ?link_id, "a visit without a valid link id counts nowhere");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LINK: &str = "lnk_00000000000070008000000000000000";

    fn workspace() -> WorkspaceId {
        static WORKSPACE: std::sync::LazyLock<WorkspaceId> =
            std::sync::LazyLock::new(WorkspaceId::generate);
        WORKSPACE.clone()
    }

    #[test]
    fn clicks_and_scans_are_visits_of_their_link_and_other_events_are_not() {
        let click = Envelope::new(EventType::LinkClicked, json!({"link_id": LINK}));
        let scan = Envelope::new(EventType::QrScanned, json!({"link_id": LINK}));
        let created = Envelope::new(EventType::LinkCreated, json!({"link_id": LINK}));
        let visit = visit_of(&workspace(), &click).unwrap();
        assert_eq!(
            (visit.workspace_id, visit.link_id.as_str(), visit.kind),
            (workspace(), LINK, VisitKind::Click)
        );
        assert_eq!(
            visit_of(&workspace(), &scan).map(|v| v.kind),
            Some(VisitKind::Scan)
        );
        assert_eq!(visit_of(&workspace(), &created), None);
    }

    #[test]
    fn a_visit_without_a_valid_link_id_counts_nowhere() {
        for data in [json!({}), json!({"link_id": 7}), json!({"link_id": "ep_1"})] {
            let click = Envelope::new(EventType::LinkClicked, data);
            assert_eq!(visit_of(&workspace(), &click), None);
        }
    }
}
