//! `linkkit deliveries list|show|resend`.

use serde_json::Value;

use super::args::DeliveriesCommand;
use super::{list, output, segment, Api};

const FIELDS: &[&str] = &[
    "id",
    "event",
    "event_id",
    "endpoint_id",
    "status",
    "attempt_count",
    "next_attempt_at",
    "created_at",
    "delivered_at",
];

pub async fn run(api: &Api, json: bool, command: DeliveriesCommand) -> anyhow::Result<()> {
    let answer = match command {
        DeliveriesCommand::List {
            endpoint,
            status,
            list: args,
        } => {
            let mut path = format!("/webhooks/{}/deliveries", segment(&endpoint));
            let separator = match status {
                Some(status) => {
                    path.push_str(&format!("?status={}", segment(&status)));
                    '&'
                }
                None => '?',
            };
            let page = list(api, &path, separator, &args).await?;
            if json {
                return output::json(&page);
            }
            return output::page(&page, &HEADER, row);
        }
        DeliveriesCommand::Show { id } => api.get(&format!("/deliveries/{}", segment(&id))).await?,
        DeliveriesCommand::Resend { id } => {
            api.post(&format!("/deliveries/{}/resend", segment(&id)), None)
                .await?
        }
    };
    if json {
        return output::json(&answer);
    }
    output::line(&output::fields(&answer, FIELDS))?;
    if let Some(attempts) = answer["attempts"].as_array() {
        output::line("")?;
        if attempts.is_empty() {
            return output::line("no attempts yet");
        }
        let rows: Vec<Vec<String>> = attempts
            .iter()
            .map(|attempt| {
                vec![
                    output::text(&attempt["attempt"]),
                    output::text(&attempt["at"]),
                    output::text(&attempt["status_code"]),
                    format!("{} ms", output::text(&attempt["duration_ms"])),
                    output::cut(&attempt["error"], 60),
                ]
            })
            .collect();
        output::line(&output::table(
            &["attempt", "at", "status", "duration", "error"],
            &rows,
        ))?;
    }
    Ok(())
}

pub const HEADER: [&str; 6] = ["id", "event", "status", "attempts", "created", "delivered"];

pub fn row(delivery: &Value) -> Vec<String> {
    vec![
        output::text(&delivery["id"]),
        output::text(&delivery["event"]),
        output::text(&delivery["status"]),
        output::text(&delivery["attempt_count"]),
        output::text(&delivery["created_at"]),
        output::text(&delivery["delivered_at"]),
    ]
}
