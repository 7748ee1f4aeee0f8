//! `/api/v1/events`: the workspace's events as they happen, over server-sent events, and sample
//! events on demand — what `linkkit listen` and `linkkit trigger` use to test a receiver on a
//! laptop without a public URL.
//!
//! A stream binds its own exclusive, auto-delete queue to the events exchange for the requested
//! types — exactly as any consumer may (SPEC §7) — and passes on the messages whose
//! `linkkit-workspace` header is the key's workspace. The queue lives as long as the stream: when
//! the client goes away (or the server stops) its channel is closed and RabbitMQ deletes it. The
//! queue holds at most [`STREAM_QUEUE_MAX_LENGTH`] messages (oldest dropped first), so a stalled
//! client cannot grow it without bound. A stream is a development tool: at most once, no replay
//! of what happened while nobody listened.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use futures_util::{stream, Stream, StreamExt};
use lapin::options::{BasicAckOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};
use linkkit_bus::{header_string, BusError, Outgoing, WORKSPACE_HEADER};
use linkkit_core::{Envelope, EventType, WorkspaceId};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::auth::Workspace;
use crate::extract::{JsonBody, RawQuery};
use crate::schema::{EventName, EventView};
use crate::{ApiError, AppState};

/// Messages a stream's queue holds for a slow client before dropping the oldest.
pub const STREAM_QUEUE_MAX_LENGTH: i64 = 10_000;
/// Event streams one API process serves at once; beyond it the answer is `503`.
pub const MAX_STREAMS: usize = 1_000;
const PREFETCH: u16 = 64;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/events/stream", get(stream_events))
        .route("/events/trigger", post(trigger_event))
}

/// `?events=` of a stream.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "parsed by `RawQuery`; described here for the document"
)]
pub(crate) struct StreamParams {
    /// Comma-separated event types to receive (default: all five).
    #[param(
        pattern = r"^(link\.clicked|link\.created|link\.updated|link\.deleted|qr\.scanned)(,(link\.clicked|link\.created|link\.updated|link\.deleted|qr\.scanned))*$",
        example = "link.clicked,qr.scanned"
    )]
    events: Option<String>,
}

/// The first message of a stream: the queue is bound, events flow from here on.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StreamReady {
    pub events: Vec<EventName>,
}

/// The workspace's events as they happen: `text/event-stream` with one `ready` message once
/// the stream is subscribed, then one message per event (`event:` its type, `id:` its id,
/// `data:` the event exactly as a webhook carries it), and a comment every 15 s to keep the
/// connection open.
#[utoipa::path(
    get,
    path = "/events/stream",
    tag = "events",
    params(StreamParams),
    responses((
        status = 200,
        description = "Server-sent events: `ready` (data: `StreamReady`), then one message per event (data: `EventView`)",
        content_type = "text/event-stream",
        body = String,
    ))
)]
pub(crate) async fn stream_events(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    query: RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let types = parse_types(query.get("events"))?;
    let permit = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Unavailable("too many event streams on this server".into()))?;
    let (channel, consumer) = subscribe(&state, &types)
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    let (sender, receiver) = mpsc::channel(PREFETCH as usize);
    tokio::spawn(forward(Forward {
        channel,
        consumer,
        workspace,
        sender,
        shutdown: state.shutdown.clone(),
        _permit: permit,
    }));
    let ready = Event::default()
        .event("ready")
        .json_data(StreamReady {
            events: types.iter().copied().map(EventName::from).collect(),
        })
        .expect("a list of names serializes");
    let events = stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    let stream = stream::once(async { Ok(ready) }).chain(events);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// `a,b,c` → the event types, all five when absent or empty; repeats dropped.
fn parse_types(text: Option<&str>) -> Result<Vec<EventType>, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(EventType::ALL.to_vec());
    };
    let mut types = Vec::new();
    for name in text.split(',') {
        let event_type = name
            .parse::<EventType>()
            .map_err(|error| ApiError::invalid("invalid_events", format!("events: {error}")))?;
        if !types.contains(&event_type) {
            types.push(event_type);
        }
    }
    Ok(types)
}

