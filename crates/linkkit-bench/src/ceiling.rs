//! The raw broker on this machine: persistent messages published with confirms through a
//! durable queue and consumed with manual acks — what every Linkkit figure is a ratio of.

use std::time::Instant;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use linkkit_bus::Broker;

const WINDOW: usize = 500;
const BODY_BYTES: usize = 450;

/// Messages per second, end to end (first publish to last ack).
pub async fn broker_ceiling(amqp_url: &str, messages: usize) -> anyhow::Result<f64> {
    let broker = Broker::new(amqp_url);
    let queue = format!("bench-ceiling-{}", uuid::Uuid::now_v7().simple());
    let setup = broker.channel().await?;
    setup
        .queue_declare(
            &queue,
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;

    let consume_channel = broker.channel().await?;
    consume_channel
        .basic_qos(1000, BasicQosOptions::default())
        .await?;
    let mut consumer = consume_channel
        .basic_consume(
            &queue,
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consuming = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(Ok(delivery)) = consumer.next().await {
            seen += 1;
            if seen % 100 == 0 || seen == messages {
                delivery.ack(BasicAckOptions { multiple: true }).await?;
            }
            if seen == messages {
                break;
            }
        }
        Ok::<Instant, lapin::Error>(Instant::now())
    });

    let publish_channel = broker.channel().await?;
    publish_channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let body = vec![b'x'; BODY_BYTES];
    let started = Instant::now();
    let mut sent = 0;
    while sent < messages {
        let mut confirms = Vec::with_capacity(WINDOW);
        for _ in 0..WINDOW.min(messages - sent) {
            let properties = BasicProperties::default().with_delivery_mode(2);
            confirms.push(
                publish_channel
                    .basic_publish(
                        "",
                        &queue,
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await?,
            );
            sent += 1;
        }
        for confirm in futures_util::future::try_join_all(confirms).await? {
            anyhow::ensure!(!confirm.is_nack(), "the broker refused a message");
        }
    }
    let finished = consuming.await??;
    setup
        .queue_delete(&queue, QueueDeleteOptions::default())
        .await?;
    broker.close().await;
    Ok(messages as f64 / (finished - started).as_secs_f64())
}
