//! Publishing with confirms: a message counts as sent only once the broker has confirmed it.
//!
//! Messages are persistent. A batch is published in one go and then every confirm is awaited,
//! so the round trips overlap. A failure drops the channel; the next call opens a new one on a
//! (re-established) connection, and the caller decides whether to retry.

use futures_util::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Channel};
use tokio::sync::Mutex;

use crate::broker::{Broker, BusError};
use crate::headers::table;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Debug)]
pub struct Publisher {
    broker: Broker,
    channel: Mutex<Option<Channel>>,
}

impl Publisher {
    pub fn new(broker: Broker) -> Self {
        Self {
            broker,
            channel: Mutex::new(None),
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
        let result = publish_on(&channel, messages).await;
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
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *guard = Some(channel.clone());
        Ok(channel)
    }
}

async fn publish_on(channel: &Channel, messages: &[Outgoing]) -> Result<(), BusError> {
    let mut confirms = Vec::with_capacity(messages.len());
    for message in messages {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(table(&message.headers));
        let confirm = channel
            .basic_publish(
                &message.exchange,
                &message.routing_key,
                BasicPublishOptions::default(),
                &message.body,
                properties,
            )
            .await?;
        confirms.push(confirm);
    }
    let confirmations = try_join_all(confirms).await?;
    if confirmations.iter().any(Confirmation::is_nack) {
        return Err(BusError::Nacked);
    }
    Ok(())
}
