//! Wiring: which parts a command runs, on which listeners, until the shutdown token fires.
//!
//! Tests call [`run`] with listeners bound to port 0, exactly as `main` does with the
//! configured addresses.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use linkkit_api::{ApiConfig, AppState};
use linkkit_bus::{Broker, Publisher};
use linkkit_cache::links::LinkStore;
use linkkit_cache::RateLimiter;
use linkkit_fanout::FanoutSettings;
use linkkit_redirect::{EventBuffer, Geo, LinkCache, RedirectConfig, RedirectState};
use linkkit_sender::SenderSettings;
use linkkit_store::PgPool;
use sqlx::migrate::MigrateDatabase;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Readiness};
use crate::config::Config;

/// A deployable part, or all of them in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Api,
    Redirect,
    Fanout,
    Sender,
    All,
}

impl Service {
    fn includes(self, part: Service) -> bool {
        self == Service::All || self == part
    }

    fn uses_redis(self) -> bool {
        self.includes(Service::Api)
            || self.includes(Service::Fanout)
            || self.includes(Service::Sender)
    }
}

/// The sockets a process serves on; `None` for those its service does not use.
#[derive(Debug)]
pub struct Listeners {
    pub api: Option<TcpListener>,
    pub redirect: Option<TcpListener>,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses the service needs.
    pub async fn bind(service: Service, config: &Config) -> anyhow::Result<Self> {
        let bind = |address| async move {
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))
        };
        Ok(Self {
            api: if service.includes(Service::Api) {
                Some(bind(config.api_addr).await?)
            } else {
                None
            },
            redirect: if service.includes(Service::Redirect) {
                Some(bind(config.redirect_addr).await?)
            } else {
                None
            },
            admin: bind(config.admin_addr).await?,
        })
    }
}

/// Creates the database if it does not exist, then applies every migration.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = config.database_url.expose();
    if !sqlx::Postgres::database_exists(url)
        .await
        .context("cannot reach Postgres")?
    {
        sqlx::Postgres::create_database(url)
            .await
            .context("cannot create the database")?;
        tracing::info!("created the database");
    }
    let pool = linkkit_store::connect_lazy(url, 2)?;
    linkkit_store::migrate(&pool).await?;
    pool.close().await;
    Ok(())
}

/// Postgres connections per process at most (opened as needed). The workers keep hundreds of
/// messages in flight, but their per-message queries are grouped (`linkkit_store::group`):
/// one statement at a time per query, so a worker process uses a few, plus one that listens
/// for endpoint changes per cache (`linkkit_store::endpoint_cache`) and, in the API, one for
/// the outbox; several processes stay well inside Postgres's default `max_connections` of 100.
const DATABASE_CONNECTIONS: u32 = 24;

pub fn connect_database(config: &Config) -> anyhow::Result<PgPool> {
    Ok(linkkit_store::connect_lazy(
        config.database_url.expose(),
        DATABASE_CONNECTIONS,
    )?)
}

