//! A webhook receiver on port 0 that records every request and answers as scripted: statuses in
//! order, a delay, or not at all (switched off, connections are refused).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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
    delay: Mutex<Duration>,
    /// Body and extra headers of every answer.
    answer_body: Mutex<String>,
    answer_headers: Mutex<Vec<(String, String)>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Debug)]
pub struct Receiver {
    pub url: String,
    address: SocketAddr,
    inner: Arc<Inner>,
    running: Mutex<CancellationToken>,
}

impl Receiver {
    /// Answers 200 to everything until told otherwise.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            otherwise: Mutex::new(200),
            ..Default::default()
        });
        let running = serve(listener, inner.clone());
        Self {
            url: format!("http://{address}/webhooks"),
            address,
            inner,
            running: Mutex::new(running),
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

    /// Every answer carries this body.
    pub fn answer_with_body(&self, body: &str) {
        *self.inner.answer_body.lock().unwrap() = body.to_owned();
    }

    /// Every answer carries this header.
    pub fn answer_with_header(&self, name: &str, value: &str) {
        self.inner
            .answer_headers
            .lock()
            .unwrap()
            .push((name.to_owned(), value.to_owned()));
    }

    /// Every answer waits this long first.
    pub fn delay_answers(&self, delay: Duration) {
        *self.inner.delay.lock().unwrap() = delay;
    }

    /// Goes away: the port refuses connections until [`Receiver::come_back`].
    pub fn go_down(&self) {
        self.running.lock().unwrap().cancel();
    }

    pub async fn come_back(&self) {
        let listener = TcpListener::bind(self.address)
            .await
            .expect("the receiver's port is free again");
        *self.running.lock().unwrap() = serve(listener, self.inner.clone());
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Distinct `webhook-id`s received.
    pub fn distinct_ids(&self) -> HashSet<String> {
        self.received()
            .iter()
            .map(|r| r.header("webhook-id").to_owned())
            .collect()
    }

    /// The most requests that were being answered at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
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

    /// Waits until `count` distinct events arrived (at most `deadline`).
    pub async fn wait_for_distinct(&self, count: usize, deadline: Duration) -> HashSet<String> {
        crate::eventually(
            &format!("{count} distinct events at the receiver"),
            deadline,
            || async {
                let ids = self.distinct_ids();
                (ids.len() >= count).then_some(ids)
            },
        )
        .await
    }

    pub fn stop(&self) {
        self.go_down();
    }
}

fn serve(listener: TcpListener, inner: Arc<Inner>) -> CancellationToken {
    let token = CancellationToken::new();
    let router = Router::new()
        .route("/webhooks", post(record))
        .with_state(inner);
    let stop = token.clone();
    // On shutdown axum stops accepting at once and closes idle keep-alive connections, so
    // the sender sees refused connections, as with a receiver that is really down.
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    token
}

/// Counts a request as in flight until it is answered or abandoned by the client.
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn record(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let now_in_flight = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inner
        .max_in_flight
        .fetch_max(now_in_flight, Ordering::SeqCst);
    let _in_flight = InFlight(inner.clone());
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.received.lock().unwrap().push(Received {
        headers,
        body,
        json,
    });
    let delay = *inner.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let scripted = inner.script.lock().unwrap().pop_front();
    let status = scripted.unwrap_or_else(|| *inner.otherwise.lock().unwrap());
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        inner.answer_body.lock().unwrap().clone(),
    )
        .into_response();
    for (name, value) in inner.answer_headers.lock().unwrap().iter() {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}
