//! `linkkit webhooks add|list|get|update|delete|secret|rotate-secret|test|replay`.
//!
//! `replay` sends the endpoint's dead deliveries again one by one (`POST
//! /deliveries/{id}/resend`, the same new generation `POST /webhooks/{id}/replay` starts), so it
//! can show progress, stay within the key's rate limit, and be stopped halfway without losing
//! anything: what was not resent is still `dead`. With `--wait` it then follows each delivery
//! until it has succeeded or failed again.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use linkkit_core::EventType;
use serde_json::{json, Map, Value};

use super::args::WebhooksCommand;
use super::{all_pages, list, output, segment, Api};

const FIELDS: &[&str] = &[
    "id",
    "url",
    "events",
    "description",
    "enabled",
    "disabled_reason",
    "created_at",
    "updated_at",
    "secret",
];
/// Resends in flight at once.
const REPLAY_CONCURRENCY: usize = 8;
const WAIT_POLL: Duration = Duration::from_millis(500);

pub async fn run(api: &Api, json: bool, command: WebhooksCommand) -> anyhow::Result<()> {
    let answer = match command {
        WebhooksCommand::Add {
            url,
            events,
            description,
        } => {
            let events: Vec<String> = if events.is_empty() {
                EventType::ALL
                    .iter()
                    .map(|e| e.as_str().to_owned())
                    .collect()
            } else {
                events
            };
            let mut body = json!({ "url": url, "events": events });
            if let Some(description) = description {
                body["description"] = description.into();
            }
            api.post("/webhooks", Some(body)).await?
        }
        WebhooksCommand::List { list: args } => {
            let page = list(api, "/webhooks", '?', &args).await?;
            if json {
                return output::json(&page);
            }
            return output::page(
                &page,
                &["id", "url", "events", "enabled", "created"],
                |endpoint| {
                    vec![
                        output::text(&endpoint["id"]),
                        output::cut(&endpoint["url"], 48),
                        output::text(&endpoint["events"]),
                        output::text(&endpoint["enabled"]),
                        output::text(&endpoint["created_at"]),
                    ]
                },
            );
        }
        WebhooksCommand::Get { id } => api.get(&format!("/webhooks/{}", segment(&id))).await?,
        WebhooksCommand::Update {
            id,
            url,
            events,
            description,
            enable,
            disable,
        } => {
            let mut body = Map::new();
            if let Some(url) = url {
                body.insert("url".into(), url.into());
            }
            if let Some(events) = events {
                body.insert("events".into(), events.into());
            }
            if let Some(description) = description {
                body.insert("description".into(), description.into());
            }
            if enable || disable {
                body.insert("enabled".into(), enable.into());
            }
            api.patch(&format!("/webhooks/{}", segment(&id)), Value::Object(body))
                .await?
        }
        WebhooksCommand::Delete { id } => {
            api.delete(&format!("/webhooks/{}", segment(&id))).await?;
            if json {
                return output::json(&json!({ "deleted": id }));
            }
            return output::line(&format!("deleted {id}"));
        }
        WebhooksCommand::Secret { id } => {
            api.get(&format!("/webhooks/{}/secret", segment(&id)))
                .await?
        }
        WebhooksCommand::RotateSecret { id } => {
            let answer = api
                .post(&format!("/webhooks/{}/rotate-secret", segment(&id)), None)
                .await?;
            if json {
                return output::json(&answer);
            }
            return output::line(&output::fields(
                &answer,
                &["secret", "previous_secret_expires_at"],
            ));
        }
        WebhooksCommand::Test { id, event } => {
            let body = event.map(|event| json!({ "event": event }));
            let delivery = api
                .post(&format!("/webhooks/{}/test", segment(&id)), body)
                .await?;
            if json {
                return output::json(&delivery);
            }
            return output::line(&format!(
                "sent a sample {} as delivery {} (see `linkkit deliveries show {}`)",
                output::text(&delivery["event"]),
                output::text(&delivery["id"]),
                output::text(&delivery["id"]),
            ));
        }
        WebhooksCommand::Replay { id, wait } => return replay(api, json, &id, wait).await,
    };
    if json {
        output::json(&answer)
    } else {
        output::line(&output::fields(&answer, FIELDS))
    }
}

async fn replay(api: &Api, json: bool, endpoint: &str, wait: bool) -> anyhow::Result<()> {
    let deliveries = format!("/webhooks/{}/deliveries?status=dead", segment(endpoint));
    let finding = ProgressBar::new_spinner().with_message("finding dead deliveries");
    finding.enable_steady_tick(Duration::from_millis(120));
    let dead = all_pages(api, &deliveries, '&').await;
    finding.finish_and_clear();
    let ids: Vec<String> = dead?["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|delivery| delivery["id"].as_str().map(str::to_owned))
        .collect();

    let bar = bar(ids.len(), "resending");
    let results: Vec<Result<(), super::ClientError>> = stream::iter(ids.iter())
        .map(|id| {
            let bar = bar.clone();
            async move {
                let result = api
                    .post(&format!("/deliveries/{}/resend", segment(id)), None)
                    .await
                    .map(|_| ());
                bar.inc(1);
                result
            }
        })
        .buffer_unordered(REPLAY_CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    let count = ids.len() - failed.len();
    if let Some(first) = failed.first() {
        anyhow::bail!(
            "resent {count} of {} dead deliveries; {} could not be resent (they stay dead): {first}",
            ids.len(),
            failed.len()
        );
    }
    let outcome = if wait {
        Some(follow(api, &ids).await?)
    } else {
        None
    };
    if json {
        let mut answer = json!({ "count": count });
        if let Some((succeeded, failed)) = outcome {
            answer["succeeded"] = succeeded.into();
            answer["failed"] = failed.into();
        }
        return output::json(&answer);
    }
    output::line(&format!("replayed {count} dead deliveries of {endpoint}"))?;
    if let Some((succeeded, failed)) = outcome {
        output::line(&format!(
            "{succeeded} succeeded, {failed} failed again (retrying on the schedule)"
        ))?;
    }
    Ok(())
}

/// Polls each replayed delivery until it is no longer `pending`; → (succeeded, failed).
async fn follow(api: &Api, ids: &[String]) -> anyhow::Result<(usize, usize)> {
    let bar = bar(ids.len(), "delivering");
    let mut waiting: HashSet<&String> = ids.iter().collect();
    let (mut succeeded, mut failed) = (0, 0);
    while !waiting.is_empty() {
        let mut done = Vec::new();
        for id in &waiting {
            let delivery = api.get(&format!("/deliveries/{}", segment(id))).await?;
            match delivery["status"].as_str() {
                Some("pending") => {}
                Some("succeeded") => {
                    succeeded += 1;
                    done.push(*id);
                }
                _ => {
                    failed += 1;
                    done.push(*id);
                }
            }
        }
        for id in done {
            waiting.remove(id);
            bar.inc(1);
        }
        if !waiting.is_empty() {
            tokio::time::sleep(WAIT_POLL).await;
        }
    }
    bar.finish_and_clear();
    Ok((succeeded, failed))
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn bar(length: usize, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length as u64).with_message(message);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar
}
