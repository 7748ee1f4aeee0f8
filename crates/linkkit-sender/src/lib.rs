//! Sender workers: one delivery job → one signed HTTP attempt → acknowledge, schedule a retry,
//! or dead-letter.
//!
//! A job is acknowledged only once everything it caused is durable: the attempt recorded in
//! Postgres, and the retry or dead-letter copy confirmed by the broker. The Redis key of the
//! delivery (per generation) is claimed before the POST and marked done after it, so a
//! redelivered or duplicated job is never POSTed twice and two senders never POST the same job
//! at once. One slow endpoint only ever holds one of the many attempts in flight. A job's
//! endpoint (URL, secrets, enabled) is read from memory that every endpoint change drops as it
//! commits (see `linkkit_store::endpoint_cache`). A job its endpoint cannot take now (circuit
//! open, stuck, busy) is parked on its delivery in Postgres and published again when due by
//! every sender's sweep (see `parking`).

mod attempt;
mod breaker;
mod client;
pub mod dead_letters;
mod guards;
mod handler;
pub mod metrics;
mod parking;
mod parking_notices;

use std::sync::Arc;
use std::time::Duration;

use linkkit_bus::{run_consumer, Broker, ConsumerSettings, Publisher, Topology};
use linkkit_cache::parked::ParkedEndpoints;
use linkkit_cache::{Idempotency, Redis};
use linkkit_core::net::TargetPolicy;
use linkkit_core::retry::RetrySchedule;
use linkkit_store::endpoint_cache::{follow_endpoint_changes, CachedEndpoints};
use linkkit_store::group::{GroupLimits, Grouped};
use linkkit_store::worker_queries::{EndpointById, ParkDeliveries, RecordAttempts};
use linkkit_store::PgPool;
use tokio_util::sync::CancellationToken;

pub use attempt::{AttemptOutcome, USER_AGENT};
pub use client::build_client;
use guards::EndpointGuards;
pub use guards::FIRST_SLOTS;
pub use handler::SenderHandler;
use parking_notices::ParkingNotices;

#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub schedule: RetrySchedule,
    /// `LINKKIT_DELIVERY_TIMEOUT`: the whole attempt, connect to last byte read.
    pub timeout: Duration,
    /// `LINKKIT_DISABLE_AFTER`: failing this long since the last success disables an endpoint.
    pub disable_after: Duration,
    /// `LINKKIT_ALLOW_PRIVATE_TARGETS` and `LINKKIT_ALLOWED_TARGET_CIDRS`.
    pub target_policy: TargetPolicy,
    pub prefetch: u16,
    /// Attempts in flight at once in this process.
    pub concurrency: usize,
    /// Attempts in flight at once to one endpoint, in this process.
    pub endpoint_concurrency: usize,
}

/// Consumes the deliveries queue until `shutdown` fires.
pub async fn run(
    broker: Broker,
    topology: Topology,
    pool: PgPool,
    redis: Redis,
    settings: SenderSettings,
    shutdown: CancellationToken,
) {
    let namespace = topology.namespace.clone();
    let publisher = Arc::new(Publisher::new(broker.clone(), topology.clone()));
    let consumer = ConsumerSettings {
        queue: namespace.deliveries(),
        prefetch: settings.prefetch,
        concurrency: settings.concurrency,
        dead_queue: namespace.dead_queue(),
    };
    let handler = Arc::new(SenderHandler {
        client: build_client(&settings),
        guards: EndpointGuards::new(settings.endpoint_concurrency),
        notices: ParkingNotices::new(ParkedEndpoints::new(redis.clone(), &namespace)),
        endpoints: CachedEndpoints::new(EndpointById(pool.clone()), GroupLimits::default()),
        attempts: Grouped::new(RecordAttempts(pool.clone()), GroupLimits::default()),
        parks: Grouped::new(ParkDeliveries(pool.clone()), GroupLimits::default()),
        pool,
        publisher: publisher.clone(),
        idempotency: Idempotency::new(redis, namespace.clone()),
        namespace,
        settings,
    });
    let following = follow_endpoint_changes(
        handler.pool.clone(),
        vec![Box::new(handler.endpoints.clone())],
        shutdown.clone(),
    );
    tokio::join!(
        following,
        parking::keep_sweeping(&handler, shutdown.clone()),
        run_consumer(
            broker,
            topology,
            consumer,
            publisher,
            handler.clone(),
            shutdown
        )
    );
}
