//! The shared link cache in Redis: what a redirect needs to know about a slug.
//!
//! The API writes a link's new state here right after committing a change (write-through), and
//! every redirect process reads it before falling back to Postgres; redirect processes fill gaps
//! with `SET NX`, so a slow loader never overwrites a newer state. Entries expire after a minute.

use std::time::Duration;

use chrono::{DateTime, Utc};
use linkkit_core::Namespace;
use serde::{Deserialize, Serialize};

use crate::Redis;

pub const TTL: Duration = Duration::from_secs(60);

/// What a redirect needs to know about a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedLink {
    pub link_id: String,
    pub workspace_id: String,
    pub slug: String,
    pub destination_url: String,
    pub segment: Option<String>,
    pub campaign: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

impl CachedLink {
    /// Deleted or past its expiry: answered with `410`.
    pub fn is_gone(&self, now: DateTime<Utc>) -> bool {
        self.deleted || self.expires_at.is_some_and(|t| t <= now)
    }
}

#[derive(Debug, Clone)]
pub struct LinkStore {
    redis: Redis,
    namespace: Namespace,
}

impl LinkStore {
    pub fn new(redis: Redis, namespace: Namespace) -> Self {
        Self { redis, namespace }
    }

    fn key(&self, slug: &str) -> String {
        self.namespace.redis_key(&["link", slug])
    }

    pub async fn get(&self, slug: &str) -> Option<CachedLink> {
        let mut get = redis::cmd("GET");
        get.arg(self.key(slug));
        let cached: Option<String> = self.redis.query(&get).await.ok()?;
        serde_json::from_str(&cached?).ok()
    }

    /// Writes a link's state; with `overwrite` false only when nothing is cached (`NX`).
    pub async fn put(&self, link: &CachedLink, overwrite: bool) {
        let mut set = redis::cmd("SET");
        set.arg(self.key(&link.slug))
            .arg(serde_json::to_string(link).expect("a cached link serializes"))
            .arg("EX")
            .arg(TTL.as_secs());
        if !overwrite {
            set.arg("NX");
        }
        let _ = self.redis.query::<Option<String>>(&set).await;
    }

    pub async fn forget(&self, slug: &str) {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(slug));
        let _ = self.redis.query::<i64>(&del).await;
    }
}
