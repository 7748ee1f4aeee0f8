//! Jobs turned away from their endpoint wait in Postgres, not in the broker.
//!
//! A job whose endpoint's circuit is open, or that is stuck or busy, is parked on its delivery
//! row (see `linkkit_store::parked`) until it may be tried again, and acknowledged. Every
//! sender runs a sweep that publishes the parked jobs that are due back to the deliveries
//! queue, after a look at its own guards: a job whose endpoint this sender would turn away at
//! once is parked again, with nothing published, and of the jobs of an endpoint whose circuit
//! waits for its probe, one is published to probe with and the others wait for the probe's
//! answer. A dead endpoint's backlog then costs a row update per job per open period, where a
//! retry queue cost a persistent message that waited, expired and was dead-lettered back,
//! each time.

use std::collections::HashSet;
use std::time::Duration;

use linkkit_bus::Outgoing;
use linkkit_core::retry::RetrySchedule;
use linkkit_core::DeliveryJob;
use linkkit_store::parked::{self, DueDelivery, Unparked};
use tokio_util::sync::CancellationToken;

use crate::guards::EndpointGuards;
use crate::handler::SenderHandler;
use crate::metrics::{PARKED_DELIVERIES, PARKED_SWEPT};

/// How often the sweep looks for due deliveries when the last look found less than a batch.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Due deliveries taken, published and released in one transaction.
const SWEEP_BATCH: i64 = 500;
/// The longest a sweep waits for the broker's confirms while it holds its rows locked.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the `linkkit_parked_deliveries` gauge is read from Postgres.
const COUNT_EVERY: Duration = Duration::from_secs(10);

/// Publishes due parked deliveries until `shutdown` fires. A sweep that fails (Postgres or the
/// broker unreachable) releases nothing and is tried again at the next tick.
pub async fn keep_sweeping(handler: &SenderHandler, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_count: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // A full batch that published something may have more behind it; one that only parked
        // again, or came short, waits for the next tick.
        loop {
            match sweep_once(handler).await {
                Ok((taken, published))
                    if taken as i64 == SWEEP_BATCH && published > 0 && !shutdown.is_cancelled() =>
                {
                    continue
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(error = %error, "sweeping parked deliveries failed");
                    break;
                }
            }
        }
        if last_count.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
            last_count = Some(tokio::time::Instant::now());
            match parked::count(&handler.pool).await {
                Ok(count) => PARKED_DELIVERIES.set(count),
                Err(error) => tracing::debug!(error = %error, "could not count parked deliveries"),
            }
        }
    }
}

/// One batch: takes the due deliveries, publishes the jobs of those whose endpoint this
/// sender would take now and waits for every confirm, then releases them (and parks the
/// others again) in the same transaction. Answers how many deliveries it took, and how many
/// jobs it published.
async fn sweep_once(handler: &SenderHandler) -> Result<(usize, usize), String> {
    let (unparking, due) = parked::take_due(&handler.pool, SWEEP_BATCH)
        .await
        .map_err(|e| format!("reading due deliveries failed: {e}"))?;
    // Every sweep finishes its transaction, one that found nothing to publish too: the rows
    // no job could be made of were settled in it, and are kept only if it commits.
    let taken = due.len();
    let sweep = sort_due(due, &handler.guards, &handler.settings.schedule);
    let jobs: Vec<Outgoing> = sweep
        .jobs
        .iter()
        .map(|job| Outgoing::job(&handler.namespace, job))
        .collect();
    // The rows stay locked until the confirms come: a broker that stalls must not hold them
    // (and whatever waits on them) for long. Dropping the transaction releases nothing.
    tokio::time::timeout(PUBLISH_TIMEOUT, handler.publisher.publish_all(&jobs))
        .await
        .map_err(|_| format!("the broker did not confirm due jobs within {PUBLISH_TIMEOUT:?}"))?
        .map_err(|e| format!("publishing due jobs failed: {e}"))?;
    unparking
        .finish(&sweep.outcomes)
        .await
        .map_err(|e| format!("releasing due deliveries failed: {e}"))?;
    PARKED_SWEPT
        .with_label_values(&["published"])
        .inc_by(jobs.len() as u64);
    PARKED_SWEPT
        .with_label_values(&["parked_again"])
        .inc_by(sweep.parked_again);
    PARKED_SWEPT
        .with_label_values(&["dropped"])
        .inc_by(sweep.dropped);
    Ok((taken, jobs.len()))
}

/// What one sweep does with the deliveries it took.
#[derive(Debug, Default)]
struct Sweep {
    /// To publish, before anything is released.
    jobs: Vec<DeliveryJob>,
    /// One per delivery taken.
    outcomes: Vec<Unparked>,
    parked_again: u64,
    dropped: u64,
}

