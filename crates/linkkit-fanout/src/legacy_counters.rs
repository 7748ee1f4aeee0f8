//! Retires the queue that counted visits before the fan-out did.
//!
//! Until 2026-12, every API process counted clicks and scans from a durable queue of its own,
//! `{ns}.counters`, bound to the events exchange for `link.clicked` and `qr.scanned`: a second
//! copy of every visit on the broker. The fan-out already reads every event once, so it now
//! counts them itself (see `handler.rs`), and that queue must go, or in an upgraded deployment
//! it would fill forever with no one reading it.
//!
//! Every fan-out worker does this when it starts, and again every ten minutes, since a process
//! of the older release still running (and reconnecting) declares the queue again: it unbinds
//! the queue (no new visit reaches it), counts the visits still waiting there, in batches
//! acknowledged only once their `UPDATE` is committed, and deletes it once it is empty. The
//! queue is declared first, as this release declares its queues, rather than looked up with a
//! passive declare: where it does not exist that creates an empty queue that is deleted a
//! moment later, where a passive declare would have the broker close the channel, which the
//! AMQP client logs as an error on every start.
//!
//! A visit routed to both queues before the upgrade and taken by an upgraded fan-out worker
//! is counted twice; counting errs, as it always has, towards a visit too many, never too few.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::Channel;
use linkkit_bus::{Broker, BusError, Outgoing, Publisher, QueueType, Topology};
use linkkit_core::EventType;
use linkkit_store::links::{self, Visit};
use linkkit_store::{PgPool, StoreError};
use tokio_util::sync::CancellationToken;

use crate::handler::{event_of, visit_of};
use crate::metrics::VISITS_COUNTED;

/// Visits counted per statement while draining.
const BATCH: usize = 500;
/// How often the old queue is looked for again, once it is gone.
const RECHECK_EVERY: Duration = Duration::from_secs(600);
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// AMQP's reply code for a queue declared with other arguments than it has.
const PRECONDITION_FAILED: u16 = 406;

#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Retires the old counters' queue now and every [`RECHECK_EVERY`], until `shutdown` fires.
pub async fn keep_retired(
    broker: Broker,
    topology: Topology,
    pool: PgPool,
    publisher: &Publisher,
    shutdown: CancellationToken,
) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        // A connection of its own: an error the broker answers with by closing the connection
        // must not take the workers' consumers down with it.
        let own = broker.with_own_connection();
        let retired = retire(&own, &topology, &pool, publisher).await;
        own.close().await;
        wait = match retired {
            Ok(counted) => {
                if counted > 0 {
                    tracing::info!(
                        counted,
                        "counted the visits left in the old counters' queue and removed it"
                    );
                }
                RECHECK_EVERY
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not retire the old counters' queue yet");
                RETRY_AFTER
            }
        };
    }
}

/// Unbinds, drains and deletes the old counters' queue; the visits it counted.
pub async fn retire(
    broker: &Broker,
    topology: &Topology,
    pool: &PgPool,
    publisher: &Publisher,
) -> Result<usize, RetireError> {
    let namespace = &topology.namespace;
    let queue = namespace.legacy_counters_queue();
    let channel = open(broker, topology, &queue).await?;
    for visit in [EventType::LinkClicked, EventType::QrScanned] {
        channel
            .queue_unbind(
                &queue,
                &namespace.events_exchange(),
                visit.as_str(),
                FieldTable::default(),
            )
            .await?;
    }
    let mut counted = 0;
    loop {
        let mut visits = Vec::with_capacity(BATCH);
        let mut dead = Vec::new();
        let mut last_tag = None;
        while visits.len() + dead.len() < BATCH {
            let Some(message) = channel
                .basic_get(&queue, BasicGetOptions::default())
                .await?
            else {
                break;
            };
            let delivery = message.delivery;
            last_tag = Some(delivery.delivery_tag);
            match visit_in(delivery.properties.headers().as_ref(), &delivery.data) {
                Ok(Some(visit)) => visits.push(visit),
                Ok(None) => {}
                Err(reason) => dead.push(Outgoing::unparseable(
                    namespace.dead_queue(),
                    &queue,
                    delivery.data,
                    reason,
                )),
            }
        }
        let Some(last_tag) = last_tag else { break };
        links::add_visits(pool, &visits).await?;
        for visit in &visits {
            VISITS_COUNTED
                .with_label_values(&[visit.kind.as_str()])
                .inc();
        }
        publisher.publish_all(&dead).await?;
        channel
            .basic_ack(last_tag, BasicAckOptions { multiple: true })
            .await?;
        counted += visits.len();
    }
    // Quorum queues refuse `if-empty` (with a connection error); unbound and drained, the
    // queue is empty there too, unless a consumer of the older release still holds some of
    // its messages, which the delete then drops.
    let options = QueueDeleteOptions {
        if_empty: topology.queue_type == QueueType::Classic,
        ..Default::default()
    };
    channel.queue_delete(&queue, options).await?;
    let _ = channel.close(200, "retired").await;
    Ok(counted)
}

/// A channel on which `queue` exists: declared as this release declares its queues or, if the
/// old one has other arguments (the deployment changed `LINKKIT_QUEUE_TYPE` since), as it is.
async fn open(broker: &Broker, topology: &Topology, queue: &str) -> Result<Channel, RetireError> {
    let channel = broker.channel().await?;
    match topology.declare_durable_queue(&channel, queue).await {
        Ok(()) => return Ok(channel),
        Err(BusError::Amqp(lapin::Error::ProtocolError(error)))
            if error.get_id() == PRECONDITION_FAILED => {}
        Err(error) => return Err(error.into()),
    }
    let channel = broker.channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue, passive, FieldTable::default())
        .await?;
    Ok(channel)
}

/// The visit one old counters' message records; `Err` with the reason for a message that is
/// not an event envelope (it goes to the dead-letter queue).
fn visit_in(headers: Option<&FieldTable>, body: &[u8]) -> Result<Option<Visit>, String> {
    let (workspace_id, event) = event_of(headers, body)?;
    Ok(visit_of(&workspace_id, &event))
}
