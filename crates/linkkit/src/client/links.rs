//! `linkkit links create|list|get|update|delete`.

use serde_json::{json, Map, Value};

use super::args::LinksCommand;
use super::{list, output, segment, Api};

const FIELDS: &[&str] = &[
    "id",
    "slug",
    "short_url",
    "destination_url",
    "segment",
    "campaign",
    "tags",
    "expires_at",
    "clicks",
    "scans",
    "created_at",
    "updated_at",
    "qr_url",
];

pub async fn run(api: &Api, json: bool, command: LinksCommand) -> anyhow::Result<()> {
    let answer = match command {
        LinksCommand::Create {
            destination_url,
            slug,
            segment,
            campaign,
            tags,
            expires_at,
        } => {
            let mut body = Map::new();
            body.insert("destination_url".into(), destination_url.into());
            insert(&mut body, "slug", slug);
            insert(&mut body, "segment", segment);
            insert(&mut body, "campaign", campaign);
            insert(&mut body, "expires_at", expires_at);
            if !tags.is_empty() {
                body.insert("tags".into(), tags.into());
            }
            api.post("/links", Some(Value::Object(body))).await?
        }
        LinksCommand::List { list: args } => {
            let page = list(api, "/links", '?', &args).await?;
            if json {
                return output::json(&page);
            }
            return output::page(
                &page,
                &["id", "slug", "destination", "clicks", "scans", "created"],
                |link| {
                    vec![
                        output::text(&link["id"]),
                        output::text(&link["slug"]),
                        output::cut(&link["destination_url"], 48),
                        output::text(&link["clicks"]),
                        output::text(&link["scans"]),
                        output::text(&link["created_at"]),
                    ]
                },
            );
        }
        LinksCommand::Get { id } => api.get(&format!("/links/{}", segment(&id))).await?,
        LinksCommand::Update {
            id,
            destination_url,
            slug,
            segment: new_segment,
            campaign,
            tags,
            clear_tags,
            expires_at,
            no_expiry,
        } => {
            let mut body = Map::new();
            insert(&mut body, "destination_url", destination_url);
            insert(&mut body, "slug", slug);
            insert(&mut body, "segment", new_segment);
            insert(&mut body, "campaign", campaign);
            insert(&mut body, "expires_at", expires_at);
            if no_expiry {
                body.insert("expires_at".into(), Value::Null);
            }
            if clear_tags {
                body.insert("tags".into(), json!([]));
            } else if !tags.is_empty() {
                body.insert("tags".into(), tags.into());
            }
            api.patch(&format!("/links/{}", segment(&id)), Value::Object(body))
                .await?
        }
        LinksCommand::Delete { id } => {
            api.delete(&format!("/links/{}", segment(&id))).await?;
            if json {
                return output::json(&json!({ "deleted": id }));
            }
            return output::line(&format!("deleted {id}"));
        }
    };
    if json {
        output::json(&answer)
    } else {
        output::line(&output::fields(&answer, FIELDS))
    }
}

fn insert(body: &mut Map<String, Value>, name: &str, value: Option<String>) {
    if let Some(value) = value {
        body.insert(name.to_owned(), value.into());
    }
}
