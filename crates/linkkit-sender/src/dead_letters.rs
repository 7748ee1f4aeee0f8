//! Operator tools for the dead-letter queue: look at what is there, and send dead jobs again.
//!
//! `list` takes messages without acknowledging them and closes its channel, which puts every one
//! back. `replay` re-sends a dead job as a new generation of its delivery — but only while
//! Postgres still says the delivery is dead at that generation; a job the API already replayed,
//! or whose endpoint was deleted, is stale and is removed instead of being sent twice.

use chrono::Utc;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use linkkit_bus::{
    header_string, Broker, BusError, Outgoing, Publisher, Topology, REASON_HEADER,
    SOURCE_QUEUE_HEADER,
};
use linkkit_core::{DeliveryJob, EndpointId};
use linkkit_store::deliveries::{self, DeliveryStatus};
use linkkit_store::{PgPool, StoreError};
use serde::Serialize;

/// One message of the dead-letter queue, as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// `None` when the message is not a delivery job (an unparseable event or job).
    pub delivery_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub event: Option<String>,
    pub attempt: Option<u32>,
    pub reason: String,
    pub source_queue: String,
    pub bytes: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Sent again as a new generation.
    pub replayed: usize,
    /// Already replayed, delivered since, or gone with their endpoint: removed.
    pub stale: usize,
    /// Left in the queue: not delivery jobs, or not of the chosen endpoint.
    pub kept: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Up to `limit` messages from the head of the dead-letter queue; all stay in the queue.
pub async fn list(
    broker: &Broker,
    topology: &Topology,
    limit: usize,
) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let channel = broker.channel().await?;
    topology.declare(&channel).await?;
    let mut letters = Vec::new();
    while letters.len() < limit {
        let Some(message) = channel
            .basic_get(&topology.namespace.dead_queue(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let delivery = &message.delivery;
        let headers = delivery.properties.headers().as_ref();
        let job = serde_json::from_slice::<DeliveryJob>(&delivery.data).ok();
        letters.push(DeadLetter {
            delivery_id: job.as_ref().map(|j| j.delivery_id.to_string()),
            endpoint_id: job.as_ref().map(|j| j.endpoint_id.to_string()),
            event: job.as_ref().map(|j| j.event.event.to_string()),
            attempt: job.as_ref().map(|j| j.attempt),
            reason: header_string(headers, REASON_HEADER).unwrap_or_default(),
            source_queue: header_string(headers, SOURCE_QUEUE_HEADER)
                .unwrap_or_else(|| topology.namespace.deliveries()),
            bytes: delivery.data.len(),
        });
    }
    // Closing without acknowledging returns every message to the queue.
    channel.close(200, "dlq list done").await?;
    Ok(letters)
}

/// Sends up to `limit` dead jobs again (only those of `endpoint`, when given).
pub async fn replay(
    broker: &Broker,
    topology: &Topology,
    pool: &PgPool,
    limit: usize,
    endpoint: Option<&EndpointId>,
) -> Result<ReplayReport, DeadLetterError> {
    let publisher = Publisher::new(broker.clone(), topology.clone());
    let channel = broker.channel().await?;
    topology.declare(&channel).await?;
    let mut report = ReplayReport::default();
    while report.replayed + report.stale + report.kept < limit {
        let Some(message) = channel
            .basic_get(&topology.namespace.dead_queue(), BasicGetOptions::default())
            .await?
        else {
            break;
        };
        let job = serde_json::from_slice::<DeliveryJob>(&message.delivery.data).ok();
        let Some(job) = job.filter(|job| endpoint.is_none_or(|wanted| *wanted == job.endpoint_id))
        else {
            report.kept += 1; // stays unacknowledged: back in the queue when the channel closes
            continue;
        };
        let current = deliveries::find(pool, &job.delivery_id).await?;
        let still_dead = current.as_ref().is_some_and(|row| {
            row.status == DeliveryStatus::Dead.as_str() && row.generation as u32 == job.generation
        });
        if still_dead {
            let generation = deliveries::start_generation(pool, &job.delivery_id).await?;
            let again = DeliveryJob::first_attempt(
                job.delivery_id,
                job.workspace_id,
                job.endpoint_id,
                generation,
                Utc::now(),
                job.event,
            );
            publisher
                .publish(Outgoing::job(&topology.namespace, &again))
                .await?;
            report.replayed += 1;
        } else {
            report.stale += 1;
        }
        message.delivery.ack(BasicAckOptions::default()).await?;
    }
    channel.close(200, "dlq replay done").await?;
    Ok(report)
}
