//! The redirect handler: look the slug up, answer at once, hand the visit event to the buffer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::lookup::Target;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERER, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use linkkit_core::slug::Slug;
use linkkit_core::{EventId, EventType};

use crate::enrich::classify_user_agent;
use crate::metrics::{BOT_VISITS, REDIRECTS, REDIRECT_DURATION};
use crate::visit::Visit;
use crate::RedirectState;

/// The query parameter that marks a visit as a QR scan; it is not passed on.
const QR_PARAMETER: &str = "qr";

/// The state is shared behind one `Arc` and the headers are read from the request itself, so a
/// redirect copies neither.
pub async fn follow(
    State(state): State<Arc<RedirectState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let started = Instant::now();
    let headers = request.headers();
    let response = answer(&state, peer, &method, &slug, query.as_deref(), headers).await;
    REDIRECTS
        .with_label_values(&[response.status().as_str()])
        .inc();
    REDIRECT_DURATION.observe(started.elapsed().as_secs_f64());
    response
}

async fn answer(
    state: &RedirectState,
    peer: SocketAddr,
    method: &Method,
    slug: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    if Slug::parse(slug).is_err() {
        return plain(StatusCode::NOT_FOUND, "no such link");
    }
    let link = match state.links.find(slug).await {
        Ok(Some(link)) => link,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such link"),
        Err(error) => {
            tracing::error!(error = %error, "link lookup failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "try again shortly");
        }
    };
    if link.is_gone(Utc::now()) {
        return plain(StatusCode::GONE, "this link is no longer available");
    }
    let (is_qr, passed_on) = split_query(query);
    let Some(location) = location(&link.destination_url, &passed_on) else {
        tracing::error!(link_id = %link.link_id, "stored destination is not a valid header value");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "this link is broken");
    };
    if method == Method::GET {
        record_visit(state, link, is_qr, peer, headers);
    }
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(LOCATION, location);
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, no-store"),
    );
    response
}

fn record_visit(
    state: &RedirectState,
    link: Arc<Target>,
    is_qr: bool,
    peer: SocketAddr,
    headers: &HeaderMap,
) {
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let visitor = classify_user_agent(user_agent);
    if visitor.is_bot && !state.config.track_bots {
        BOT_VISITS.inc();
        return;
    }
    let event = if is_qr {
        EventType::QrScanned
    } else {
        EventType::LinkClicked
    };
    state.events.offer(Visit {
        id: EventId::generate(),
        event,
        at: Utc::now(),
        link,
        click_location: state.geo.country(peer, headers),
        device: visitor.device,
        browser: visitor.browser,
        os: visitor.os,
        referrer: headers
            .get(REFERER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
}

/// Whether `qr=1` was present, and the other parameters to pass on, in their order.
fn split_query(query: Option<&str>) -> (bool, Vec<(String, String)>) {
    let mut is_qr = false;
    let mut passed_on = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == QR_PARAMETER {
            is_qr |= value == "1";
        } else {
            passed_on.push((key.into_owned(), value.into_owned()));
        }
    }
    (is_qr, passed_on)
}

/// The destination, with the visitor's other query parameters (UTM tags…) appended.
fn location(destination: &str, passed_on: &[(String, String)]) -> Option<HeaderValue> {
    if passed_on.is_empty() {
        return HeaderValue::from_str(destination).ok();
    }
    let mut url = url::Url::parse(destination).ok()?;
    url.query_pairs_mut().extend_pairs(passed_on);
    HeaderValue::from_str(url.as_str()).ok()
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_marker_is_recognised_and_not_passed_on() {
        let (is_qr, rest) = split_query(Some("qr=1&utm_source=poster"));
        assert!(is_qr);
        assert_eq!(rest, vec![("utm_source".to_owned(), "poster".to_owned())]);
        let location = location("https://example.com/p?x=1", &rest).unwrap();
        assert_eq!(location, "https://example.com/p?x=1&utm_source=poster");
    }

    #[test]
    fn a_plain_click_goes_to_the_destination_unchanged() {
        let (is_qr, rest) = split_query(None);
        assert!(!is_qr);
        assert_eq!(
            location("https://example.com/product", &rest).unwrap(),
            "https://example.com/product"
        );
    }
}
