//! Request extractors that answer bad input with our JSON errors instead of axum's plain text.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::error::Category;

use crate::ApiError;

/// A JSON body. Unparseable JSON is `400`, a well-formed body with a wrong or missing field is
/// `422` naming the field, and a body over the limit is `413`. The content type is not insisted
/// on: a JSON body is parsed as JSON whatever the client labelled it.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`], but an empty body (or `null`) stands for `T::default()`.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json::<Option<T>>(&bytes).map(|body| OptionalJsonBody(body.unwrap_or_default()))
    }
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("could not read the request body: {rejection}"))
            }
        })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        Category::Data => ApiError::invalid("invalid_field", error.to_string()),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::BadRequest(format!("the request body is not valid JSON: {error}"))
        }
    })
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub limit: i64,
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

impl ListParams {
    pub fn from_query(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let cursor = cursor.filter(|c| !c.is_empty()).map(str::to_owned);
        if let Some(cursor) = &cursor {
            let plausible = cursor.len() <= 64
                && cursor
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !plausible {
                return Err(ApiError::invalid(
                    "invalid_cursor",
                    "cursor must be the next_cursor of a previous page",
                ));
            }
        }
        Ok(Self { limit, cursor })
    }
}

/// Query strings parsed as loose text, so our own validation (not axum's) words the errors.
#[derive(Debug, Default)]
pub struct RawQuery(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(RawQuery(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl RawQuery {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn list_params(&self) -> Result<ListParams, ApiError> {
        ListParams::from_query(self.get("limit"), self.get("cursor"))
    }
}

/// Accepts `null` as "clear this field" and an absent field as "leave it": `Some(None)` vs
/// `None`. Use with `#[serde(default, deserialize_with = "...")]`.
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
