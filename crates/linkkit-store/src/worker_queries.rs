//! The queries fan-out and sender workers run for every message, as grouped queries (see
//! [`crate::group`]): whatever concurrent handlers ask at the same moment becomes one statement.
//! The statements themselves live with their tables, in `endpoints`, `deliveries` and `links`.

use linkkit_core::{DeliveryId, EndpointId, EventId, EventType, WorkspaceId};
use sqlx::PgPool;

use crate::deliveries::{self, AttemptRecord, NewEvent, StoredEvent};
use crate::endpoints::{self, EndpointRow, Subscribers};
use crate::group::GroupQuery;
use crate::links::{self, Visit};
use crate::parked::{self, ParkRequest};
use crate::StoreError;

/// The endpoints of a workspace subscribed to an event type (fan-out).
#[derive(Debug, Clone)]
pub struct SubscribedEndpoints(pub PgPool);

impl GroupQuery for SubscribedEndpoints {
    const NAME: &'static str = "subscribed_endpoints";
    type Input = (WorkspaceId, EventType);
    type Output = Subscribers;

    async fn run(&self, inputs: &[Self::Input]) -> Result<Vec<Subscribers>, StoreError> {
        endpoints::subscribed_to(&self.0, inputs).await
    }
}

/// One endpoint of a workspace, or `None` if it is gone (sender).
#[derive(Debug, Clone)]
pub struct EndpointById(pub PgPool);

impl GroupQuery for EndpointById {
    const NAME: &'static str = "endpoint_by_id";
    type Input = (WorkspaceId, EndpointId);
    type Output = Option<EndpointRow>;

    async fn run(&self, inputs: &[Self::Input]) -> Result<Vec<Option<EndpointRow>>, StoreError> {
        endpoints::get_many(&self.0, inputs).await
    }
}

/// Stores an event and its deliveries, and counts its visit the first time (fan-out); answers
/// the delivery of each enabled subscriber.
#[derive(Debug, Clone)]
pub struct CreateDeliveries(pub PgPool);

impl GroupQuery for CreateDeliveries {
    const NAME: &'static str = "create_deliveries";
    type Input = NewEvent;
    type Output = StoredEvent;

    async fn run(&self, inputs: &[NewEvent]) -> Result<Vec<StoredEvent>, StoreError> {
        deliveries::create_for_events(&self.0, inputs).await
    }
}

/// Appends an attempt and moves its delivery on (sender).
#[derive(Debug, Clone)]
pub struct RecordAttempts(pub PgPool);

impl GroupQuery for RecordAttempts {
    const NAME: &'static str = "record_attempts";
    type Input = (DeliveryId, EndpointId, AttemptRecord);
    type Output = ();

    async fn run(&self, inputs: &[Self::Input]) -> Result<Vec<()>, StoreError> {
        deliveries::record_attempts(&self.0, inputs).await?;
        Ok(vec![(); inputs.len()])
    }
}

/// Parks jobs a sender turned away until their endpoint may take them (sender); answers
/// whether each was parked (`false`: the job is stale).
#[derive(Debug, Clone)]
pub struct ParkDeliveries(pub PgPool);

impl GroupQuery for ParkDeliveries {
    const NAME: &'static str = "park_deliveries";
    type Input = ParkRequest;
    type Output = bool;

    async fn run(&self, inputs: &[ParkRequest]) -> Result<Vec<bool>, StoreError> {
        parked::park(&self.0, inputs).await
    }
}

/// Adds a click or a scan to its link's counters unless its event was counted before (fan-out,
/// for an event no endpoint subscribes to; otherwise [`CreateDeliveries`] counts it); answers
/// whether it counted now.
#[derive(Debug, Clone)]
pub struct CountVisits(pub PgPool);

impl GroupQuery for CountVisits {
    const NAME: &'static str = "count_visits";
    type Input = (EventId, Visit);
    type Output = bool;

    async fn run(&self, inputs: &[(EventId, Visit)]) -> Result<Vec<bool>, StoreError> {
        links::add_visits_once(&self.0, inputs).await
    }
}
