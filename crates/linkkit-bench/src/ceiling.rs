//! The raw broker on this machine: persistent messages published with confirms through a
//! durable queue and consumed with manual acks — what every Linkkit figure is a ratio of.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::Channel;
use linkkit_bus::Broker;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::broker_shapes;

pub(crate) const WINDOW: usize = 500;
pub(crate) const BODY_BYTES: usize = 450;
/// The drain's prefetch, and how many messages one `multiple` ack covers.
const PREFETCH: u16 = 1000;
const ACK_EVERY: usize = 100;
/// A drain that took nothing for this long acknowledges what it holds.
const IDLE_ACK: Duration = Duration::from_millis(50);

/// Messages per second, end to end (first publish to the last message consumed).
pub async fn broker_ceiling(amqp_url: &str, messages: usize) -> anyhow::Result<f64> {
    broker_shapes::run(amqp_url, messages, broker_shapes::CEILING).await
}

/// A consumer that takes every message of a queue and acknowledges it with manual acks, one
/// `multiple` ack per 100 messages: the ceiling's consumer, and the one that drains the
/// redirect's clicks while their rate is measured, so both figures see the same broker work.
pub struct Drain {
    taken: watch::Receiver<(usize, Instant)>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), lapin::Error>>,
    channel: Channel,
    consumer_tag: String,
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
        let consumer_tag = consumer.tag().to_string();
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
            consumer_tag,
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
            consumer_tag,
        } = self;
        let _ = stop.send(());
        task.await?.context("the drain's consumer failed")?;
        // Cancelled first, so the broker pushes nothing while the channel closes.
        channel
            .basic_cancel(&consumer_tag, BasicCancelOptions::default())
            .await
            .context("cancelling the drain's consumer failed")?;
        channel
            .close(200, "drained")
            .await
            .context("closing the drain's channel failed")?;
        let taken = taken.borrow().0;
        Ok(taken)
    }
}
