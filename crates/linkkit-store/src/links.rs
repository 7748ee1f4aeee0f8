//! Links: written inside the caller's transaction (so the outbox row commits with them), read
//! by workspace, and by slug for the redirect.

use chrono::{DateTime, Utc};
use linkkit_core::{LinkId, WorkspaceId};
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
