//! Deliveries: the log per endpoint, one delivery with its attempts, resend and replay.
//!
//! Resend and replay start a new *generation* of a delivery and publish a fresh job straight to
//! the deliveries exchange; the sender's idempotency key includes the generation, so an explicit
//! resend is sent again while the system's own duplicates are still suppressed. A retry of the
//! old generation still waiting in a queue finds itself stale at the sender and sends nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use linkkit_bus::Outgoing;
use linkkit_core::{DeliveryId, DeliveryJob, EndpointId, Envelope, WorkspaceId};
use linkkit_store::deliveries::{self, DeliveryRow, DeliveryStatus};
use linkkit_store::endpoints::Subscribers;

use crate::auth::Workspace;
use crate::error::ErrorBody;
use crate::extract::RawQuery;
use crate::schema::ReplayView;
use crate::views::{AttemptView, DeliveryView, ListView};
use crate::webhooks::{endpoint_id, find};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/deliveries/{id}", get(get_delivery))
        .route("/deliveries/{id}/resend", post(resend))
}

#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "deliveries",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)"), crate::schema::DeliveryFilter),
    responses(
        (status = 200, description = "A page of the endpoint's deliveries, newest first", body = ListView<DeliveryView>),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn list_for_endpoint(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
    query: RawQuery,
) -> Result<Json<ListView<DeliveryView>>, ApiError> {
    let endpoint = find(&state, &workspace, &id).await?;
    let params = query.list_params()?;
    let status = query
        .get("status")
        .map(|text| {
            DeliveryStatus::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    "invalid_status",
                    "status must be one of pending, succeeded, failed, dead",
                )
            })
        })
        .transpose()?;
    let endpoint_id = endpoint_id(&endpoint.id)?;
    let page = deliveries::list_for_endpoint(
        &state.pool,
        &workspace,
        &endpoint_id,
        status,
        params.limit,
        params.cursor.as_deref(),
    )
    .await?;
    Ok(Json(ListView::from_page(page, DeliveryView::new)))
}

#[utoipa::path(
    get,
    path = "/deliveries/{id}",
    tag = "deliveries",
    params(("id" = String, Path, description = "The delivery's id (`dlv_…`)")),
    responses(
        (status = 200, description = "The delivery with every attempt", body = DeliveryView),
        (status = 404, description = "No such delivery in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn get_delivery(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    let (id, row) = find_delivery(&state, &workspace, &id).await?;
    let attempts = deliveries::attempts(&state.pool, &id).await?;
    let mut view = DeliveryView::new(row);
    view.attempts = Some(attempts.into_iter().map(AttemptView::from).collect());
    Ok(Json(view))
}

#[utoipa::path(
    post,
    path = "/deliveries/{id}/resend",
    tag = "deliveries",
    params(("id" = String, Path, description = "The delivery's id (`dlv_…`)")),
    responses(
        (status = 202, description = "Sent again now, with a fresh retry schedule", body = DeliveryView),
        (status = 404, description = "No such delivery in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn resend(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let (id, row) = find_delivery(&state, &workspace, &id).await?;
    send_new_generation(&state, &workspace, &row).await?;
    let row = deliveries::get(&state.pool, &workspace, &id)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::new(row))))
}

/// `POST /webhooks/{id}/replay`: every dead delivery of the endpoint goes out again.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/replay",
    tag = "deliveries",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)")),
    responses(
        (status = 200, description = "How many dead deliveries were sent again", body = ReplayView),
        (status = 404, description = "No such endpoint in this workspace", body = ErrorBody),
    )
)]
pub(crate) async fn replay_dead(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
) -> Result<Json<ReplayView>, ApiError> {
    let endpoint = find(&state, &workspace, &id).await?;
    let endpoint_id = endpoint_id(&endpoint.id)?;
    let dead = deliveries::dead_for_endpoint(&state.pool, &workspace, &endpoint_id).await?;
    for row in &dead {
        send_new_generation(&state, &workspace, row).await?;
    }
    Ok(Json(ReplayView { count: dead.len() }))
}

/// Records a new event and its single delivery to `endpoint`, and publishes the job.
pub(crate) async fn enqueue_new(
    state: &AppState,
    workspace: &WorkspaceId,
    event: &Envelope,
    endpoint: &EndpointId,
) -> Result<DeliveryView, ApiError> {
    let created = deliveries::create_for_event(
        &state.pool,
        workspace,
        event,
        &Subscribers {
            enabled: vec![endpoint.clone()],
            disabled: vec![],
        },
    )
    .await?;
    let delivery = created
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("endpoint"))?;
    let delivery_id = delivery.id;
    let job = DeliveryJob::first_attempt(
        delivery_id.clone(),
        workspace.clone(),
        endpoint.clone(),
        delivery.generation,
        Utc::now(),
        event.clone(),
    );
    publish_job(state, &job).await?;
    let row = deliveries::get(&state.pool, workspace, &delivery_id)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    Ok(DeliveryView::new(row))
}

async fn send_new_generation(
    state: &AppState,
    workspace: &WorkspaceId,
    row: &DeliveryRow,
) -> Result<(), ApiError> {
    let event = deliveries::event_of(&state.pool, row)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("the event of delivery {} is missing", row.id).into())
        })?;
    let delivery_id = DeliveryId::parse(&row.id).map_err(|e| ApiError::Internal(e.into()))?;
    let generation = deliveries::start_generation(&state.pool, &delivery_id).await?;
    let job = DeliveryJob::first_attempt(
        delivery_id,
        workspace.clone(),
        endpoint_id(&row.endpoint_id)?,
        generation,
        Utc::now(),
        event,
    );
    publish_job(state, &job).await
}

async fn publish_job(state: &AppState, job: &DeliveryJob) -> Result<(), ApiError> {
    state
        .publisher
        .publish(Outgoing::job(&state.config.namespace, job))
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))
}

async fn find_delivery(
    state: &AppState,
    workspace: &WorkspaceId,
    id: &str,
) -> Result<(DeliveryId, DeliveryRow), ApiError> {
    let id = DeliveryId::parse(id).map_err(|_| ApiError::NotFound("delivery"))?;
    let row = deliveries::get(&state.pool, workspace, &id)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    Ok((id, row))
}
