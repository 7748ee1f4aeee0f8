//! The exchanges and queues of SPEC §7, declared idempotently by every process that uses them.
//!
//! | name                          | kind                                              |
//! |-------------------------------|---------------------------------------------------|
//! | `{ns}.events`                 | topic exchange, routing key = event type          |
//! | `{ns}.fanout`                 | queue bound to `{ns}.events` with `#`             |
//! | `{ns}.deliveries`             | direct exchange + queue (routing key `job`)       |
//! | `{ns}.deliveries.retry.{d}`   | queue with TTL `d`, dead-letters to deliveries    |
//! | `{ns}.deliveries.dead`        | queue of exhausted and unparseable messages       |

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer, ExchangeKind};
use linkkit_core::{EventType, Namespace};

use crate::BusError;

/// Routing key of delivery jobs on the deliveries exchange.
pub const JOB_ROUTING_KEY: &str = "job";

/// The kind of every durable queue Linkkit declares (`LINKKIT_QUEUE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// One node holds each queue; right for a single broker.
    #[default]
    Classic,
    /// Replicated with Raft across a cluster's nodes; survives the loss of a minority of nodes.
    Quorum,
}

impl QueueType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "classic" => Some(QueueType::Classic),
            "quorum" => Some(QueueType::Quorum),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub namespace: Namespace,
    /// Delays of the retry queues (see `RetrySchedule::tiers`).
    pub retry_tiers: Vec<Duration>,
    pub queue_type: QueueType,
}

impl Topology {
    /// A topology of classic queues.
    pub fn new(namespace: Namespace, retry_tiers: Vec<Duration>) -> Self {
        Self {
            namespace,
            retry_tiers,
            queue_type: QueueType::Classic,
        }
    }

    pub fn with_queue_type(self, queue_type: QueueType) -> Self {
        Self { queue_type, ..self }
    }

    /// Arguments every durable queue gets for the chosen queue type.
    fn queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        arguments
    }

    /// Declares `name` as a durable queue of this topology's queue type, as Linkkit declares
    /// its own (a no-op when it exists so).
    pub async fn declare_durable_queue(
        &self,
        channel: &Channel,
        name: &str,
    ) -> Result<(), BusError> {
        self.durable_queue(channel, name, FieldTable::default())
            .await
    }

    async fn durable_queue(
        &self,
        channel: &Channel,
        name: &str,
        mut arguments: FieldTable,
    ) -> Result<(), BusError> {
        for (key, value) in self.queue_arguments().inner() {
            arguments.insert(key.clone(), value.clone());
        }
        let options = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel.queue_declare(name, options, arguments).await?;
        Ok(())
    }

    async fn bind(
        &self,
        channel: &Channel,
        queue: &str,
        exchange: &str,
        key: &str,
    ) -> Result<(), BusError> {
        channel
            .queue_bind(
                queue,
                exchange,
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }

    pub async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        let ns = &self.namespace;
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                &ns.events_exchange(),
                ExchangeKind::Topic,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                &ns.deliveries(),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;

        self.durable_queue(channel, &ns.fanout_queue(), FieldTable::default())
            .await?;
        self.bind(channel, &ns.fanout_queue(), &ns.events_exchange(), "#")
            .await?;

        self.durable_queue(channel, &ns.deliveries(), FieldTable::default())
            .await?;
        self.bind(channel, &ns.deliveries(), &ns.deliveries(), JOB_ROUTING_KEY)
            .await?;

        for delay in &self.retry_tiers {
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(delay.as_millis() as i64),
            );
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(ns.deliveries().into()),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(JOB_ROUTING_KEY.into()),
            );
            if self.queue_type == QueueType::Quorum {
                // A retry must not vanish if the deliveries queue is briefly unavailable.
                arguments.insert(
                    "x-dead-letter-strategy".into(),
                    AMQPValue::LongString("at-least-once".into()),
                );
                arguments.insert(
                    "x-overflow".into(),
                    AMQPValue::LongString("reject-publish".into()),
                );
            }
            self.durable_queue(channel, &ns.retry_queue(*delay), arguments)
                .await?;
        }

        self.durable_queue(channel, &ns.dead_queue(), FieldTable::default())
            .await?;
        Ok(())
    }

    /// A queue of the caller's own — server-named, exclusive, deleted when its channel closes —
    /// bound to the events exchange for `event_types`, with a consumer on it: how any part
    /// listens to domain events without taking them from the fan-out (`arguments` may bound
    /// the queue, e.g. `x-max-length`).
    pub async fn consume_events(
        &self,
        channel: &Channel,
        event_types: &[EventType],
        arguments: FieldTable,
    ) -> Result<Consumer, BusError> {
        self.declare(channel).await?;
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = channel.queue_declare("", options, arguments).await?;
        for event_type in event_types {
            self.bind(
                channel,
                queue.name().as_str(),
                &self.namespace.events_exchange(),
                event_type.as_str(),
            )
            .await?;
        }
        let consumer = channel
            .basic_consume(
                queue.name().as_str(),
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(consumer)
    }

    /// Every queue this topology declares (for tests that clean up after themselves).
    pub fn queue_names(&self) -> Vec<String> {
        let ns = &self.namespace;
        let mut names = vec![ns.fanout_queue(), ns.deliveries(), ns.dead_queue()];
        names.extend(self.retry_tiers.iter().map(|delay| ns.retry_queue(*delay)));
        names
    }

    /// Deletes every queue and exchange of the namespace. Only tests should want this.
    pub async fn delete(&self, channel: &Channel) -> Result<(), BusError> {
        for queue in self.queue_names() {
            channel
                .queue_delete(&queue, QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [
            self.namespace.events_exchange(),
            self.namespace.deliveries(),
        ] {
            channel
                .exchange_delete(&exchange, Default::default())
                .await?;
        }
        Ok(())
    }
}
