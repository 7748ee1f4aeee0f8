//! `linkkit receive`: a webhook receiver for local testing. It prints every delivery it gets and
//! whether the Standard Webhooks signature verifies with the given secret, and answers 200
//! (or 401 when a secret was given and the signature does not verify).

use std::io::Write;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use linkkit_core::signing::{verify, WebhookSecret};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Signatures older or newer than this are refused, as Standard Webhooks libraries do.
const TOLERANCE_SECONDS: i64 = 300;

pub async fn serve(
    port: u16,
    secret: Option<WebhookSecret>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(address).await?;
    let verified = if secret.is_some() {
        "signatures are verified"
    } else {
        "no secret given: signatures are not checked"
    };
    print_line(&format!("listening on http://{address}/ ({verified})"));
    let router = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .with_state(secret);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn receive(
    State(secret): State<Option<WebhookSecret>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let id = header("webhook-id");
    let verdict = match &secret {
        None => Ok("unchecked".to_owned()),
        Some(secret) => {
            let timestamp = header("webhook-timestamp").parse::<i64>().unwrap_or(0);
            let now = chrono::Utc::now().timestamp();
            verify(
                secret,
                id,
                timestamp,
                header("webhook-signature"),
                &body,
                now,
                TOLERANCE_SECONDS,
            )
            .map(|()| "valid".to_owned())
            .map_err(|error| format!("INVALID ({error})"))
        }
    };
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let event = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let signature = match &verdict {
        Ok(text) | Err(text) => text.as_str(),
    };
    print_line(&format!("{event} {id} signature: {signature}\n{pretty}"));
    if verdict.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

fn print_line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}
