//! Retires the queue that counted visits before the fan-out did.
//!
//! Until 2026-12, every API process counted clicks and scans from a durable queue of its own,
//! `{ns}.counters`, bound to the events exchange for `link.clicked` and `qr.scanned`: a second
//! copy of every visit on the broker. The fan-out already reads every event once, so it now
//! counts them itself (see `handler.rs`), and that queue must go, or in an upgraded deployment
//! it would fill forever with no one reading it.
//!
//! Every fan-out worker does this when it starts: if the old queue exists, it unbinds it (no
//! new visit reaches it), counts the visits still waiting there, in batches acknowledged only
//! once their `UPDATE` is committed, and deletes it once it is empty. Without the old queue
//! this costs one passive declare.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use linkkit_bus::{
    header_string, Broker, BusError, Outgoing, Publisher, REASON_HEADER, SOURCE_QUEUE_HEADER,
    WORKSPACE_HEADER,
};
use linkkit_core::{Envelope, EventType, Namespace, WorkspaceId};
use linkkit_store::links::{self, Visit};
use linkkit_store::{PgPool, StoreError};
use tokio_util::sync::CancellationToken;

use crate::handler::{kind_label, visit_of};
use crate::metrics::VISITS_COUNTED;

/// Visits counted per statement while draining.
const BATCH: usize = 500;
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// AMQP's reply code for a queue that does not exist.
const NOT_FOUND: u16 = 404;

#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Retires the old counters' queue, trying again until it is done or `shutdown` fires.
pub async fn retire_until_done(
    broker: Broker,
    namespace: Namespace,
    pool: PgPool,
    publisher: &Publisher,
    shutdown: CancellationToken,
) {
    loop {
        match retire(&broker, &namespace, &pool, publisher).await {
            Ok(0) => return,
            Ok(counted) => {
                tracing::info!(
                    counted,
                    "counted the visits left in the old counters' queue and removed it"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not retire the old counters' queue yet");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        }
    }
}

/// Unbinds, drains and deletes the old counters' queue if it exists; the visits it counted.
pub async fn retire(
    broker: &Broker,
    namespace: &Namespace,
    pool: &PgPool,
    publisher: &Publisher,
) -> Result<usize, RetireError> {
    let queue = namespace.legacy_counters_queue();
    let channel = broker.channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match channel
        .queue_declare(&queue, passive, FieldTable::default())
        .await
    {
        Ok(_) => {}
        // The broker closes the channel with the answer: nothing to retire.
        Err(lapin::Error::ProtocolError(error)) if error.get_id() == NOT_FOUND => return Ok(0),
        Err(error) => return Err(error.into()),
    }
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
                Err(reason) => dead.push(Outgoing {
                    exchange: String::new(),
                    routing_key: namespace.dead_queue(),
                    body: delivery.data,
                    headers: vec![
                        (REASON_HEADER, reason),
                        (SOURCE_QUEUE_HEADER, queue.clone()),
                    ],
                }),
            }
        }
        let Some(last_tag) = last_tag else { break };
        links::add_visits(pool, &visits).await?;
        for visit in &visits {
            VISITS_COUNTED
                .with_label_values(&[kind_label(visit.kind)])
                .inc();
        }
        publisher.publish_all(&dead).await?;
        channel
            .basic_ack(last_tag, BasicAckOptions { multiple: true })
            .await?;
        counted += visits.len();
    }
    let if_empty = QueueDeleteOptions {
        if_empty: true,
        ..Default::default()
    };
    channel.queue_delete(&queue, if_empty).await?;
    let _ = channel.close(200, "retired").await;
    Ok(counted)
}

/// The visit one old counters' message records; `Err` with the reason for a message that is
/// not an event envelope (it goes to the dead-letter queue).
fn visit_in(headers: Option<&FieldTable>, body: &[u8]) -> Result<Option<Visit>, String> {
    let workspace_id =
        match header_string(headers, WORKSPACE_HEADER).map(|h| WorkspaceId::parse(&h)) {
            Some(Ok(id)) => id,
            Some(Err(error)) => return Err(format!("bad {WORKSPACE_HEADER} header: {error}")),
            None => return Err(format!("no {WORKSPACE_HEADER} header")),
        };
    let event: Envelope =
        serde_json::from_slice(body).map_err(|error| format!("not an event envelope: {error}"))?;
    Ok(visit_of(&workspace_id, &event))
}
