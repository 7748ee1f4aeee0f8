#![doc = include_str!("../README.md")]
//!
//! ## In this crate
//!
//! - [`Webhook`]: the endpoint's secret and a timestamp tolerance; [`Webhook::verify`] checks a
//!   request's headers and raw body and returns the typed [`Event`].
//! - [`Event`] and [`EventData`]: the envelope and one variant per event type, with the data
//!   types of `linkkit-core` ([`VisitData`], [`LinkState`], [`LinkUpdate`]).
//! - [`parse`]: the event of a body, without verifying (for bodies verified elsewhere).
//! - [`sign`]: the headers Linkkit would send with a body, to build requests in your own tests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
pub use linkkit_core::event::{LinkState, LinkUpdate, VisitData};
use linkkit_core::signing::{self, InvalidSecret, VerifyError, WebhookSecret};
use linkkit_core::Envelope;
pub use linkkit_core::{EventId, EventType, LinkId};

/// How far a `webhook-timestamp` may be from now, as Standard Webhooks libraries default to.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a request was refused. Answer `400` (or `401`) to any of them: the request did not come
/// from Linkkit, was changed on the way, or is a replay of an old one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the signing secret is not valid: {0}")]
    InvalidSecret(#[from] InvalidSecret),
    #[error("the `{0}` header is missing or not text")]
    MissingHeader(&'static str),
    #[error("the `webhook-timestamp` header is not a number of seconds")]
    InvalidTimestamp,
    #[error("the timestamp is {0} s from now, beyond the tolerance (a replayed request?)")]
    TimestampOutOfTolerance(i64),
    #[error("no signature matches: wrong secret, or the body was changed")]
    NoMatchingSignature,
    #[error("the body is not a Linkkit event: {0}")]
    InvalidBody(String),
    #[error("the body's id `{body}` is not the `webhook-id` header `{header}`")]
    IdMismatch { header: String, body: String },
}

/// One event, verified and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's id: the same on every retry, so deduplicate on it.
    pub id: EventId,
    /// When it happened (UTC, whole seconds).
    pub timestamp: DateTime<Utc>,
    pub data: EventData,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        match self.data {
            EventData::LinkClicked(_) => EventType::LinkClicked,
            EventData::QrScanned(_) => EventType::QrScanned,
            EventData::LinkCreated(_) => EventType::LinkCreated,
            EventData::LinkUpdated(_) => EventType::LinkUpdated,
            EventData::LinkDeleted(_) => EventType::LinkDeleted,
        }
    }
}

/// What happened, by event type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// `link.clicked`: a visit through the short link.
    LinkClicked(VisitData),
    /// `qr.scanned`: a visit through the link's QR code.
    QrScanned(VisitData),
    /// `link.created`: the new link.
    LinkCreated(LinkState),
    /// `link.updated`: the link as it now is, which fields changed and what they held.
    LinkUpdated(LinkUpdate),
    /// `link.deleted`: the link as it was.
    LinkDeleted(LinkState),
}

/// An endpoint's secret and how old a request may be.
#[derive(Debug, Clone)]
pub struct Webhook {
    secret: WebhookSecret,
    tolerance: Duration,
}

impl Webhook {
    /// The endpoint's signing secret, `whsec_…`.
    pub fn new(secret: &str) -> Result<Self, Error> {
        Ok(Self {
            secret: WebhookSecret::parse(secret.trim())?,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Accept timestamps this far from now (default five minutes).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies a request against the clock: its `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature` headers and its raw body (the bytes as received, before any JSON
    /// parsing). During a secret rotation either secret's signature is accepted.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Event, Error> {
        self.verify_at(headers, body, Utc::now().timestamp())
    }

    /// [`Webhook::verify`] at a given time (Unix seconds).
    pub fn verify_at(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Event, Error> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .ok_or(Error::MissingHeader(name))
        };
        self.verify_parts(
            header("webhook-id")?,
            header("webhook-timestamp")?,
            header("webhook-signature")?,
            body,
            now,
        )
    }

    /// For frameworks whose headers are not an [`http::HeaderMap`]: the three header values
    /// and the raw body.
    pub fn verify_parts(
        &self,
        id: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Event, Error> {
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Error::InvalidTimestamp)?;
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        signing::verify(&self.secret, id, timestamp, signature, body, now, tolerance).map_err(
            |error| match error {
                VerifyError::TimestampOutOfTolerance(skew) => Error::TimestampOutOfTolerance(skew),
                VerifyError::NoMatchingSignature => Error::NoMatchingSignature,
            },
        )?;
        let event = parse(body)?;
        if event.id.as_str() != id {
            return Err(Error::IdMismatch {
                header: id.to_owned(),
                body: event.id.to_string(),
            });
        }
        Ok(event)
    }
}

/// The typed event of a body, without verifying it.
pub fn parse(body: &[u8]) -> Result<Event, Error> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|error| Error::InvalidBody(error.to_string()))?;
    let invalid = |error: serde_json::Error| Error::InvalidBody(format!("data: {error}"));
    let data = match envelope.event {
        EventType::LinkClicked => {
            EventData::LinkClicked(serde_json::from_value(envelope.data).map_err(invalid)?)
        }
        EventType::QrScanned => {
            EventData::QrScanned(serde_json::from_value(envelope.data).map_err(invalid)?)
        }
        EventType::LinkCreated => {
            EventData::LinkCreated(serde_json::from_value(envelope.data).map_err(invalid)?)
        }
        EventType::LinkUpdated => {
            EventData::LinkUpdated(serde_json::from_value(envelope.data).map_err(invalid)?)
        }
        EventType::LinkDeleted => {
            EventData::LinkDeleted(serde_json::from_value(envelope.data).map_err(invalid)?)
        }
    };
    Ok(Event {
        id: envelope.id,
        timestamp: envelope.timestamp,
        data,
    })
}

