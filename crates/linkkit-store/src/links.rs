//! Links: written inside the caller's transaction (so the outbox row commits with them), read
//! by workspace, and by slug for the redirect.

use chrono::{DateTime, Utc};
use linkkit_core::{EventId, LinkId, WorkspaceId};
use sqlx::{PgConnection, PgPool};

use crate::{Page, StoreError};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LinkRow {
    pub id: String,
    pub workspace_id: String,
    pub slug: String,
    pub destination_url: String,
    pub segment: Option<String>,
    pub campaign: Option<String>,
    pub tags: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub clicks: i64,
    pub scans: i64,
}

const COLUMNS: &str =
    "id, workspace_id, slug, destination_url, segment, campaign, tags, expires_at, \
                       created_at, updated_at, deleted_at, clicks, scans";

pub async fn insert(tx: &mut PgConnection, link: &LinkRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO links (id, workspace_id, slug, destination_url, segment, campaign, tags, expires_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&link.id)
    .bind(&link.workspace_id)
    .bind(&link.slug)
    .bind(&link.destination_url)
    .bind(&link.segment)
    .bind(&link.campaign)
    .bind(&link.tags)
    .bind(link.expires_at)
    .bind(link.created_at)
    .bind(link.updated_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// A live link of the workspace, locked until the transaction ends.
pub async fn lock(
    tx: &mut PgConnection,
    workspace_id: &WorkspaceId,
    id: &LinkId,
) -> Result<Option<LinkRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM links WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE"
    ))
    .bind(workspace_id.as_str())
    .bind(id.as_str())
    .fetch_optional(tx)
    .await?)
}

/// Writes every editable field of a link back (after `lock`).
pub async fn update(tx: &mut PgConnection, link: &LinkRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE links SET slug = $3, destination_url = $4, segment = $5, campaign = $6, tags = $7, \
         expires_at = $8, updated_at = $9, deleted_at = $10 WHERE workspace_id = $1 AND id = $2",
    )
    .bind(&link.workspace_id)
    .bind(&link.id)
    .bind(&link.slug)
    .bind(&link.destination_url)
    .bind(&link.segment)
    .bind(&link.campaign)
    .bind(&link.tags)
    .bind(link.expires_at)
    .bind(link.updated_at)
    .bind(link.deleted_at)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn get(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    id: &LinkId,
) -> Result<Option<LinkRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM links WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL"
    ))
    .bind(workspace_id.as_str())
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?)
}

/// Live links of the workspace, newest first, after `cursor` (an id of the previous page).
pub async fn list(
    pool: &PgPool,
    workspace_id: &WorkspaceId,
    limit: i64,
    cursor: Option<&str>,
) -> Result<Page<LinkRow>, StoreError> {
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM links WHERE workspace_id = $1 AND deleted_at IS NULL \
         AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(workspace_id.as_str())
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, limit, |row: &LinkRow| &row.id))
}

/// Any link with this slug, deleted ones included (the redirect answers 410 for those).
pub async fn find_by_slug(pool: &PgPool, slug: &str) -> Result<Option<LinkRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM links WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(pool)
            .await?,
    )
}

/// Whether a visit came through the link itself or through its QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitKind {
    Click,
    Scan,
}

impl VisitKind {
    /// Its name as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitKind::Click => "click",
            VisitKind::Scan => "scan",
        }
    }
}

/// One visit to count on a workspace's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub workspace_id: WorkspaceId,
    pub link_id: LinkId,
    pub kind: VisitKind,
}

/// Adds `visits` to their links' `clicks` and `scans`, in one statement. A visit counts only
/// on a link of its own workspace; one whose link is gone counts nowhere.
pub async fn add_visits(pool: &PgPool, visits: &[Visit]) -> Result<(), StoreError> {
    let mut per_link: std::collections::HashMap<(&str, &str), (i64, i64)> =
        std::collections::HashMap::new();
    for visit in visits {
        let key = (visit.workspace_id.as_str(), visit.link_id.as_str());
        let counts = per_link.entry(key).or_default();
        match visit.kind {
            VisitKind::Click => counts.0 += 1,
            VisitKind::Scan => counts.1 += 1,
        }
    }
    let mut workspaces = Vec::with_capacity(per_link.len());
    let mut ids = Vec::with_capacity(per_link.len());
    let mut clicks = Vec::with_capacity(per_link.len());
    let mut scans = Vec::with_capacity(per_link.len());
    // One order for every writer, so two groups touching the same links never deadlock.
    let mut rows: Vec<_> = per_link.into_iter().collect();
    rows.sort_unstable_by_key(|((_, id), _)| *id);
    for ((workspace_id, id), (link_clicks, link_scans)) in rows {
        workspaces.push(workspace_id);
        ids.push(id);
        clicks.push(link_clicks);
        scans.push(link_scans);
    }
    sqlx::query(
        "UPDATE links SET clicks = links.clicks + v.clicks, scans = links.scans + v.scans \
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS v(workspace_id, id, clicks, scans) \
         WHERE links.id = v.id AND links.workspace_id = v.workspace_id",
    )
    .bind(&workspaces)
    .bind(&ids)
    .bind(&clicks)
    .bind(&scans)
    .execute(pool)
    .await?;
    Ok(())
}

