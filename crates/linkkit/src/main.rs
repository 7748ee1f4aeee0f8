//! `linkkit`: parse the command line, load the configuration, start logging, run the command.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use linkkit::cli::{Cli, Command, DlqCommand, KeyCommand, WorkspaceCommand};
use linkkit::{app, client, operator, receive, shutdown, Config, Listeners, Service};
use linkkit_core::signing::WebhookSecret;
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's malloc: allocation and free were a third of the workers' CPU in the
/// throughput profile (many small, short-lived buffers across threads). See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    // Commands that need no configuration: the API client and the OpenAPI document.
    let command = match cli.command {
        Command::Client(command) => {
            // One plain line for people and scripts, whatever RUST_BACKTRACE says.
            if let Err(error) = client::run(command, shutdown::on_signal()).await {
                let _ = writeln!(std::io::stderr(), "error: {error:#}");
                std::process::exit(1);
            }
            return Ok(());
        }
        Command::Openapi => {
            let document = linkkit_api::openapi::document_json();
            std::io::stdout().write_all(document.as_bytes())?;
            return Ok(());
        }
        other => other,
    };
    let config = match Config::from_env() {
        Ok(config) => Arc::new(config),
        Err(error) => {
            tracing::error!("{error}");
            anyhow::bail!("{error}");
        }
    };
    let service = match command {
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
            return operator::create_workspace(&config, &name).await;
        }
        Command::Key {
            command: KeyCommand::Create { workspace, name },
        } => {
            return operator::key_create(&config, &workspace, &name).await;
        }
        Command::Key {
            command: KeyCommand::List { workspace, json },
        } => {
            return operator::key_list(&config, &workspace, json).await;
        }
        Command::Key {
            command: KeyCommand::Revoke { key_id },
        } => {
            return operator::key_revoke(&config, &key_id).await;
        }
        Command::Dlq {
            command: DlqCommand::List { limit, json },
        } => {
            return operator::dlq_list(&config, limit, json).await;
        }
        Command::Dlq {
            command: DlqCommand::Replay { limit, endpoint },
        } => {
            return operator::dlq_replay(&config, limit, endpoint.as_deref()).await;
        }
        Command::Client(_) | Command::Openapi => unreachable!("handled before the configuration"),
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
