//! Metrics of the grouped queries (see `group`): how many rows each statement carried and how
//! long it took, so an operator sees whether grouping is working and what Postgres costs.

use std::sync::LazyLock;

use prometheus::{register_histogram_vec, HistogramVec};

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
