//! What the broker itself costs per message in the shapes Linkkit uses it, step by step from
//! the ceiling's: the properties Linkkit sends, a topic exchange, one ack per message, a
//! backlog, and two passages (a relay doing no work between them); and, beside them, a topic
//! exchange with only the header SPEC §7 asks for, the least any publisher of events can
//! send. With the CPU split beside each, this shows how much of a delivery's broker cost any
//! client would pay for the same traffic, and so how far the pipeline's ratio to the ceiling
//! can go on this machine.

use std::sync::Mutex as StdMutex;
use std::time::Instant;

use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind};
use linkkit_bus::{
    header_table, message_properties, publish_confirmed, Broker, Publication, OCCURRED_AT_HEADER,
    WORKSPACE_HEADER,
};

use crate::ceiling::{Drain, BODY_BYTES, WINDOW};

/// One way of moving messages through the broker.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    /// What each message carries beside its body and persistence.
    pub properties: Properties,
    /// Through a topic exchange bound with `#`, not the default exchange.
    pub topic: bool,
    /// The last consumer acknowledges each message alone, not 100 at a time (a relay always
    /// acknowledges what it took in one `multiple` ack per group).
    pub ack_each: bool,
    /// Every message is published before any is consumed (they wait in the queue).
    pub backlog: bool,
    /// Two passages: a relay consumes each message and publishes it again, confirmed, to a
    /// second queue, which the drain empties.
    pub relay: bool,
}

/// The properties of a shape's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Properties {
    /// Persistence alone, as the ceiling's messages.
    None,
    /// The workspace header alone: what SPEC §7 asks of every event.
    WorkspaceHeader,
    /// What Linkkit's events carry: a content type, the workspace header and the time the
    /// event happened.
    Linkkit,
}

/// The ceiling's shape: what [`crate::ceiling::broker_ceiling`] measures.
pub const CEILING: Shape = Shape {
    name: "the ceiling's",
    properties: Properties::None,
    topic: false,
    ack_each: false,
    backlog: false,
    relay: false,
};
const PROPERTIES: Shape = Shape {
    name: "+ Linkkit's properties (content type, two headers)",
    properties: Properties::Linkkit,
    ..CEILING
};
const TOPIC: Shape = Shape {
    name: "+ a topic exchange",
    topic: true,
    ..PROPERTIES
};
const TOPIC_SPEC_MINIMUM: Shape = Shape {
    name: "a topic exchange, the workspace header alone (the least SPEC §7 allows)",
    properties: Properties::WorkspaceHeader,
    ..TOPIC
};
const ACK_EACH: Shape = Shape {
    name: "+ one ack per message",
    ack_each: true,
    ..TOPIC
};
const RELAY: Shape = Shape {
    name: "+ a topic exchange, + a second passage (relay, no work)",
    relay: true,
    ..TOPIC
};
const RELAY_ACK_EACH: Shape = Shape {
    name: "+ a second passage, + one ack per message",
    ack_each: true,
    ..RELAY
};
const RELAY_BACKLOG: Shape = Shape {
    name: "+ a second passage, + a backlog (all published first)",
    backlog: true,
    ..RELAY
};

/// The shapes: each of the first three adds one thing to the one before; the fourth is the
/// third with Linkkit's properties cut to what SPEC §7 asks; the fifth adds one ack per message
/// to the third; the sixth adds a second passage to the third (the least two passages can cost
/// the broker), and the last two add one ack per message or a backlog to it.
pub const SHAPES: [Shape; 8] = [
    CEILING,
    PROPERTIES,
    TOPIC,
    TOPIC_SPEC_MINIMUM,
    ACK_EACH,
    RELAY,
    RELAY_ACK_EACH,
    RELAY_BACKLOG,
];

