//! The HTTP half of the client: one request to `/api/v1`, with the key, and the API's JSON
//! error turned into a message a person can act on.
//!
//! A `429` is waited out (its `Retry-After`, a few times) rather than shown, so long operations
//! such as a replay stay within the key's rate limit by themselves.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::args::ApiArgs;

/// How often a `429` is waited out before it is reported.
const RATE_LIMIT_RETRIES: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no API key: set LINKKIT_API_KEY or pass --api-key (`linkkit workspace create NAME` makes one)"
    )]
    MissingKey,
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the API answered HTTP {status} with something that is not its JSON: {body}")]
    Unexpected { status: u16, body: String },
}

/// A client of one API with one key.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(args: &ApiArgs) -> Result<Self, ClientError> {
        let key = args
            .api_key
            .clone()
            .filter(|key| !key.trim().is_empty())
            .ok_or(ClientError::MissingKey)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("linkkit-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        Ok(Self {
            base: args.api_url.trim_end_matches('/').to_owned(),
            key: key.trim().to_owned(),
            http,
        })
    }

    /// `path` under `/api/v1`, e.g. `/links?limit=5`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// A request with the key, not yet sent (for streams).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.key)
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        self.call(Method::POST, path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::DELETE, path, None).await
    }

    /// Sends a request; the JSON answer on `2xx` (`Null` when empty), the API's error otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut tries = 0;
        loop {
            let mut request = self.request(method.clone(), path).timeout(TIMEOUT);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|error| self.unreachable(&error))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS && tries < RATE_LIMIT_RETRIES {
                tries += 1;
                tokio::time::sleep(retry_after(&response)).await;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|error| self.unreachable(&error))?;
            return answer(status, &bytes);
        }
    }

    /// A transport failure, worded by its innermost cause ("Connection refused", …).
    pub fn unreachable(&self, error: &reqwest::Error) -> ClientError {
        let reason = if error.is_timeout() {
            "no answer in time".to_owned()
        } else {
            let mut innermost: &dyn std::error::Error = error;
            while let Some(cause) = innermost.source() {
                innermost = cause;
            }
            innermost.to_string()
        };
        ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }
}

/// How long a `429` asks to wait (at least 100 ms, at most a minute).
fn retry_after(response: &reqwest::Response) -> Duration {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(seconds.min(60)).max(Duration::from_millis(100))
}

/// The body of an answer, or the error it carries.
pub fn answer(status: StatusCode, bytes: &[u8]) -> Result<Value, ClientError> {
    let json = if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(bytes)
    };
    match json {
        Ok(value) if status.is_success() => Ok(value),
        Ok(value) => {
            let error = &value["error"];
            match (error["code"].as_str(), error["message"].as_str()) {
                (Some(code), Some(message)) => Err(ClientError::Api {
                    status: status.as_u16(),
                    code: code.to_owned(),
                    message: message.to_owned(),
                }),
                _ => Err(unexpected(status, bytes)),
            }
        }
        Err(_) => Err(unexpected(status, bytes)),
    }
}

fn unexpected(status: StatusCode, bytes: &[u8]) -> ClientError {
    let text = String::from_utf8_lossy(bytes);
    ClientError::Unexpected {
        status: status.as_u16(),
        body: text.chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_json_error_becomes_a_message_with_its_code_and_status() {
        let body = br#"{"error": {"code": "invalid_slug", "message": "slug: `a b` is not valid"}}"#;
        let error = answer(StatusCode::UNPROCESSABLE_ENTITY, body).unwrap_err();
        assert_eq!(
            error.to_string(),
            "slug: `a b` is not valid (invalid_slug, HTTP 422)"
        );
    }

    #[test]
    fn success_bodies_are_json_and_empty_ones_are_null() {
        assert_eq!(
            answer(StatusCode::OK, br#"{"count": 2}"#).unwrap()["count"],
            2
        );
        assert_eq!(answer(StatusCode::NO_CONTENT, b"").unwrap(), Value::Null);
        assert!(matches!(
            answer(StatusCode::BAD_GATEWAY, b"<html>proxy</html>"),
            Err(ClientError::Unexpected { status: 502, .. })
        ));
    }
}
