//! Types that exist for the OpenAPI document: the closed vocabularies the API speaks as strings
//! (event names, delivery statuses), and the small answers built inline by handlers.
//!
//! Handlers return these types, so the document describes what is really sent.

use chrono::{DateTime, Utc};
use linkkit_core::event::rfc3339_seconds;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The five event types.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum EventName {
    #[serde(rename = "link.clicked")]
    LinkClicked,
    #[serde(rename = "link.created")]
    LinkCreated,
    #[serde(rename = "link.updated")]
    LinkUpdated,
    #[serde(rename = "link.deleted")]
    LinkDeleted,
    #[serde(rename = "qr.scanned")]
    QrScanned,
}

/// Where a delivery is: `failed` means retrying, `dead` means given up (replayable).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[expect(dead_code, reason = "a vocabulary of the OpenAPI document")]
pub enum DeliveryStatusName {
    Pending,
    Succeeded,
    Failed,
    Dead,
}

/// A tag: 1–50 characters, not only spaces (tags are trimmed).
#[derive(Debug)]
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(50))
            .pattern(Some(r"\S"))
            .description(Some("1–50 characters, not only spaces (tags are trimmed)"))
            .into()
    }
}

impl ToSchema for Tag {}

/// `GET /webhooks/{id}/secret`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    /// `whsec_` and the base64 of the key.
    #[schema(pattern = r"^whsec_[A-Za-z0-9+/=]+$")]
    pub secret: String,
}

/// `POST /webhooks/{id}/rotate-secret`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecretView {
    /// The new secret; it signs every delivery from now on.
    #[schema(pattern = r"^whsec_[A-Za-z0-9+/=]+$")]
    pub secret: String,
    /// Until then the previous secret signs beside the new one.
    #[serde(with = "rfc3339_seconds")]
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// `POST /webhooks/{id}/replay`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayView {
    /// How many dead deliveries were sent again.
    #[schema(minimum = 0)]
    pub count: usize,
}

/// An event, exactly as webhooks carry it (SPEC §3).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    #[schema(
        pattern = r"^evt_[0-9a-f]{32}$",
        example = "evt_01a21b7c1269717b823ab622c94fb522"
    )]
    pub id: String,
    pub event: EventName,
    /// When it happened, UTC, whole seconds.
    #[serde(with = "rfc3339_seconds")]
    pub timestamp: DateTime<Utc>,
    /// The link's state (`link.*`) or the visit (`link.clicked`, `qr.scanned`).
    #[schema(value_type = Object)]
    pub data: Value,
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "parsed by `RawQuery`; described here for the document"
)]
pub struct Pagination {
    /// Objects per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_]{0,64}$")]
    cursor: Option<String>,
}

/// `GET /webhooks/{id}/deliveries?status=&limit=&cursor=`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "parsed by `RawQuery`; described here for the document"
)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    status: Option<DeliveryStatusName>,
    /// Objects per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[A-Za-z0-9_]{0,64}$")]
    cursor: Option<String>,
}

impl From<&linkkit_core::Envelope> for EventView {
    fn from(event: &linkkit_core::Envelope) -> Self {
        Self {
            id: event.id.to_string(),
            event: EventName::from(event.event),
            timestamp: event.timestamp,
            data: event.data.clone(),
        }
    }
}

impl From<linkkit_core::EventType> for EventName {
    fn from(event: linkkit_core::EventType) -> Self {
        use linkkit_core::EventType;
        match event {
            EventType::LinkClicked => EventName::LinkClicked,
            EventType::LinkCreated => EventName::LinkCreated,
            EventType::LinkUpdated => EventName::LinkUpdated,
            EventType::LinkDeleted => EventName::LinkDeleted,
            EventType::QrScanned => EventName::QrScanned,
        }
    }
}
