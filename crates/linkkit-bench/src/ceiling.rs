//! The raw broker on this machine: persistent messages published with confirms through a
//! durable queue and consumed with manual acks — what every Linkkit figure is a ratio of.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use linkkit_bus::Broker;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub(crate) const WINDOW: usize = 500;
pub(crate) const BODY_BYTES: usize = 450;
/// The drain's prefetch, and how many messages one `multiple` ack covers.
const PREFETCH: u16 = 1000;
const ACK_EVERY: usize = 100;
/// A drain that took nothing for this long acknowledges what it holds.
const IDLE_ACK: Duration = Duration::from_millis(50);

/// Messages per second, end to end (first publish to the last message consumed).
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

    let drain = Drain::start(&broker, &queue).await?;

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
    let finished = drain.wait_for(messages).await?;
    drain.stop().await?;
    setup
        .queue_delete(&queue, QueueDeleteOptions::default())
        .await?;
    broker.close().await;
    Ok(messages as f64 / (finished - started).as_secs_f64())
}

/// A consumer that takes every message of a queue and acknowledges it with manual acks, one
/// `multiple` ack per 100 messages: the ceiling's consumer, and the one that drains the
/// redirect's clicks while their rate is measured, so both figures see the same broker work.
pub struct Drain {
    taken: watch::Receiver<(usize, Instant)>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), lapin::Error>>,
    channel: Channel,
}

impl Drain {
    pub async fn start(broker: &Broker, queue: &str) -> anyhow::Result<Self> {
        Self::start_acking_every(broker, queue, ACK_EVERY).await
    }

    /// A drain whose `multiple` acks each cover `ack_every` messages (1: one ack per message).
    pub async fn start_acking_every(
        broker: &Broker,
        queue: &str,
        ack_every: usize,
    ) -> anyhow::Result<Self> {
        let channel = broker.channel().await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                queue,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (counter, taken) = watch::channel((0, Instant::now()));
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let multiple = BasicAckOptions { multiple: true };
            let mut seen = 0;
            let mut unacked = None;
            loop {
                let next = tokio::select! {
                    _ = &mut stopped => break,
                    next = tokio::time::timeout(IDLE_ACK, consumer.next()) => next,
                };
                match next {
                    Ok(Some(delivery)) => {
                        let delivery = delivery?;
                        seen += 1;
                        counter.send_replace((seen, Instant::now()));
                        if seen % ack_every == 0 {
                            delivery.ack(multiple).await?;
                            unacked = None;
                        } else {
                            unacked = Some(delivery);
                        }
                    }
                    Ok(None) => break,
                    Err(_idle) => {
                        if let Some(delivery) = unacked.take() {
                            delivery.ack(multiple).await?;
                        }
                    }
                }
            }
            if let Some(delivery) = unacked {
                delivery.ack(multiple).await?;
            }
            Ok(())
        });
        Ok(Self {
            taken,
            stop,
            task,
            channel,
        })
    }

    /// Messages taken so far.
    pub fn taken(&self) -> usize {
        self.taken.borrow().0
    }

    /// Waits until `count` messages were taken; the moment the last of them was.
    pub async fn wait_for(&self, count: usize) -> anyhow::Result<Instant> {
        let mut taken = self.taken.clone();
        let reached = taken
            .wait_for(|(seen, _)| *seen >= count)
            .await
            .map_err(|_| anyhow::anyhow!("the drain stopped after {} messages", self.taken()))?;
        Ok(reached.1)
    }

    /// Acknowledges what it holds and stops consuming; the number of messages it took.
    pub async fn stop(self) -> anyhow::Result<usize> {
        let Drain {
            taken,
            stop,
            task,
            channel,
        } = self;
        let _ = stop.send(());
        task.await??;
        channel.close(200, "drained").await?;
        let taken = taken.borrow().0;
        Ok(taken)
    }
}
