//! Linkkit's Redis seam: a pool with short timeouts (a lost Redis fails fast instead of hanging
//! a worker) and the idempotency keys that keep the system from repeating its own work.
//!
//! Redis is a cache of "what was already done", never a queue and never the system of record.

mod idempotency;
pub mod links;
mod rate_limit;

use std::sync::LazyLock;
use std::time::Duration;

use deadpool_redis::{Config, Hook, Pool, PoolConfig, Runtime, Timeouts};
use prometheus::{register_int_counter, IntCounter};

pub use idempotency::{Idempotency, NextAction};
pub use rate_limit::{RateLimiter, Verdict};

/// Every Redis call gives up after this long.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

pub static REDIS_CONNECTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_redis_connects_total",
        "Redis connections opened by the pool; a rise after start-up means reconnects."
    )
    .expect("metric registers once")
});

pub static REDIS_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_redis_errors_total",
        "Redis calls that failed or timed out."
    )
    .expect("metric registers once")
});

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("invalid Redis URL: {0}")]
    Config(String),
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
}

/// Registers the Redis metrics.
pub fn init_metrics() {
    LazyLock::force(&REDIS_ERRORS);
    LazyLock::force(&REDIS_CONNECTS);
}

/// A Redis connection pool (connections are opened on first use).
pub fn connect(redis_url: &str) -> Result<Pool, CacheError> {
    let mut config = Config::from_url(redis_url);
    config.pool = Some(PoolConfig {
        max_size: 64,
        timeouts: Timeouts {
            wait: Some(REDIS_TIMEOUT),
            create: Some(REDIS_TIMEOUT),
            recycle: Some(REDIS_TIMEOUT),
        },
        ..PoolConfig::default()
    });
    config
        .builder()
        .map_err(|e| CacheError::Config(e.to_string()))?
        .runtime(Runtime::Tokio1)
        .post_create(Hook::sync_fn(|_, _| {
            REDIS_CONNECTS.inc();
            Ok(())
        }))
        .build()
        .map_err(|e| CacheError::Config(e.to_string()))
}

/// Runs one command with the timeout, counting failures.
pub async fn query<T: redis::FromRedisValue>(
    pool: &Pool,
    command: &redis::Cmd,
) -> Result<T, CacheError> {
    let attempt = async {
        let mut connection = pool
            .get()
            .await
            .map_err(|e| CacheError::Unavailable(e.to_string()))?;
        command
            .query_async::<T>(&mut connection)
            .await
            .map_err(|e| CacheError::Unavailable(e.to_string()))
    };
    let result = match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(CacheError::Unavailable("timed out".into())),
    };
    if result.is_err() {
        REDIS_ERRORS.inc();
    }
    result
}

/// True when Redis answers `PING`.
pub async fn ping(pool: &Pool) -> bool {
    query::<String>(pool, &redis::cmd("PING")).await.is_ok()
}
