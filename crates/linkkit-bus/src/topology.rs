//! The exchanges and queues of SPEC §7, declared idempotently by every process that uses them.
//!
//! | name                          | kind                                              |
//! |-------------------------------|---------------------------------------------------|
//! | `{ns}.events`                 | topic exchange, routing key = event type          |
//! | `{ns}.fanout`                 | queue bound to `{ns}.events` with `#`             |
//! | `{ns}.deliveries`             | direct exchange + queue (routing key `job`)       |
//! | `{ns}.deliveries.retry.{d}`   | queue with TTL `d`, dead-letters to deliveries    |
//! | `{ns}.deliveries.dead`        | queue of exhausted and unparseable messages       |
//! | `{ns}.counters`               | queue bound to `link.clicked` and `qr.scanned`    |

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use linkkit_core::{EventType, Namespace};

use crate::BusError;

/// Routing key of delivery jobs on the deliveries exchange.
pub const JOB_ROUTING_KEY: &str = "job";

#[derive(Debug, Clone)]
pub struct Topology {
    pub namespace: Namespace,
    /// Delays of the retry queues (see `RetrySchedule::tiers`).
    pub retry_tiers: Vec<Duration>,
}

impl Topology {
    pub fn new(namespace: Namespace, retry_tiers: Vec<Duration>) -> Self {
        Self {
            namespace,
            retry_tiers,
        }
    }

    pub async fn declare(&self, channel: &Channel) -> Result<(), BusError> {
        let ns = &self.namespace;
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let durable_queue = QueueDeclareOptions {
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
            .queue_declare(&ns.fanout_queue(), durable_queue, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                &ns.fanout_queue(),
                &ns.events_exchange(),
                "#",
                QueueBindOptions::default(),
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
        channel
            .queue_declare(&ns.deliveries(), durable_queue, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                &ns.deliveries(),
                &ns.deliveries(),
                JOB_ROUTING_KEY,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
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
            channel
                .queue_declare(&ns.retry_queue(*delay), durable_queue, arguments)
                .await?;
        }

        channel
            .queue_declare(&ns.dead_queue(), durable_queue, FieldTable::default())
            .await?;

        channel
            .queue_declare(&ns.counters_queue(), durable_queue, FieldTable::default())
            .await?;
        for visit in [EventType::LinkClicked, EventType::QrScanned] {
            let options = QueueBindOptions::default();
            channel
                .queue_bind(
                    &ns.counters_queue(),
                    &ns.events_exchange(),
                    visit.as_str(),
                    options,
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// Every queue this topology declares (for tests that clean up after themselves).
    pub fn queue_names(&self) -> Vec<String> {
        let ns = &self.namespace;
        let mut names = vec![
            ns.fanout_queue(),
            ns.deliveries(),
            ns.dead_queue(),
            ns.counters_queue(),
        ];
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
