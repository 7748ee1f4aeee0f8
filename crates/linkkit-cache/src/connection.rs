//! One multiplexed Redis connection per process, shared by every task.
//!
//! A `MultiplexedConnection` already pipelines the commands of concurrent callers over one
//! socket, so hot paths (two idempotency calls per delivery) need no pool checkout per call —
//! and deadpool-redis checks a connection out with an `UNWATCH` + `PING` round trip, which
//! doubled the round trips and tripled the commands of every call. The pool is kept as the
//! factory: it opens connections with its timeouts and counts them, and it takes a connection
//! back after any error, so the next call checks a fresh (pinged) one out.

use std::sync::{Arc, Mutex};

use deadpool_redis::{Config, Connection, Hook, Pool, PoolConfig, Runtime, Timeouts};
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, Pipeline};

use crate::{CacheError, REDIS_CONNECTS, REDIS_ERRORS, REDIS_TIMEOUT};

/// A cheap-to-clone handle on the process's Redis connection.
#[derive(Clone)]
pub struct Redis {
    pool: Pool,
    /// The connection in use; emptied after an error.
    current: Arc<Mutex<Option<Arc<Connection>>>>,
    /// Held while checking a connection out, so a burst of first callers opens one, not many.
    checking_out: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("status", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A handle on `redis_url` (the connection is opened on first use).
    pub fn connect(redis_url: &str) -> Result<Self, CacheError> {
        let mut config = Config::from_url(redis_url);
        config.pool = Some(PoolConfig {
            max_size: 4,
            timeouts: Timeouts {
                wait: Some(REDIS_TIMEOUT),
                create: Some(REDIS_TIMEOUT),
                recycle: Some(REDIS_TIMEOUT),
            },
            ..PoolConfig::default()
        });
        let pool = config
            .builder()
            .map_err(|e| CacheError::Config(e.to_string()))?
            .runtime(Runtime::Tokio1)
            .post_create(Hook::sync_fn(|_, _| {
                REDIS_CONNECTS.inc();
                Ok(())
            }))
            .build()
            .map_err(|e| CacheError::Config(e.to_string()))?;
        Ok(Self {
            pool,
            current: Arc::new(Mutex::new(None)),
            checking_out: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Runs one command with the timeout, counting failures.
    pub async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, CacheError> {
        self.run(|mut connection| async move { command.query_async(&mut connection).await })
            .await
    }

    /// Runs a pipeline (one round trip) with the timeout, counting failures.
    pub async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
    ) -> Result<T, CacheError> {
        self.run(|mut connection| async move { pipeline.query_async(&mut connection).await })
            .await
    }

    async fn run<T, F, Fut>(&self, call: F) -> Result<T, CacheError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let (held, connection) = self.connection().await?;
            call(connection).await.map_err(|error| {
                self.give_back(&held);
                CacheError::Unavailable(error.to_string())
            })
        };
        let result = tokio::time::timeout(REDIS_TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| {
                self.give_back_current();
                Err(CacheError::Unavailable("timed out".into()))
            });
        if result.is_err() {
            REDIS_ERRORS.inc();
        }
        result
    }

    /// The shared connection, checked out of the pool when there is none.
    async fn connection(&self) -> Result<(Arc<Connection>, MultiplexedConnection), CacheError> {
        if let Some(shared) = self.shared() {
            return Ok(shared);
        }
        let _checking_out = self.checking_out.lock().await;
        if let Some(shared) = self.shared() {
            return Ok(shared);
        }
        let held = Arc::new(
            self.pool
                .get()
                .await
                .map_err(|e| CacheError::Unavailable(e.to_string()))?,
        );
        *self.lock() = Some(held.clone());
        let connection = MultiplexedConnection::clone(&held);
        Ok((held, connection))
    }

    fn shared(&self) -> Option<(Arc<Connection>, MultiplexedConnection)> {
        let held = self.lock().clone()?;
        let connection = MultiplexedConnection::clone(&held);
        Some((held, connection))
    }

    /// After an error on `held`: stop sharing it (the pool re-checks it before any reuse).
    fn give_back(&self, held: &Arc<Connection>) {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, held)) {
            *current = None;
        }
    }

    fn give_back_current(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Connection>>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::redis_url;

    #[tokio::test]
    async fn concurrent_callers_share_one_connection() {
        let redis = Redis::connect(&redis_url()).unwrap();
        let key = format!("test-{}:shared", uuid::Uuid::now_v7().simple());
        let calls = (0..50).map(|_| {
            let redis = redis.clone();
            let key = key.clone();
            async move { redis.query::<i64>(redis::cmd("INCR").arg(&key)).await }
        });
        let counts = futures_util::future::join_all(calls).await;
        assert!(counts.iter().all(Result::is_ok), "{counts:?}");
        assert_eq!(
            redis
                .query::<i64>(redis::cmd("GET").arg(&key))
                .await
                .unwrap(),
            50
        );
        assert_eq!(
            redis.pool.status().size,
            1,
            "one connection served them all"
        );
        redis
            .query::<()>(redis::cmd("DEL").arg(&key))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_server_is_replaced() {
        let redis = Redis::connect(&redis_url()).unwrap();
        let id: i64 = redis
            .query(&redis::cmd("CLIENT").arg("ID").to_owned())
            .await
            .unwrap();
        // Close that connection from another client, as a Redis restart would.
        let other = Redis::connect(&redis_url()).unwrap();
        let killed: i64 = other
            .query(redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id))
            .await
            .unwrap();
        assert_eq!(killed, 1);
        // The first call may still meet the dead socket; the next one has a new connection.
        let _ = redis.query::<String>(&redis::cmd("PING")).await;
        let new_id: i64 = redis
            .query(&redis::cmd("CLIENT").arg("ID").to_owned())
            .await
            .unwrap();
        assert_ne!(new_id, id);
    }
}
