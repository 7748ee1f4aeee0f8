//! The API service: links and webhook endpoints over HTTP (`/api/v1`, SPEC §5), the web
//! dashboard that uses them (`/dashboard/`, signed in with a session cookie), and the outbox
//! relay that publishes what the API wrote.
//!
//! Every change and the event it causes are written in one Postgres transaction (the outbox);
//! the relay publishes outbox rows to the events exchange with confirms. The API never
//! delivers a webhook itself, and never counts visits (the fan-out does).

mod auth;
mod dashboard;
mod deliveries;
mod error;
mod events;
mod extract;
mod links;
pub mod openapi;
mod outbox_relay;
mod qr;
mod schema;
mod session;
mod validate;
mod views;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use linkkit_bus::{Broker, Publisher, Topology};
use linkkit_cache::links::LinkStore;
use linkkit_cache::RateLimiter;
use linkkit_core::net::TargetPolicy;
use linkkit_core::Namespace;
use linkkit_store::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use events::MAX_STREAMS;
pub use outbox_relay::{relay_once, run_outbox_relay};

/// The largest request body accepted; beyond it the answer is `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the API needs to know beyond its connections.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Base of every `short_url`, e.g. `https://lkkt.in`.
    pub public_base_url: String,
    /// Where clients reach this API, for the absolute URLs it hands out (`qr_url`).
    pub api_base_url: String,
    /// Which endpoint addresses are acceptable (private ones only for local testing, or an
    /// operator's allow-list).
    pub target_policy: TargetPolicy,
    pub namespace: Namespace,
}

impl ApiConfig {
    pub fn short_url(&self, slug: &str) -> String {
        format!("{}/{slug}", self.public_base_url.trim_end_matches('/'))
    }
}

/// Shared by every request handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub publisher: Arc<Publisher>,
    pub config: Arc<ApiConfig>,
    /// Per-key request limit; `None` when limits are off.
    pub rate_limiter: Option<RateLimiter>,
    /// The redirect's shared link cache, written through on every change.
    pub link_cache: Option<LinkStore>,
    /// For event streams, which bind queues of their own.
    pub broker: Broker,
    pub topology: Topology,
    /// Event streams still open; one permit each, [`MAX_STREAMS`] in all.
    pub streams: Arc<Semaphore>,
    /// Fired when the server stops: open event streams end, so shutdown never waits on them.
    pub shutdown: CancellationToken,
}

/// The `/api/v1` routes, and the dashboard at `/dashboard/` that uses them.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest(
            "/api/v1",
            links::routes()
                .merge(webhooks::routes())
                .merge(deliveries::routes())
                .merge(session::routes())
                .merge(events::routes())
                .route("/openapi.json", axum::routing::get(openapi::openapi_json)),
        )
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` fires.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
