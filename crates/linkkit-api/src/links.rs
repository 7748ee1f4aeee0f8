//! `/api/v1/links`: create, list, fetch, update and delete short links.
//!
//! Each change and its `link.*` event are committed together through the outbox.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use linkkit_cache::links::CachedLink;
use linkkit_core::event::{rfc3339_seconds, LinkUpdate};
use linkkit_core::slug::Slug;
use linkkit_core::{Envelope, EventType, LinkId};
use linkkit_store::links::{self, LinkRow};
use linkkit_store::{outbox, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Workspace;
use crate::error::ErrorBody;
use crate::extract::{present, JsonBody, RawQuery};
use crate::validate::{valid_destination, valid_expiry, valid_slug, valid_tags, valid_text};
use crate::views::{link_state, LinkView, ListView};
use crate::{ApiError, AppState};

/// How long a change waits to publish its event itself before leaving it to the relay.
const PUBLISH_NOW_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);
/// Generated slugs collide rarely; a few fresh tries make a collision invisible.
const GENERATED_SLUG_TRIES: usize = 5;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/links", get(list_links).post(create_link))
        .route(
            "/links/{id}",
            get(get_link).patch(update_link).delete(delete_link),
        )
        .route("/links/{id}/qr", get(crate::qr::link_qr))
}

/// A new short link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateLink {
    /// Where the short link sends visitors: an absolute `http`/`https` URL with a host and no
    /// credentials.
    #[schema(value_type = crate::schema::HttpUrl, example = "https://example.com/product")]
    destination_url: String,
    /// Generated (7 characters) when not given.
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", example = "summer-sale")]
    slug: Option<String>,
    /// Trimmed; empty means `null`.
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000]*$",
        example = "Black Friday 2026"
    )]
    segment: Option<String>,
    /// Trimmed; empty means `null`.
    #[schema(max_length = 200, pattern = r"^[^\u0000]*$", example = "Q4 Sales")]
    campaign: Option<String>,
    /// Up to 20 tags of 1–50 characters (trimmed); repeats are dropped.
    #[schema(max_items = 20, value_type = Option<Vec<crate::schema::Tag>>)]
    tags: Option<Vec<String>>,
    /// Must be in the future; after it the short link answers `410`.
    expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post,
    path = "/links",
    tag = "links",
    request_body = CreateLink,
    responses(
        (status = 201, description = "The link; `link.created` is emitted", body = LinkView),
        (status = 409, description = "The slug is taken", body = ErrorBody),
    )
)]
pub(crate) async fn create_link(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    JsonBody(request): JsonBody<CreateLink>,
) -> Result<(StatusCode, Json<LinkView>), ApiError> {
    let destination_url = valid_destination(&request.destination_url)?;
    let chosen_slug = request.slug.as_deref().map(valid_slug).transpose()?;
    let segment = valid_text("segment", request.segment)?;
    let campaign = valid_text("campaign", request.campaign)?;
    let tags = valid_tags(request.tags.unwrap_or_default())?;
    let expires_at = valid_expiry(request.expires_at)?;
    let now = Utc::now().trunc_subsecs(6);

    for _ in 0..GENERATED_SLUG_TRIES {
        let row = LinkRow {
            id: LinkId::generate().to_string(),
            workspace_id: workspace.to_string(),
            slug: chosen_slug
                .clone()
                .unwrap_or_else(Slug::generate)
                .to_string(),
            destination_url: destination_url.clone(),
            segment: segment.clone(),
            campaign: campaign.clone(),
            tags: tags.clone(),
            expires_at,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            clicks: 0,
            scans: 0,
        };
        let mut tx = state.pool.begin().await.map_err(StoreError::from)?;
        match links::insert(&mut tx, &row).await {
            Err(StoreError::SlugTaken) if chosen_slug.is_none() => continue,
            Err(StoreError::SlugTaken) => {
                return Err(ApiError::Conflict(format!(
                    "the slug `{}` is already taken",
                    row.slug
                )))
            }
            other => other?,
        }
        let event = Envelope::new(EventType::LinkCreated, link_state(&row, &state.config));
        outbox::enqueue(&mut tx, &workspace, &event).await?;
        tx.commit().await.map_err(StoreError::from)?;
        write_through(&state, &row, None).await;
        return Ok((StatusCode::CREATED, Json(LinkView::new(row, &state.config))));
    }
    Err(ApiError::Conflict(
        "could not find a free slug; choose one with `slug`".into(),
    ))
}

