//! A small client of the HTTP API for tests.

use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(api_url: &str, key: &str) -> Self {
        Self {
            base: format!("{api_url}/api/v1"),
            key: key.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub fn with_key(&self, key: &str) -> Self {
        Self {
            key: key.to_owned(),
            ..self.clone()
        }
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("the API answers JSON")
        };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates an endpoint and returns it (with its secret); panics unless `201`.
    pub async fn add_endpoint(&self, url: &str, events: &[&str]) -> Value {
        let (status, body) = self
            .post(
                "/webhooks",
                serde_json::json!({"url": url, "events": events}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a link and returns it; panics unless `201`.
    pub async fn add_link(&self, body: Value) -> Value {
        let (status, body) = self.post("/links", body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}
