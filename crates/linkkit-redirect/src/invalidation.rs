//! Keeps the link caches of this redirect process current: an exclusive queue of its own, bound
//! to the events exchange for `link.created`, `link.updated` and `link.deleted` — exactly what
//! any consumer of the exchange may do. Each event writes the link's new state into the caches.
//! While disconnected it may miss events, so on every (re)connect the local cache is emptied.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::BasicAckOptions;
use lapin::types::FieldTable;
use linkkit_bus::{header_string, Broker, BusError, Topology, WORKSPACE_HEADER};
use linkkit_core::event::{LinkState, LinkUpdate};
use linkkit_core::{Envelope, EventType};
use tokio_util::sync::CancellationToken;

use crate::lookup::{from_event, LinkCache};

const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

pub async fn run_cache_invalidation(
    broker: Broker,
    topology: Topology,
    cache: LinkCache,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        match consume(&broker, &topology, &cache, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(error = %error, "link cache invalidation lost its queue; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RECONNECT_BACKOFF) => {}
                }
            }
        }
    }
}

async fn consume(
    broker: &Broker,
    topology: &Topology,
    cache: &LinkCache,
    shutdown: &CancellationToken,
) -> Result<(), BusError> {
    let channel = broker.channel().await?;
    let link_events = [
        EventType::LinkCreated,
        EventType::LinkUpdated,
        EventType::LinkDeleted,
    ];
    let mut consumer = topology
        .consume_events(&channel, &link_events, FieldTable::default())
        .await?;
    cache.clear_local();
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => {
                let _ = channel.close(200, "stopping").await;
                return Ok(());
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => return Err(error.into()),
                None => return Err(BusError::Unreachable("the broker cancelled the consumer".into())),
            },
        };
        let workspace = header_string(delivery.properties.headers().as_ref(), WORKSPACE_HEADER);
        match (
            workspace,
            serde_json::from_slice::<Envelope>(&delivery.data),
        ) {
            (Some(workspace), Ok(event)) => apply(cache, &workspace, event).await,
            _ => tracing::warn!("ignoring a link event that cannot be read"),
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
}

async fn apply(cache: &LinkCache, workspace: &str, event: Envelope) {
    match event.event {
        EventType::LinkCreated | EventType::LinkDeleted => {
            if let Ok(state) = serde_json::from_value::<LinkState>(event.data) {
                cache
                    .apply(
                        from_event(workspace, state, event.event == EventType::LinkDeleted),
                        None,
                    )
                    .await;
            }
        }
        EventType::LinkUpdated => {
            if let Ok(update) = serde_json::from_value::<LinkUpdate>(event.data) {
                let old_slug = update
                    .previous_attributes
                    .get("slug")
                    .and_then(|s| s.as_str())
                    .map(str::to_owned);
                cache
                    .apply(
                        from_event(workspace, update.link, false),
                        old_slug.as_deref(),
                    )
                    .await;
            }
        }
        EventType::LinkClicked | EventType::QrScanned => {}
    }
}
