//! What the API accepts in the fields of links and endpoints, and how it says no: each rule
//! answers `422` with a code and a message naming the field.
//!
//! The limits count what was sent (as the OpenAPI document's `maxLength` does) and text is
//! trimmed afterwards; no text may hold a NUL character, which Postgres cannot store. URLs must
//! be written in the documented form (`url_rules::is_canonical_http_url`).

use chrono::{DateTime, SubsecRound, Utc};
use linkkit_core::net::TargetPolicy;
use linkkit_core::slug::Slug;
use linkkit_core::url_rules::{is_canonical_http_url, parse_destination, parse_endpoint_url};
use linkkit_core::EventType;

use crate::ApiError;

const MAX_TEXT_LENGTH: usize = 200;
const MAX_TAGS: usize = 20;
const MAX_TAG_LENGTH: usize = 50;
const MAX_DESCRIPTION_LENGTH: usize = 500;

pub(crate) fn valid_destination(text: &str) -> Result<String, ApiError> {
    let destination = parse_destination(text).map_err(|error| {
        ApiError::invalid(
            "invalid_destination_url",
            format!("destination_url: {error}"),
        )
    })?;
    if !is_canonical_http_url(text) {
        return Err(ApiError::invalid(
            "invalid_destination_url",
            format!("destination_url: {CANONICAL_URL_RULE}"),
        ));
    }
    Ok(destination)
}

/// How a URL must be written, for the errors of every URL field.
pub(crate) const CANONICAL_URL_RULE: &str = "write it as http(s)://host[:port] followed by \
    nothing or a path, query or fragment; the host is a name of letters, digits and hyphens \
    (punycode for international names) or an IPv4 address, with nothing around it";

pub(crate) fn valid_slug(text: &str) -> Result<Slug, ApiError> {
    Slug::parse(text).map_err(|error| ApiError::invalid("invalid_slug", format!("slug: {error}")))
}

/// Optional free text: no NUL (Postgres cannot store it), trimmed, empty means unset, at most
/// 200 characters.
pub(crate) fn valid_text(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<String>, ApiError> {
    if value.as_deref().is_some_and(|v| v.contains('\0')) {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("{field}: must not contain NUL characters"),
        ));
    }
    // The limit counts what was sent, spaces included, as the documented maxLength does.
    if value
        .as_deref()
        .is_some_and(|v| v.chars().count() > MAX_TEXT_LENGTH)
    {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("{field}: at most {MAX_TEXT_LENGTH} characters"),
        ));
    }
    Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

pub(crate) fn valid_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            "invalid_tags",
            format!("tags: at most {MAX_TAGS} tags"),
        ));
    }
    let mut cleaned: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        if tag.contains('\0') {
            return Err(ApiError::invalid(
                "invalid_tags",
                "tags: a tag must not contain NUL characters",
            ));
        }
        // The length counts what was sent, as the documented maxLength does.
        let sent_length = tag.chars().count();
        let tag = tag.trim().to_owned();
        if tag.is_empty() || sent_length > MAX_TAG_LENGTH {
            return Err(ApiError::invalid(
                "invalid_tags",
                format!("tags: each tag has 1 to {MAX_TAG_LENGTH} characters"),
            ));
        }
        if !cleaned.contains(&tag) {
            cleaned.push(tag);
        }
    }
    Ok(cleaned)
}

pub(crate) fn valid_expiry(
    expires_at: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match expires_at {
        Some(t) if t <= Utc::now() => Err(ApiError::invalid(
            "invalid_expires_at",
            "expires_at: must be in the future",
        )),
        other => Ok(other.map(|t| t.trunc_subsecs(6))),
    }
}

pub(crate) fn valid_url(text: &str, policy: &TargetPolicy) -> Result<String, ApiError> {
    let url = parse_endpoint_url(text, policy)
        .map(|url| url.to_string())
        .map_err(|error| ApiError::invalid("invalid_url", format!("url: {error}")))?;
    if !is_canonical_http_url(text) {
        return Err(ApiError::invalid(
            "invalid_url",
            format!("url: {}", CANONICAL_URL_RULE),
        ));
    }
    Ok(url)
}

/// A non-empty list of known event names; repeats are dropped.
pub(crate) fn valid_events(names: &[String]) -> Result<Vec<String>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::invalid(
            "invalid_events",
            "events: subscribe to at least one event",
        ));
    }
    let mut events: Vec<EventType> = Vec::with_capacity(names.len());
    for name in names {
        let event = name
            .parse::<EventType>()
            .map_err(|error| ApiError::invalid("invalid_events", format!("events: {error}")))?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events.into_iter().map(|e| e.as_str().to_owned()).collect())
}

pub(crate) fn valid_description(description: Option<String>) -> Result<String, ApiError> {
    if description.as_deref().is_some_and(|d| d.contains('\0')) {
        return Err(ApiError::invalid(
            "invalid_description",
            "description: must not contain NUL characters",
        ));
    }
    let description = description.unwrap_or_default();
    // The limit counts what was sent, as the documented maxLength does.
    if description.chars().count() > MAX_DESCRIPTION_LENGTH {
        return Err(ApiError::invalid(
            "invalid_description",
            format!("description: at most {MAX_DESCRIPTION_LENGTH} characters"),
        ));
    }
    Ok(description.trim().to_owned())
}
