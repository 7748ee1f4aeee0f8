//! The admin server of every process: `/metrics` (Prometheus text), `/healthz` (the process
//! lives) and `/readyz` (the dependencies this process uses answer right now).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use linkkit_bus::Broker;
use linkkit_store::PgPool;
use prometheus::{Encoder, TextEncoder};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The dependencies a process checks for readiness; `None` where it does not use one.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub pool: PgPool,
    pub broker: Broker,
    pub redis: Option<linkkit_cache::Redis>,
}

pub async fn serve(
    listener: TcpListener,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "admin server listening");
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(readiness);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics() -> impl IntoResponse {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&prometheus::gather(), &mut buffer) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            buffer,
        ),
        Err(error) => {
            tracing::error!(error = %error, "encoding metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain".to_owned())],
                Vec::new(),
            )
        }
    }
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let postgres = linkkit_store::ping(&readiness.pool).await;
    let broker = match readiness.broker.channel().await {
        Ok(channel) => {
            let _ = channel.close(200, "readiness check").await;
            true
        }
        Err(_) => false,
    };
    let redis = match &readiness.redis {
        Some(pool) => Some(linkkit_cache::ping(pool).await),
        None => None,
    };
    let ready = postgres && broker && redis.unwrap_or(true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {"postgres": postgres, "broker": broker, "redis": redis},
    });
    (status, Json(body))
}
