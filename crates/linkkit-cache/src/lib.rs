//! Linkkit's Redis seam: one shared connection with short timeouts (a lost Redis fails fast instead of hanging
//! a worker) and the idempotency keys that keep the system from repeating its own work.
//!
//! Redis is a cache of "what was already done", never a queue and never the system of record.

mod connection;
mod idempotency;
pub mod links;
pub mod parked;
mod rate_limit;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{register_int_counter, IntCounter};

pub use connection::Redis;
pub use idempotency::{Idempotency, NextAction};
pub use rate_limit::{RateLimiter, Verdict};

/// Every Redis call gives up after this long.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

pub static REDIS_CONNECTS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "linkkit_redis_connects_total",
        "Redis connections opened; a rise after start-up means reconnects."
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

/// True when Redis answers `PING`.
pub async fn ping(redis: &Redis) -> bool {
    redis.query::<String>(&redis::cmd("PING")).await.is_ok()
}

/// What the tests of this crate share: the local Redis, and a namespace of their own.
#[cfg(test)]
mod test_support {
    use linkkit_core::Namespace;

    pub fn redis_url() -> String {
        std::env::var("LINKKIT_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
    }

    pub fn fresh_namespace() -> Namespace {
        Namespace::parse(&format!("test-{}", uuid::Uuid::now_v7().simple())).unwrap()
    }
}
