//! Queue depths as Linkkit's own metrics: every few seconds a passive declare of each queue of
//! the topology reads its message and consumer counts, so dashboards and autoscalers work even
//! without RabbitMQ's Prometheus plugin. Several processes may export the same queue; the values
//! are the broker's, so dashboards take the `max` per queue.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::Channel;
use tokio_util::sync::CancellationToken;

use crate::metrics::{QUEUE_CONSUMERS, QUEUE_MESSAGES};
use crate::{Broker, BusError, Topology};

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

async fn sample(broker: &Broker, topology: &Topology) -> Result<(), BusError> {
    let channel = broker.channel().await?;
    // Declaring is idempotent and makes sure every queue exists before it is inspected.
    topology.declare(&channel).await?;
    for queue in topology.queue_names() {
        let declared = inspect(&channel, &queue).await?;
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

/// The queue as the broker has it now (ready messages, consumers), by a passive declare: an
/// error if it does not exist, which closes `channel`.
pub(crate) async fn inspect(channel: &Channel, queue: &str) -> Result<lapin::Queue, BusError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    Ok(channel
        .queue_declare(queue, passive, FieldTable::default())
        .await?)
}
