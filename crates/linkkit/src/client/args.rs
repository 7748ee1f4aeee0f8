//! The client's command line: `links`, `webhooks`, `deliveries`, `listen` and `trigger`, each
//! talking to an API at `LINKKIT_API_URL` with the key in `LINKKIT_API_KEY`.

use clap::{Args, Subcommand};

/// Where the API is and which key to use; `--json` for scripts.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Base URL of the API.
    #[arg(
        long,
        env = "LINKKIT_API_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub api_url: String,
    /// An API key of the workspace (`lk_…`).
    #[arg(long, env = "LINKKIT_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Short links, through the API.
    Links {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: LinksCommand,
    },
    /// Webhook endpoints, their secrets, test events and replays, through the API.
    Webhooks {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Deliveries of events to endpoints, through the API.
    Deliveries {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Stream the workspace's events from the API and forward each, signed, to a local URL:
    /// no public URL, no tunnel.
    Listen {
        #[command(flatten)]
        api: ApiArgs,
        /// Where to POST each event, e.g. http://localhost:3000/webhooks.
        #[arg(long)]
        forward_to: String,
        /// Only these event types (comma-separated; default all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Sign with this secret (`whsec_…`) instead of a new one, so the local app's
        /// configuration survives restarts.
        #[arg(long, env = "LINKKIT_LISTEN_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Send a sample event of a type to the workspace: every subscribed endpoint and every
    /// `linkkit listen` gets it.
    Trigger {
        #[command(flatten)]
        api: ApiArgs,
        /// link.clicked, link.created, link.updated, link.deleted or qr.scanned.
        event: String,
    },
}

/// `--limit`, `--cursor` and `--all` of a list.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Objects per page (1–100).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Every page, not only the first.
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum LinksCommand {
    /// Create a short link.
    Create {
        /// Where it sends visitors (http or https).
        destination_url: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        segment: Option<String>,
        #[arg(long)]
        campaign: Option<String>,
        /// A tag; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// RFC 3339, e.g. 2027-01-01T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// The workspace's links, newest first.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// One link.
    Get { id: String },
    /// Change a link; only the options given change.
    Update {
        id: String,
        #[arg(long)]
        destination_url: Option<String>,
        #[arg(long)]
        slug: Option<String>,
        /// An empty value clears it.
        #[arg(long)]
        segment: Option<String>,
        /// An empty value clears it.
        #[arg(long)]
        campaign: Option<String>,
        /// Replaces the tags; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Remove every tag.
        #[arg(long, conflicts_with = "tags")]
        clear_tags: bool,
        #[arg(long)]
        expires_at: Option<String>,
        /// Remove the expiry.
        #[arg(long, conflicts_with = "expires_at")]
        no_expiry: bool,
    },
    /// Delete a link (its slug stays reserved).
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; prints its signing secret.
    Add {
        /// Where events are POSTed.
        url: String,
        /// Event types (comma-separated; default all five).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// The workspace's endpoints, newest first.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// One endpoint.
    Get { id: String },
    /// Change an endpoint; only the options given change.
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Event types (comma-separated).
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[arg(long)]
        description: Option<String>,
        /// Resume deliveries (and clear why it was disabled).
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Stop deliveries.
        #[arg(long)]
        disable: bool,
    },
    /// Remove an endpoint.
    Delete { id: String },
    /// The current signing secret.
    Secret { id: String },
    /// A new signing secret; the old one keeps signing beside it for 24 hours.
    RotateSecret { id: String },
    /// Send a sample event to this endpoint only.
    Test {
        id: String,
        /// The type of the sample (default link.created).
        #[arg(long)]
        event: Option<String>,
    },
    /// Send every dead delivery of the endpoint again, with a progress bar.
    Replay {
        id: String,
        /// Then wait until each has succeeded or failed again.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// An endpoint's deliveries, newest first.
    List {
        /// The endpoint (`ep_…`).
        #[arg(long)]
        endpoint: String,
        /// pending, succeeded, failed or dead.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// One delivery with every attempt.
    Show { id: String },
    /// Deliver it again now.
    Resend { id: String },
}
