//! The fan-out's copy of the endpoints the senders are parking jobs for (see
//! `linkkit_cache::parked`), refreshed from Redis a few times a second, so that deciding to
//! store a delivery parked asks memory, not Redis.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use linkkit_cache::parked::ParkedEndpoints;
use linkkit_core::EndpointId;
use tokio_util::sync::CancellationToken;

/// How stale the copy may be. A sender keeps parking what the copy misses.
const REFRESH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub struct ParkedView {
    endpoints: RwLock<HashMap<EndpointId, DateTime<Utc>>>,
}

impl ParkedView {
    /// Until when `endpoint`'s jobs are parked, if they still are at `now`.
    pub fn parked_until(&self, endpoint: &EndpointId, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let endpoints = self.endpoints.read().expect("the view is never poisoned");
        endpoints
            .get(endpoint)
            .copied()
            .filter(|until| *until > now)
    }

    /// Refreshes the copy until `shutdown` fires. While Redis cannot be read the last copy is
    /// kept; its parks lapse on their own.
    pub async fn keep_fresh(&self, parked: ParkedEndpoints, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(REFRESH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match parked.current(Utc::now()).await {
                Ok(current) => {
                    *self.endpoints.write().expect("the view is never poisoned") = current
                }
                Err(error) => {
                    tracing::debug!(error = %error, "could not read the parked endpoints")
                }
            }
        }
    }
}
