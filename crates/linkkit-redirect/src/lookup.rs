//! Slug → where to send the visitor, answered from memory whenever possible.
//!
//! Three layers: an in-process cache (moka), Redis shared by every redirect process, and
//! Postgres, the system of record. Changes arrive as `link.*` events (see `invalidation.rs`) and
//! overwrite both caches at once, so an updated or deleted link takes effect on every process
//! within moments. A loader never overwrites what an event wrote: Redis is filled with `SET NX`,
//! and the local cache only takes a loaded value if no event arrived while it was loading. The API
//! also writes every change through to Redis before it answers, and local entries live one
//! second, so a change is seen everywhere within a second even if an event is missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use linkkit_cache::links::LinkStore;
use linkkit_core::event::LinkState;
use linkkit_core::Namespace;
use linkkit_store::links::LinkRow;
use linkkit_store::{PgPool, StoreError};
use moka::future::Cache;

/// Local entries live one second: a hot link costs one Redis read per second per process, and a
/// change is seen within a second even if its event was missed.
const LOCAL_TTL: Duration = Duration::from_secs(1);
/// Slugs that do not exist are remembered briefly, so a flood of bad slugs stays off Postgres.
const MISSING_TTL: Duration = Duration::from_secs(1);
const LOCAL_CAPACITY: u64 = 200_000;

pub use linkkit_cache::links::CachedLink as Target;

fn from_row(row: LinkRow) -> Target {
    Target {
        link_id: row.id,
        workspace_id: row.workspace_id,
        slug: row.slug,
        destination_url: row.destination_url,
        segment: row.segment,
        campaign: row.campaign,
        expires_at: row.expires_at,
        deleted: row.deleted_at.is_some(),
    }
}

/// A link's state as a `link.*` event carries it.
pub fn from_event(workspace_id: &str, state: LinkState, deleted: bool) -> Target {
    Target {
        link_id: state.link_id.to_string(),
        workspace_id: workspace_id.to_owned(),
        slug: state.slug,
        destination_url: state.destination_url,
        segment: state.segment,
        campaign: state.campaign,
        expires_at: state.expires_at,
        deleted,
    }
}

#[derive(Debug, Clone)]
pub struct LinkCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    redis: Option<LinkStore>,
    found: Cache<String, Arc<Target>>,
    missing: Cache<String, ()>,
    /// Bumped by every event; a load that saw it change does not fill the local cache.
    epoch: AtomicU64,
}

impl LinkCache {
    pub fn new(pool: PgPool, redis: Option<linkkit_cache::Redis>, namespace: Namespace) -> Self {
        let redis = redis.map(|redis| LinkStore::new(redis, namespace));
        let found = Cache::builder()
            .max_capacity(LOCAL_CAPACITY)
            .time_to_live(LOCAL_TTL)
            .build();
        let missing = Cache::builder()
            .max_capacity(LOCAL_CAPACITY)
            .time_to_live(MISSING_TTL)
            .build();
        Self {
            inner: Arc::new(Inner {
                pool,
                redis,
                found,
                missing,
                epoch: AtomicU64::new(0),
            }),
        }
    }

    /// The link behind `slug` (deleted ones included), or `None` when there is none.
    pub async fn find(&self, slug: &str) -> Result<Option<Arc<Target>>, StoreError> {
        let inner = &self.inner;
        if let Some(target) = inner.found.get(slug).await {
            return Ok(Some(target));
        }
        if inner.missing.contains_key(slug) {
            return Ok(None);
        }
        let epoch = inner.epoch.load(Ordering::SeqCst);
        let loaded = match self.read_redis(slug).await {
            Some(target) => Some(target),
            None => {
                let from_database = linkkit_store::links::find_by_slug(&inner.pool, slug)
                    .await?
                    .map(from_row);
                if let Some(target) = &from_database {
                    self.write_redis(target, false).await;
                }
                from_database
            }
        };
        if inner.epoch.load(Ordering::SeqCst) == epoch {
            match &loaded {
                Some(target) => {
                    inner
                        .found
                        .insert(slug.to_owned(), Arc::new(target.clone()))
                        .await
                }
                None => inner.missing.insert(slug.to_owned(), ()).await,
            }
        }
        Ok(loaded.map(Arc::new))
    }

    /// Applies a link's new state from an event to both caches; `old_slug` is the slug it had
    /// before a rename. This process's own cache changes first, so a slow or unreachable Redis
    /// never delays what its redirects answer.
    pub async fn apply(&self, target: Target, old_slug: Option<&str>) {
        let inner = &self.inner;
        inner.epoch.fetch_add(1, Ordering::SeqCst);
        let renamed_from = old_slug.filter(|old| *old != target.slug);
        if let Some(old) = renamed_from {
            inner.found.invalidate(old).await;
            inner.missing.invalidate(old).await;
        }
        let target = Arc::new(target);
        inner.missing.invalidate(&target.slug).await;
        inner
            .found
            .insert(target.slug.clone(), target.clone())
            .await;
        if let Some(old) = renamed_from {
            self.forget_in_redis(old).await;
        }
        self.write_redis(&target, true).await;
    }

    /// Forgets everything held locally (after the event consumer missed events).
    pub fn clear_local(&self) {
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        self.inner.found.invalidate_all();
        self.inner.missing.invalidate_all();
    }

    async fn read_redis(&self, slug: &str) -> Option<Target> {
        self.inner.redis.as_ref()?.get(slug).await
    }

    /// `overwrite` for what events say; loaders only fill a gap (`NX`).
    async fn write_redis(&self, target: &Target, overwrite: bool) {
        if let Some(redis) = &self.inner.redis {
            redis.put(target, overwrite).await;
        }
    }

    async fn forget_in_redis(&self, slug: &str) {
        if let Some(redis) = &self.inner.redis {
            redis.forget(slug).await;
        }
    }
}
