//! The workers' endpoint lookups, answered from memory and kept fresh by Postgres itself.
//!
//! Every event asks which endpoints subscribe to it, and every job asks for its endpoint's URL
//! and secrets: two statements per delivery whose answers almost never change. A
//! [`CachedQuery`] keeps those answers in the process, in front of the grouped query that
//! fetches them. Freshness does not rest on a timer: a trigger (migration 0005) announces every
//! change a worker acts on, on the `linkkit_endpoint_changes` channel, as it commits — whoever
//! makes it — and [`follow_endpoint_changes`] drops the answers each change touches, in every
//! worker process, within milliseconds.
//!
//! Two rules keep a stale answer out:
//! - while the process is not listening (before the first `LISTEN`, and whenever the connection
//!   is lost, since announcements made meanwhile are gone) lookups go to Postgres and nothing
//!   is kept; on every (re)connection everything kept is dropped;
//! - an answer is kept only if no change arrived while it was being fetched (a generation
//!   number, checked and bumped under one lock), so a slow read cannot put back what a change
//!   just dropped.
//!
//! Entries also expire after [`TIME_TO_LIVE`], a bound on any staleness this reasoning missed.
//! A listening connection that silently stops answering is caught by a heartbeat query.

use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkkit_core::{EndpointId, EventType, WorkspaceId};
use moka::sync::Cache;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::group::{GroupLimits, GroupQuery, Grouped};
use crate::metrics::{ENDPOINT_CACHE_LOOKUPS, ENDPOINT_CHANGES_FOLLOWED};
use crate::worker_queries::{EndpointById, SubscribedEndpoints};
use crate::StoreError;

/// The channel migration 0005's trigger announces endpoint changes on.
pub const CHANNEL: &str = "linkkit_endpoint_changes";
/// The longest an entry is kept, announcements or not.
pub const TIME_TO_LIVE: Duration = Duration::from_secs(60);
/// Entries per cache at most (least recently used go first).
const CAPACITY: u64 = 100_000;
/// The wait before listening again after the connection is lost.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How often the listening connection is asked to answer, and how long it has to.
const HEARTBEAT: Duration = Duration::from_secs(10);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Named after the channel, so the listening session is recognisable in `pg_stat_activity`
/// whichever statement it ran last.
const HEARTBEAT_QUERY: &str = "SELECT 1 AS linkkit_endpoint_changes_heartbeat";

/// One endpoint that was created, changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointChange {
    pub workspace_id: WorkspaceId,
    pub endpoint_id: EndpointId,
}

impl EndpointChange {
    /// The trigger's payload: `"<workspace id> <endpoint id>"`.
    pub fn parse(payload: &str) -> Option<Self> {
        let (workspace, endpoint) = payload.split_once(' ')?;
        Some(Self {
            workspace_id: WorkspaceId::parse(workspace).ok()?,
            endpoint_id: EndpointId::parse(endpoint).ok()?,
        })
    }
}

/// A grouped query whose answers depend only on endpoints, and on which ones.
pub trait EndpointQuery: GroupQuery<Input: Clone + Hash + Eq, Output: Clone + Sync> {
    /// The inputs whose answers `change` may have changed.
    fn touched_by(change: &EndpointChange) -> Vec<Self::Input>;
}

impl EndpointQuery for SubscribedEndpoints {
    fn touched_by(change: &EndpointChange) -> Vec<(WorkspaceId, EventType)> {
        // Any of the workspace's subscription lists may have gained or lost the endpoint.
        EventType::ALL
            .into_iter()
            .map(|event_type| (change.workspace_id.clone(), event_type))
            .collect()
    }
}

impl EndpointQuery for EndpointById {
    fn touched_by(change: &EndpointChange) -> Vec<(WorkspaceId, EndpointId)> {
        vec![(change.workspace_id.clone(), change.endpoint_id.clone())]
    }
}

/// A grouped endpoint query with its answers kept in memory; cheap to clone.
pub struct CachedQuery<Q: EndpointQuery> {
    inner: Arc<Inner<Q>>,
}

struct Inner<Q: EndpointQuery> {
    query: Grouped<Q>,
    answers: Cache<Q::Input, Q::Output>,
    freshness: Mutex<Freshness>,
}

#[derive(Debug, Default)]
struct Freshness {
    /// Bumped by every change and every (re)connection.
    generation: u64,
    /// Whether changes are being followed, so answers may be kept.
    listening: bool,
}

impl<Q: EndpointQuery> Clone for CachedQuery<Q> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<Q: EndpointQuery> std::fmt::Debug for CachedQuery<Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedQuery")
            .field("query", &Q::NAME)
            .field("entries", &self.inner.answers.entry_count())
            .finish()
    }
}

