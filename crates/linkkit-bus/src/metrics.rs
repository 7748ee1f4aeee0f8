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
