//! Job → claim → attempt → decision → durable effects → acknowledge.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use linkkit_bus::metrics::DEAD_LETTERED;
use linkkit_bus::{Handled, Handler, Message, Outgoing, Publisher};
use linkkit_cache::{Idempotency, NextAction};
use linkkit_core::retry::{decide, Decision};
use linkkit_core::signing::WebhookSecret;
use linkkit_core::{DeliveryJob, EndpointId, Namespace};
use linkkit_store::deliveries::{self, AttemptRecord, DeliveryStatus};
use linkkit_store::endpoint_cache::CachedEndpoints;
use linkkit_store::endpoints::{self, EndpointRow};
use linkkit_store::group::Grouped;
use linkkit_store::parked::ParkRequest;
use linkkit_store::worker_queries::{ParkDeliveries, RecordAttempts};
use linkkit_store::PgPool;
use reqwest::Client;

use crate::attempt::{attempt, AttemptOutcome};
use crate::guards::{AttemptEnd, Deferral, EndpointGuards};
use crate::metrics::{
    DELIVERY_ATTEMPTS, DELIVERY_DURATION, DELIVERY_LAG, DUPLICATES_SUPPRESSED, ENDPOINTS_DISABLED,
    JOBS_DEFERRED, RETRIES_SCHEDULED,
};
use crate::parking_notices::ParkingNotices;
use crate::SenderSettings;

/// The claim outlives the longest attempt by this much (see svix-webhooks PR #2181).
const CLAIM_MARGIN: Duration = Duration::from_secs(10);
/// How long a sent delivery's key says "done". Every job that can come late is checked in
/// Postgres before it is sent: a retry, a parked job a sweep published, a copy that waited in
/// a retry queue, a job the broker hands out again, and a job the fan-out published for a
/// copy of its event (the field `DeliveryJob::maybe_sent`). What is left for the key is the
/// job the fan-out first published, straight to the deliveries queue, when a copy of it was
/// sent first: the two were published moments apart into the same queue, so they are taken
/// moments apart, however long the queue. An hour covers that with room to spare, and keeps
/// the keys to an hour of deliveries (about 43 MB at 100 deliveries/s).
pub const DONE_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct SenderHandler {
    pub client: Client,
    pub pool: PgPool,
    /// The per-job lookup, from memory that endpoint changes keep fresh, and the per-job write,
    /// grouped across the jobs in flight.
    pub endpoints: CachedEndpoints,
    pub attempts: Grouped<RecordAttempts>,
    /// Parks the jobs turned away from their endpoint, grouped across the jobs in flight.
    pub parks: Grouped<ParkDeliveries>,
    pub publisher: Arc<Publisher>,
    pub idempotency: Idempotency,
    pub namespace: Namespace,
    pub settings: SenderSettings,
    pub guards: EndpointGuards,
    pub notices: ParkingNotices,
}

/// What became of the job, and so what to do with its idempotency key.
enum Settled {
    /// Nothing more will be sent for this generation.
    Finished,
    /// Another attempt will come (or this one must be redone): let it claim the key.
    Release,
}

impl Handler for SenderHandler {
    async fn handle(&self, message: &Message) -> Handled {
        let job: DeliveryJob = match serde_json::from_slice(&message.body) {
            Ok(job) => job,
            Err(error) => return Handled::Poison(format!("not a delivery job: {error}")),
        };
        let check_first = may_be_stale(&job, message.redelivered);
        self.deliver(job, check_first).await
    }
}

/// Whether the job may come after its delivery was sent or resent, so that the delivery's
/// status is read before anything is sent: a retry, a job marked `maybe_sent`, or one the
/// broker hands out again (its worker may have sent it before it stopped). A first attempt
/// fresh from the fan-out is not: the fan-out has just stored its delivery as `pending`.
fn may_be_stale(job: &DeliveryJob, redelivered: bool) -> bool {
    job.attempt > 1 || job.maybe_sent || redelivered
}

