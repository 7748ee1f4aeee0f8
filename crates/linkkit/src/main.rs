//! `linkkit`: parse the command line, load the configuration, start logging, run the command.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use linkkit::cli::{Cli, Command, WorkspaceCommand};
use linkkit::{app, receive, shutdown, Config, Listeners, Service};
use linkkit_core::signing::WebhookSecret;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let config = match Config::from_env() {
        Ok(config) => Arc::new(config),
        Err(error) => {
            tracing::error!("{error}");
            anyhow::bail!("{error}");
        }
    };
    let service = match cli.command {
        Command::Api => Service::Api,
        Command::Redirect => Service::Redirect,
        Command::Fanout => Service::Fanout,
        Command::Sender => Service::Sender,
        Command::All => {
            app::migrate(&config).await?;
            Service::All
        }
        Command::Migrate => {
            app::migrate(&config).await?;
            tracing::info!("migrations applied");
            return Ok(());
        }
        Command::Workspace {
            command: WorkspaceCommand::Create { name },
        } => {
            return create_workspace(&config, &name).await;
        }
        Command::Receive { port, secret } => {
            let secret = secret
                .map(|s| WebhookSecret::parse(&s))
                .transpose()
                .context("--secret")?;
            return receive::serve(port, secret, shutdown::on_signal()).await;
        }
    };
    let listeners = Listeners::bind(service, &config).await?;
    app::run(service, config, listeners, shutdown::on_signal()).await
}

async fn create_workspace(config: &Config, name: &str) -> anyhow::Result<()> {
    app::migrate(config).await?;
    let pool = app::connect_database(config)?;
    let (workspace_id, key) = linkkit_store::workspaces::create_workspace(&pool, name).await?;
    let line = serde_json::json!({"workspace_id": workspace_id, "api_key": key.expose()});
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

/// Logs go to stderr (stdout is for command output): human-readable by default, JSON with
/// `LINKKIT_LOG_FORMAT=json`; the level comes from `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LINKKIT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
