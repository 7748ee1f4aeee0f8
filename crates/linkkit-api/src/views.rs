//! The JSON objects the API returns (SPEC §5), built from store rows.

use chrono::{DateTime, Utc};
use linkkit_core::event::{rfc3339_seconds, LinkState};
use linkkit_core::LinkId;
use linkkit_store::deliveries::{AttemptRow, DeliveryRow};
use linkkit_store::endpoints::EndpointRow;
use linkkit_store::links::LinkRow;
use linkkit_store::Page;
use serde::Serialize;

use crate::ApiConfig;

/// `{"data": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize)]
pub struct ListView<T> {
    pub data: Vec<T>,
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

#[derive(Debug, Serialize)]
pub struct LinkView {
    pub id: String,
    pub slug: String,
    pub short_url: String,
    pub destination_url: String,
    pub segment: Option<String>,
    pub campaign: Option<String>,
    pub tags: Vec<String>,
    #[serde(with = "rfc3339_seconds::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_seconds")]
    pub updated_at: DateTime<Utc>,
    pub clicks: i64,
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

#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why the endpoint is disabled (`null` while enabled).
    pub disabled_reason: Option<String>,
    #[serde(with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_seconds")]
    pub updated_at: DateTime<Utc>,
    /// Only on creation and from the secret route.
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event: String,
    pub endpoint_id: String,
    pub status: String,
    pub attempt_count: i32,
    #[serde(with = "rfc3339_seconds::option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_seconds::option")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Debug, Serialize)]
pub struct AttemptView {
    pub attempt: i32,
    #[serde(with = "rfc3339_seconds")]
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
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
