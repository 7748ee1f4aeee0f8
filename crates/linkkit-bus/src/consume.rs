//! The consume → handle → ack loop of every worker.
//!
//! `basic_qos(prefetch)` bounds what the broker pushes; a semaphore bounds what is handled at
//! once, so one slow message never stops the others. A message is acknowledged only after its
//! handler says every effect is durable (acks of finished runs are sent together, see
//! `acks`); what can never be handled goes to the dead-letter queue with the reason in a
//! header; a failing dependency puts the message back. A cancelled
//! consumer or a lost connection is noticed, reported on `linkkit_consumer_up`, and the loop
//! reconnects by itself. On shutdown it stops taking messages and waits for those in hand.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::acks::{Acks, Settlement};
use crate::metrics::{CONSUMERS_UP, DEAD_LETTERED};
use crate::{Broker, BusError, Outgoing, Publisher, Topology};

/// A message as handlers see it.
#[derive(Debug)]
pub struct Message {
    pub body: Vec<u8>,
    pub headers: Option<FieldTable>,
    pub routing_key: String,
    pub redelivered: bool,
}

/// What a handler made of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// Everything the message causes is durable: acknowledge it.
    Done,
    /// It can never be handled (unparseable, impossible): dead-letter it with this reason.
    Poison(String),
    /// A dependency failed: return it to the queue and try again shortly.
    Requeue(String),
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, message: &Message) -> impl Future<Output = Handled> + Send;
}

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub queue: String,
    /// Messages the broker may push before they are acknowledged.
    pub prefetch: u16,
    /// Messages handled at the same time.
    pub concurrency: usize,
    /// Where messages that can never be handled go.
    pub dead_queue: String,
}

/// Pause before a requeued message goes back, so a broken dependency is not hammered.
const REQUEUE_PAUSE: Duration = Duration::from_millis(500);
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// Consumes `settings.queue` until `shutdown` fires, reconnecting after any failure.
pub async fn run_consumer<H: Handler>(
    broker: Broker,
    topology: Topology,
    settings: ConsumerSettings,
    publisher: Arc<Publisher>,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let up = CONSUMERS_UP.with_label_values(&[&settings.queue]);
    while !shutdown.is_cancelled() {
        match consume_until_shutdown(
            &broker, &topology, &settings, &publisher, &handler, &shutdown,
        )
        .await
        {
            Ok(()) => break,
            Err(error) => {
                up.set(0);
                tracing::warn!(queue = %settings.queue, error = %error, "consumer lost; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(RECONNECT_BACKOFF) => {}
                }
            }
        }
    }
    up.set(0);
}

async fn consume_until_shutdown<H: Handler>(
    broker: &Broker,
    topology: &Topology,
    settings: &ConsumerSettings,
    publisher: &Arc<Publisher>,
    handler: &Arc<H>,
    shutdown: &CancellationToken,
) -> Result<(), BusError> {
    let channel = broker.channel().await?;
    topology.declare(&channel).await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            &settings.queue,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    CONSUMERS_UP.with_label_values(&[&settings.queue]).set(1);
    tracing::info!(queue = %settings.queue, "consuming");

    let in_flight = Arc::new(Semaphore::new(settings.concurrency));
    let (acks, settling) = Acks::start(channel.clone());
    let outcome = loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            permit = in_flight.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => break Err(BusError::Amqp(error)),
                None => break Err(BusError::Unreachable("the broker cancelled the consumer".into())),
            },
        };
        let (handler, publisher, settings, acks) = (
            handler.clone(),
            publisher.clone(),
            settings.clone(),
            acks.clone(),
        );
        acks.taken(delivery.delivery_tag);
        tokio::spawn(async move {
            let tag = delivery.delivery_tag;
            acks.settle(
                tag,
                settle(delivery, &settings, &*handler, &publisher).await,
            );
            drop(permit);
        });
    };

    if outcome.is_ok() {
        let _ = channel
            .basic_cancel(consumer.tag().as_str(), BasicCancelOptions::default())
            .await;
    }
    // Wait for every message in hand and its settlement, then return the unstarted ones by
    // closing the channel.
    let _ = in_flight.acquire_many(settings.concurrency as u32).await;
    drop(acks);
    let _ = settling.await;
    let _ = channel.close(200, "consumer stopping").await;
    outcome
}

/// Handles one message and says how to settle it.
async fn settle<H: Handler>(
    delivery: Delivery,
    settings: &ConsumerSettings,
    handler: &H,
    publisher: &Publisher,
) -> Settlement {
    let queue = settings.queue.as_str();
    let message = Message {
        headers: delivery.properties.headers().clone(),
        routing_key: delivery.routing_key.to_string(),
        redelivered: delivery.redelivered,
        body: delivery.data,
    };
    match handler.handle(&message).await {
        Handled::Done => Settlement::Ack,
        Handled::Poison(reason) => {
            tracing::warn!(queue, reason = %reason, "dead-lettering a message that cannot be handled");
            let dead =
                Outgoing::unparseable(settings.dead_queue.clone(), queue, message.body, reason);
            match publisher.publish(dead).await {
                Ok(()) => {
                    DEAD_LETTERED.with_label_values(&["unparseable"]).inc();
                    Settlement::Ack
                }
                Err(error) => {
                    tracing::error!(queue, error = %error, "could not dead-letter; returning the message");
                    Settlement::Requeue
                }
            }
        }
        Handled::Requeue(reason) => {
            tracing::warn!(queue, reason = %reason, "returning a message to the queue");
            tokio::time::sleep(REQUEUE_PAUSE).await;
            Settlement::Requeue
        }
    }
}
