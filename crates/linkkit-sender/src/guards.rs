//! Per-endpoint limits inside one sender process: how many attempts may be in flight to one
//! endpoint, and its circuit breaker. A job that may not go now is deferred (parked on its
//! delivery in Postgres without spending an attempt, see `crate::parking`), so a slow or
//! failing endpoint never holds the worker's slots that other endpoints need.
//!
//! An endpoint earns its slots (a slow start, as in TCP): it starts with [`FIRST_SLOTS`], has
//! them doubled by each attempt it answers, up to `max_in_flight`, and loses one for each
//! attempt it leaves unanswered, down to one. A healthy endpoint reaches the cap with its first
//! few answers, so its jobs barely wait; one that hangs from its first request ties up a few of
//! the worker's attempts until they time out, not the whole cap.

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
/// Slots an endpoint has before it has answered anything.
pub const FIRST_SLOTS: usize = 4;

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
    /// Slots the endpoint has earned: the permits its semaphore holds in all.
    granted: usize,
}

/// How an attempt ended, as the guards see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// A 2xx answer.
    Succeeded,
    /// Another answer: the endpoint is up but refused the event.
    Refused,
    /// No answer: a timeout, a refused connection, a broken one.
    Unanswered,
}

impl AttemptEnd {
    /// From the status code of the answer, if one came.
    pub fn of(status_code: Option<u16>) -> Self {
        match status_code {
            Some(200..=299) => AttemptEnd::Succeeded,
            Some(_) => AttemptEnd::Refused,
            None => AttemptEnd::Unanswered,
        }
    }
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
    max_in_flight: usize,
    /// `None` once the slot has been given up for good (see [`Pass::record`]).
    slot: Option<OwnedSemaphorePermit>,
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
    /// How long the job must wait at least (`None`: the shortest park will do), and the
    /// reason counted in `linkkit_jobs_deferred_total`.
    pub fn parking(&self) -> (Option<Duration>, &'static str) {
        match self {
            Deferral::CircuitOpen(wait) => (Some(*wait), "circuit_open"),
            Deferral::Busy => (None, "endpoint_busy"),
            Deferral::Stuck => (None, "endpoint_stuck"),
        }
    }

