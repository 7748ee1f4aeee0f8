//! `/api/v1/webhooks`: endpoints, their signing secrets, and test events.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, SubsecRound, Utc};
use linkkit_core::signing::WebhookSecret;
use linkkit_core::{EndpointId, EventType, WorkspaceId};
use linkkit_store::endpoints::{self, EndpointRow};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Workspace;
use crate::error::ErrorBody;
use crate::extract::{JsonBody, OptionalJsonBody, RawQuery};
use crate::schema::{EventName, RotatedSecretView, SecretView};
use crate::validate::{valid_description, valid_events, valid_url};
use crate::views::{DeliveryView, EndpointView, ListView};
use crate::{deliveries, ApiError, AppState};

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_endpoints).post(create_endpoint))
        .route(
            "/webhooks/{id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route("/webhooks/{id}/secret", get(get_secret))
        .route("/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/webhooks/{id}/test", post(send_test_event))
        .route(
            "/webhooks/{id}/deliveries",
            get(deliveries::list_for_endpoint),
        )
        .route("/webhooks/{id}/replay", post(deliveries::replay_dead))
}

/// A new webhook endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEndpoint {
    /// An absolute `http`/`https` URL. Unless the server allows private targets (local
    /// testing), the host must be public: a name with a dot that is not `localhost`, `*.local`,
    /// `*.internal`…, or a public IPv4 address; anything else is refused with `422`.
    #[schema(value_type = crate::schema::HttpUrl, example = "https://example.com/webhooks")]
    url: String,
    /// The events to receive; repeats are dropped.
    #[schema(min_items = 1, value_type = Vec<EventName>)]
    events: Vec<String>,
    /// Trimmed; at most 500 characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
}

#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    request_body = CreateEndpoint,
    responses((status = 201, description = "The endpoint, with its signing secret", body = EndpointView))
)]
pub(crate) async fn create_endpoint(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    JsonBody(request): JsonBody<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointView>), ApiError> {
    let url = valid_url(&request.url, &state.config.target_policy)?;
    let events = valid_events(&request.events)?;
    let description = valid_description(request.description)?;
    let now = Utc::now().trunc_subsecs(6);
    let row = EndpointRow {
        id: EndpointId::generate().to_string(),
        workspace_id: workspace.to_string(),
        url,
        events,
        description,
        enabled: true,
        disabled_reason: None,
        secret: WebhookSecret::generate().expose(),
        previous_secret: None,
        previous_secret_expires_at: None,
        created_at: now,
        updated_at: now,
        last_success_at: None,
    };
    endpoints::insert(&state.pool, &row).await?;
    Ok((StatusCode::CREATED, Json(EndpointView::with_secret(row))))
}

#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    params(crate::schema::Pagination),
    responses((status = 200, description = "A page of endpoints, newest first", body = ListView<EndpointView>))
)]
pub(crate) async fn list_endpoints(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    query: RawQuery,
) -> Result<Json<ListView<EndpointView>>, ApiError> {
    let params = query.list_params()?;
    let page = endpoints::list(
        &state.pool,
        &workspace,
        params.limit,
        params.cursor.as_deref(),
    )
    .await?;
    Ok(Json(ListView::from_page(page, EndpointView::new)))
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 200, description = "The endpoint (without its secret)", body = EndpointView),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn get_endpoint(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(EndpointView::new(
        find(&state, &workspace, &id).await?,
    )))
}

/// Any of an endpoint's fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateEndpoint {
    #[schema(value_type = Option<crate::schema::HttpUrl>)]
    url: Option<String>,
    #[schema(min_items = 1, value_type = Option<Vec<EventName>>)]
    events: Option<Vec<String>>,
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
    /// `false` disables the endpoint; `true` enables it again and clears `disabled_reason`.
    enabled: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "The endpoint as it now is", body = EndpointView),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn update_endpoint(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateEndpoint>,
) -> Result<Json<EndpointView>, ApiError> {
    let url = request
        .url
        .as_deref()
        .map(|u| valid_url(u, &state.config.target_policy))
        .transpose()?;
    let events = request.events.as_deref().map(valid_events).transpose()?;
    let description = request
        .description
        .map(|d| valid_description(Some(d)))
        .transpose()?;
    let mut row = find(&state, &workspace, &id).await?;
    if let Some(url) = url {
        row.url = url;
    }
    if let Some(events) = events {
        row.events = events;
    }
    if let Some(description) = description {
        row.description = description;
    }
    match request.enabled {
        Some(true) => {
            row.enabled = true;
            row.disabled_reason = None;
        }
        Some(false) if row.enabled => {
            row.enabled = false;
            row.disabled_reason = Some("disabled through the API".into());
        }
        _ => {}
    }
    row.updated_at = Utc::now().trunc_subsecs(6);
    endpoints::update(&state.pool, &row).await?;
    Ok(Json(EndpointView::new(row)))
}

#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn delete_endpoint(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = endpoint_id(&id)?;
    if endpoints::delete(&state.pool, &workspace, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("endpoint"))
    }
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/secret",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 200, description = "The current signing secret", body = SecretView),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn get_secret(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<Json<SecretView>, ApiError> {
    let row = find(&state, &workspace, &id).await?;
    Ok(Json(SecretView { secret: row.secret }))
}

#[utoipa::path(
    post,
    path = "/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 200, description = "The new secret; the previous one signs beside it for 24 hours", body = RotatedSecretView),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecretView>, ApiError> {
    let row = find(&state, &workspace, &id).await?;
    let secret = WebhookSecret::generate().expose();
    let overlap_until = Utc::now() + Duration::hours(ROTATION_OVERLAP_HOURS);
    endpoints::rotate_secret(&state.pool, &row, &secret, overlap_until).await?;
    Ok(Json(RotatedSecretView {
        secret,
        previous_secret_expires_at: overlap_until,
    }))
}

/// Which sample event to send.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestEvent {
    /// Default `link.created`.
    #[schema(value_type = Option<EventName>)]
    event: Option<String>,
}

/// Sends a sample event to this endpoint only, whatever it subscribes to.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    request_body(content = Option<TestEvent>, description = "Optional; an empty body sends `link.created`"),
    responses(
        (status = 202, description = "The delivery of the sample event, on its way", body = DeliveryView),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn send_test_event(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<TestEvent>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let row = find(&state, &workspace, &id).await?;
    let event_type = match body.event {
        None => EventType::LinkCreated,
        Some(name) => name
            .parse()
            .map_err(|e: linkkit_core::event::UnknownEventType| {
                ApiError::invalid("invalid_event", format!("event: {e}"))
            })?,
    };
    let event = linkkit_core::event::sample(event_type);
    let endpoint = endpoint_id(&row.id)?;
    let delivery = deliveries::enqueue_new(&state, &workspace, &event, &endpoint).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery)))
}

pub(crate) async fn find(
    state: &AppState,
    workspace: &WorkspaceId,
    id: &str,
) -> Result<EndpointRow, ApiError> {
    let id = endpoint_id(id)?;
    endpoints::get(&state.pool, workspace, &id)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))
}

pub(crate) fn endpoint_id(text: &str) -> Result<EndpointId, ApiError> {
    EndpointId::parse(text).map_err(|_| ApiError::NotFound("endpoint"))
}
