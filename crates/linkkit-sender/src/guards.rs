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
/// An endpoint whose slots are all taken and none of whose attempts has ended for this long is
/// stuck (its attempts hang towards the timeout): its jobs are deferred at once, before any
/// other work. A busy but answering endpoint frees a slot every few milliseconds and is never
/// taken for stuck.
const STUCK_AFTER: Duration = Duration::from_secs(1);
/// Entries kept before idle ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct EndpointGuards {
    max_in_flight: usize,
    stuck_after: Duration,
    endpoints: Mutex<HashMap<EndpointId, Guard>>,
}

#[derive(Debug)]
struct Guard {
    slots: Arc<Semaphore>,
    health: Arc<Mutex<Health>>,
}

/// What the attempts to one endpoint have shown so far.
#[derive(Debug)]
struct Health {
    breaker: Breaker,
    /// When one of its attempts last ended (or the guard was made).
    last_freed: Instant,
}

/// Leave to send one attempt to an endpoint; hold it until the attempt is over and give its
/// result to [`Pass::record`]. A probe's pass dropped without a result (the attempt never
/// finished: its task ended early) lets the next job probe instead, so the circuit never waits
/// on a probe that will not come.
#[derive(Debug)]
pub struct Pass {
    endpoint: EndpointId,
    health: Arc<Mutex<Health>>,
    probe: bool,
    _slot: OwnedSemaphorePermit,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Deferral {
    /// The endpoint's circuit is open: wait at least this long.
    CircuitOpen(Duration),
    /// Every slot of the endpoint is busy.
    Busy,
    /// Every slot has been busy, with no attempt ending, for longer than [`STUCK_AFTER`].
    Stuck,
}

impl Deferral {
    /// How long the job must wait at least (`None`: the shortest retry queue will do), and the
    /// reason counted in `linkkit_jobs_deferred_total`.
    pub fn parking(&self) -> (Option<Duration>, &'static str) {
        match self {
            Deferral::CircuitOpen(wait) => (Some(*wait), "circuit_open"),
            Deferral::Busy => (None, "endpoint_busy"),
            Deferral::Stuck => (None, "endpoint_stuck"),
        }
    }
}

impl EndpointGuards {
    pub fn new(max_in_flight: usize) -> Self {
        Self::with_stuck_after(max_in_flight, STUCK_AFTER)
    }

    fn with_stuck_after(max_in_flight: usize, stuck_after: Duration) -> Self {
        Self {
            max_in_flight: max_in_flight.max(1),
            stuck_after,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a job for `endpoint` must be parked now because its circuit is open or the
    /// endpoint is stuck: a cheap check in memory, made before any other work on the job.
    /// Takes neither a slot nor the probe, so [`EndpointGuards::admit`] still decides at the
    /// attempt itself.
    pub fn precheck(&self, endpoint: &EndpointId) -> Option<Deferral> {
        let endpoints = self
            .endpoints
            .lock()
            .expect("the guard map is never poisoned");
        let guard = endpoints.get(endpoint)?;
        let now = Instant::now();
        let health = lock(&guard.health);
        if let Some(wait) = health.breaker.deferral(now) {
            return Some(Deferral::CircuitOpen(wait));
        }
        let all_busy = guard.slots.available_permits() == 0;
        let since_freed = now.saturating_duration_since(health.last_freed);
        (all_busy && since_freed > self.stuck_after).then_some(Deferral::Stuck)
    }

    /// Decides whether an attempt to `endpoint` may start now.
    pub async fn admit(&self, endpoint: &EndpointId) -> Result<Pass, Deferral> {
        let (slots, health, probe) = {
            let mut endpoints = self
                .endpoints
                .lock()
                .expect("the guard map is never poisoned");
            if endpoints.len() > PRUNE_ABOVE {
                endpoints.retain(|_, guard| {
                    !lock(&guard.health).breaker.is_idle()
                        || guard.slots.available_permits() < self.max_in_flight
                });
            }
            let guard = endpoints.entry(endpoint.clone()).or_insert_with(|| Guard {
                slots: Arc::new(Semaphore::new(self.max_in_flight)),
                health: Arc::new(Mutex::new(Health {
                    breaker: Breaker::default(),
                    last_freed: Instant::now(),
                })),
            });
            let probe = match lock(&guard.health).breaker.admit(Instant::now()) {
                Admission::Defer(wait) => return Err(Deferral::CircuitOpen(wait)),
                Admission::Probe => true,
                Admission::Send => false,
            };
            (guard.slots.clone(), guard.health.clone(), probe)
        };
        match tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await {
            Ok(Ok(slot)) => Ok(Pass {
                endpoint: endpoint.clone(),
                health,
                probe,
                _slot: slot,
            }),
            _ => {
                if probe {
                    lock(&health).breaker.abandon_probe();
                }
                Err(Deferral::Busy)
            }
        }
    }
}

impl Pass {
    /// Feeds the attempt's result to the endpoint's breaker and frees the slot.
    pub fn record(mut self, succeeded: bool) {
        let now = Instant::now();
        let transition = if std::mem::take(&mut self.probe) {
            lock(&self.health).breaker.record_probe(succeeded, now)
        } else {
            lock(&self.health).breaker.record(succeeded, now)
        };
        match transition {
            Some(Transition::Opened) => {
                BREAKER_TRANSITIONS.with_label_values(&["open"]).inc();
                tracing::warn!(endpoint_id = %self.endpoint, "circuit opened: deferring this endpoint's jobs");
            }
            Some(Transition::Closed) => {
                BREAKER_TRANSITIONS.with_label_values(&["closed"]).inc();
                tracing::info!(endpoint_id = %self.endpoint, "circuit closed");
            }
            None => {}
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut health = lock(&self.health);
        if self.probe {
            health.breaker.abandon_probe();
        }
        health.last_freed = Instant::now();
    }
}

fn lock(health: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    health
        .lock()
        .expect("an endpoint's health is never poisoned")
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
            guards.admit(&failing).await.unwrap().record(false);
        }
        assert!(matches!(
            guards.precheck(&failing),
            Some(Deferral::CircuitOpen(_))
        ));
        assert!(matches!(
            guards.admit(&failing).await.unwrap_err(),
            Deferral::CircuitOpen(_)
        ));
        assert_eq!(guards.precheck(&EndpointId::generate()), None);
    }

    #[tokio::test]
    async fn an_endpoint_whose_slots_are_all_held_with_none_freed_is_stuck_until_one_frees() {
        let guards = EndpointGuards::with_stuck_after(2, Duration::from_millis(50));
        let hanging = EndpointId::generate();
        let first = guards.admit(&hanging).await.unwrap();
        assert_eq!(guards.precheck(&hanging), None, "a slot is still free");
        let second = guards.admit(&hanging).await.unwrap();
        assert_eq!(guards.precheck(&hanging), None, "all busy, but only just");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(guards.precheck(&hanging), Some(Deferral::Stuck));

        first.record(false);
        let third = guards.admit(&hanging).await.unwrap();
        assert_eq!(
            guards.precheck(&hanging),
            None,
            "an attempt just ended: busy, not stuck"
        );
        drop((second, third));
    }
}
