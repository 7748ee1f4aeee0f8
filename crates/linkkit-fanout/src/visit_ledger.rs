//! Keeps `counted_visits` to a week.
//!
//! A visit no endpoint subscribes to is counted once because Postgres remembers its event id
//! (see `handler.rs`). A copy of it comes within seconds when a worker died before
//! acknowledging it, or, when the redirect publishes a batch again after a lost confirm, once
//! the broker is reachable again: a week covers any outage the redirect's buffer could ride
//! out. Every fan-out worker forgets older visits when it starts and every ten minutes after,
//! in batches, so the table holds about a week of unsubscribed visits (roughly 120 bytes each
//! with its index entry) and no delete is large.

use std::time::Duration;

use chrono::Utc;
use linkkit_store::{links, PgPool};
use tokio_util::sync::CancellationToken;

/// How long a counted visit is remembered.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const BATCH: i64 = 10_000;

/// Forgets visits counted more than [`REMEMBERED_FOR`] ago, now and every [`PRUNE_EVERY`],
/// until `shutdown` fires.
pub async fn keep_pruned(pool: PgPool, shutdown: CancellationToken) {
    loop {
        match prune(&pool).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "forgot visits counted over a week ago"),
            Err(error) => tracing::warn!(error = %error, "could not prune the counted visits"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

/// Forgets every visit counted more than [`REMEMBERED_FOR`] ago; how many.
pub async fn prune(pool: &PgPool) -> Result<u64, linkkit_store::StoreError> {
    let before = Utc::now() - chrono::Duration::from_std(REMEMBERED_FOR).unwrap_or_default();
    let mut forgotten = 0;
    loop {
        let batch = links::forget_counted_visits(pool, before, BATCH).await?;
        forgotten += batch;
        if batch < BATCH as u64 {
            return Ok(forgotten);
        }
    }
}
