//! Endpoints whose jobs are being parked, shared between processes through Redis.
//!
//! A sender that finds an endpoint's circuit open, or the endpoint stuck, parks its jobs (on
//! their deliveries in Postgres). Each of those jobs first went through the deliveries queue
//! and a sender only to be parked there. So the sender also writes the endpoint here, with
//! until when, and the fan-out workers read the set a few times a second and store that
//! endpoint's new deliveries parked, with no job. A dead endpoint with heavy traffic then costs
//! neither the senders nor the broker anything.
//!
//! The set is a sorted set: member the endpoint id, score until when (Unix milliseconds). It
//! only ever says "park until", never "deliver": losing it, or Redis, means jobs take the
//! longer way round and are parked by the senders, as before.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use linkkit_core::{EndpointId, Namespace};

use crate::{CacheError, Redis};

#[derive(Debug, Clone)]
pub struct ParkedEndpoints {
    redis: Redis,
    key: String,
}

impl ParkedEndpoints {
    pub fn new(redis: Redis, namespace: &Namespace) -> Self {
        Self {
            redis,
            key: namespace.redis_key(&["parked-endpoints"]),
        }
    }

    /// Says that `endpoint`'s jobs are parked until `until`; an earlier `until` already there
    /// is pushed back, a later one is kept.
    pub async fn park(
        &self,
        endpoint: &EndpointId,
        until: DateTime<Utc>,
    ) -> Result<(), CacheError> {
        let mut add = redis::cmd("ZADD");
        add.arg(&self.key)
            .arg("GT")
            .arg(until.timestamp_millis())
            .arg(endpoint.as_str());
        self.redis.query::<()>(&add).await
    }

    /// Every endpoint parked past `now`, with until when; entries that have lapsed are removed
    /// in the same round trip.
    pub async fn current(
        &self,
        now: DateTime<Utc>,
    ) -> Result<HashMap<EndpointId, DateTime<Utc>>, CacheError> {
        let now_ms = now.timestamp_millis();
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.key)
            .arg("-inf")
            .arg(now_ms)
            .ignore()
            .cmd("ZRANGE")
            .arg(&self.key)
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .arg("BYSCORE")
            .arg("WITHSCORES");
        let (entries,): (Vec<(String, i64)>,) = self.redis.query_pipeline(&pipeline).await?;
        Ok(entries
            .into_iter()
            .filter_map(|(id, until_ms)| {
                let endpoint = EndpointId::parse(&id).ok()?;
                Some((endpoint, DateTime::from_timestamp_millis(until_ms)?))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{fresh_namespace, redis_url};
    use chrono::Duration;

    fn parked() -> ParkedEndpoints {
        ParkedEndpoints::new(Redis::connect(&redis_url()).unwrap(), &fresh_namespace())
    }

    #[tokio::test]
    async fn an_endpoint_is_parked_until_its_latest_until_and_not_after() {
        let parked = parked();
        let (failing, stuck) = (EndpointId::generate(), EndpointId::generate());
        let now = Utc::now();
        parked
            .park(&failing, now + Duration::seconds(10))
            .await
            .unwrap();
        parked
            .park(&failing, now + Duration::seconds(2))
            .await
            .unwrap();
        parked
            .park(&stuck, now + Duration::seconds(1))
            .await
            .unwrap();

        let current = parked.current(now).await.unwrap();
        assert_eq!(current.len(), 2);
        assert_eq!(
            current[&failing].timestamp_millis(),
            (now + Duration::seconds(10)).timestamp_millis(),
            "an earlier until never shortens a park"
        );
        let later = parked.current(now + Duration::seconds(5)).await.unwrap();
        assert_eq!(later.keys().collect::<Vec<_>>(), vec![&failing]);
        assert!(parked
            .current(now + Duration::seconds(11))
            .await
            .unwrap()
            .is_empty());
    }
}
