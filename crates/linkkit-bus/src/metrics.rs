//! Broker-side metrics: reconnects, dead letters and consumer state.

use std::sync::LazyLock;

use prometheus::{register_int_counter, register_int_counter_vec, register_int_gauge_vec};
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec};

pub static BROKER_RECONNECTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_broker_reconnects_total",
        "Times the AMQP connection was re-established."
    )
    .expect("metric registers once")
});

pub static DEAD_LETTERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_jobs_dead_lettered_total",
        "Messages sent to the dead-letter queue, by reason (exhausted, unparseable).",
        &["reason"]
    )
    .expect("metric registers once")
});

pub static CONSUMERS_UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "linkkit_consumer_up",
        "1 while this process consumes the queue, 0 while it reconnects.",
        &["queue"]
    )
    .expect("metric registers once")
});

pub static MESSAGES_PUBLISHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_events_published_total",
        "Domain events published to the events exchange and confirmed, by type and service.",
        &["event_type", "service"]
    )
    .expect("metric registers once")
});

pub static QUEUE_MESSAGES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "linkkit_queue_messages",
        "Messages ready in each Linkkit queue (sampled every 5 s).",
        &["queue"]
    )
    .expect("metric registers once")
});

pub static QUEUE_CONSUMERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "linkkit_queue_consumers",
        "Consumers of each Linkkit queue (sampled every 5 s).",
        &["queue"]
    )
    .expect("metric registers once")
});

/// Registers the bus metrics and creates their usual series at zero, so they are scraped (and
/// graphed) before the first event.
pub fn init() {
    BROKER_RECONNECTS.get();
    for reason in ["exhausted", "gone", "disabled", "unparseable"] {
        DEAD_LETTERED.with_label_values(&[reason]);
    }
    LazyLock::force(&CONSUMERS_UP);
    LazyLock::force(&QUEUE_MESSAGES);
    LazyLock::force(&QUEUE_CONSUMERS);
}

/// Creates the `events published` series of a service that publishes domain events.
pub fn init_publisher(service: &str) {
    for event_type in linkkit_core::EventType::ALL {
        MESSAGES_PUBLISHED.with_label_values(&[event_type.as_str(), service]);
    }
}
