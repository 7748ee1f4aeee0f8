//! Types that exist for the OpenAPI document: the closed vocabularies the API speaks as strings
//! (event names, delivery statuses), and the small answers built inline by handlers.
//!
//! Handlers return these types, so the document describes what is really sent.

use chrono::{DateTime, Utc};
use linkkit_core::event::rfc3339_seconds;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// What a URL field accepts (`linkkit_core::url_rules::is_canonical_http_url`, to the letter):
/// `http(s)://`, a dotted IPv4 address or a name of letter-digit-hyphen labels whose last label
/// starts with a letter, an optional port up to 65535, then nothing or `/`, `?` or `#` and
/// anything.
pub const URL_PATTERN: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://",
    r"(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"|([A-Za-z0-9]+(-+[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(-+[A-Za-z0-9]+)*)",
    r"(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"([/?#][\s\S]*)?$",
);

/// A URL field: [`URL_PATTERN`], at most 2048 characters.
#[derive(Debug)]
pub struct HttpUrl;

impl utoipa::PartialSchema for HttpUrl {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .max_length(Some(2048))
            .pattern(Some(URL_PATTERN))
            .description(Some(
                "An absolute http(s) URL written as `http(s)://host[:port]` followed by nothing \
                 or a path, query or fragment; the host is a name of letters, digits and hyphens \
                 (punycode for international names) or an IPv4 address. No credentials.",
            ))
            .into()
    }
}

impl ToSchema for HttpUrl {}

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

/// A tag: 1–50 characters, not only spaces (tags are trimmed), no NUL.
#[derive(Debug)]
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(50))
            // Whitespace as Rust's `trim` sees it, spelled out: `\s` differs between engines.
            .pattern(Some(concat!(
                r"^[^\u0000]*",
                r"[^\u0000\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
                r"[^\u0000]*$"
            )))
            .description(Some(
                "1–50 characters, not only spaces (tags are trimmed), no NUL",
            ))
            .into()
    }
}

impl ToSchema for Tag {}

/// A PNG image: binary, not JSON.
#[derive(Debug)]
pub struct Png;

impl utoipa::PartialSchema for Png {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_media_type("image/png")
            .into()
    }
}

impl ToSchema for Png {}

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
