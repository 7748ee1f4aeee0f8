//! Per-endpoint limits inside one sender process: at most `max_in_flight` attempts to one
//! endpoint at a time, and its circuit breaker. A job that may not go now is deferred (parked in
//! a retry queue without spending an attempt), so a slow or failing endpoint never holds the
//! worker's slots that other endpoints need.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linkkit_core::EndpointId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::breaker::{Admission, Breaker, Transition};
use crate::metrics::BREAKER_TRANSITIONS;

/// How long a job waits for one of its endpoint's slots before it is deferred instead.
const SLOT_WAIT: Duration = Duration::from_millis(250);
/// Entries kept before idle ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct EndpointGuards {
    max_in_flight: usize,
    endpoints: Mutex<HashMap<EndpointId, Guard>>,
}

#[derive(Debug)]
struct Guard {
    slots: Arc<Semaphore>,
    breaker: Breaker,
}

/// Leave to send one attempt; hold it until the attempt is over.
#[derive(Debug)]
pub struct Pass {
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Deferral {
    /// The endpoint's circuit is open: wait at least this long.
    CircuitOpen(Duration),
    /// Every slot of the endpoint is busy.
    Busy,
}

impl EndpointGuards {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            max_in_flight: max_in_flight.max(1),
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// Decides whether an attempt to `endpoint` may start now.
    pub async fn admit(&self, endpoint: &EndpointId) -> Result<Pass, Deferral> {
        let slots = {
            let mut endpoints = self
                .endpoints
                .lock()
                .expect("the guard map is never poisoned");
            if endpoints.len() > PRUNE_ABOVE {
                endpoints.retain(|_, guard| {
                    !guard.breaker.is_idle() || guard.slots.available_permits() < self.max_in_flight
                });
            }
            let guard = endpoints.entry(endpoint.clone()).or_insert_with(|| Guard {
                slots: Arc::new(Semaphore::new(self.max_in_flight)),
                breaker: Breaker::default(),
            });
            if let Admission::Defer(wait) = guard.breaker.admit(Instant::now()) {
                return Err(Deferral::CircuitOpen(wait));
            }
            guard.slots.clone()
        };
        match tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await {
            Ok(Ok(slot)) => Ok(Pass { _slot: slot }),
            _ => Err(Deferral::Busy),
        }
    }

    /// Feeds an attempt's result to the endpoint's breaker.
    pub fn record(&self, endpoint: &EndpointId, succeeded: bool) {
        let mut endpoints = self
            .endpoints
            .lock()
            .expect("the guard map is never poisoned");
        if let Some(guard) = endpoints.get_mut(endpoint) {
            match guard.breaker.record(succeeded, Instant::now()) {
                Some(Transition::Opened) => {
                    BREAKER_TRANSITIONS.with_label_values(&["open"]).inc();
                    tracing::warn!(endpoint_id = %endpoint, "circuit opened: deferring this endpoint's jobs");
                }
                Some(Transition::Closed) => {
                    BREAKER_TRANSITIONS.with_label_values(&["closed"]).inc();
                    tracing::info!(endpoint_id = %endpoint, "circuit closed");
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_than_the_cap_run_at_once_for_one_endpoint_while_others_go_on() {
        let guards = EndpointGuards::new(2);
        let slow = EndpointId::generate();
        let other = EndpointId::generate();
        let first = guards.admit(&slow).await.unwrap();
        let _second = guards.admit(&slow).await.unwrap();
        assert_eq!(guards.admit(&slow).await.unwrap_err(), Deferral::Busy);
        assert!(
            guards.admit(&other).await.is_ok(),
            "another endpoint is not held up"
        );
        drop(first);
        assert!(guards.admit(&slow).await.is_ok());
    }

    #[tokio::test]
    async fn an_endpoint_that_keeps_failing_is_deferred() {
        let guards = EndpointGuards::new(4);
        let failing = EndpointId::generate();
        for _ in 0..crate::breaker::FAILURE_THRESHOLD {
            let _pass = guards.admit(&failing).await.unwrap();
            guards.record(&failing, false);
        }
        assert!(matches!(
            guards.admit(&failing).await.unwrap_err(),
            Deferral::CircuitOpen(_)
        ));
    }
}
