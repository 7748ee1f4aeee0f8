//! Jobs turned away from their endpoint wait in Postgres, not in the broker.
//!
//! A job whose endpoint's circuit is open, or that is stuck or busy, is parked on its delivery
//! row (see `linkkit_store::parked`) until it may be tried again, and acknowledged. Every
//! sender runs a sweep that publishes the parked jobs that are due back to the deliveries
//! queue, after a look at its own guards: a job whose endpoint this sender would turn away at
//! once is parked again, with nothing published. A dead endpoint's backlog then costs a row
//! update per job per open period, where a retry queue cost a persistent message that waited,
//! expired and was dead-lettered back, each time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use linkkit_bus::Outgoing;
use linkkit_core::retry::RetrySchedule;
use linkkit_core::DeliveryJob;
use linkkit_store::parked::{self, DueDelivery, Unparked};
use tokio_util::sync::CancellationToken;

use crate::handler::SenderHandler;
use crate::metrics::{PARKED_DELIVERIES, PARKED_SWEPT};

/// How often the sweep looks for due deliveries when the last look found less than a batch.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Due deliveries taken, published and released in one transaction.
const SWEEP_BATCH: i64 = 500;
/// How often the `linkkit_parked_deliveries` gauge is read from Postgres.
const COUNT_EVERY: Duration = Duration::from_secs(10);

/// Until when a job turned away at `now` is parked: as long as the guards asked, and never
/// less than the schedule's shortest delay.
pub fn park_until(
    at_least: Option<Duration>,
    schedule: &RetrySchedule,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let wait = at_least.unwrap_or_default().max(schedule.shortest_park());
    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

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
        loop {
            match sweep_once(handler).await {
                Ok(taken) if taken as i64 == SWEEP_BATCH && !shutdown.is_cancelled() => continue,
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
/// others again) in the same transaction. Answers how many deliveries it took.
async fn sweep_once(handler: &SenderHandler) -> Result<usize, String> {
    let (unparking, due) = parked::take_due(&handler.pool, SWEEP_BATCH)
        .await
        .map_err(|e| format!("reading due deliveries failed: {e}"))?;
    if due.is_empty() {
        return Ok(0);
    }
    let taken = due.len();
    let now = Utc::now();
    let mut jobs = Vec::new();
    let mut outcomes = Vec::with_capacity(taken);
    let (mut parked_again, mut dropped) = (0u64, 0u64);
    for delivery in due {
        let id = delivery.id.clone();
        if delivery.event.is_none() {
            dropped += 1;
            outcomes.push(Unparked::Released(id));
            continue;
        }
        if let Some(deferral) = handler.guards.precheck(&delivery.endpoint_id) {
            parked_again += 1;
            let until = park_until(deferral.parking().0, &handler.settings.schedule, now);
            outcomes.push(Unparked::ParkedAgain(id, until));
            continue;
        }
        if let Some(job) = job_of(delivery) {
            jobs.push(Outgoing::job(&handler.namespace, &job));
        }
        outcomes.push(Unparked::Released(id));
    }
    handler
        .publisher
        .publish_all(&jobs)
        .await
        .map_err(|e| format!("publishing due jobs failed: {e}"))?;
    unparking
        .finish(&outcomes)
        .await
        .map_err(|e| format!("releasing due deliveries failed: {e}"))?;
    PARKED_SWEPT
        .with_label_values(&["published"])
        .inc_by(jobs.len() as u64);
    PARKED_SWEPT
        .with_label_values(&["parked_again"])
        .inc_by(parked_again);
    PARKED_SWEPT.with_label_values(&["dropped"]).inc_by(dropped);
    Ok(taken)
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
    use super::*;

    #[test]
    fn a_job_is_parked_as_long_as_asked_and_never_less_than_the_shortest_delay() {
        let schedule = RetrySchedule::parse("5s,5m").unwrap();
        let now = Utc::now();
        let secs = |until: DateTime<Utc>| (until - now).num_seconds();
        assert_eq!(secs(park_until(None, &schedule, now)), 5);
        assert_eq!(
            secs(park_until(Some(Duration::from_secs(2)), &schedule, now)),
            5
        );
        assert_eq!(
            secs(park_until(Some(Duration::from_secs(40)), &schedule, now)),
            40
        );
    }
}