/// Sorts due deliveries by this sender's guards: a delivery with nothing to send is released
/// with no job; one whose endpoint the guards turn away at once is parked again as long as
/// they ask; of those of an endpoint whose circuit waits for its probe, the first goes (to
/// probe with) and the others wait the shortest park for the probe's answer; the rest go.
fn sort_due(due: Vec<DueDelivery>, guards: &EndpointGuards, schedule: &RetrySchedule) -> Sweep {
    let mut sweep = Sweep::default();
    let mut probing = HashSet::new();
    for delivery in due {
        let id = delivery.id.clone();
        let kept_back = if let Some(deferral) = guards.precheck(&delivery.endpoint_id) {
            Some(schedule.park_for(deferral.parking().0))
        } else if guards.circuit_open(&delivery.endpoint_id)
            && !probing.insert(delivery.endpoint_id.clone())
        {
            Some(schedule.park_for(None))
        } else {
            None
        };
        match (job_of(delivery), kept_back) {
            (None, _) => {
                sweep.dropped += 1;
                sweep.outcomes.push(Unparked::Released(id));
            }
            (Some(_), Some(wait)) => {
                sweep.parked_again += 1;
                sweep.outcomes.push(Unparked::ParkedAgain(id, wait));
            }
            (Some(job), None) => {
                sweep.jobs.push(job);
                sweep.outcomes.push(Unparked::Released(id));
            }
        }
    }
    sweep
}

/// The job a due delivery asks for. It may have been sent by a copy of its job while it was
/// parked, so the sender checks its status first (`maybe_sent`).
fn job_of(delivery: DueDelivery) -> Option<DeliveryJob> {
    let event = delivery.event?;
    Some(DeliveryJob {
        attempt: delivery.attempt,
        maybe_sent: true,
        ..DeliveryJob::first_attempt(
            delivery.id,
            delivery.workspace_id,
            delivery.endpoint_id,
            delivery.generation,
            event.timestamp,
            event,
        )
    })
}

#[cfg(test)]
mod tests {
    use linkkit_core::event::sample;
    use linkkit_core::{DeliveryId, EndpointId, EventType, WorkspaceId};

    use super::*;
    use crate::guards::AttemptEnd;

    fn due(endpoint: &EndpointId, with_event: bool) -> DueDelivery {
        DueDelivery {
            id: DeliveryId::generate(),
            workspace_id: WorkspaceId::generate(),
            endpoint_id: endpoint.clone(),
            generation: 2,
            attempt: 3,
            event: with_event.then(|| sample(EventType::LinkClicked)),
        }
    }

    #[tokio::test]
    async fn a_sweep_publishes_what_may_go_parks_an_open_circuit_again_and_drops_what_is_done() {
        let schedule = RetrySchedule::parse("5s,5m").unwrap();
        let guards = EndpointGuards::new(4);
        let (healthy, failing) = (EndpointId::generate(), EndpointId::generate());
        for _ in 0..crate::breaker::FAILURE_THRESHOLD {
            let pass = guards.admit(&failing).await.unwrap();
            pass.record(AttemptEnd::Refused);
        }
        let taken = vec![
            due(&healthy, true),
            due(&failing, true),
            due(&healthy, false),
            due(&failing, true),
        ];
        let ids: Vec<DeliveryId> = taken.iter().map(|d| d.id.clone()).collect();
        let sweep = sort_due(taken, &guards, &schedule);

        assert_eq!(sweep.jobs.len(), 1);
        let job = &sweep.jobs[0];
        assert_eq!(
            (
                &job.delivery_id,
                job.generation,
                job.attempt,
                job.maybe_sent
            ),
            (&ids[0], 2, 3, true),
            "the parked job as it was, checked against its delivery before it is sent"
        );
        assert_eq!((sweep.parked_again, sweep.dropped), (2, 1));
        assert_eq!(sweep.outcomes.len(), 4, "every delivery taken is settled");
        for (outcome, id) in sweep.outcomes.iter().zip(&ids) {
            match outcome {
                Unparked::Released(released) => assert_eq!(released, id),
                Unparked::ParkedAgain(parked, wait) => {
                    assert_eq!(parked, id);
                    assert!(
                        *wait >= Duration::from_secs(5),
                        "kept back as long as the circuit stays open, and the shortest park"
                    );
                }
            }
        }
        assert!(matches!(sweep.outcomes[1], Unparked::ParkedAgain(..)));
        assert!(matches!(sweep.outcomes[3], Unparked::ParkedAgain(..)));
    }
}
