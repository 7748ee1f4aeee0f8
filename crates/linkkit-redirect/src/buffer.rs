//! The bounded buffer between redirects and the broker.
//!
//! `EventBuffer::offer` never waits: it queues the visit or, when the buffer is full, drops it
//! and counts the drop. A visit's JSON is written only as it is published (see `visit.rs`).
//! One background task drains the buffer in batches through a confirmed publisher, a few
//! batches in flight at once so the broker's confirm wait is overlapped; while the broker is
//! away each batch stays in hand and is retried, so events that fit in the buffer survive a
//! broker restart.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use linkkit_bus::metrics::MESSAGES_PUBLISHED;
use linkkit_bus::Publisher;
use linkkit_core::EventType;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::{EVENTS_BUFFERED, EVENTS_DROPPED};
use crate::visit::Visit;
use crate::RedirectConfig;

const MAX_BATCH: usize = 512;
/// Batches published and awaiting confirms at once.
const BATCHES_IN_FLIGHT: usize = 4;
const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// How long a stopping process keeps trying to publish what it holds.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The redirect's handle on the buffer.
#[derive(Clone)]
pub struct EventBuffer {
    sender: mpsc::Sender<Visit>,
}

impl std::fmt::Debug for EventBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBuffer")
            .field("capacity", &self.sender.max_capacity())
            .finish()
    }
}

/// The publisher's end of the buffer.
pub struct EventBufferReceiver(mpsc::Receiver<Visit>);

impl std::fmt::Debug for EventBufferReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventBufferReceiver")
    }
}

impl EventBuffer {
    pub fn new(capacity: usize) -> (Self, EventBufferReceiver) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (Self { sender }, EventBufferReceiver(receiver))
    }

    /// Queues a visit without waiting; false (and counted) when it had to be dropped.
    pub fn offer(&self, visit: Visit) -> bool {
        match self.sender.try_send(visit) {
            Ok(()) => {
                EVENTS_BUFFERED.inc();
                true
            }
            Err(_) => {
                EVENTS_DROPPED.inc();
                false
            }
        }
    }
}

/// Drains the buffer into the events exchange until `shutdown`, then publishes what is left
/// (for up to ten seconds) and returns.
pub async fn run_buffer_publisher(
    EventBufferReceiver(mut receiver): EventBufferReceiver,
    publisher: Arc<Publisher>,
    config: Arc<RedirectConfig>,
    shutdown: CancellationToken,
) {
    // Set at the first failed publish after shutdown began: the moment after which
    // unpublishable events are given up.
    let give_up_at = Arc::new(OnceLock::new());
    let mut in_flight = JoinSet::new();
    loop {
        if in_flight.len() >= BATCHES_IN_FLIGHT {
            in_flight.join_next().await;
            continue;
        }
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
            next = receiver.recv() => match next {
                Some(item) => item,
                None => break,
            },
        };
        let batch = fill_batch(first, &mut receiver);
        let (publisher, config, shutdown, give_up_at) = (
            publisher.clone(),
            config.clone(),
            shutdown.clone(),
            give_up_at.clone(),
        );
        in_flight.spawn(async move {
            publish_until_confirmed(batch, &publisher, &config, &shutdown, &give_up_at).await
        });
    }
    receiver.close();
    while let Some(first) = receiver.recv().await {
        let batch = fill_batch(first, &mut receiver);
        publish_until_confirmed(batch, &publisher, &config, &shutdown, &give_up_at).await;
    }
    while in_flight.join_next().await.is_some() {}
}

fn fill_batch(first: Visit, receiver: &mut mpsc::Receiver<Visit>) -> Vec<Visit> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    batch
}

async fn publish_until_confirmed(
    batch: Vec<Visit>,
    publisher: &Publisher,
    config: &RedirectConfig,
    shutdown: &CancellationToken,
    give_up_at: &OnceLock<tokio::time::Instant>,
) {
    let held = batch.len();
    let mut messages = Vec::with_capacity(held);
    let mut scans = 0;
    for visit in batch {
        match visit.to_outgoing(&config.namespace, &config.public_base_url) {
            Some(message) => {
                scans += u64::from(visit.event == EventType::QrScanned);
                messages.push(message);
            }
            None => {
                tracing::error!(link_id = %visit.link.link_id, "a cached link has a malformed id; dropping its visit");
                EVENTS_DROPPED.inc();
            }
        }
    }
    loop {
        match publisher.publish_all(&messages).await {
            Ok(()) => {
                EVENTS_BUFFERED.sub(held as i64);
                let clicks = messages.len() as u64 - scans;
                for (event_type, count) in [
                    (EventType::LinkClicked, clicks),
                    (EventType::QrScanned, scans),
                ] {
                    MESSAGES_PUBLISHED
                        .with_label_values(&[event_type.as_str(), "redirect"])
                        .inc_by(count);
                }
                return;
            }
            Err(error) => {
                let now = tokio::time::Instant::now();
                let give_up = shutdown.is_cancelled()
                    && now >= *give_up_at.get_or_init(|| now + SHUTDOWN_GRACE);
                if give_up {
                    tracing::error!(count = messages.len(), error = %error, "dropping buffered events at shutdown");
                    EVENTS_BUFFERED.sub(held as i64);
                    EVENTS_DROPPED.inc_by(messages.len() as u64);
                    return;
                }
                tracing::warn!(count = messages.len(), error = %error, "broker unavailable; holding events");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}