#[utoipa::path(
    get,
    path = "/links",
    tag = "links",
    params(crate::schema::Pagination),
    responses((status = 200, description = "A page of links, newest first", body = ListView<LinkView>))
)]
pub(crate) async fn list_links(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    query: RawQuery,
) -> Result<Json<ListView<LinkView>>, ApiError> {
    let params = query.list_params()?;
    let page = links::list(
        &state.pool,
        &workspace,
        params.limit,
        params.cursor.as_deref(),
    )
    .await?;
    Ok(Json(ListView::from_page(page, |row| {
        LinkView::new(row, &state.config)
    })))
}

#[utoipa::path(
    get,
    path = "/links/{id}",
    tag = "links",
    params(("id" = String, Path, description = "The link's id (`lnk_…`)")),
    responses(
        (status = 200, description = "The link", body = LinkView),
        (status = 404, description = "No such link in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn get_link(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<Json<LinkView>, ApiError> {
    let id = link_id(&id)?;
    let row = links::get(&state.pool, &workspace, &id)
        .await?
        .ok_or(ApiError::NotFound("link"))?;
    Ok(Json(LinkView::new(row, &state.config)))
}

/// Any of a link's fields; `null` clears `segment`, `campaign` and `expires_at`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateLink {
    #[schema(value_type = Option<crate::schema::HttpUrl>)]
    destination_url: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    slug: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = r"^[^\u0000]*$")]
    segment: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = r"^[^\u0000]*$")]
    campaign: Option<Option<String>>,
    #[schema(max_items = 20, value_type = Option<Vec<crate::schema::Tag>>)]
    tags: Option<Vec<String>>,
    /// Must be in the future; `null` removes the expiry.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    expires_at: Option<Option<DateTime<Utc>>>,
}

