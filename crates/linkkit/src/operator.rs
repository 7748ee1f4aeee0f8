//! Operator commands that print to stdout: workspaces, API keys and the dead-letter queue.

use std::io::Write;

use anyhow::Context;
use linkkit_bus::{Broker, Topology};
use linkkit_core::ids::ApiKeyId;
use linkkit_core::{EndpointId, WorkspaceId};
use linkkit_sender::dead_letters;
use linkkit_store::workspaces;

use crate::{app, Config};

/// `linkkit workspace create NAME`: one JSON line with the id and the key (shown only here).
pub async fn create_workspace(config: &Config, name: &str) -> anyhow::Result<()> {
    app::migrate(config).await?;
    let pool = app::connect_database(config)?;
    let (workspace_id, key) = linkkit_store::workspaces::create_workspace(&pool, name).await?;
    let line = serde_json::json!({"workspace_id": workspace_id, "api_key": key.expose()});
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

/// `linkkit key create`.
pub async fn key_create(config: &Config, workspace: &str, name: &str) -> anyhow::Result<()> {
    let workspace = WorkspaceId::parse(workspace).context("--workspace")?;
    let pool = app::connect_database(config)?;
    let (key_id, key) = workspaces::create_key(&pool, &workspace, name)
        .await?
        .with_context(|| format!("no workspace {workspace}"))?;
    let line = serde_json::json!({"key_id": key_id, "api_key": key.expose()});
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

/// `linkkit key list`.
pub async fn key_list(config: &Config, workspace: &str, json: bool) -> anyhow::Result<()> {
    let workspace = WorkspaceId::parse(workspace).context("--workspace")?;
    let pool = app::connect_database(config)?;
    let keys = workspaces::list_keys(&pool, &workspace).await?;
    let mut out = std::io::stdout().lock();
    if json {
        for key in &keys {
            writeln!(out, "{}", serde_json::to_string(key)?)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<36} {:<9} {:<20} {:<20} revoked",
        "id", "prefix", "name", "created"
    )?;
    for key in &keys {
        let revoked = key
            .revoked_at
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        let created = key.created_at.format("%Y-%m-%d %H:%M").to_string();
        writeln!(
            out,
            "{:<36} {:<9} {:<20} {:<20} {revoked}",
            key.id,
            format!("{}…", key.prefix),
            key.name,
            created
        )?;
    }
    Ok(())
}

/// `linkkit key revoke`.
pub async fn key_revoke(config: &Config, key_id: &str) -> anyhow::Result<()> {
    let key_id = ApiKeyId::parse(key_id)?;
    let pool = app::connect_database(config)?;
    if !workspaces::revoke_key(&pool, &key_id).await? {
        anyhow::bail!("no active key {key_id}");
    }
    writeln!(std::io::stdout(), "revoked {key_id}")?;
    Ok(())
}

fn broker_and_topology(config: &Config) -> (Broker, Topology) {
    let topology = config.topology();
    (Broker::new(config.amqp_url.expose()), topology)
}

/// `linkkit dlq list`.
pub async fn dlq_list(config: &Config, limit: usize, json: bool) -> anyhow::Result<()> {
    let (broker, topology) = broker_and_topology(config);
    let letters = dead_letters::list(&broker, &topology, limit).await?;
    broker.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        for letter in &letters {
            writeln!(out, "{}", serde_json::to_string(letter)?)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<37} {:<36} {:<13} {:>7}  reason",
        "delivery", "endpoint", "event", "attempt"
    )?;
    for letter in &letters {
        let dash = || "-".to_owned();
        writeln!(
            out,
            "{:<37} {:<36} {:<13} {:>7}  {}",
            letter.delivery_id.clone().unwrap_or_else(dash),
            letter.endpoint_id.clone().unwrap_or_else(dash),
            letter.event.clone().unwrap_or_else(dash),
            letter.attempt.map(|a| a.to_string()).unwrap_or_else(dash),
            letter.reason,
        )?;
    }
    writeln!(
        out,
        "{} message(s) shown; they stay in {}",
        letters.len(),
        topology.namespace.dead_queue()
    )?;
    Ok(())
}

/// `linkkit dlq replay`.
pub async fn dlq_replay(
    config: &Config,
    limit: usize,
    endpoint: Option<&str>,
) -> anyhow::Result<()> {
    let endpoint = endpoint
        .map(EndpointId::parse)
        .transpose()
        .context("--endpoint")?;
    let (broker, topology) = broker_and_topology(config);
    let pool = app::connect_database(config)?;
    let report = dead_letters::replay(&broker, &topology, &pool, limit, endpoint.as_ref()).await?;
    broker.close().await;
    writeln!(
        std::io::stdout(),
        "replayed {}, removed {} stale, kept {} in the queue",
        report.replayed,
        report.stale,
        report.kept
    )?;
    Ok(())
}
