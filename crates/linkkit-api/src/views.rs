//! The JSON objects the API returns (SPEC §5), built from store rows.

use chrono::{DateTime, Utc};
use linkkit_core::event::{rfc3339_seconds, LinkState};
use linkkit_core::LinkId;
use linkkit_store::deliveries::{AttemptRow, DeliveryRow};
use linkkit_store::endpoints::EndpointRow;
use linkkit_store::links::LinkRow;
use linkkit_store::Page;
use serde::Serialize;
use utoipa::ToSchema;

use crate::schema::{DeliveryStatusName, EventName};
use crate::ApiConfig;

/// `{"data": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListView<T> {
    pub data: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    #[schema(pattern = r"^[A-Za-z0-9_]{1,64}$")]
    pub next_cursor: Option<String>,
}

impl<T> ListView<T> {
    pub fn from_page<R>(page: Page<R>, view: impl Fn(R) -> T) -> Self {
        Self {
            data: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A short link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    #[schema(
        pattern = r"^lnk_[0-9a-f]{32}$",
        example = "lnk_01a21b7c12487042b060897a9c0a32e3"
    )]
    pub id: String,
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", example = "summer-sale")]
    pub slug: String,
    #[schema(example = "https://lkkt.in/summer-sale")]
    pub short_url: String,
    #[schema(example = "https://example.com/product")]
    pub destination_url: String,
    pub segment: Option<String>,
    pub campaign: Option<String>,
    pub tags: Vec<String>,
    /// After this the short link answers `410 Gone`.
    #[serde(with = "rfc3339_seconds::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_seconds")]
    pub updated_at: DateTime<Utc>,
    #[schema(minimum = 0)]
    pub clicks: i64,
    #[schema(minimum = 0)]
    pub scans: i64,
    /// Where to fetch the link's QR code (SVG; add `?format=png` for PNG).
    pub qr_url: String,
}

impl LinkView {
    pub fn new(row: LinkRow, config: &ApiConfig) -> Self {
        Self {
            qr_url: format!(
                "{}/api/v1/links/{}/qr",
                config.api_base_url.trim_end_matches('/'),
                row.id
            ),
            short_url: config.short_url(&row.slug),
            id: row.id,
            slug: row.slug,
            destination_url: row.destination_url,
            segment: row.segment,
            campaign: row.campaign,
            tags: row.tags,
            expires_at: row.expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            clicks: row.clicks,
            scans: row.scans,
        }
    }
}

/// The link as `link.*` events carry it.
pub fn link_state(row: &LinkRow, config: &ApiConfig) -> LinkState {
    LinkState {
        link_id: LinkId::parse(&row.id).expect("stored link ids are valid"),
        slug: row.slug.clone(),
        short_url: config.short_url(&row.slug),
        destination_url: row.destination_url.clone(),
        segment: row.segment.clone(),
        campaign: row.campaign.clone(),
        tags: row.tags.clone(),
        expires_at: row.expires_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    #[schema(
        pattern = r"^ep_[0-9a-f]{32}$",
        example = "ep_01a21b7c12487042b060897a9c0a32e3"
    )]
    pub id: String,
    #[schema(example = "https://example.com/webhooks")]
    pub url: String,
    #[schema(value_type = Vec<EventName>)]
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why the endpoint is disabled (`null` while enabled).
    pub disabled_reason: Option<String>,
    #[serde(with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_seconds")]
    pub updated_at: DateTime<Utc>,
    /// Only on creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false, pattern = r"^whsec_[A-Za-z0-9+/=]+$")]
    pub secret: Option<String>,
}

impl EndpointView {
    pub fn new(row: EndpointRow) -> Self {
        Self {
            id: row.id,
            url: row.url,
            events: row.events,
            description: row.description,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
            secret: None,
        }
    }

    pub fn with_secret(row: EndpointRow) -> Self {
        let secret = row.secret.clone();
        Self {
            secret: Some(secret),
            ..Self::new(row)
        }
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    #[schema(
        pattern = r"^dlv_[0-9a-f]{32}$",
        example = "dlv_01a21b7c12487042b060897a9c0a32e3"
    )]
    pub id: String,
    #[schema(
        pattern = r"^evt_[0-9a-f]{32}$",
        example = "evt_01a21b7c1269717b823ab622c94fb522"
    )]
    pub event_id: String,
    #[schema(value_type = EventName)]
    pub event: String,
    #[schema(pattern = r"^ep_[0-9a-f]{32}$")]
    pub endpoint_id: String,
    #[schema(value_type = DeliveryStatusName)]
    pub status: String,
    #[schema(minimum = 0)]
    pub attempt_count: i32,
    #[serde(with = "rfc3339_seconds::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_seconds::option")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first; only when one delivery is fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<AttemptView>, required = false)]
    pub attempts: Option<Vec<AttemptView>>,
}

impl DeliveryView {
    pub fn new(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            event: row.event_type,
            endpoint_id: row.endpoint_id,
            status: row.status,
            attempt_count: row.attempt_count,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
            attempts: None,
        }
    }
}

/// One try at delivering.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    #[schema(minimum = 1)]
    pub attempt: i32,
    #[serde(with = "rfc3339_seconds")]
    pub at: DateTime<Utc>,
    /// The receiver's status; `null` when it did not answer.
    pub status_code: Option<i32>,
    #[schema(minimum = 0)]
    pub duration_ms: i32,
    /// Why the attempt failed, when it did.
    pub error: Option<String>,
    /// The start of the receiver's answer (at most 1 KiB).
    pub response_body: Option<String>,
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> Self {
        Self {
            attempt: row.attempt,
            at: row.at,
            status_code: row.status_code,
            duration_ms: row.duration_ms,
            error: row.error,
            response_body: row.response_body,
        }
    }
}
