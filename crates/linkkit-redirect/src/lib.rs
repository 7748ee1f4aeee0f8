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
///
/// A redirect is a few microseconds of work between a `recv` and a `writev`, so what it costs
/// is mostly the kernel's and the scheduler's: one single-threaded runtime per core, each
/// accepting on its own copy of the socket and keeping its connections, spares the wake-ups and
/// task migrations between worker threads that a shared runtime pays on every request (the
/// shape nginx has). The rest of the process (publisher, invalidation) stays on the main
/// runtime; the two meet through the cache and the event buffer, which work from any runtime.
pub async fn serve(
    state: RedirectState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "redirect service listening");
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let listener = listener.into_std()?;
    let mut finished = Vec::with_capacity(threads);
    for index in 0..threads {
        let (listener, state, shutdown) = (listener.try_clone()?, state.clone(), shutdown.clone());
        let (report, outcome) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("redirect-{index}"))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(serve_on_this_thread(state, listener, shutdown))
                    });
                let _ = report.send(served);
            })?;
        finished.push(outcome);
    }
    for outcome in finished {
        outcome
            .await
            .map_err(|_| std::io::Error::other("a redirect thread stopped without a word"))??;
    }
    Ok(())
}

async fn serve_on_this_thread(
    state: RedirectState,
    listener: std::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
