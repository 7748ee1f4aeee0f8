//! `linkkit links|webhooks|deliveries|listen|trigger`: a client of the HTTP API.
//!
//! It reads `LINKKIT_API_URL` (default `http://127.0.0.1:8080`) and `LINKKIT_API_KEY`, prints
//! tables for people and the API's own JSON with `--json`, and turns the API's JSON errors into
//! one line on stderr (and exit status 1). It needs no database or broker: only the API.

pub mod args;
mod deliveries;
pub mod http;
mod links;
mod listen;
mod output;
pub mod sse;
mod webhooks;

use tokio_util::sync::CancellationToken;

pub use args::{ApiArgs, ClientCommand};
pub use http::{Api, ClientError};

/// Runs one client command until it is done (or, for `listen`, until `shutdown`).
pub async fn run(command: ClientCommand, shutdown: CancellationToken) -> anyhow::Result<()> {
    match command {
        ClientCommand::Links { api, command } => {
            links::run(&Api::new(&api)?, api.json, command).await
        }
        ClientCommand::Webhooks { api, command } => {
            webhooks::run(&Api::new(&api)?, api.json, command).await
        }
        ClientCommand::Deliveries { api, command } => {
            deliveries::run(&Api::new(&api)?, api.json, command).await
        }
        ClientCommand::Listen {
            api,
            forward_to,
            events,
            secret,
        } => {
            let options = listen::Options::new(&forward_to, events, secret.as_deref(), api.json)?;
            listen::run(&Api::new(&api)?, options, shutdown).await
        }
        ClientCommand::Trigger { api, event } => {
            let answer = Api::new(&api)?
                .post(
                    "/events/trigger",
                    Some(serde_json::json!({ "event": event })),
                )
                .await?;
            if api.json {
                return output::json(&answer);
            }
            output::line(&format!(
                "triggered {} {} (sent to the workspace's subscribed endpoints and listeners)",
                output::text(&answer["event"]),
                output::text(&answer["id"]),
            ))
        }
    }
}

/// `?limit=&cursor=` for a list request.
fn list_query(limit: u32, cursor: Option<&str>) -> String {
    match cursor {
        Some(cursor) => format!("limit={limit}&cursor={cursor}"),
        None => format!("limit={limit}"),
    }
}

/// Every page of a list (`path` already ends in `?…&`-free query), as one `{"data": [...]}`.
async fn all_pages(api: &Api, path: &str, separator: char) -> anyhow::Result<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = api
            .get(&format!(
                "{path}{separator}{}",
                list_query(100, cursor.as_deref())
            ))
            .await?;
        items.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(serde_json::json!({ "data": items, "next_cursor": null }))
}

/// One page, or every page with `--all`.
async fn list(
    api: &Api,
    path: &str,
    separator: char,
    args: &args::ListArgs,
) -> anyhow::Result<serde_json::Value> {
    if args.all {
        return all_pages(api, path, separator).await;
    }
    Ok(api
        .get(&format!(
            "{path}{separator}{}",
            list_query(args.limit, args.cursor.as_deref())
        ))
        .await?)
}

/// An id as one path segment, so whatever is typed stays inside it.
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
