//! Claim-then-finish idempotency keys.
//!
//! Before doing a piece of work a worker *claims* its key (`SET NX` with a TTL longer than the
//! work can take); when the work is durable it *finishes* the key (a long-lived `done`); if the
//! work failed and will be retried it *releases* the claim. A second worker that finds a claim
//! knows the work is in flight elsewhere; one that finds `done` skips it.
//!
//! The claim must outlive the work it guards, or a second worker would start it again while the
//! first is still at it: callers pass a TTL of the work's timeout plus a margin.

use std::time::Duration;

use linkkit_core::Namespace;

use crate::{CacheError, Redis};

const IN_FLIGHT: &str = "in-flight";
const DONE: &str = "done";

/// What to do with a piece of work, according to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAction {
    /// The claim is ours: do the work.
    Proceed,
    /// Another worker holds the claim right now.
    InFlightElsewhere,
    /// The work was already done.
    AlreadyDone,
}

#[derive(Debug, Clone)]
pub struct Idempotency {
    redis: Redis,
    namespace: Namespace,
}

impl Idempotency {
    pub fn new(redis: Redis, namespace: Namespace) -> Self {
        Self { redis, namespace }
    }

    /// The full Redis key of `parts` under this namespace.
    pub fn key(&self, parts: &[&str]) -> String {
        self.namespace.redis_key(parts)
    }

    /// Claims `key` for `claim_ttl` unless it is claimed or done — one round trip: `SET NX GET`
    /// (Redis 7) sets the claim only when the key is absent and answers what was there.
    pub async fn claim(&self, key: &str, claim_ttl: Duration) -> Result<NextAction, CacheError> {
        let mut set = redis::cmd("SET");
        set.arg(key)
            .arg(IN_FLIGHT)
            .arg("NX")
            .arg("PX")
            .arg(claim_ttl.as_millis() as u64)
            .arg("GET");
        let before: Option<String> = self.redis.query(&set).await?;
        Ok(match before.as_deref() {
            None => NextAction::Proceed,
            Some(DONE) => NextAction::AlreadyDone,
            Some(_) => NextAction::InFlightElsewhere,
        })
    }

    /// Marks the work done for `done_ttl`.
    pub async fn finish(&self, key: &str, done_ttl: Duration) -> Result<(), CacheError> {
        let mut set = redis::cmd("SET");
        set.arg(key)
            .arg(DONE)
            .arg("PX")
            .arg(done_ttl.as_millis() as u64);
        self.redis.query::<()>(&set).await
    }

    /// Gives the claim up so a later attempt can take it.
    pub async fn release(&self, key: &str) -> Result<(), CacheError> {
        let mut del = redis::cmd("DEL");
        del.arg(key);
        self.redis.query::<()>(&del).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{fresh_namespace, redis_url};

    fn idempotency() -> Idempotency {
        Idempotency::new(Redis::connect(&redis_url()).unwrap(), fresh_namespace())
    }

    #[tokio::test]
    async fn a_claimed_key_is_in_flight_for_others_until_finished_or_released() {
        let keys = idempotency();
        let key = keys.key(&["delivery", "dlv_1"]);
        let ttl = Duration::from_secs(30);
        assert_eq!(keys.claim(&key, ttl).await.unwrap(), NextAction::Proceed);
        assert_eq!(
            keys.claim(&key, ttl).await.unwrap(),
            NextAction::InFlightElsewhere
        );
        keys.release(&key).await.unwrap();
        assert_eq!(keys.claim(&key, ttl).await.unwrap(), NextAction::Proceed);
        keys.finish(&key, Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            keys.claim(&key, ttl).await.unwrap(),
            NextAction::AlreadyDone
        );
        keys.release(&key).await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_claim_can_be_taken_again() {
        let keys = idempotency();
        let key = keys.key(&["fanout", "evt_1"]);
        assert_eq!(
            keys.claim(&key, Duration::from_millis(50)).await.unwrap(),
            NextAction::Proceed
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            keys.claim(&key, Duration::from_secs(5)).await.unwrap(),
            NextAction::Proceed
        );
        keys.release(&key).await.unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_not_a_hang() {
        let redis = Redis::connect("redis://127.0.0.1:1/0").unwrap();
        let keys = Idempotency::new(redis, Namespace::parse("t").unwrap());
        assert!(keys.claim("t:x", Duration::from_secs(1)).await.is_err());
    }
}
