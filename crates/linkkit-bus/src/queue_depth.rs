//! Queue depths as Linkkit's own metrics: every few seconds a passive declare of each queue of
//! the topology reads its message and consumer counts, so dashboards and autoscalers work even
//! without RabbitMQ's Prometheus plugin. Several processes may export the same queue; the values
//! are the broker's, so dashboards take the `max` per queue.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio_util::sync::CancellationToken;

use crate::metrics::{QUEUE_CONSUMERS, QUEUE_MESSAGES};
use crate::{Broker, Topology};

const INTERVAL: Duration = Duration::from_secs(5);

/// Samples the depth of every queue of `topology` until `shutdown` fires.
pub async fn run_queue_depth_exporter(
    broker: Broker,
    topology: Topology,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = sample(&broker, &topology).await {
            tracing::debug!(error = %error, "could not read queue depths");
        }
    }
}

async fn sample(broker: &Broker, topology: &Topology) -> Result<(), crate::BusError> {
    let channel = broker.channel().await?;
    // Declaring is idempotent and makes sure every queue exists before it is inspected.
    topology.declare(&channel).await?;
    for queue in topology.queue_names() {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(&queue, passive, FieldTable::default())
            .await?;
        QUEUE_MESSAGES
            .with_label_values(&[&queue])
            .set(i64::from(declared.message_count()));
        QUEUE_CONSUMERS
            .with_label_values(&[&queue])
            .set(i64::from(declared.consumer_count()));
    }
    let _ = channel.close(200, "queue depths read").await;
    Ok(())
}
