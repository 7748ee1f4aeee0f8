//! Redirect metrics: redirects by status, their latency, and the event buffer.

use std::sync::LazyLock;

use prometheus::{
    register_histogram, register_int_counter, register_int_counter_vec, register_int_gauge,
};
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

pub static REDIRECTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_redirects_total",
        "Redirect requests answered, by HTTP status.",
        &["status"]
    )
    .expect("metric registers once")
});

pub static REDIRECT_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "linkkit_redirect_duration_seconds",
        "Time to answer a redirect request.",
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]
    )
    .expect("metric registers once")
});

pub static EVENTS_BUFFERED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "linkkit_events_buffered",
        "Visit events waiting in the redirect's buffer for the broker."
    )
    .expect("metric registers once")
});

pub static EVENTS_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_events_dropped_total",
        "Visit events lost: the buffer was full, or they could not be published before shutdown."
    )
    .expect("metric registers once")
});

pub static BOT_VISITS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_bot_visits_total",
        "Visits by crawlers and preview bots (redirected, no event)."
    )
    .expect("metric registers once")
});

/// Registers the redirect metrics with their usual series at zero.
pub fn init() {
    for status in ["302", "404", "410", "503"] {
        REDIRECTS.with_label_values(&[status]);
    }
    LazyLock::force(&REDIRECT_DURATION);
    LazyLock::force(&EVENTS_BUFFERED);
    LazyLock::force(&EVENTS_DROPPED);
    LazyLock::force(&BOT_VISITS);
}