/// Runs `service` until `shutdown` fires (or one of its parts fails, which stops the others).
pub async fn run(
    service: Service,
    config: Arc<Config>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if config.allow_private_targets {
        tracing::warn!(
            "LINKKIT_ALLOW_PRIVATE_TARGETS is on: webhooks may go to loopback and private addresses (local testing only)"
        );
    }
    let pool = connect_database(&config)?;
    let broker = Broker::new(config.amqp_url.expose());
    let topology = config.topology();
    let redis = if service.uses_redis() {
        Some(linkkit_cache::Redis::connect(config.redis_url.expose())?)
    } else {
        None
    };

    let mut tasks = JoinSet::new();
    let readiness = Readiness {
        pool: pool.clone(),
        broker: broker.clone(),
        redis: redis.clone(),
    };
    spawn(
        &mut tasks,
        "admin server",
        admin::serve(listeners.admin, readiness, shutdown.clone()),
    );
    init_metrics(service, &config);
    if service.includes(Service::Fanout) || service.includes(Service::Sender) {
        let exporter = linkkit_bus::run_queue_depth_exporter(
            broker.clone(),
            topology.clone(),
            shutdown.clone(),
        );
        spawn_loop(&mut tasks, "queue depth exporter", exporter);
    }

    if let Some(listener) = listeners.api {
        let publisher = Arc::new(Publisher::new(broker.clone(), topology.clone()));
        let api_config = ApiConfig {
            public_base_url: config.public_base_url.clone(),
            api_base_url: config.api_base_url.clone(),
            target_policy: config.target_policy(),
            namespace: config.namespace.clone(),
        };
        let rate_limiter = match (&redis, config.api_rate_limit) {
            (Some(redis), Some(per_second)) => Some(RateLimiter::new(
                redis.clone(),
                config.namespace.clone(),
                per_second,
            )),
            _ => None,
        };
        let state = AppState {
            pool: pool.clone(),
            publisher: publisher.clone(),
            config: Arc::new(api_config),
            rate_limiter,
            link_cache: redis
                .clone()
                .map(|redis| LinkStore::new(redis, config.namespace.clone())),
            broker: broker.clone(),
            topology: topology.clone(),
            streams: Arc::new(tokio::sync::Semaphore::new(linkkit_api::MAX_STREAMS)),
            shutdown: shutdown.clone(),
        };
        spawn(
            &mut tasks,
            "API server",
            linkkit_api::serve(state, listener, shutdown.clone()),
        );
        let (pool, namespace, token) = (pool.clone(), config.namespace.clone(), shutdown.clone());
        spawn_loop(&mut tasks, "outbox relay", async move {
            linkkit_api::run_outbox_relay(pool, &publisher, namespace, token).await
        });
    }

    if let Some(listener) = listeners.redirect {
        let publisher = Arc::new(Publisher::new(broker.clone(), topology.clone()));
        let (events, receiver) = EventBuffer::new(config.event_buffer);
        let redirect_config = RedirectConfig {
            public_base_url: config.public_base_url.clone(),
            namespace: config.namespace.clone(),
            track_bots: config.track_bots,
        };
        let links = LinkCache::new(pool.clone(), redis.clone(), config.namespace.clone());
        let geo = Geo::new(
            config.geoip_db.as_deref(),
            config.trust_proxy_headers,
            config.trusted_proxies.clone(),
        )?;
        let invalidation = linkkit_redirect::run_cache_invalidation(
            broker.clone(),
            topology.clone(),
            links.clone(),
            shutdown.clone(),
        );
        spawn_loop(&mut tasks, "link cache invalidation", invalidation);
        let redirect_config = Arc::new(redirect_config);
        let state = RedirectState {
            links,
            geo,
            events,
            config: redirect_config.clone(),
        };
        spawn(
            &mut tasks,
            "redirect server",
            linkkit_redirect::serve(state, listener, shutdown.clone()),
        );
        let token = shutdown.clone();
        spawn_loop(&mut tasks, "event buffer publisher", async move {
            linkkit_redirect::run_buffer_publisher(receiver, publisher, redirect_config, token)
                .await
        });
    }

    if let (true, Some(redis)) = (service.includes(Service::Fanout), &redis) {
        let settings = FanoutSettings {
            concurrency: config.fanout_concurrency,
            prefetch: (config.fanout_concurrency * 2).min(u16::MAX as usize) as u16,
            retry_schedule: config.retry_schedule.clone(),
            max_queued_jobs: config.fanout_max_queued_jobs,
        };
        let run = linkkit_fanout::run(
            broker.clone(),
            topology.clone(),
            pool.clone(),
            redis.clone(),
            settings,
            shutdown.clone(),
        );
        spawn_loop(&mut tasks, "fan-out worker", run);
    }

    if let (true, Some(redis)) = (service.includes(Service::Sender), &redis) {
        let settings = SenderSettings {
            schedule: config.retry_schedule.clone(),
            timeout: config.delivery_timeout,
            disable_after: config.disable_after,
            target_policy: config.target_policy(),
            prefetch: (config.sender_concurrency * 2).min(u16::MAX as usize) as u16,
            concurrency: config.sender_concurrency,
            endpoint_concurrency: config.endpoint_concurrency,
        };
        let run = linkkit_sender::run(
            broker.clone(),
            topology.clone(),
            pool.clone(),
            redis.clone(),
            settings,
            shutdown.clone(),
        );
        spawn_loop(&mut tasks, "sender worker", run);
    }

    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let (name, result) = joined.context("a task panicked")?;
        if let Err(error) = result {
            tracing::error!(task = name, error = %error, "a part stopped with an error; stopping the others");
            failure.get_or_insert(anyhow::anyhow!("{name}: {error}"));
        } else if !shutdown.is_cancelled() {
            tracing::error!(
                task = name,
                "a part stopped unexpectedly; stopping the others"
            );
            failure.get_or_insert(anyhow::anyhow!("{name} stopped unexpectedly"));
        }
        shutdown.cancel();
    }
    broker.close().await;
    pool.close().await;
    failure.map_or(Ok(()), Err)
}

type TaskResult = (&'static str, Result<(), String>);

/// Spawns a part that runs until shutdown and has no error of its own to report.
fn spawn_loop(
    tasks: &mut JoinSet<TaskResult>,
    name: &'static str,
    task: impl Future<Output = ()> + Send + 'static,
) {
    spawn(tasks, name, async move {
        task.await;
        Ok::<(), std::io::Error>(())
    });
}

fn spawn<E: std::fmt::Display>(
    tasks: &mut JoinSet<TaskResult>,
    name: &'static str,
    task: impl Future<Output = Result<(), E>> + Send + 'static,
) {
    tasks.spawn(async move { (name, task.await.map_err(|e| e.to_string())) });
}

/// Registers the metrics of the parts this process runs, with their usual series at zero, so a
/// scrape shows every family from the start.
fn init_metrics(service: Service, config: &Config) {
    linkkit_bus::metrics::init();
    if service.includes(Service::Api) {
        linkkit_bus::metrics::init_publisher("api");
    }
    if service.includes(Service::Redirect) {
        linkkit_bus::metrics::init_publisher("redirect");
    }
    if service.uses_redis() {
        linkkit_cache::init_metrics();
    }
    if service.includes(Service::Redirect) {
        linkkit_redirect::metrics::init();
    }
    if service.includes(Service::Fanout) {
        linkkit_fanout::metrics::init();
        linkkit_store::metrics::init(&["subscribed_endpoints", "create_deliveries"]);
        linkkit_store::metrics::init_endpoint_cache("subscribed_endpoints");
    }
    if service.includes(Service::Sender) {
        linkkit_sender::metrics::init(config.retry_schedule.max_attempts());
        linkkit_store::metrics::init(&["endpoint_by_id", "record_attempts"]);
        linkkit_store::metrics::init_endpoint_cache("endpoint_by_id");
    }
}
