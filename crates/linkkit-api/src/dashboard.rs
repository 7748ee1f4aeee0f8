//! The web dashboard: static HTML, CSS and JavaScript modules embedded in the binary with
//! `include_str!`, so there is no build step and nothing is fetched from elsewhere at run time.
//!
//! The pages call the JSON API (`/api/v1`) from the same origin with the session cookie and the
//! `X-Linkkit-Dashboard` header (see `session` and `auth`). Every page path under `/dashboard/`
//! answers the same HTML shell; the script picks the page from the path. A strict
//! Content-Security-Policy allows only these files: no inline script, no other origin.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::{ApiError, AppState};

/// One embedded file of `dashboard/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("errors.js", JS),
    asset!("dom.js", JS),
    asset!("sign-in.js", JS),
    asset!("links.js", JS),
    asset!("link-form.js", JS),
    asset!("webhooks.js", JS),
    asset!("endpoint-form.js", JS),
    asset!("endpoint.js", JS),
    asset!("deliveries.js", JS),
];

static SHELL: &str = include_str!("../dashboard/index.html");

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard/") }))
        .route("/dashboard", get(shell))
        .route("/dashboard/", get(shell))
        .route("/dashboard/assets/{name}", get(asset))
        .route("/dashboard/{*page}", get(shell))
}

/// The HTML of every page; the script renders the page the path names.
async fn shell() -> Response {
    let mut response = respond("text/html; charset=utf-8", SHELL);
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(|asset| respond(asset.content_type, asset.body))
        .ok_or(ApiError::NotFound("dashboard file"))
}

/// A file with its type; browsers revalidate every time, so an upgrade shows at once.
fn respond(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_served() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines() {
                let Some(start) = line.find("from './") else {
                    continue;
                };
                let imported = line[start + 8..].split('\'').next().unwrap_or("");
                assert!(
                    ASSETS.iter().any(|a| a.name == imported),
                    "{} imports {imported}, which is not embedded",
                    asset.name
                );
            }
        }
        assert!(SHELL.contains("/dashboard/assets/app.js"));
    }
}
