//! The command line: one subcommand per deployable, plus operator and developer tools.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "linkkit",
    version,
    about = "Link shortener with real-time, signed webhooks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Link service and webhook management API (and the outbox relay).
    Api,
    /// Redirect service: short link clicks and QR scans.
    Redirect,
    /// Fan-out workers: raw event → one delivery job per subscribed endpoint.
    Fanout,
    /// Sender workers: deliver jobs, retry, dead-letter.
    Sender,
    /// All four in one process (the local default); applies migrations first.
    All,
    /// Apply database migrations (creating the database if needed), then exit.
    Migrate,
    /// Workspaces: the tenants that own links, endpoints and keys.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// API keys of a workspace.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The dead-letter queue: exhausted and unparseable messages.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Print the OpenAPI 3.1 document of the API (as committed in docs/openapi.json).
    Openapi,
    #[command(flatten)]
    Client(crate::client::ClientCommand),
    /// A local webhook receiver that prints each delivery and checks its signature.
    Receive {
        /// Port to listen on (127.0.0.1).
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// The endpoint's signing secret (`whsec_…`), to verify signatures.
        #[arg(long, env = "LINKKIT_RECEIVE_SECRET")]
        secret: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace; prints `{"workspace_id": "...", "api_key": "..."}`.
    Create {
        /// A name to recognise it by.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a key to a workspace; prints `{"key_id", "api_key"}` (the key is shown only here).
    Create {
        #[arg(long)]
        workspace: String,
        /// A label to recognise it by.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// The workspace's keys: id, prefix, name, created, revoked.
    List {
        #[arg(long)]
        workspace: String,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key (`key_…`); it is refused from the next request on.
    Revoke { key_id: String },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Show the messages at the head of the dead-letter queue (they stay there).
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send dead jobs again, as new generations of their deliveries.
    Replay {
        #[arg(long, default_value_t = usize::MAX)]
        limit: usize,
        /// Only the jobs of this endpoint (`ep_…`).
        #[arg(long)]
        endpoint: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_deployable_has_its_subcommand() {
        for name in ["api", "redirect", "fanout", "sender", "all", "migrate"] {
            assert!(Cli::try_parse_from(["linkkit", name]).is_ok(), "{name}");
        }
        let parsed = Cli::try_parse_from(["linkkit", "workspace", "create", "Acme"]).unwrap();
        assert!(
            matches!(parsed.command, Command::Workspace { command: WorkspaceCommand::Create { name } } if name == "Acme")
        );
    }

    #[test]
    fn client_commands_take_the_api_options_after_the_subcommand() {
        use crate::client::args::{LinksCommand, WebhooksCommand};
        use crate::client::ClientCommand;
        let parsed = Cli::try_parse_from([
            "linkkit",
            "links",
            "list",
            "--json",
            "--api-url",
            "http://api:1",
            "--api-key",
            "lk_x",
        ])
        .unwrap();
        let Command::Client(ClientCommand::Links { api, command }) = parsed.command else {
            panic!("links parses as a client command");
        };
        assert!(api.json);
        assert_eq!(api.api_url, "http://api:1");
        assert_eq!(api.api_key.as_deref(), Some("lk_x"));
        assert!(matches!(command, LinksCommand::List { .. }));

        let parsed = Cli::try_parse_from([
            "linkkit",
            "webhooks",
            "add",
            "https://example.com/h",
            "--events",
            "link.clicked,qr.scanned",
        ])
        .unwrap();
        let Command::Client(ClientCommand::Webhooks {
            command: WebhooksCommand::Add { events, .. },
            ..
        }) = parsed.command
        else {
            panic!("webhooks add parses");
        };
        assert_eq!(events, ["link.clicked", "qr.scanned"]);
        for line in [
            vec!["linkkit", "deliveries", "resend", "dlv_1"],
            vec![
                "linkkit",
                "listen",
                "--forward-to",
                "http://localhost:3000/webhooks",
            ],
            vec!["linkkit", "trigger", "link.clicked"],
            vec!["linkkit", "webhooks", "replay", "ep_1", "--wait"],
            vec!["linkkit", "openapi"],
        ] {
            assert!(Cli::try_parse_from(&line).is_ok(), "{line:?}");
        }
        assert!(Cli::try_parse_from([
            "linkkit",
            "webhooks",
            "update",
            "ep_1",
            "--enable",
            "--disable"
        ])
        .is_err());
    }
}
