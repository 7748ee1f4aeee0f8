//! One attempt: sign the event, POST it, and describe what came back.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use linkkit_core::net::TargetPolicy;
use linkkit_core::retry::AttemptResult;
use linkkit_core::signing::{signature_header, WebhookSecret};
use linkkit_core::Envelope;
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Response};

/// `Linkkit-Webhooks/<version>`.
pub const USER_AGENT: &str = concat!("Linkkit-Webhooks/", env!("CARGO_PKG_VERSION"));
/// How much of a response body is kept with the attempt.
const RESPONSE_BODY_LIMIT: usize = 1024;

/// What one attempt produced, as recorded and as the retry decision sees it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub result: AttemptResult,
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// POSTs `event` to `url`, signed with every secret in `secrets`.
pub async fn attempt(
    client: &Client,
    url: &str,
    event: &Envelope,
    secrets: &[WebhookSecret],
    policy: &TargetPolicy,
) -> AttemptOutcome {
    let started_at = Utc::now();
    let started = Instant::now();
    let failed = |error: String| AttemptOutcome {
        result: AttemptResult::NoResponse,
        started_at,
        duration: started.elapsed(),
        status_code: None,
        error: Some(error),
        response_body: None,
    };
    if let Some(refusal) = refuse_literal(url, policy) {
        return failed(refusal);
    }
    let body = event.to_body();
    let timestamp = Utc::now().timestamp();
    let signature = signature_header(secrets, event.id.as_str(), timestamp, &body);
    let request = client
        .post(url)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("webhook-id", event.id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body);
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = retry_after(&response);
            let response_body = read_start_of_body(response).await;
            AttemptOutcome {
                result: AttemptResult::Status {
                    code: status,
                    retry_after,
                },
                started_at,
                duration: started.elapsed(),
                status_code: Some(status),
                error: None,
                response_body,
            }
        }
        Err(error) => failed(describe(&error)),
    }
}

/// An IP-literal URL never goes through the resolver, so it is checked here.
fn refuse_literal(url: &str, policy: &TargetPolicy) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let ip: IpAddr = match parsed.host()? {
        url::Host::Ipv4(v4) => v4.into(),
        url::Host::Ipv6(v6) => v6.into(),
        url::Host::Domain(_) => return None,
    };
    (!policy.permits(ip)).then(|| format!("refused: {ip} is not a public address"))
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    (when - Utc::now()).to_std().ok()
}

async fn read_start_of_body(mut response: Response) -> Option<String> {
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    kept.truncate(RESPONSE_BODY_LIMIT);
    (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned())
}

/// A short, URL-free description of a transport failure.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_request() {
        "request failed"
    } else {
        "failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ip_literals_are_refused_before_any_request() {
        let strict = TargetPolicy::default();
        assert!(refuse_literal("http://127.0.0.1:8080/x", &strict).is_some());
        assert!(refuse_literal("http://[::ffff:10.0.0.1]/x", &strict).is_some());
        assert!(refuse_literal("http://8.8.8.8/x", &strict).is_none());
        assert!(refuse_literal("https://hooks.example.com/x", &strict).is_none());
        let local = TargetPolicy {
            allow_private: true,
            ..TargetPolicy::default()
        };
        assert!(refuse_literal("http://127.0.0.1:8080/x", &local).is_none());
    }
}