impl SenderHandler {
    #[tracing::instrument(skip_all, fields(delivery_id = %job.delivery_id, endpoint_id = %job.endpoint_id, event_id = %job.event.id, attempt = job.attempt))]
    async fn deliver(&self, job: DeliveryJob, check_first: bool) -> Handled {
        // An open circuit or a stuck endpoint is known in memory: such a job is parked at once,
        // with no Redis claim and one grouped write, so a failing or hanging neighbour costs
        // the others little.
        if let Some(deferral) = self.guards.precheck(&job.endpoint_id) {
            return match self.turn_away(&job, deferral).await {
                Ok(()) => Handled::Done,
                Err(reason) => Handled::Requeue(reason),
            };
        }
        let generation = job.generation.to_string();
        let key = self
            .idempotency
            .key(&["delivery", job.delivery_id.as_str(), &generation]);
        let claimed = match self
            .idempotency
            .claim(&key, self.settings.timeout + CLAIM_MARGIN)
            .await
        {
            Ok(NextAction::Proceed) => true,
            Ok(NextAction::AlreadyDone) => {
                DUPLICATES_SUPPRESSED.with_label_values(&["done"]).inc();
                return Handled::Done;
            }
            Ok(NextAction::InFlightElsewhere) => {
                // The holder settles the job; this copy waits in the shortest retry queue in
                // case the holder dies before it does.
                return match self.defer(&job, "in_flight_elsewhere").await {
                    Ok(()) => Handled::Done,
                    Err(reason) => Handled::Requeue(reason),
                };
            }
            Err(error) => {
                // Deliveries must not stop when Redis does: send without the key (at least once;
                // receivers deduplicate on webhook-id) and let /readyz and the metric say so.
                tracing::warn!(error = %error, "Redis unavailable; sending without an idempotency key");
                false
            }
        };
        let (handled, settled) = match self.attempt_and_settle(&job, check_first).await {
            Ok(settled) => (Handled::Done, settled),
            Err(reason) => (Handled::Requeue(reason), Settled::Release),
        };
        if claimed {
            let marked = match settled {
                Settled::Finished => self.idempotency.finish(&key, DONE_TTL).await,
                Settled::Release => self.idempotency.release(&key).await,
            };
            if let Err(error) = marked {
                tracing::warn!(error = %error, "could not update the delivery key");
            }
        }
        handled
    }

    /// Everything after the claim. `Err` means a dependency failed before the outcome was
    /// durable: the job goes back to the queue.
    async fn attempt_and_settle(
        &self,
        job: &DeliveryJob,
        check_first: bool,
    ) -> Result<Settled, String> {
        let endpoint = self
            .endpoints
            .run((job.workspace_id.clone(), job.endpoint_id.clone()))
            .await
            .map_err(|e| format!("endpoint lookup failed: {e}"))?;
        let Some(endpoint) = endpoint else {
            // The endpoint was deleted, and its deliveries with it: nothing left to do.
            self.guards.forget(&job.endpoint_id);
            tracing::info!("dropping a job for a deleted endpoint");
            return Ok(Settled::Finished);
        };
        // A resend may have started a new generation, or the delivery been sent, since the job
        // was published: one read for a job that may be stale, none for a fresh first attempt.
        if check_first {
            let current = deliveries::still_to_send(&self.pool, &job.delivery_id, job.generation)
                .await
                .map_err(|e| format!("delivery lookup failed: {e}"))?;
            if !current {
                drop_stale_job();
                return Ok(Settled::Finished);
            }
        }
        if !endpoint.enabled {
            self.guards.forget(&job.endpoint_id);
            let reason = format!(
                "endpoint disabled: {}",
                endpoint
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("by its owner")
            );
            self.dead_letter(job, reason, "disabled").await?;
            return Ok(Settled::Finished);
        }

        // A slot is taken only now, so it is held for the attempt alone.
        let pass = match self.guards.admit(&job.endpoint_id).await {
            Ok(pass) => pass,
            Err(deferral) => {
                self.turn_away(job, deferral).await?;
                return Ok(Settled::Release);
            }
        };
        let outcome = attempt(
            &self.client,
            &endpoint.url,
            &job.event,
            &signing_secrets(&endpoint),
            &self.settings.target_policy,
        )
        .await;
        pass.record(AttemptEnd::of(outcome.status_code));
        record_metrics(&outcome);
        tracing::debug!(
            status = outcome.status_code,
            duration_ms = outcome.duration.as_millis() as u64,
            error = outcome.error.as_deref(),
            "attempt made"
        );

        match decide(&self.settings.schedule, job.attempt, outcome.result) {
            Decision::Succeeded => {
                self.record(job, &outcome, DeliveryStatus::Succeeded, None)
                    .await?;
                let lag = (Utc::now() - job.event_time).to_std().unwrap_or_default();
                DELIVERY_LAG.observe(lag.as_secs_f64());
                Ok(Settled::Finished)
            }
            Decision::DisableEndpoint => {
                self.record(job, &outcome, DeliveryStatus::Dead, None)
                    .await?;
                self.disable(&job.endpoint_id, "the endpoint answered 410 Gone", "gone")
                    .await?;
                self.dead_letter(job, "the endpoint answered 410 Gone".into(), "gone")
                    .await?;
                Ok(Settled::Finished)
            }
            Decision::GiveUp => {
                self.record(job, &outcome, DeliveryStatus::Dead, None)
                    .await?;
                let reason = format!(
                    "retries exhausted after {} attempts: {}",
                    job.attempt,
                    describe(&outcome)
                );
                self.dead_letter(job, reason, "exhausted").await?;
                Ok(Settled::Finished)
            }
            Decision::Retry(_) if self.failing_too_long(job, &endpoint).await? => {
                self.record(job, &outcome, DeliveryStatus::Dead, None)
                    .await?;
                let reason = format!(
                    "every delivery failed for {} since the last success",
                    linkkit_core::duration::format_duration(self.settings.disable_after)
                );
                self.disable(&job.endpoint_id, &reason, "failing").await?;
                self.dead_letter(job, reason, "disabled").await?;
                Ok(Settled::Finished)
            }
            Decision::Retry(wait) => {
                let delay = self
                    .settings
                    .schedule
                    .tier_for(wait, &mut rand::thread_rng());
                let next_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                self.record(job, &outcome, DeliveryStatus::Failed, Some(next_at))
                    .await?;
                let retry = job.next_attempt();
                self.publisher
                    .publish(Outgoing::retry(&self.namespace, delay, &retry))
                    .await
                    .map_err(|e| format!("publishing the retry failed: {e}"))?;
                RETRIES_SCHEDULED
                    .with_label_values(&[&retry.attempt.to_string()])
                    .inc();
                Ok(Settled::Release)
            }
        }
    }