/// Messages per second through `shape`, first publish to the last message consumed.
pub async fn run(amqp_url: &str, messages: usize, shape: Shape) -> anyhow::Result<f64> {
    let broker = Broker::new(amqp_url);
    let id = uuid::Uuid::now_v7().simple().to_string();
    let first = format!("bench-shape-{id}");
    let second = format!("bench-shape-{id}-relayed");
    let exchange = format!("bench-shape-{id}");
    let queues: &[&String] = if shape.relay {
        &[&first, &second]
    } else {
        &[&first]
    };
    let setup = broker.channel().await?;
    for queue in queues {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        setup
            .queue_declare(queue, durable, FieldTable::default())
            .await?;
    }
    let (publish_exchange, routing_key) = if shape.topic {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        setup
            .exchange_declare(
                &exchange,
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        setup
            .queue_bind(
                &first,
                &exchange,
                "#",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        (exchange.as_str(), "link.clicked")
    } else {
        ("", first.as_str())
    };
    let consumers = Consumers {
        broker: &broker,
        shape,
        first: &first,
        second: &second,
    };
    let publisher = confirmed_channel(&broker).await?;
    let properties = properties(shape.properties);
    let body = vec![b'x'; BODY_BYTES];
    // Without a backlog the consumers wait before the first publish, as the ceiling's does.
    let waiting = if shape.backlog {
        None
    } else {
        Some(consumers.start(&properties).await?)
    };
    let started = Instant::now();
    let mut sent = 0;
    while sent < messages {
        let window = WINDOW.min(messages - sent);
        let bodies = std::iter::repeat_n(body.as_slice(), window);
        publish_window(
            &publisher,
            publish_exchange,
            routing_key,
            bodies,
            &properties,
        )
        .await?;
        sent += window;
    }
    let (drain, relay) = match waiting {
        Some(running) => running,
        None => consumers.start(&properties).await?,
    };
    let finished = drain.wait_for(messages).await?;
    drain.stop().await?;
    if let Some(relay) = relay {
        relay.stop().await?;
    }
    for queue in queues {
        setup
            .queue_delete(queue, QueueDeleteOptions::default())
            .await?;
    }
    if shape.topic {
        setup
            .exchange_delete(&exchange, ExchangeDeleteOptions::default())
            .await?;
    }
    broker.close().await;
    Ok(messages as f64 / (finished - started).as_secs_f64())
}

/// The consumers of a shape: a drain on the last queue, and the relay before it if any.
struct Consumers<'a> {
    broker: &'a Broker,
    shape: Shape,
    first: &'a str,
    second: &'a str,
}

impl Consumers<'_> {
    async fn start(&self, properties: &BasicProperties) -> anyhow::Result<(Drain, Option<Relay>)> {
        let ack_every = if self.shape.ack_each { 1 } else { 100 };
        let drained = if self.shape.relay {
            self.second
        } else {
            self.first
        };
        let drain = Drain::start_acking_every(self.broker, drained, ack_every).await?;
        let relay = if self.shape.relay {
            let relay = Relay::start(self.broker, self.first, self.second, properties.clone());
            Some(relay.await?)
        } else {
            None
        };
        Ok((drain, relay))
    }
}

async fn confirmed_channel(broker: &Broker) -> anyhow::Result<Channel> {
    let channel = broker.channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// A shape's properties, built as Linkkit builds its own (`linkkit_bus::message_properties`),
/// so the shape named after Linkkit's properties follows them.
fn properties(chosen: Properties) -> BasicProperties {
    let workspace = (
        WORKSPACE_HEADER,
        "ws_01a21b7c1269717b823ab622c94fb522".to_owned(),
    );
    let persistent = BasicProperties::default().with_delivery_mode(2);
    match chosen {
        Properties::None => persistent,
        Properties::WorkspaceHeader => persistent.with_headers(header_table(&[workspace])),
        Properties::Linkkit => {
            message_properties(&[workspace, (OCCURRED_AT_HEADER, "1764979200000".to_owned())])
        }
    }
}

/// Publishes one message per body, then waits for every confirm, through the hand-over
/// Linkkit's publisher uses (`linkkit_bus::publish_confirmed`): a ceiling measured with a
/// slower client than Linkkit's would understate the broker (awaiting each publish alone held
/// it to about two thirds of the broker's rate). One task publishes on each channel here, so
/// the hand-over's lock is never contended.
async fn publish_window<'a>(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    bodies: impl Iterator<Item = &'a [u8]>,
    properties: &BasicProperties,
) -> anyhow::Result<()> {
    let messages = bodies
        .map(|body| Publication {
            exchange,
            routing_key,
            body,
            properties: properties.clone(),
        })
        .collect();
    publish_confirmed(channel, &StdMutex::new(()), messages).await?;
    Ok(())
}

/// The least a second passage can cost: each message taken from one queue is published to
/// another with a confirm and then acknowledged, in as large groups as arrive together, with
/// nothing else done.
struct Relay {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Relay {
    async fn start(
        broker: &Broker,
        from: &str,
        to: &str,
        properties: BasicProperties,
    ) -> anyhow::Result<Self> {
        let consuming = broker.channel().await?;
        consuming
            .basic_qos(2 * WINDOW as u16, BasicQosOptions::default())
            .await?;
        let mut consumer = consuming
            .basic_consume(
                from,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let publisher = confirmed_channel(broker).await?;
        let to = to.to_owned();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let first = tokio::select! {
                    _ = &mut stopped => break,
                    next = consumer.next() => next,
                };
                let Some(first) = first else { break };
                let mut group = vec![first?];
                while group.len() < WINDOW {
                    match consumer.next().now_or_never() {
                        Some(Some(delivery)) => group.push(delivery?),
                        _ => break,
                    }
                }
                let bodies = group.iter().map(|delivery| delivery.data.as_slice());
                publish_window(&publisher, "", &to, bodies, &properties).await?;
                let last = group.last().expect("a group is never empty");
                last.ack(BasicAckOptions { multiple: true }).await?;
            }
            Ok(())
        });
        Ok(Self { stop, task })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}
