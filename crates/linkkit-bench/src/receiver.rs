//! A fast in-process webhook receiver for benchmarks: it counts distinct events per endpoint
//! path, measures each event's lag from the `sent_at_us` its publisher put in the data, and
//! answers 200, 500, or not at all (hangs), per path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;

/// How an endpoint path answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Healthy,
    Failing,
    Hanging,
}

#[derive(Debug, Default)]
struct Inner {
    behaviour: Mutex<HashMap<String, Behaviour>>,
    seen: Mutex<HashSet<(String, String)>>,
    lags_ms: Mutex<HashMap<String, Vec<f64>>>,
    delivered: AtomicUsize,
}

#[derive(Debug, Clone)]
pub struct BenchReceiver {
    pub base: String,
    inner: Arc<Inner>,
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl BenchReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let inner = Arc::new(Inner::default());
        let router = Router::new()
            .route("/{endpoint}", post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, inner }
    }

    pub fn url(&self, endpoint: &str, behaviour: Behaviour) -> String {
        self.inner
            .behaviour
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), behaviour);
        format!("{}/{endpoint}", self.base)
    }

    /// Distinct (endpoint, event) pairs delivered with a 2xx.
    pub fn delivered(&self) -> usize {
        self.inner.delivered.load(Ordering::SeqCst)
    }

    /// Lags in milliseconds of the healthy deliveries to endpoints whose name starts with `prefix`.
    pub fn lags(&self, prefix: &str) -> Vec<f64> {
        let lags = self.inner.lags_ms.lock().unwrap();
        let mut all: Vec<f64> = lags
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .flat_map(|(_, v)| v.clone())
            .collect();
        all.sort_by(|a, b| a.total_cmp(b));
        all
    }

    /// Forgets the lags measured so far, so the next batch's are measured alone.
    pub fn forget_lags(&self) {
        self.inner.lags_ms.lock().unwrap().clear();
    }

    pub async fn wait_for(&self, count: usize, deadline: Duration) -> bool {
        let give_up = tokio::time::Instant::now() + deadline;
        while self.delivered() < count {
            if tokio::time::Instant::now() > give_up {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    body: Bytes,
) -> StatusCode {
    let behaviour = inner
        .behaviour
        .lock()
        .unwrap()
        .get(&endpoint)
        .copied()
        .unwrap_or(Behaviour::Healthy);
    match behaviour {
        Behaviour::Hanging => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
        Behaviour::Failing => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::Healthy => {
            let received_at = now_us();
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let id = event["id"].as_str().unwrap_or_default().to_owned();
            if inner.seen.lock().unwrap().insert((endpoint.clone(), id)) {
                if let Some(sent) = event["data"]["sent_at_us"].as_i64() {
                    let lag = (received_at - sent) as f64 / 1000.0;
                    inner
                        .lags_ms
                        .lock()
                        .unwrap()
                        .entry(endpoint)
                        .or_default()
                        .push(lag);
                }
                inner.delivered.fetch_add(1, Ordering::SeqCst);
            }
            StatusCode::OK
        }
    }
}