    /// Whether every delivery to the endpoint has failed for `disable_after`. The cached row's
    /// `last_success_at` may be older than Postgres's (it is not announced as a change), so a
    /// "yes" is confirmed on a fresh read before anything is disabled.
    async fn failing_too_long(
        &self,
        job: &DeliveryJob,
        cached: &EndpointRow,
    ) -> Result<bool, String> {
        let limit = chrono::Duration::from_std(self.settings.disable_after)
            .unwrap_or(chrono::Duration::MAX);
        let failing = |endpoint: &EndpointRow| {
            let healthy_since = endpoint.last_success_at.unwrap_or(endpoint.created_at);
            Utc::now() - healthy_since > limit
        };
        if !failing(cached) {
            return Ok(false);
        }
        let fresh = endpoints::get(&self.pool, &job.workspace_id, &job.endpoint_id)
            .await
            .map_err(|e| format!("endpoint lookup failed: {e}"))?;
        Ok(fresh.as_ref().is_some_and(failing))
    }

    async fn record(
        &self,
        job: &DeliveryJob,
        outcome: &AttemptOutcome,
        status: DeliveryStatus,
        next_attempt_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<(), String> {
        let record = AttemptRecord {
            attempt: job.attempt,
            at: outcome.started_at,
            status_code: outcome.status_code,
            duration_ms: outcome.duration.as_millis().min(i32::MAX as u128) as u32,
            error: outcome.error.clone(),
            response_body: outcome.response_body.clone(),
            new_status: status,
            next_attempt_at,
        };
        self.attempts
            .run((job.delivery_id.clone(), job.endpoint_id.clone(), record))
            .await
            .map_err(|e| format!("recording the attempt failed: {e}"))
    }

    async fn dead_letter(
        &self,
        job: &DeliveryJob,
        reason: String,
        label: &str,
    ) -> Result<(), String> {
        let current = deliveries::mark_dead(&self.pool, &job.delivery_id, job.generation)
            .await
            .map_err(|e| format!("marking the delivery dead failed: {e}"))?;
        if !current {
            drop_stale_job();
            return Ok(());
        }
        self.publisher
            .publish(Outgoing::dead(&self.namespace, job, reason))
            .await
            .map_err(|e| format!("dead-lettering failed: {e}"))?;
        DEAD_LETTERED.with_label_values(&[label]).inc();
        Ok(())
    }

    async fn disable(
        &self,
        endpoint_id: &EndpointId,
        reason: &str,
        label: &str,
    ) -> Result<(), String> {
        endpoints::disable(&self.pool, endpoint_id, reason)
            .await
            .map_err(|e| format!("disabling failed: {e}"))?;
        ENDPOINTS_DISABLED.with_label_values(&[label]).inc();
        tracing::warn!(reason, "endpoint disabled");
        Ok(())
    }

    /// Parks a job its endpoint's guards turned away on its delivery in Postgres, without
    /// spending an attempt (see `crate::parking`), and tells the fan-out workers when they may
    /// park the endpoint's next jobs themselves. A stale job is dropped instead.
    async fn turn_away(&self, job: &DeliveryJob, deferral: Deferral) -> Result<(), String> {
        let now = Utc::now();
        if let Some(parked_for) = deferral.shared_for() {
            let until = now + chrono::Duration::from_std(parked_for).unwrap_or_default();
            self.notices.tell(&job.endpoint_id, until);
        }
        let (at_least, reason) = deferral.parking();
        let parked = self
            .parks
            .run(ParkRequest {
                delivery_id: job.delivery_id.clone(),
                generation: job.generation,
                attempt: job.attempt,
                wait: self.settings.schedule.park_for(at_least),
            })
            .await
            .map_err(|e| format!("parking the job failed: {e}"))?;
        if parked {
            JOBS_DEFERRED.with_label_values(&[reason]).inc();
        } else {
            drop_stale_job();
        }
        Ok(())
    }

    /// Holds back a copy of a job another sender is sending, in the shortest retry queue, in
    /// case that sender dies before it settles the job.
    async fn defer(&self, job: &DeliveryJob, reason: &str) -> Result<(), String> {
        let Some(delay) = self.settings.schedule.tier_at_least(Duration::ZERO) else {
            return Err(format!("no retry queue to defer to ({reason})"));
        };
        self.publisher
            .publish(Outgoing::retry(&self.namespace, delay, &job.maybe_sent()))
            .await
            .map_err(|e| format!("deferring the job failed: {e}"))?;
        JOBS_DEFERRED.with_label_values(&[reason]).inc();
        Ok(())
    }
}

/// The current secret, and the previous one while its overlap after a rotation lasts.
fn signing_secrets(endpoint: &EndpointRow) -> Vec<WebhookSecret> {
    let mut secrets: Vec<WebhookSecret> =
        WebhookSecret::parse(&endpoint.secret).into_iter().collect();
    let previous_valid = endpoint
        .previous_secret_expires_at
        .is_some_and(|until| until > Utc::now());
    if previous_valid {
        secrets.extend(
            endpoint
                .previous_secret
                .as_deref()
                .and_then(|s| WebhookSecret::parse(s).ok()),
        );
    }
    secrets
}

/// Says that a job is acknowledged unsent because its delivery was sent or resent since.
fn drop_stale_job() {
    tracing::info!("dropping a stale job: its delivery was sent or resent since");
    DUPLICATES_SUPPRESSED.with_label_values(&["stale"]).inc();
}

fn record_metrics(outcome: &AttemptOutcome) {
    let class = match outcome.status_code {
        Some(code) => format!("{}xx", code / 100),
        None => "none".to_owned(),
    };
    let succeeded = matches!(outcome.status_code, Some(200..=299));
    let label = if succeeded { "succeeded" } else { "failed" };
    DELIVERY_ATTEMPTS.with_label_values(&[label, &class]).inc();
    DELIVERY_DURATION.observe(outcome.duration.as_secs_f64());
}

fn describe(outcome: &AttemptOutcome) -> String {
    match (&outcome.status_code, &outcome.error) {
        (Some(code), _) => format!("last answer HTTP {code}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "no answer".into(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use linkkit_core::{DeliveryId, EndpointId, EventType, WorkspaceId};

    use super::*;

    #[test]
    fn only_a_fresh_first_attempt_is_sent_without_reading_its_delivery() {
        let fresh = DeliveryJob::first_attempt(
            DeliveryId::generate(),
            WorkspaceId::generate(),
            EndpointId::generate(),
            0,
            Utc::now(),
            linkkit_core::Envelope::new(EventType::LinkClicked, serde_json::json!({})),
        );
        assert!(!may_be_stale(&fresh, false));
        assert!(may_be_stale(&fresh, true), "handed out again");
        assert!(may_be_stale(&fresh.next_attempt(), false), "a retry");
        assert!(may_be_stale(&fresh.maybe_sent(), false), "parked or a copy");
    }
}
