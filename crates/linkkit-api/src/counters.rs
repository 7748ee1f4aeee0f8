//! The `clicks` and `scans` of every link, kept by a consumer of the events exchange (queue
//! `{ns}.counters`, bound to `link.clicked` and `qr.scanned`) that batches its writes: up to
//! 500 visits or half a second, then one `UPDATE` for all the links in the batch, then one
//! acknowledgement for the whole batch. The redirect itself never writes to Postgres.
//!
//! Counting is at least once: a batch written but not yet acknowledged when the process dies is
//! counted again. That costs a few visits too many in rare crashes, never a visit too few.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use linkkit_bus::{
    Broker, BusError, Outgoing, Publisher, Topology, REASON_HEADER, SOURCE_QUEUE_HEADER,
};
use linkkit_core::{Envelope, EventType};
use linkkit_store::{PgPool, StoreError};
use tokio_util::sync::CancellationToken;

const BATCH_SIZE: usize = 500;
const BATCH_WINDOW: Duration = Duration::from_millis(500);
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
enum CounterError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counts visits until `shutdown` fires, reconnecting after any failure.
pub async fn run_visit_counters(
    broker: Broker,
    topology: Topology,
    pool: PgPool,
    shutdown: CancellationToken,
) {
    let publisher = Publisher::new(broker.clone(), topology.clone());
    while !shutdown.is_cancelled() {
        match count(&broker, &topology, &pool, &publisher, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(error = %error, "visit counters lost their queue; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RECONNECT_BACKOFF) => {}
                }
            }
        }
    }
}

/// Visits of one batch, per link id.
#[derive(Debug, Default)]
struct Batch {
    per_link: HashMap<String, (i64, i64)>,
    last_tag: Option<u64>,
    size: usize,
}

async fn count(
    broker: &Broker,
    topology: &Topology,
    pool: &PgPool,
    publisher: &Publisher,
    shutdown: &CancellationToken,
) -> Result<(), CounterError> {
    let channel = broker.channel().await?;
    topology.declare(&channel).await?;
    channel
        .basic_qos((BATCH_SIZE * 2) as u16, BasicQosOptions::default())
        .await?;
    let queue = topology.namespace.counters_queue();
    let mut consumer = channel
        .basic_consume(
            &queue,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut batch = Batch::default();
    let mut window = tokio::time::interval(BATCH_WINDOW);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                flush(&channel, pool, &mut batch).await?;
                let _ = channel.close(200, "stopping").await;
                return Ok(());
            }
            _ = window.tick() => flush(&channel, pool, &mut batch).await?,
            next = consumer.next() => {
                let delivery = match next {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err(BusError::Unreachable("the broker cancelled the consumer".into()).into()),
                };
                match serde_json::from_slice::<Envelope>(&delivery.data) {
                    Ok(event) => {
                        let link = event.data.get("link_id").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                        let entry = batch.per_link.entry(link).or_default();
                        if event.event == EventType::QrScanned { entry.1 += 1 } else { entry.0 += 1 }
                    }
                    Err(error) => {
                        // Acknowledged with the batch once its dead-letter copy is confirmed.
                        let dead = Outgoing {
                            exchange: String::new(),
                            routing_key: topology.namespace.dead_queue(),
                            body: delivery.data.clone(),
                            headers: vec![(REASON_HEADER, format!("not an event envelope: {error}")), (SOURCE_QUEUE_HEADER, queue.clone())],
                        };
                        publisher.publish(dead).await?;
                    }
                }
                batch.last_tag = Some(delivery.delivery_tag);
                batch.size += 1;
                if batch.size >= BATCH_SIZE {
                    flush(&channel, pool, &mut batch).await?;
                }
            }
        }
    }
}

async fn flush(
    channel: &lapin::Channel,
    pool: &PgPool,
    batch: &mut Batch,
) -> Result<(), CounterError> {
    let Some(last_tag) = batch.last_tag else {
        return Ok(());
    };
    let (ids, (clicks, scans)): (Vec<String>, (Vec<i64>, Vec<i64>)) =
        batch.per_link.drain().unzip();
    linkkit_store::links::add_visits(pool, &ids, &clicks, &scans).await?;
    channel
        .basic_ack(last_tag, BasicAckOptions { multiple: true })
        .await?;
    *batch = Batch::default();
    Ok(())
}
