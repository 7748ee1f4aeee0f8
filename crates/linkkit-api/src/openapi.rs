//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! annotations and the request and response types, served at `GET /api/v1/openapi.json`.
//!
//! A copy is committed at `docs/openapi.json`; a test fails when it differs from what the code
//! generates (`linkkit openapi > docs/openapi.json` brings it up to date).
//!
//! What every authenticated operation may answer is added in one place ([`CommonResponses`]):
//! `401` without a valid key, `403` for a dashboard cookie without its CSRF header, `429` over
//! the rate limit, `503` when a dependency is down, and `400`/`413`/`422` for a body or query
//! that is refused.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::schema::{
    DeliveryStatusName, EventName, EventView, ReplayView, RotatedSecretView, SecretView, Tag,
};
use crate::views::{AttemptView, DeliveryView, EndpointView, LinkView};

/// Where the API lives; every path of the document starts with it.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Linkkit API",
        description = "Short links, QR codes and the webhook endpoints that receive their events, \
            signed with Standard Webhooks. Every request carries `Authorization: Bearer <api key>`; \
            a key sees only its own workspace (another workspace's objects are `404`). Errors are \
            `{\"error\": {\"code\", \"message\"}}`. Lists are `{\"data\": [...], \"next_cursor\"}` \
            with `?limit=&cursor=`."
    ),
    paths(
        crate::links::create_link,
        crate::links::list_links,
        crate::links::get_link,
        crate::links::update_link,
        crate::links::delete_link,
        crate::qr::link_qr,
        crate::webhooks::create_endpoint,
        crate::webhooks::list_endpoints,
        crate::webhooks::get_endpoint,
        crate::webhooks::update_endpoint,
        crate::webhooks::delete_endpoint,
        crate::webhooks::get_secret,
        crate::webhooks::rotate_secret,
        crate::webhooks::send_test_event,
        crate::deliveries::list_for_endpoint,
        crate::deliveries::get_delivery,
        crate::deliveries::resend,
        crate::deliveries::replay_dead,
        crate::events::stream_events,
        crate::events::trigger_event,
        crate::session::sign_in,
        crate::session::current,
        crate::session::sign_out,
        openapi_json,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        EventName,
        DeliveryStatusName,
        LinkView,
        EndpointView,
        DeliveryView,
        AttemptView,
        SecretView,
        RotatedSecretView,
        ReplayView,
        EventView,
        Tag,
        crate::qr::QrFormat,
        crate::qr::QrLevel,
        crate::session::DashboardFlag,
    )),
    modifiers(&CommonResponses),
    security(("api_key" = []), ("session" = [])),
    tags(
        (name = "links", description = "Short links and their QR codes"),
        (name = "webhooks", description = "Endpoints that receive events, and their secrets"),
        (name = "deliveries", description = "Each event on its way to each endpoint"),
        (name = "events", description = "The workspace's events, live, and sample events"),
        (name = "session", description = "The dashboard's sign-in (a cookie in place of the key)"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// The document, with every path under [`PREFIX`].
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(|(path, item)| (format!("{PREFIX}{path}"), item))
        .collect();
    doc
}

/// The document as served and committed: pretty JSON and a final newline.
pub fn document_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// `GET /api/v1/openapi.json`: this document; no key needed.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    (
        [(CONTENT_TYPE, "application/json")],
        DOCUMENT.get_or_init(document_json).as_str(),
    )
}

/// The bearer scheme, and the error answers every operation shares.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`lk_…`) of the workspace"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::session::COOKIE_NAME,
                "The dashboard's session cookie (`POST /api/v1/session`). A request it \
                 authenticates must also carry `X-Linkkit-Dashboard: 1`, or it is refused \
                 with `403`; a request with an `Authorization` header is judged by that alone.",
            ))),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                add_common_responses(operation);
            }
        }
    }
}

fn add_common_responses(operation: &mut Operation) {
    let public = operation
        .security
        .as_ref()
        .is_some_and(|requirements| requirements.iter().all(is_empty_requirement));
    if public {
        return;
    }
    let has_body = operation.request_body.is_some();
    let has_query = operation.parameters.as_ref().is_some_and(|parameters| {
        parameters
            .iter()
            .any(|p| matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
    });
    let mut add = |status: &str, response: Response| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert(response.into());
    };
    if has_body {
        add("400", error("The body is not JSON"));
        add("413", error("The body is larger than 64 KiB"));
    }
    if has_body || has_query {
        add(
            "422",
            error(
                "A field or parameter is missing, unknown or not acceptable; the message names it",
            ),
        );
    }
    add(
        "401",
        error("No API key, or one that is unknown or revoked"),
    );
    add(
        "403",
        error("Authenticated by the dashboard's cookie without `X-Linkkit-Dashboard: 1`"),
    );
    add("429", rate_limited());
    add(
        "503",
        error("A dependency (database, broker) is unavailable; retry"),
    );
}

fn is_empty_requirement(requirement: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(requirement)
        .is_ok_and(|value| value.as_object().is_some_and(|o| o.is_empty()))
}

fn error(description: &str) -> Response {
    error_builder(description).build()
}

fn error_builder(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

fn rate_limited() -> Response {
    error_builder("Over this key's rate limit")
        .header(
            "retry-after",
            HeaderBuilder::new()
                .schema(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some("Seconds to wait before retrying"))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// `LINKKIT_UPDATE_OPENAPI=1 cargo test -p linkkit-api openapi` rewrites the committed copy.
    #[test]
    fn the_committed_openapi_document_is_what_the_code_generates() {
        let generated = document_json();
        let path = committed_path();
        if std::env::var_os("LINKKIT_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("docs/openapi.json is writable");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is stale: regenerate it with \
             `cargo run --bin linkkit -- openapi > docs/openapi.json` \
             (or `LINKKIT_UPDATE_OPENAPI=1 cargo test -p linkkit-api openapi`) and commit it"
        );
    }

    /// Every `$ref` of the document names a schema it defines.
    #[test]
    fn every_reference_resolves() {
        fn walk(value: &serde_json::Value, refs: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                        refs.push(target.to_owned());
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(document()).unwrap();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for target in refs {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} is a schema reference"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{target} is not defined"
            );
        }
    }

    #[test]
    fn every_operation_but_the_document_needs_a_key_and_documents_its_errors() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.keys().all(|path| path.starts_with("/api/v1/")));
        let mut operations = 0;
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                let responses = operation["responses"].as_object().unwrap();
                if operation["security"] == serde_json::json!([{}]) {
                    let public = path == "/api/v1/openapi.json"
                        || (path == "/api/v1/session" && method != "get");
                    assert!(public, "{method} {path} needs no key");
                    continue;
                }
                for status in ["401", "429", "503"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
                if operation.get("requestBody").is_some() {
                    assert!(responses.contains_key("422"), "{method} {path}: 422");
                }
            }
        }
        assert_eq!(operations, 24, "every /api/v1 route has its operation");
    }
}