/// The headers Linkkit sends with `body` (whose `id` becomes `webhook-id`), signed with
/// `secret` at `timestamp` (Unix seconds): for building requests in a receiver's tests.
pub fn sign(secret: &str, body: &[u8], timestamp: i64) -> Result<HeaderMap, Error> {
    let secret = WebhookSecret::parse(secret.trim())?;
    let event = parse(body)?;
    let id = event.id.to_string();
    let mut headers = HeaderMap::new();
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| Error::InvalidBody("an id that is not text".into()))
    };
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("webhook-id", value(&id)?);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    headers.insert(
        "webhook-signature",
        value(&secret.sign(&id, timestamp, body))?,
    );
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkkit_core::event::sample;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_request_verifies_and_parses_into_its_type() {
        for event_type in EventType::ALL {
            let body = sample(event_type).to_body();
            let headers = sign(SECRET, &body, NOW).unwrap();
            let event = Webhook::new(SECRET)
                .unwrap()
                .verify_at(&headers, &body, NOW + 10)
                .unwrap();
            assert_eq!(event.event_type(), event_type);
        }
    }

    #[test]
    fn a_changed_body_a_wrong_secret_or_an_old_timestamp_is_refused() {
        let body = sample(EventType::LinkClicked).to_body();
        let headers = sign(SECRET, &body, NOW).unwrap();
        let webhook = Webhook::new(SECRET).unwrap();
        let mut changed = body.clone();
        changed.push(b' ');
        assert_eq!(
            webhook.verify_at(&headers, &changed, NOW),
            Err(Error::NoMatchingSignature)
        );
        let other = Webhook::new(&WebhookSecret::generate().expose()).unwrap();
        assert_eq!(
            other.verify_at(&headers, &body, NOW),
            Err(Error::NoMatchingSignature)
        );
        assert_eq!(
            webhook.verify_at(&headers, &body, NOW + 301),
            Err(Error::TimestampOutOfTolerance(301))
        );
        let patient = webhook.with_tolerance(Duration::from_secs(600));
        assert!(patient.verify_at(&headers, &body, NOW + 301).is_ok());
    }

    #[test]
    fn missing_headers_and_a_mismatched_id_are_refused() {
        let body = sample(EventType::LinkCreated).to_body();
        let webhook = Webhook::new(SECRET).unwrap();
        let mut headers = sign(SECRET, &body, NOW).unwrap();
        headers.remove("webhook-signature");
        assert_eq!(
            webhook.verify_at(&headers, &body, NOW),
            Err(Error::MissingHeader("webhook-signature"))
        );
        // A valid signature over another id: the body was not sent under this id.
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let forged = secret.sign("evt_other", NOW, &body);
        let result = webhook.verify_parts("evt_other", &NOW.to_string(), &forged, &body, NOW);
        assert!(
            matches!(result, Err(Error::IdMismatch { .. })),
            "{result:?}"
        );
        assert_eq!(
            webhook.verify_parts("x", "soon", "v1,x", &body, NOW),
            Err(Error::InvalidTimestamp)
        );
        assert!(Webhook::new("not-a-secret").is_err());
    }

    #[test]
    fn the_data_is_typed() {
        let body = sample(EventType::LinkUpdated).to_body();
        let EventData::LinkUpdated(update) = parse(&body).unwrap().data else {
            panic!("a link.updated");
        };
        assert_eq!(update.changed_fields, ["destination_url"]);
        assert!(matches!(
            parse(br#"{"id":"evt_1","event":"link.clicked"}"#),
            Err(Error::InvalidBody(_))
        ));
    }
}
