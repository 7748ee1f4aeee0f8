//! Fan-out metrics.

use std::sync::LazyLock;

use prometheus::{
    register_counter, register_int_counter, register_int_counter_vec, Counter, IntCounter,
    IntCounterVec,
};

pub static JOBS_FANNED_OUT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_jobs_fanned_out_total",
        "Delivery jobs published by fan-out workers."
    )
    .expect("metric registers once")
});

pub static JOBS_PARKED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_fanout_jobs_parked_total",
        "Deliveries fan-out workers stored parked in Postgres, with no job published, because a sender is parking their endpoint's jobs (circuit open or endpoint stuck)."
    )
    .expect("metric registers once")
});

pub static ROOM_WAIT: LazyLock<Counter> = LazyLock::new(|| {
    register_counter!(
        "linkkit_fanout_room_wait_seconds_total",
        "Seconds events in hand spent waiting for room in the deliveries queue (LINKKIT_FANOUT_MAX_QUEUED_JOBS), summed over the events: grows while the senders are behind."
    )
    .expect("metric registers once")
});

pub static EVENTS_FANNED_OUT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_fanout_events_total",
        "Events handled by fan-out workers, by outcome (fanned_out, no_subscribers, duplicate).",
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static VISITS_COUNTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_visits_counted_total",
        "Clicks and QR scans added to their links' counters by fan-out workers, by kind (click, scan).",
        &["kind"]
    )
    .expect("metric registers once")
});

/// Registers the fan-out metrics with their usual series at zero.
pub fn init() {
    LazyLock::force(&JOBS_FANNED_OUT);
    LazyLock::force(&JOBS_PARKED);
    LazyLock::force(&ROOM_WAIT);
    for outcome in ["fanned_out", "no_subscribers", "duplicate"] {
        EVENTS_FANNED_OUT.with_label_values(&[outcome]);
    }
    for kind in ["click", "scan"] {
        VISITS_COUNTED.with_label_values(&[kind]);
    }
}
