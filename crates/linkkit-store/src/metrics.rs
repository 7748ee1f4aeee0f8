//! Metrics of the grouped queries (see `group`): how many rows each statement carried and how
//! long it took, so an operator sees whether grouping is working and what Postgres costs; and
//! of the endpoint cache (see `endpoint_cache`): how often it answers, and whether it follows
//! changes.

use std::sync::LazyLock;

use prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge_vec, HistogramVec,
    IntCounterVec, IntGaugeVec,
};

pub static GROUP_ROWS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "linkkit_store_group_rows",
        "Rows carried by one statement of a grouped query, by query.",
        &["query"],
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]
    )
    .expect("metric registers once")
});

pub static GROUP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "linkkit_store_group_duration_seconds",
        "Time of one statement of a grouped query, rows retried one by one included, by query.",
        &["query"],
        vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
    )
    .expect("metric registers once")
});

/// Registers the series of the grouped queries a process runs, at zero.
pub fn init(queries: &[&str]) {
    for query in queries {
        GROUP_ROWS.with_label_values(&[query]);
        GROUP_DURATION.with_label_values(&[query]);
    }
}

pub static ENDPOINT_CACHE_LOOKUPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "linkkit_endpoint_cache_lookups_total",
        "Endpoint lookups of the workers, by query and by how they were answered: `hit` from \
         memory, `miss` from Postgres then kept (unless a change arrived meanwhile), `bypass` \
         from Postgres while changes cannot be followed.",
        &["query", "outcome"]
    )
    .expect("metric registers once")
});

pub static ENDPOINT_CHANGES_FOLLOWED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "linkkit_endpoint_changes_followed",
        "1 while the cache of a query follows endpoint changes and answers from memory; 0 \
         while it cannot (its lookups then go to Postgres).",
        &["query"]
    )
    .expect("metric registers once")
});

/// Registers the series of the endpoint cache of `query`, at zero (not following yet).
pub fn init_endpoint_cache(query: &str) {
    for outcome in ["hit", "miss", "bypass"] {
        ENDPOINT_CACHE_LOOKUPS.with_label_values(&[query, outcome]);
    }
    ENDPOINT_CHANGES_FOLLOWED.with_label_values(&[query]);
}