/// An exclusive, auto-delete queue bound to each requested type, and a consumer on it.
async fn subscribe(state: &AppState, types: &[EventType]) -> Result<(Channel, Consumer), BusError> {
    let channel = state.broker.channel().await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(STREAM_QUEUE_MAX_LENGTH),
    );
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let consumer = state
        .topology
        .consume_events(&channel, types, arguments)
        .await?;
    Ok((channel, consumer))
}

struct Forward {
    channel: Channel,
    consumer: Consumer,
    workspace: WorkspaceId,
    sender: mpsc::Sender<Event>,
    shutdown: CancellationToken,
    /// Held for as long as the stream runs.
    _permit: OwnedSemaphorePermit,
}

/// Moves the workspace's events from the queue to the client until either goes away; then
/// closes the channel, which deletes the queue.
async fn forward(mut task: Forward) {
    let workspace = task.workspace.to_string();
    loop {
        let delivery = tokio::select! {
            _ = task.shutdown.cancelled() => break,
            _ = task.sender.closed() => break,
            next = task.consumer.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "an event stream lost its queue");
                    break;
                }
                None => break,
            },
        };
        let headers = delivery.properties.headers().as_ref();
        if header_string(headers, WORKSPACE_HEADER).as_deref() == Some(workspace.as_str()) {
            if let Some(event) = sse_event(&delivery.data) {
                let sent = tokio::select! {
                    _ = task.shutdown.cancelled() => false,
                    sent = task.sender.send(event) => sent.is_ok(),
                };
                if !sent {
                    break;
                }
            }
        }
        if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
            tracing::warn!(error = %error, "an event stream lost its queue");
            break;
        }
    }
    let _ = task.channel.close(200, "event stream closed").await;
}

/// An envelope from the exchange as one server-sent event; `None` when it cannot be read.
fn sse_event(body: &[u8]) -> Option<Event> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let data = String::from_utf8(envelope.to_body()).ok()?;
    Some(
        Event::default()
            .event(envelope.event.as_str())
            .id(envelope.id.to_string())
            .data(data),
    )
}

/// Which sample event to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TriggerEvent {
    #[schema(value_type = EventName)]
    event: String,
}

/// Publishes a sample event of the given type for this workspace to the events exchange, as a
/// real one would be: every endpoint subscribed to the type and every open stream gets it.
#[utoipa::path(
    post,
    path = "/events/trigger",
    tag = "events",
    request_body = TriggerEvent,
    responses((status = 202, description = "The sample event, published", body = EventView))
)]
pub(crate) async fn trigger_event(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    JsonBody(request): JsonBody<TriggerEvent>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let event_type = request
        .event
        .parse::<EventType>()
        .map_err(|error| ApiError::invalid("invalid_event", format!("event: {error}")))?;
    let event = linkkit_core::event::sample(event_type);
    state
        .publisher
        .publish(Outgoing::event(
            &state.config.namespace,
            &workspace,
            &event,
            Utc::now(),
        ))
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(EventView::from(&event))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_types_default_to_all_and_refuse_unknown_names() {
        assert_eq!(parse_types(None).unwrap(), EventType::ALL.to_vec());
        assert_eq!(parse_types(Some("")).unwrap(), EventType::ALL.to_vec());
        assert_eq!(
            parse_types(Some("qr.scanned,link.clicked,qr.scanned")).unwrap(),
            vec![EventType::QrScanned, EventType::LinkClicked]
        );
        assert!(parse_types(Some("link.clicked,")).is_err());
        assert!(parse_types(Some("link.exploded")).is_err());
    }

    #[test]
    fn an_event_becomes_one_message_with_its_type_id_and_exact_body() {
        let envelope = linkkit_core::event::sample(EventType::LinkClicked);
        assert!(sse_event(&envelope.to_body()).is_some());
        assert!(sse_event(b"not json").is_none());
    }
}