    /// For how long the fan-out may park the endpoint's new jobs itself: as long as the circuit
    /// stays open, and for a stuck endpoint as long as it took to call it stuck. A busy
    /// endpoint is not parked by anyone else.
    pub fn shared_for(&self) -> Option<Duration> {
        match self {
            Deferral::CircuitOpen(wait) => Some(*wait),
            Deferral::Stuck => Some(STUCK_AFTER),
            Deferral::Busy => None,
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

    /// Whether `endpoint`'s circuit is open in this process, even if its period is over and a
    /// probe may go: the sweep of parked jobs then releases one job to probe with, not all.
    pub fn circuit_open(&self, endpoint: &EndpointId) -> bool {
        let endpoints = self
            .endpoints
            .lock()
            .expect("the guard map is never poisoned");
        endpoints
            .get(endpoint)
            .is_some_and(|guard| lock(&guard.health).breaker.is_open())
    }

    /// Forgets what the attempts to `endpoint` showed (its circuit, its slots), for an endpoint
    /// that was disabled or deleted: its parked jobs are then taken at once, to be dropped or
    /// dead-lettered, rather than one probe at a time for a circuit no attempt will close.
    pub fn forget(&self, endpoint: &EndpointId) {
        self.endpoints
            .lock()
            .expect("the guard map is never poisoned")
            .remove(endpoint);
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
                    let health = lock(&guard.health);
                    !health.breaker.is_idle() || guard.slots.available_permits() < health.granted
                });
            }
            let first_slots = FIRST_SLOTS.min(self.max_in_flight);
            let guard = endpoints.entry(endpoint.clone()).or_insert_with(|| Guard {
                slots: Arc::new(Semaphore::new(first_slots)),
                health: Arc::new(Mutex::new(Health {
                    breaker: Breaker::default(),
                    last_freed: Instant::now(),
                    granted: first_slots,
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
                max_in_flight: self.max_in_flight,
                slot: Some(slot),
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
    /// Feeds the attempt's end to the endpoint's breaker and to its slots, and frees the slot:
    /// an answer doubles the endpoint's slots (up to the cap), no answer costs it this one
    /// (down to one).
    pub fn record(mut self, end: AttemptEnd) {
        let now = Instant::now();
        let succeeded = end == AttemptEnd::Succeeded;
        let transition = {
            let mut health = lock(&self.health);
            let transition = if std::mem::take(&mut self.probe) {
                health.breaker.record_probe(succeeded, now)
            } else {
                health.breaker.record(succeeded, now)
            };
            match end {
                AttemptEnd::Unanswered if health.granted > 1 => {
                    health.granted -= 1;
                    if let Some(slot) = self.slot.take() {
                        slot.forget();
                    }
                }
                AttemptEnd::Succeeded | AttemptEnd::Refused
                    if health.granted < self.max_in_flight =>
                {
                    let doubled = (health.granted * 2).min(self.max_in_flight);
                    if let Some(slot) = &self.slot {
                        slot.semaphore().add_permits(doubled - health.granted);
                    }
                    health.granted = doubled;
                }
                _ => {}
            }
            transition
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

    /// `count` passes for `endpoint`, each of which must be granted.
    async fn admit_all(guards: &EndpointGuards, endpoint: &EndpointId, count: usize) -> Vec<Pass> {
        let mut passes = Vec::with_capacity(count);
        for _ in 0..count {
            passes.push(guards.admit(endpoint).await.unwrap());
        }
        passes
    }

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
    async fn a_new_endpoint_starts_with_few_slots_and_each_answer_doubles_them_up_to_the_cap() {
        let guards = EndpointGuards::new(16);
        let endpoint = EndpointId::generate();
        let mut held = admit_all(&guards, &endpoint, FIRST_SLOTS).await;
        assert_eq!(guards.admit(&endpoint).await.unwrap_err(), Deferral::Busy);

        held.pop().unwrap().record(AttemptEnd::Refused);
        held.extend(admit_all(&guards, &endpoint, FIRST_SLOTS + 1).await);
        assert_eq!(held.len(), 2 * FIRST_SLOTS);
        assert_eq!(
            guards.admit(&endpoint).await.unwrap_err(),
            Deferral::Busy,
            "one answer, twice the slots"
        );

        for pass in held.drain(..) {
            pass.record(AttemptEnd::Succeeded);
        }
        let _held = admit_all(&guards, &endpoint, 16).await;
        assert_eq!(
            guards.admit(&endpoint).await.unwrap_err(),
            Deferral::Busy,
            "never more than the cap"
        );
    }

    #[tokio::test]
    async fn each_unanswered_attempt_costs_its_endpoint_a_slot_down_to_one() {
        let guards = EndpointGuards::new(8);
        let endpoint = EndpointId::generate();
        for pass in admit_all(&guards, &endpoint, FIRST_SLOTS).await {
            pass.record(AttemptEnd::Unanswered);
        }
        let last = guards.admit(&endpoint).await.unwrap();
        assert_eq!(guards.admit(&endpoint).await.unwrap_err(), Deferral::Busy);

        last.record(AttemptEnd::Succeeded);
        let _first = guards.admit(&endpoint).await.unwrap();
        let _second = guards.admit(&endpoint).await.unwrap();
    }

    #[tokio::test]
    async fn an_endpoint_that_keeps_failing_is_deferred() {
        let guards = EndpointGuards::new(4);
        let failing = EndpointId::generate();
        for _ in 0..crate::breaker::FAILURE_THRESHOLD {
            guards
                .admit(&failing)
                .await
                .unwrap()
                .record(AttemptEnd::Refused);
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
        assert!(guards.circuit_open(&failing));

        // Disabled or deleted: what its attempts showed no longer holds its jobs back.
        guards.forget(&failing);
        assert!(!guards.circuit_open(&failing));
        assert_eq!(guards.precheck(&failing), None);
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

        first.record(AttemptEnd::Refused);
        let third = guards.admit(&hanging).await.unwrap();
        assert_eq!(
            guards.precheck(&hanging),
            None,
            "an attempt just ended: busy, not stuck"
        );
        drop((second, third));
    }
}
