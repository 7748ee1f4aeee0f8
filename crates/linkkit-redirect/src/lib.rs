//! The redirect service: `GET`/`HEAD /{slug}` → `302` to the destination, and a `link.clicked`
//! or `qr.scanned` event for each human visit.
//!
//! The visitor never waits for the broker: events go into a bounded in-memory buffer that a
//! background publisher drains with confirms, riding out broker restarts. What does not fit in
//! the buffer is counted in `linkkit_events_dropped_total`, never blocks a redirect.

mod buffer;
mod enrich;
mod geo;
mod invalidation;
mod lookup;
pub mod metrics;
mod redirect;
mod visit;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use linkkit_core::Namespace;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use buffer::{run_buffer_publisher, EventBuffer, EventBufferReceiver};
pub use enrich::{classify_user_agent, Visitor};
pub use geo::{Geo, GeoError};
pub use invalidation::run_cache_invalidation;
pub use lookup::{LinkCache, Target};
pub use visit::Visit;

#[derive(Debug, Clone)]
pub struct RedirectConfig {
    /// Base of the `short_url` in events (`LINKKIT_PUBLIC_BASE_URL`).
    pub public_base_url: String,
    pub namespace: Namespace,
    /// Emit events for crawlers and link-preview bots too (`device: "Bot"`).
    pub track_bots: bool,
}

#[derive(Debug, Clone)]
pub struct RedirectState {
    pub links: LinkCache,
    pub geo: Geo,
    pub events: EventBuffer,
    pub config: Arc<RedirectConfig>,
}

pub fn router(state: RedirectState) -> Router {
    Router::new()
        .route("/{slug}", get(redirect::follow))
        .with_state(Arc::new(state))
}

/// Serves redirects on `listener` until `shutdown` fires.
pub async fn serve(
    state: RedirectState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "redirect service listening");
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
