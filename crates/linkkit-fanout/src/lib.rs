//! Fan-out workers: one raw event from `{ns}.fanout` becomes one delivery job per enabled
//! endpoint of its workspace subscribed to its type; a click or a scan is also added to its
//! link's `clicks` or `scans`: in the statement that stores the event and its deliveries, once
//! per event, or, when no endpoint subscribes, in one grouped statement for the visits in
//! flight that remembers their event ids in `counted_visits` (pruned after a week).
//!
//! Order of effects, so nothing is lost: deliveries are recorded in Postgres, every job is
//! published and confirmed, and only then is the message acknowledged. A crash in between means
//! the message comes back; the deliveries already in Postgres are found again (unique per event
//! × endpoint), their jobs published again if still `pending` and marked as maybe sent, and the
//! senders' idempotency keys and status checks absorb the copies.
//!
//! Which endpoints subscribe to an event is answered from memory that every endpoint change
//! drops as it commits (see `linkkit_store::endpoint_cache`).
//!
//! A worker stays at most `max_queued_jobs` jobs ahead of the senders (see
//! `linkkit_bus::QueueRoom`): the rest of a burst waits as events, and each job is decided shortly
//! before it can go.
//!
//! A delivery to an endpoint that a sender is parking (its circuit open, or stuck) is stored
//! parked, with no job published: a sender's sweep publishes it when it is due (see
//! `linkkit_cache::parked` and `linkkit_store::parked`).

mod handler;
pub mod legacy_counters;
pub mod metrics;
mod parked_view;
pub mod visit_ledger;

use std::sync::Arc;

use linkkit_bus::{run_consumer, Broker, ConsumerSettings, Publisher, QueueRoom, Topology};
use linkkit_cache::parked::ParkedEndpoints;
use linkkit_cache::Redis;
use linkkit_core::retry::RetrySchedule;
use linkkit_store::endpoint_cache::{follow_endpoint_changes, CachedSubscribers};
use linkkit_store::group::{GroupLimits, Grouped};
use linkkit_store::worker_queries::{CountVisits, CreateDeliveries, SubscribedEndpoints};
use linkkit_store::PgPool;
use tokio_util::sync::CancellationToken;

pub use handler::FanoutHandler;
use parked_view::ParkedView;

#[derive(Debug, Clone)]
pub struct FanoutSettings {
    pub prefetch: u16,
    pub concurrency: usize,
    /// The senders' schedule, whose shortest delay is the shortest a delivery is stored parked.
    pub retry_schedule: RetrySchedule,
    /// Jobs that may wait in the deliveries queue before this worker waits for room; 0 for no
    /// bound.
    pub max_queued_jobs: u32,
}

/// Consumes the fan-out queue until `shutdown` fires.
pub async fn run(
    broker: Broker,
    topology: Topology,
    pool: PgPool,
    redis: Redis,
    settings: FanoutSettings,
    shutdown: CancellationToken,
) {
    let namespace = topology.namespace.clone();
    let publisher = Arc::new(Publisher::new(broker.clone(), topology.clone()));
    let room = (settings.max_queued_jobs > 0).then(|| {
        Arc::new(QueueRoom::new(
            namespace.deliveries(),
            settings.max_queued_jobs,
        ))
    });
    let handler = Arc::new(FanoutHandler {
        subscribers: CachedSubscribers::new(
            SubscribedEndpoints(pool.clone()),
            GroupLimits::default(),
        ),
        deliveries: Grouped::new(CreateDeliveries(pool.clone()), GroupLimits::default()),
        visits: Grouped::new(CountVisits(pool.clone()), GroupLimits::default()),
        publisher: publisher.clone(),
        namespace: namespace.clone(),
        parked: ParkedView::default(),
        retry_schedule: settings.retry_schedule.clone(),
        room: room.clone(),
    });
    let parked = ParkedEndpoints::new(redis, &namespace);
    let consumer = ConsumerSettings {
        queue: namespace.fanout_queue(),
        prefetch: settings.prefetch,
        concurrency: settings.concurrency,
        dead_queue: namespace.dead_queue(),
    };
    let retiring = {
        let (broker, topology) = (broker.clone(), topology.clone());
        let (publisher, shutdown) = (publisher.clone(), shutdown.clone());
        let pool = pool.clone();
        async move { legacy_counters::keep_retired(broker, topology, pool, &publisher, shutdown).await }
    };
    let following = follow_endpoint_changes(
        pool.clone(),
        vec![Box::new(handler.subscribers.clone())],
        shutdown.clone(),
    );
    let sampling = {
        let (broker, topology, shutdown) = (broker.clone(), topology.clone(), shutdown.clone());
        async move {
            if let Some(room) = room {
                room.keep_sampled(broker, topology, shutdown).await;
            }
        }
    };
    tokio::join!(
        retiring,
        sampling,
        following,
        visit_ledger::keep_pruned(pool.clone(), shutdown.clone()),
        handler.parked.keep_fresh(parked, shutdown.clone()),
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