impl<Q: EndpointQuery> CachedQuery<Q> {
    /// Must be created inside a Tokio runtime (see [`Grouped::new`]). Answers nothing from
    /// memory until [`follow_endpoint_changes`] runs with it.
    pub fn new(query: Q, limits: GroupLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                query: Grouped::new(query, limits),
                answers: Cache::builder()
                    .max_capacity(CAPACITY)
                    .time_to_live(TIME_TO_LIVE)
                    .build(),
                freshness: Mutex::new(Freshness::default()),
            }),
        }
    }

    /// The answer for `input`: from memory if kept, else from Postgres (and then kept).
    pub async fn run(&self, input: Q::Input) -> Result<Q::Output, StoreError> {
        let generation = {
            let freshness = self.freshness();
            freshness.listening.then_some(freshness.generation)
        };
        let Some(generation) = generation else {
            self.count("bypass");
            return self.inner.query.run(input).await;
        };
        if let Some(answer) = self.inner.answers.get(&input) {
            self.count("hit");
            return Ok(answer);
        }
        self.count("miss");
        let answer = self.inner.query.run(input.clone()).await?;
        let freshness = self.freshness();
        if freshness.listening && freshness.generation == generation {
            self.inner.answers.insert(input, answer.clone());
        }
        Ok(answer)
    }

    /// True while changes are followed, so answers are kept.
    pub fn follows_changes(&self) -> bool {
        self.freshness().listening
    }

    fn freshness(&self) -> std::sync::MutexGuard<'_, Freshness> {
        // The lock guards two plain fields; a panic while holding it cannot leave them torn.
        self.inner
            .freshness
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, outcome: &str) {
        ENDPOINT_CACHE_LOOKUPS
            .with_label_values(&[Q::NAME, outcome])
            .inc();
    }
}

/// What [`follow_endpoint_changes`] tells each cache.
pub trait FollowsEndpointChanges: Send + Sync {
    /// Drops the answers `change` touches.
    fn changed(&self, change: &EndpointChange);
    /// Drops every answer; keeps answers from now on only if `listening`.
    fn restart(&self, listening: bool);
}

impl<Q: EndpointQuery> FollowsEndpointChanges for CachedQuery<Q> {
    fn changed(&self, change: &EndpointChange) {
        let mut freshness = self.freshness();
        freshness.generation += 1;
        for input in Q::touched_by(change) {
            self.inner.answers.invalidate(&input);
        }
    }

    fn restart(&self, listening: bool) {
        let mut freshness = self.freshness();
        freshness.generation += 1;
        freshness.listening = listening;
        self.inner.answers.invalidate_all();
        ENDPOINT_CHANGES_FOLLOWED
            .with_label_values(&[Q::NAME])
            .set(i64::from(listening));
    }
}

