//! Publishing with confirms: a message counts as sent only once the broker has confirmed it.
//!
//! Messages are persistent. A batch is published in one go and then every confirm is awaited,
//! so the round trips overlap. A failure drops the channel; the next call opens a new one on a
//! (re-established) connection, and the caller decides whether to retry.

use std::future::Future;
use std::sync::Mutex as StdMutex;
use std::task::Poll;

use futures_util::future::{try_join_all, Either};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Channel};
use tokio::sync::Mutex;

use crate::broker::{Broker, BusError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use linkkit_core::{DeliveryJob, Envelope, EventType, Namespace, WorkspaceId};

use crate::headers::{
    header_table, OCCURRED_AT_HEADER, REASON_HEADER, SOURCE_QUEUE_HEADER, WORKSPACE_HEADER,
};
use crate::topology::JOB_ROUTING_KEY;
use crate::Topology;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Outgoing {
    /// A domain event for the events exchange, routed by its type. `occurred_at` is when it
    /// happened, to the millisecond (the envelope's `timestamp` shows whole seconds); it starts
    /// the event-to-delivery lag.
    pub fn event(
        namespace: &Namespace,
        workspace_id: &WorkspaceId,
        event: &Envelope,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self::event_body(
            namespace,
            workspace_id,
            event.event,
            event.to_body(),
            occurred_at,
        )
    }

    /// A domain event whose body is already written (see [`Envelope::body_of`]).
    pub fn event_body(
        namespace: &Namespace,
        workspace_id: &WorkspaceId,
        event_type: EventType,
        body: Vec<u8>,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            exchange: namespace.events_exchange(),
            routing_key: event_type.as_str().to_owned(),
            body,
            headers: vec![
                (WORKSPACE_HEADER, workspace_id.to_string()),
                (
                    OCCURRED_AT_HEADER,
                    occurred_at.timestamp_millis().to_string(),
                ),
            ],
        }
    }

    /// A delivery job for the senders.
    pub fn job(namespace: &Namespace, job: &DeliveryJob) -> Self {
        Self {
            exchange: namespace.deliveries(),
            routing_key: JOB_ROUTING_KEY.to_owned(),
            body: serde_json::to_vec(job).expect("a job serializes"),
            headers: vec![(WORKSPACE_HEADER, job.workspace_id.to_string())],
        }
    }

    /// A job parked in the retry queue of `delay`; it returns to the senders when it expires.
    pub fn retry(namespace: &Namespace, delay: Duration, job: &DeliveryJob) -> Self {
        Self {
            exchange: String::new(),
            routing_key: namespace.retry_queue(delay),
            ..Self::job(namespace, job)
        }
    }

    /// A message taken from `source_queue` that cannot be handled, for the dead-letter queue,
    /// with the reason.
    pub fn unparseable(
        dead_queue: String,
        source_queue: &str,
        body: Vec<u8>,
        reason: String,
    ) -> Self {
        Self {
            exchange: String::new(),
            routing_key: dead_queue,
            body,
            headers: vec![
                (REASON_HEADER, reason),
                (SOURCE_QUEUE_HEADER, source_queue.to_owned()),
            ],
        }
    }

    /// A job whose retries are exhausted, with the reason.
    pub fn dead(namespace: &Namespace, job: &DeliveryJob, reason: String) -> Self {
        let mut message = Self {
            exchange: String::new(),
            routing_key: namespace.dead_queue(),
            ..Self::job(namespace, job)
        };
        message.headers.push((REASON_HEADER, reason));
        message
    }
}

#[derive(Debug)]
pub struct Publisher {
    broker: Broker,
    topology: Topology,
    channel: Mutex<Option<Channel>>,
    /// Held while a batch is handed to lapin, so concurrent batches keep their confirms apart.
    handing_over: StdMutex<()>,
}

impl Publisher {
    /// A publisher that declares `topology` on every channel it opens, so the exchanges it
    /// publishes to exist even on a broker that was just reset.
    pub fn new(broker: Broker, topology: Topology) -> Self {
        Self {
            broker,
            topology,
            channel: Mutex::new(None),
            handing_over: StdMutex::new(()),
        }
    }

    pub async fn publish(&self, message: Outgoing) -> Result<(), BusError> {
        self.publish_all(std::slice::from_ref(&message)).await
    }

    /// Publishes every message, then waits for all confirms. `Ok` means all are on the broker.
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let channel = self.confirmed_channel().await?;
        let result = publish_on(&channel, &self.handing_over, messages).await;
        if result.is_err() {
            self.channel.lock().await.take();
        }
        result
    }

    async fn confirmed_channel(&self) -> Result<Channel, BusError> {
        let mut guard = self.channel.lock().await;
        if let Some(channel) = guard.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        let channel = self.broker.channel().await?;
        self.topology.declare(&channel).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *guard = Some(channel.clone());
        Ok(channel)
    }
}

/// Publishes `messages` on `channel` with Linkkit's properties and waits for their confirms.
async fn publish_on(
    channel: &Channel,
    handing_over: &StdMutex<()>,
    messages: &[Outgoing],
) -> Result<(), BusError> {
    let publications = messages
        .iter()
        .map(|message| Publication {
            exchange: &message.exchange,
            routing_key: &message.routing_key,
            body: &message.body,
            properties: message_properties(&message.headers),
        })
        .collect();
    publish_confirmed(channel, handing_over, publications).await
}

/// The properties of every message Linkkit publishes: persistent, JSON, with its headers.
pub fn message_properties(headers: &[(&str, String)]) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(header_table(headers))
}

/// One message as lapin takes it, for [`publish_confirmed`].
#[derive(Debug, Clone)]
pub struct Publication<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub properties: BasicProperties,
}

/// Publishes `messages` on `channel`, a channel in confirm mode, in order, and waits for every
/// confirm; `Ok` means the broker has them all. `handing_over` is held while they are handed to
/// lapin (see below), so batches published at once from several tasks never interleave.
/// Everything that publishes in batches goes through here, Linkkit's publisher and the
/// benchmark's raw ceiling alike, so the two pay the same for a message.
pub async fn publish_confirmed<'a>(
    channel: &Channel,
    handing_over: &StdMutex<()>,
    messages: Vec<Publication<'a>>,
) -> Result<(), BusError> {
    // lapin's `basic_publish` numbers the message for its confirm and then queues its frames,
    // under two locks, the first time it is polled, and then waits until its I/O thread has
    // written them. Awaiting each in turn would cost two wake-ups between threads per message,
    // so every publish of the batch is polled once here, in order, and the writes are awaited
    // together. The hand-over is one synchronous step under `handing_over`: another task
    // publishing on the channel between a message's number and its frames would give the
    // broker's confirm for one message to the promise of another.
    let mut messages = Some(messages);
    let sends = std::future::poll_fn(|cx| {
        let _in_order = handing_over
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let messages = messages.take().unwrap_or_default();
        let mut sends = Vec::with_capacity(messages.len());
        for message in messages {
            let mut send = Box::pin(channel.basic_publish(
                message.exchange,
                message.routing_key,
                BasicPublishOptions::default(),
                message.body,
                message.properties,
            ));
            sends.push(match send.as_mut().poll(cx) {
                Poll::Ready(result) => Either::Left(std::future::ready(result)),
                Poll::Pending => Either::Right(send),
            });
        }
        Poll::Ready(sends)
    })
    .await;
    let confirms = try_join_all(sends).await?;
    let confirmations = try_join_all(confirms).await?;
    if confirmations.iter().any(Confirmation::is_nack) {
        return Err(BusError::Nacked);
    }
    Ok(())
}
