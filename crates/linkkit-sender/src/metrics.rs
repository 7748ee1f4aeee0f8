//! Sender metrics. Labels stay low-cardinality: outcomes, status classes and retry tiers,
//! never an endpoint URL or id.

use std::sync::LazyLock;

use prometheus::{
    register_histogram, register_int_counter_vec, register_int_gauge, Histogram, IntCounterVec,
    IntGauge,
};

/// Buckets from 5 ms to 1 h, for durations and lags.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    1800.0, 3600.0,
];

pub static DELIVERY_ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_delivery_attempts_total",
        "Delivery attempts, by outcome (succeeded, failed) and status class (2xx, 3xx, 4xx, 5xx, none).",
        &["outcome", "status_class"]
    )
    .expect("metric registers once")
});

pub static DELIVERY_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "linkkit_delivery_duration_seconds",
        "Time of one delivery attempt, from sending the request to reading the response.",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("metric registers once")
});

pub static DELIVERY_LAG: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "linkkit_delivery_lag_seconds",
        "Time from an event happening to its successful delivery.",
        LATENCY_BUCKETS.to_vec()
    )
    .expect("metric registers once")
});

pub static RETRIES_SCHEDULED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_retries_scheduled_total",
        "Retries parked in a retry queue, by retry tier: the attempt number that follows (2 = the first retry, after the schedule's first delay).",
        &["attempt"]
    )
    .expect("metric registers once")
});

pub static ENDPOINTS_DISABLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_endpoints_disabled_total",
        "Endpoints disabled by the sender, by reason (gone, failing).",
        &["reason"]
    )
    .expect("metric registers once")
});

pub static DUPLICATES_SUPPRESSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_duplicate_jobs_total",
        "Jobs acknowledged without a POST: their idempotency key said done, or they were stale.",
        &["state"]
    )
    .expect("metric registers once")
});

pub static BREAKER_TRANSITIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_circuit_breaker_transitions_total",
        "Endpoint circuit breakers opening and closing, by new state (open, closed).",
        &["state"]
    )
    .expect("metric registers once")
});

pub static JOBS_DEFERRED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_jobs_deferred_total",
        "Jobs parked without an attempt, by reason (circuit_open, endpoint_busy, endpoint_stuck: in Postgres; in_flight_elsewhere: in the shortest retry queue).",
        &["reason"]
    )
    .expect("metric registers once")
});

pub static PARKED_SWEPT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_parked_swept_total",
        "Parked deliveries that came due, by what the sweep did: published (the job went back to the deliveries queue), parked_again (the endpoint is still parked in this sender), dropped (sent or dead since, or deleted: no job).",
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static PARKED_DELIVERIES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "linkkit_parked_deliveries",
        "Deliveries parked in Postgres, waiting for their endpoint (read by each sender every 10 s)."
    )
    .expect("metric registers once")
});

/// Registers the sender metrics with their usual series at zero; `max_attempts` comes from the
/// retry schedule.
pub fn init(max_attempts: u32) {
    DELIVERY_ATTEMPTS.with_label_values(&["succeeded", "2xx"]);
    for class in ["3xx", "4xx", "5xx", "none"] {
        DELIVERY_ATTEMPTS.with_label_values(&["failed", class]);
    }
    LazyLock::force(&DELIVERY_DURATION);
    LazyLock::force(&DELIVERY_LAG);
    for attempt in 2..=max_attempts {
        RETRIES_SCHEDULED.with_label_values(&[&attempt.to_string()]);
    }
    for reason in ["gone", "failing"] {
        ENDPOINTS_DISABLED.with_label_values(&[reason]);
    }
    for state in ["done", "stale"] {
        DUPLICATES_SUPPRESSED.with_label_values(&[state]);
    }
    for state in ["open", "closed"] {
        BREAKER_TRANSITIONS.with_label_values(&[state]);
    }
    for reason in [
        "circuit_open",
        "endpoint_busy",
        "endpoint_stuck",
        "in_flight_elsewhere",
    ] {
        JOBS_DEFERRED.with_label_values(&[reason]);
    }
    for outcome in ["published", "parked_again", "dropped"] {
        PARKED_SWEPT.with_label_values(&[outcome]);
    }
    LazyLock::force(&PARKED_DELIVERIES);
}
