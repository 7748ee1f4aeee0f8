//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
//!
//! Secrets are `whsec_` followed by the base64 of 24–64 random bytes; the HMAC key is the
//! decoded bytes. A secret's `Debug` never prints the key, so it cannot leak into a log line.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;
/// How many random bytes a newly generated secret holds.
const GENERATED_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    #[error("a signing secret starts with `whsec_`")]
    MissingPrefix,
    #[error("a signing secret is `whsec_` followed by base64")]
    NotBase64,
    #[error("a signing secret holds 24 to 64 bytes, this one holds {0}")]
    WrongLength(usize),
}

/// An endpoint's signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_KEY_BYTES];
        rand::thread_rng().fill_bytes(&mut key);
        Self { key }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(InvalidSecret::MissingPrefix)?;
        let key = BASE64
            .decode(encoded)
            .map_err(|_| InvalidSecret::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(InvalidSecret::WrongLength(key.len()));
        }
        Ok(Self { key })
    }

    /// The `whsec_…` text shown to the endpoint's owner. Handle with care.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.key))
    }

    /// One `v1,…` signature of a message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

/// The `webhook-signature` header: one `v1,` value per valid secret, space-separated.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a WebhookSecret>,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|secret| secret.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp is {0} seconds away from now, more than the tolerance")]
    TimestampOutOfTolerance(i64),
    #[error("no signature in the header matches")]
    NoMatchingSignature,
}

/// Checks a received webhook the way a Standard Webhooks library does: the timestamp within
/// `tolerance_seconds` of `now`, and at least one `v1,` value equal to our own signature.
pub fn verify(
    secret: &WebhookSecret,
    message_id: &str,
    timestamp: i64,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let skew = (now - timestamp).abs();
    if skew > tolerance_seconds {
        return Err(VerifyError::TimestampOutOfTolerance(skew));
    }
    let expected = secret.sign(message_id, timestamp, body);
    let matches = signature_header
        .split(' ')
        .any(|candidate| constant_time_eq(candidate.as_bytes(), expected.as_bytes()));
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signing_matches_the_standard_webhooks_test_vector() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            secret.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY),
            SPEC_SIGNATURE
        );
    }

    #[test]
    fn verification_accepts_any_listed_signature_and_refuses_a_changed_body() {
        let old = WebhookSecret::generate();
        let new = WebhookSecret::generate();
        let header = signature_header([&new, &old], "evt_1", 100, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(verify(&old, "evt_1", 100, &header, b"{}", 100, 300), Ok(()));
        assert_eq!(verify(&new, "evt_1", 100, &header, b"{}", 100, 300), Ok(()));
        assert_eq!(
            verify(&new, "evt_1", 100, &header, b"{ }", 100, 300),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(&new, "evt_1", 100, &header, b"{}", 1000, 300),
            Err(VerifyError::TimestampOutOfTolerance(900))
        );
    }

    #[test]
    fn generated_secrets_round_trip_and_never_show_in_debug() {
        let secret = WebhookSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text).unwrap(), secret);
        assert!(!format!("{secret:?}").contains(&text[6..]));
    }

    #[test]
    fn short_or_malformed_secrets_are_refused() {
        assert_eq!(
            WebhookSecret::parse("abc"),
            Err(InvalidSecret::MissingPrefix)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_!!!"),
            Err(InvalidSecret::NotBase64)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_AAAA"),
            Err(InvalidSecret::WrongLength(3))
        );
    }
}