#[utoipa::path(
    patch,
    path = "/links/{id}",
    tag = "links",
    params(("id" = String, Path, description = "The link's id (`lnk_…`)")),
    request_body = UpdateLink,
    responses(
        (status = 200, description = "The link as it now is; `link.updated` is emitted when something changed", body = LinkView),
        (status = 404, description = "No such link in this workspace", body = ErrorBody),
        (status = 409, description = "The new slug is taken", body = ErrorBody),
    )
)]
pub(crate) async fn update_link(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateLink>,
) -> Result<Json<LinkView>, ApiError> {
    let id = link_id(&id)?;
    // Validate everything before touching the database.
    let destination_url = request
        .destination_url
        .as_deref()
        .map(valid_destination)
        .transpose()?;
    let slug = request
        .slug
        .as_deref()
        .map(valid_slug)
        .transpose()?
        .map(|s| s.to_string());
    let segment = request
        .segment
        .map(|s| valid_text("segment", s))
        .transpose()?;
    let campaign = request
        .campaign
        .map(|c| valid_text("campaign", c))
        .transpose()?;
    let tags = request.tags.map(valid_tags).transpose()?;
    let expires_at = request.expires_at.map(valid_expiry).transpose()?;

    let mut tx = state.pool.begin().await.map_err(StoreError::from)?;
    let before = links::lock(&mut tx, &workspace, &id)
        .await?
        .ok_or(ApiError::NotFound("link"))?;
    let mut after = before.clone();
    let mut previous = Map::new();
    let mut change = |field: &str, old: Value, new: Value| {
        if old != new {
            previous.insert(field.to_owned(), old);
        }
    };
    if let Some(value) = destination_url {
        change(
            "destination_url",
            before.destination_url.clone().into(),
            value.clone().into(),
        );
        after.destination_url = value;
    }
    if let Some(value) = slug {
        change("slug", before.slug.clone().into(), value.clone().into());
        after.slug = value;
    }
    if let Some(value) = segment {
        change(
            "segment",
            before.segment.clone().into(),
            value.clone().into(),
        );
        after.segment = value;
    }
    if let Some(value) = campaign {
        change(
            "campaign",
            before.campaign.clone().into(),
            value.clone().into(),
        );
        after.campaign = value;
    }
    if let Some(value) = tags {
        change("tags", before.tags.clone().into(), value.clone().into());
        after.tags = value;
    }
    if let Some(value) = expires_at {
        change(
            "expires_at",
            time_value(before.expires_at),
            time_value(value),
        );
        after.expires_at = value;
    }
    if previous.is_empty() {
        // Nothing changed: no write, no event (as Stripe does).
        return Ok(Json(LinkView::new(before, &state.config)));
    }
    after.updated_at = Utc::now().trunc_subsecs(6);
    links::update(&mut tx, &after)
        .await
        .map_err(|error| match error {
            StoreError::SlugTaken => {
                ApiError::Conflict(format!("the slug `{}` is already taken", after.slug))
            }
            other => other.into(),
        })?;
    let update = LinkUpdate {
        link: link_state(&after, &state.config),
        changed_fields: previous.keys().cloned().collect(),
        previous_attributes: previous,
    };
    outbox::enqueue(
        &mut tx,
        &workspace,
        &Envelope::new(EventType::LinkUpdated, update),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    write_through(&state, &after, Some(&before.slug)).await;
    Ok(Json(LinkView::new(after, &state.config)))
}

#[utoipa::path(
    delete,
    path = "/links/{id}",
    tag = "links",
    params(("id" = String, Path, description = "The link's id (`lnk_…`)")),
    responses(
        (status = 204, description = "Deleted; the slug stays reserved and `link.deleted` is emitted"),
        (status = 404, description = "No such link in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn delete_link(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = link_id(&id)?;
    let mut tx = state.pool.begin().await.map_err(StoreError::from)?;
    let mut link = links::lock(&mut tx, &workspace, &id)
        .await?
        .ok_or(ApiError::NotFound("link"))?;
    let now = Utc::now().trunc_subsecs(6);
    link.deleted_at = Some(now);
    link.updated_at = now;
    links::update(&mut tx, &link).await?;
    let event = Envelope::new(EventType::LinkDeleted, link_state(&link, &state.config));
    outbox::enqueue(&mut tx, &workspace, &event).await?;
    tx.commit().await.map_err(StoreError::from)?;
    write_through(&state, &link, None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts a link's committed state into the redirect's shared cache (and forgets a renamed
/// link's old slug), so every redirect process sees the change on its next cache miss; their
/// local caches follow from the `link.*` event within a second.
///
/// It then publishes the outbox at once (the relay would within a moment): the `link.*` event
/// reaches the redirects' caches before this request is answered. If the broker is away the
/// event stays in the outbox for the relay, and the answer does not wait for it.
async fn write_through(state: &AppState, row: &LinkRow, old_slug: Option<&str>) {
    publish_now(state).await;
    let Some(cache) = &state.link_cache else {
        return;
    };
    if let Some(old) = old_slug.filter(|old| *old != row.slug) {
        cache.forget(old).await;
    }
    let cached = CachedLink {
        link_id: row.id.clone(),
        workspace_id: row.workspace_id.clone(),
        slug: row.slug.clone(),
        destination_url: row.destination_url.clone(),
        segment: row.segment.clone(),
        campaign: row.campaign.clone(),
        expires_at: row.expires_at,
        deleted: row.deleted_at.is_some(),
    };
    cache.put(&cached, true).await;
}

async fn publish_now(state: &AppState) {
    let relay = crate::relay_once(&state.pool, &state.publisher, &state.config.namespace);
    match tokio::time::timeout(PUBLISH_NOW_LIMIT, relay).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::debug!(error = %error, "event left to the outbox relay"),
        Err(_) => tracing::debug!("event left to the outbox relay (broker slow)"),
    }
}

/// A timestamp as events show it, or `null`.
fn time_value(time: Option<DateTime<Utc>>) -> Value {
    time.map(|t| rfc3339_seconds::format(&t)).into()
}

fn link_id(text: &str) -> Result<LinkId, ApiError> {
    LinkId::parse(text).map_err(|_| ApiError::NotFound("link"))
}