/// Listens for endpoint changes until `shutdown` fires, and keeps `caches` true to them;
/// reconnects when the connection is lost, answering from Postgres meanwhile.
pub async fn follow_endpoint_changes(
    pool: PgPool,
    caches: Vec<Box<dyn FollowsEndpointChanges>>,
    shutdown: CancellationToken,
) {
    let restart = |listening: bool| caches.iter().for_each(|cache| cache.restart(listening));
    while !shutdown.is_cancelled() {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            connected = listen(&pool) => connected,
        };
        let lost = match connected {
            Ok(mut listener) => {
                restart(true);
                let lost = follow(&mut listener, &caches, &shutdown).await;
                restart(false);
                lost
            }
            Err(error) => Some(format!("cannot listen: {error}")),
        };
        if let Some(reason) = lost {
            tracing::warn!(reason, "not following endpoint changes; endpoint lookups go to Postgres until it listens again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

/// Applies every announcement until the connection fails (`Some(reason)`) or `shutdown`
/// fires (`None`). A connection that stops answering without closing (a half-open socket
/// after a failover) is found by a query every [`HEARTBEAT`], so it cannot leave the caches
/// believing they follow changes for longer than that.
async fn follow(
    listener: &mut PgListener,
    caches: &[Box<dyn FollowsEndpointChanges>],
    shutdown: &CancellationToken,
) -> Option<String> {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = heartbeat.tick() => {
                // Announcements that arrive meanwhile are buffered by the listener.
                let answered =
                    tokio::time::timeout(HEARTBEAT_TIMEOUT, sqlx::query(HEARTBEAT_QUERY).execute(&mut *listener)).await;
                match answered {
                    Ok(Ok(_)) => continue,
                    Ok(Err(error)) => return Some(format!("the heartbeat failed: {error}")),
                    Err(_) => return Some("the heartbeat went unanswered".to_owned()),
                }
            }
            next = listener.try_recv() => next,
        };
        match next {
            Ok(Some(notification)) => match EndpointChange::parse(notification.payload()) {
                Some(change) => caches.iter().for_each(|cache| cache.changed(&change)),
                None => {
                    tracing::warn!(payload = notification.payload(), "an endpoint change announcement that does not parse; dropping every cached endpoint");
                    caches.iter().for_each(|cache| cache.restart(true));
                }
            },
            Ok(None) => return Some("the connection was lost".to_owned()),
            Err(error) => return Some(error.to_string()),
        }
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnection is ours to do, so that every cache is dropped before answers are kept again.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// The fan-out's subscription lookup, cached.
pub type CachedSubscribers = CachedQuery<SubscribedEndpoints>;
/// The sender's endpoint lookup, cached.
pub type CachedEndpoints = CachedQuery<EndpointById>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Answers how many statements it has run so far, so a test sees which answers came from
    /// memory; a statement takes as long as `delay` says.
    #[derive(Default)]
    struct Counting {
        statements: AtomicU32,
        delay_ms: AtomicU32,
    }

    impl GroupQuery for Arc<Counting> {
        const NAME: &'static str = "counting";
        type Input = (WorkspaceId, EndpointId);
        type Output = u32;

        async fn run(&self, inputs: &[Self::Input]) -> Result<Vec<u32>, StoreError> {
            let delay = self.delay_ms.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay.into())).await;
            let statement = self.statements.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(vec![statement; inputs.len()])
        }
    }

    impl EndpointQuery for Arc<Counting> {
        fn touched_by(change: &EndpointChange) -> Vec<Self::Input> {
            vec![(change.workspace_id.clone(), change.endpoint_id.clone())]
        }
    }

    fn change() -> EndpointChange {
        EndpointChange {
            workspace_id: WorkspaceId::generate(),
            endpoint_id: EndpointId::generate(),
        }
    }

    fn key(change: &EndpointChange) -> (WorkspaceId, EndpointId) {
        (change.workspace_id.clone(), change.endpoint_id.clone())
    }

    #[tokio::test]
    async fn nothing_is_kept_until_changes_are_followed_and_then_until_one_arrives() {
        let cache = CachedQuery::new(Arc::new(Counting::default()), GroupLimits::default());
        let (one, other) = (change(), change());
        assert_eq!(cache.run(key(&one)).await.unwrap(), 1);
        assert_eq!(
            cache.run(key(&one)).await.unwrap(),
            2,
            "not listening: not kept"
        );

        cache.restart(true);
        assert_eq!(cache.run(key(&one)).await.unwrap(), 3);
        assert_eq!(cache.run(key(&one)).await.unwrap(), 3, "kept");
        assert_eq!(cache.run(key(&other)).await.unwrap(), 4);

        cache.changed(&one);
        assert_eq!(
            cache.run(key(&one)).await.unwrap(),
            5,
            "its change dropped it"
        );
        assert_eq!(cache.run(key(&other)).await.unwrap(), 4, "others are kept");

        cache.restart(false);
        assert_eq!(
            cache.run(key(&other)).await.unwrap(),
            6,
            "a lost connection drops all"
        );
        assert_eq!(cache.run(key(&other)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn an_answer_fetched_across_a_change_is_not_kept() {
        let counting = Arc::new(Counting::default());
        let cache = CachedQuery::new(counting.clone(), GroupLimits::default());
        cache.restart(true);
        let endpoint = change();
        counting.delay_ms.store(100, Ordering::SeqCst);
        let slow_read = tokio::spawn({
            let (cache, key) = (cache.clone(), key(&endpoint));
            async move { cache.run(key).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        cache.changed(&endpoint);
        assert_eq!(slow_read.await.unwrap().unwrap(), 1);
        counting.delay_ms.store(0, Ordering::SeqCst);
        assert_eq!(
            cache.run(key(&endpoint)).await.unwrap(),
            2,
            "the answer read before the change was not kept"
        );
        assert_eq!(cache.run(key(&endpoint)).await.unwrap(), 2);
    }

    #[test]
    fn announcements_name_a_workspace_and_an_endpoint() {
        let workspace = WorkspaceId::generate();
        let endpoint = EndpointId::generate();
        let change = EndpointChange::parse(&format!("{workspace} {endpoint}")).unwrap();
        assert_eq!(
            (change.workspace_id, change.endpoint_id),
            (workspace.clone(), endpoint.clone())
        );
        for payload in [
            String::new(),
            workspace.to_string(),
            format!("{endpoint} {workspace}"),
            format!("{workspace}  {endpoint}"),
        ] {
            assert_eq!(EndpointChange::parse(&payload), None, "{payload:?}");
        }
    }

    #[test]
    fn a_change_touches_every_subscription_list_of_its_workspace_and_its_own_endpoint() {
        let change = EndpointChange {
            workspace_id: WorkspaceId::generate(),
            endpoint_id: EndpointId::generate(),
        };
        let lists = SubscribedEndpoints::touched_by(&change);
        assert_eq!(lists.len(), EventType::ALL.len());
        assert!(lists.iter().all(|(w, _)| *w == change.workspace_id));
        assert_eq!(
            EndpointById::touched_by(&change),
            vec![(change.workspace_id.clone(), change.endpoint_id.clone())]
        );
    }
}
