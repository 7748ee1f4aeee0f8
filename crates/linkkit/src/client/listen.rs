//! `linkkit listen --forward-to URL [--events …]`: the workspace's events, streamed from the API
//! (`GET /api/v1/events/stream`, server-sent events), forwarded one by one to a local URL and
//! signed like real deliveries (Standard Webhooks headers) with a listen secret printed at
//! start — so a receiver can be built and tested on a laptop with no public URL and no tunnel.
//!
//! Each forward prints a line: the time, the event type and id, and the local answer (status
//! and duration, or why there was none). A lost stream is reopened with a growing pause; an
//! answer of the API that will not change by retrying (a bad key, an unknown event type) stops
//! the command.

use std::time::{Duration, Instant};

use anyhow::Context;
use linkkit_core::signing::WebhookSecret;
use linkkit_core::EventType;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::http::{answer, ClientError};
use super::sse::{Message, Parser};
use super::{output, Api};

/// Forwards that take longer are abandoned and reported.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// The API sends a comment every 15 s; silence this long means the stream is gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What to listen for and where to send it.
#[derive(Debug)]
pub struct Options {
    forward_to: url::Url,
    events: Vec<EventType>,
    secret: WebhookSecret,
    json: bool,
}

impl Options {
    pub fn new(
        forward_to: &str,
        events: Vec<String>,
        secret: Option<&str>,
        json: bool,
    ) -> anyhow::Result<Self> {
        let forward_to = url::Url::parse(forward_to)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .with_context(|| format!("--forward-to: `{forward_to}` is not an http(s) URL"))?;
        let events = events
            .iter()
            .map(|name| name.trim().parse::<EventType>())
            .collect::<Result<Vec<_>, _>>()
            .context("--events")?;
        let secret = match secret {
            Some(text) => WebhookSecret::parse(text).context("--secret")?,
            None => WebhookSecret::generate(),
        };
        Ok(Self {
            forward_to,
            events,
            secret,
            json,
        })
    }

    fn stream_path(&self) -> String {
        if self.events.is_empty() {
            return "/events/stream".to_owned();
        }
        let names: Vec<&str> = self.events.iter().map(|e| e.as_str()).collect();
        format!("/events/stream?events={}", names.join(","))
    }
}

/// Listens until `shutdown`, reconnecting when the stream is lost.
pub async fn run(api: &Api, options: Options, shutdown: CancellationToken) -> anyhow::Result<()> {
    let forwarder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FORWARD_TIMEOUT)
        .user_agent(concat!("Linkkit-CLI/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is valid");
    if !options.json {
        output::line(&format!(
            "Signing forwarded events with {} (pass --secret to keep it across runs)",
            options.secret.expose()
        ))?;
    }
    let mut backoff = Duration::from_secs(1);
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            outcome = stream_once(api, &options, &forwarder) => outcome,
        };
        match outcome {
            Ok(true) => backoff = Duration::from_secs(1),
            Ok(false) => {}
            Err(error) if is_final(&error) => return Err(error.into()),
            Err(error) => notice(&options, &format!("stream lost: {error}"))?,
        }
        notice(
            &options,
            &format!("reconnecting in {} s", backoff.as_secs()),
        )?;
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One stream from connect to end; `Ok(true)` when it was ready (events flowed) before ending.
async fn stream_once(
    api: &Api,
    options: &Options,
    forwarder: &reqwest::Client,
) -> Result<bool, ClientError> {
    let mut response = api
        .request(Method::GET, &options.stream_path())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|error| api.unreachable(&error))?;
    if response.status() != StatusCode::OK {
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        return answer(status, &bytes).map(|_| false);
    }
    let mut parser = Parser::default();
    let mut ready = false;
    loop {
        let chunk = match tokio::time::timeout(SILENCE_LIMIT, response.chunk()).await {
            Err(_) => return Ok(ready),
            Ok(Err(error)) => return Err(api.unreachable(&error)),
            Ok(Ok(None)) => return Ok(ready),
            Ok(Ok(Some(chunk))) => chunk,
        };
        for message in parser.feed(&chunk) {
            if message.event == "ready" {
                ready = true;
                announce(options).map_err(|e| ClientError::Unexpected {
                    status: 200,
                    body: e.to_string(),
                })?;
                continue;
            }
            forward(options, forwarder, &message).await;
        }
    }
}

/// An answer of the API that retrying will not change: a bad key, a refused parameter.
fn is_final(error: &ClientError) -> bool {
    matches!(error, ClientError::Api { status, .. } if *status != 429 && *status < 500)
}

fn announce(options: &Options) -> anyhow::Result<()> {
    let events = if options.events.is_empty() {
        "every event".to_owned()
    } else {
        options
            .events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if options.json {
        return output::json(&json!({
            "ready": true,
            "forward_to": options.forward_to.as_str(),
            "secret": options.secret.expose(),
        }));
    }
    output::line(&format!(
        "Ready! Forwarding {events} to {} (Ctrl-C to stop)",
        options.forward_to
    ))
}

/// POSTs one event to the local URL, signed, and prints what came back.
async fn forward(options: &Options, forwarder: &reqwest::Client, message: &Message) {
    let body = message.data.as_bytes().to_vec();
    let id = message.id.clone().unwrap_or_default();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = options.secret.sign(&id, timestamp, &body);
    let started = Instant::now();
    let result = forwarder
        .post(options.forward_to.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let elapsed = started.elapsed().as_millis();
    let at = chrono::Utc::now().format("%H:%M:%S");
    let line = if options.json {
        let (status, error) = match &result {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(describe(error))),
        };
        json!({
            "event": message.event,
            "id": id,
            "status": status,
            "error": error,
            "duration_ms": elapsed,
        })
        .to_string()
    } else {
        let outcome = match &result {
            Ok(response) => format!("{}", response.status()),
            Err(error) => format!("failed: {}", describe(error)),
        };
        format!(
            "{at}  {:<13} {id}  → {outcome} ({elapsed} ms)",
            message.event
        )
    };
    let _ = output::line(&line);
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("no answer within {} s", FORWARD_TIMEOUT.as_secs())
    } else if error.is_connect() {
        "connection refused (is the local server running?)".to_owned()
    } else {
        error.to_string()
    }
}

fn notice(options: &Options, text: &str) -> anyhow::Result<()> {
    if options.json {
        output::json(&json!({ "notice": text }))
    } else {
        output::line(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_check_the_url_the_events_and_the_secret() {
        let options = Options::new(
            "http://localhost:3000/webhooks",
            vec!["link.clicked".into(), " qr.scanned".into()],
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            options.stream_path(),
            "/events/stream?events=link.clicked,qr.scanned"
        );
        let all = Options::new("https://x.test/", vec![], None, false).unwrap();
        assert_eq!(all.stream_path(), "/events/stream");
        assert!(Options::new("ftp://x/", vec![], None, false).is_err());
        assert!(Options::new("http://x/", vec!["link.exploded".into()], None, false).is_err());
        assert!(Options::new("http://x/", vec![], Some("nope"), false).is_err());
        let secret = WebhookSecret::generate().expose();
        let fixed = Options::new("http://x/", vec![], Some(&secret), false).unwrap();
        assert_eq!(fixed.secret.expose(), secret);
    }
}
