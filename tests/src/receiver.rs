//! A webhook receiver on port 0 that records every request and answers with scripted statuses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use linkkit_core::signing::{verify, WebhookSecret};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn event_type(&self) -> &str {
        self.json["event"].as_str().unwrap_or("")
    }

    /// True when the Standard Webhooks signature verifies with `secret` (`whsec_…`).
    pub fn signature_verifies(&self, secret: &str) -> bool {
        let secret = WebhookSecret::parse(secret).expect("a whsec_ secret");
        let timestamp: i64 = self.header("webhook-timestamp").parse().unwrap_or(0);
        let now = chrono::Utc::now().timestamp();
        verify(
            &secret,
            self.header("webhook-id"),
            timestamp,
            self.header("webhook-signature"),
            &self.body,
            now,
            300,
        )
        .is_ok()
    }
}

#[derive(Debug, Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    /// Statuses for the next requests, in order; then `otherwise`.
    script: Mutex<VecDeque<u16>>,
    otherwise: Mutex<u16>,
}

#[derive(Debug)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
}

impl Receiver {
    /// Answers 200 to everything until told otherwise.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
        let inner = Arc::new(Inner {
            otherwise: Mutex::new(200),
            ..Default::default()
        });
        let shutdown = CancellationToken::new();
        let router = Router::new()
            .route("/webhooks", post(record))
            .with_state(inner.clone());
        let token = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await
        });
        Self {
            url,
            inner,
            shutdown,
        }
    }

    /// The next requests are answered with these statuses, in order.
    pub fn respond_next(&self, statuses: &[u16]) {
        self.inner.script.lock().unwrap().extend(statuses);
    }

    /// Every request after the scripted ones is answered with `status`.
    pub fn respond_otherwise(&self, status: u16) {
        *self.inner.otherwise.lock().unwrap() = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived (at most `deadline`), and returns all.
    pub async fn wait_for(&self, count: usize, deadline: Duration) -> Vec<Received> {
        crate::eventually(
            &format!("{count} webhooks at the receiver"),
            deadline,
            || async {
                let received = self.received();
                (received.len() >= count).then_some(received)
            },
        )
        .await
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

async fn record(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.received.lock().unwrap().push(Received {
        headers,
        body,
        json,
    });
    let scripted = inner.script.lock().unwrap().pop_front();
    let status = scripted.unwrap_or_else(|| *inner.otherwise.lock().unwrap());
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
