//! Per-key request limits in Redis: a fixed one-second window per API key, shared by every API
//! process. When Redis cannot answer, requests are let through (the API must not go down with
//! its rate limiter) and the failure is counted.

use std::time::{SystemTime, UNIX_EPOCH};

use linkkit_core::Namespace;

use crate::{CacheError, Redis};

#[derive(Debug, Clone)]
pub struct RateLimiter {
    redis: Redis,
    namespace: Namespace,
    per_second: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit: retry after this many seconds.
    Limited {
        retry_after_seconds: u64,
    },
}

impl RateLimiter {
    pub fn new(redis: Redis, namespace: Namespace, per_second: u32) -> Self {
        Self {
            redis,
            namespace,
            per_second,
        }
    }

    /// Counts one request of `subject` (an API key id) and says whether it may proceed.
    pub async fn check(&self, subject: &str) -> Verdict {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let window = now.as_secs();
        let key = self
            .namespace
            .redis_key(&["ratelimit", subject, &window.to_string()]);
        match self.count(&key).await {
            Ok(count) if count > u64::from(self.per_second) => Verdict::Limited {
                retry_after_seconds: 1,
            },
            Ok(_) => Verdict::Allowed,
            Err(error) => {
                tracing::warn!(error = %error, "rate limiter unavailable; letting the request through");
                Verdict::Allowed
            }
        }
    }

    async fn count(&self, key: &str) -> Result<u64, CacheError> {
        let mut count = redis::pipe();
        count.atomic().incr(key, 1).expire(key, 2).ignore();
        let (count,): (u64,) = self.redis.query_pipeline(&count).await?;
        Ok(count)
    }
}