/// The common tail of the statements that count visits (`add_visits_once` and
/// `deliveries::create_for_events`), for a CTE named `counting` with the visits to count
/// (`workspace_id`, `link_id`, `kind`): adds them to their links, locked in id order, as every
/// writer of the counters does, so two statements counting on the same links never deadlock;
/// and only on a link of the visit's own workspace.
macro_rules! count_on_links {
    () => {
        "per_link AS ( \
             SELECT v.workspace_id, v.link_id, \
                    count(*) FILTER (WHERE v.kind = 'click') AS clicks, \
                    count(*) FILTER (WHERE v.kind = 'scan') AS scans \
             FROM counting v GROUP BY v.workspace_id, v.link_id), \
         locked_links AS ( \
             SELECT l.id FROM links l JOIN per_link p \
                  ON l.id = p.link_id AND l.workspace_id = p.workspace_id \
             ORDER BY l.id FOR UPDATE OF l), \
         counted AS ( \
             UPDATE links SET clicks = links.clicks + p.clicks, scans = links.scans + p.scans \
             FROM per_link p JOIN locked_links k ON k.id = p.link_id \
             WHERE links.id = p.link_id AND links.workspace_id = p.workspace_id)"
    };
}
pub(crate) use count_on_links;

/// Adds each visit of an event no endpoint subscribes to, to its link's counters, unless its
/// event was counted before: its row in `counted_visits` remembers it, so a copy counts
/// nothing, and an event stored in `events` was counted when it was stored (an endpoint
/// subscribed when a copy of it came). In one statement; the answer says, per visit, whether
/// it counted now. A visit counts only on a link of its own workspace; one whose link is gone
/// counts nowhere (and is still remembered).
pub async fn add_visits_once(
    pool: &PgPool,
    visits: &[(EventId, Visit)],
) -> Result<Vec<bool>, StoreError> {
    let mut event_ids = Vec::with_capacity(visits.len());
    let mut workspace_ids = Vec::with_capacity(visits.len());
    let mut link_ids = Vec::with_capacity(visits.len());
    let mut kinds = Vec::with_capacity(visits.len());
    for (event_id, visit) in visits {
        event_ids.push(event_id.as_str());
        workspace_ids.push(visit.workspace_id.as_str());
        link_ids.push(visit.link_id.as_str());
        kinds.push(visit.kind.as_str());
    }
    // Event ids are remembered in id order, so two statements remembering the same visits
    // never deadlock. A visit that comes twice in one group is counted for its first row only.
    let counted: Vec<(String,)> = sqlx::query_as(concat!(
        "WITH input AS ( \
             SELECT DISTINCT ON (event_id) * \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
                  AS v(event_id, workspace_id, link_id, kind) \
             ORDER BY event_id), \
         fresh AS ( \
             INSERT INTO counted_visits (event_id) \
             SELECT event_id FROM input ORDER BY event_id \
             ON CONFLICT (event_id) DO NOTHING \
             RETURNING event_id), \
         counting AS ( \
             SELECT v.* FROM input v \
             WHERE v.event_id IN (SELECT event_id FROM fresh) \
             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = v.event_id)), \
         ",
        count_on_links!(),
        " \
         SELECT event_id FROM counting"
    ))
    .bind(&event_ids)
    .bind(&workspace_ids)
    .bind(&link_ids)
    .bind(&kinds)
    .fetch_all(pool)
    .await?;
    let counted: std::collections::HashSet<String> = counted.into_iter().map(|(id,)| id).collect();
    let mut answered = std::collections::HashSet::new();
    Ok(visits
        .iter()
        .map(|(event_id, _)| counted.contains(event_id.as_str()) && answered.insert(event_id))
        .collect())
}

/// Forgets up to `batch` visits counted before `before`; how many it forgot.
pub async fn forget_counted_visits(
    pool: &PgPool,
    before: DateTime<Utc>,
    batch: i64,
) -> Result<u64, StoreError> {
    let forgotten = sqlx::query(
        "DELETE FROM counted_visits WHERE event_id IN ( \
             SELECT event_id FROM counted_visits WHERE counted_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(forgotten.rows_affected())
}
