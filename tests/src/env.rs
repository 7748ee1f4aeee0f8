//! A whole Linkkit (`linkkit all`) started in-process for one test.

use std::collections::HashMap;
use std::sync::Arc;

use linkkit::{Config, Listeners, Service};
use linkkit_bus::{Broker, Topology};
use linkkit_store::PgPool;
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ApiClient;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

#[derive(Debug)]
pub struct TestEnv {
    pub config: Arc<Config>,
    /// The `LINKKIT_*` variables of this environment, for child processes.
    pub variables: HashMap<String, String>,
    pub pool: PgPool,
    /// Empty when the environment runs no API.
    pub api_url: String,
    /// Empty when the environment runs no redirect service.
    pub redirect_url: String,
    /// Every redirect process of the environment (the first is `redirect_url`).
    pub redirect_urls: Vec<String>,
    pub admin_url: String,
    database: String,
    shutdown: CancellationToken,
    running: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// A message taken from the dead-letter queue.
#[derive(Debug)]
pub struct DeadLetter {
    pub body: Vec<u8>,
    pub reason: String,
    pub source_queue: String,
}

/// A workspace and its API key.
#[derive(Debug, Clone)]
pub struct TestWorkspace {
    pub id: String,
    pub key: String,
    pub api: ApiClient,
}

impl TestEnv {
    /// `linkkit all` with private targets allowed (receivers are on localhost) and a
    /// one-second retry schedule.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Like [`TestEnv::start`], with some variables set differently.
    pub async fn start_with(overrides: &[(&str, &str)]) -> Self {
        Self::start_parts(overrides, &[Service::All]).await
    }

    /// Runs only `parts` in this process (each as its own `linkkit::run`, as separate
    /// processes would); the others can be started as real processes with
    /// [`TestEnv::spawn_linkkit`].
    pub async fn start_parts(overrides: &[(&str, &str)], parts: &[Service]) -> Self {
        init_logging();
        let suffix = uuid::Uuid::now_v7().simple().to_string();
        let database = format!("linkkit_test_{suffix}");
        let mut variables: HashMap<String, String> = [
            ("LINKKIT_DATABASE_URL", format!("{POSTGRES}/{database}")),
            ("LINKKIT_NAMESPACE", format!("t{suffix}")),
            ("LINKKIT_AMQP_URL", AMQP_URL.to_owned()),
            ("LINKKIT_REDIS_URL", REDIS_URL.to_owned()),
            ("LINKKIT_ALLOW_PRIVATE_TARGETS", "true".to_owned()),
            ("LINKKIT_RETRY_SCHEDULE", "1s,1s".to_owned()),
            ("LINKKIT_DELIVERY_TIMEOUT", "5s".to_owned()),
            ("LINKKIT_PUBLIC_BASE_URL", "https://lkkt.in".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (name, value) in overrides {
            variables.insert((*name).to_owned(), (*value).to_owned());
        }
        let config = Arc::new(
            Config::from_lookup(|name| variables.get(name).cloned())
                .expect("test configuration is valid"),
        );
        linkkit::app::migrate(&config)
            .await
            .expect("migrations apply");
        let pool = linkkit::app::connect_database(&config).expect("pool");

        let shutdown = CancellationToken::new();
        let (mut api_url, mut admin_url) = (String::new(), String::new());
        let mut redirect_urls = Vec::new();
        let mut running = Vec::new();
        for part in parts {
            let includes = |wanted: Service| *part == Service::All || *part == wanted;
            let api = if includes(Service::Api) {
                Some(bind().await)
            } else {
                None
            };
            let redirect = if includes(Service::Redirect) {
                Some(bind().await)
            } else {
                None
            };
            let admin = bind().await;
            if let Some(listener) = &api {
                api_url = url_of(listener);
            }
            if let Some(listener) = &redirect {
                redirect_urls.push(url_of(listener));
            }
            if admin_url.is_empty() {
                admin_url = url_of(&admin);
            }
            let listeners = Listeners {
                api,
                redirect,
                admin,
            };
            running.push(tokio::spawn(linkkit::run(
                *part,
                config.clone(),
                listeners,
                shutdown.clone(),
            )));
        }
        let redirect_url = redirect_urls.first().cloned().unwrap_or_default();
        Self {
            config,
            variables,
            pool,
            api_url,
            redirect_url,
            redirect_urls,
            admin_url,
            database,
            shutdown,
            running,
        }
    }

    /// Starts `linkkit <command>` as a real process of this environment.
    pub fn spawn_linkkit(&self, command: &str) -> tokio::process::Child {
        tokio::process::Command::new(linkkit_binary())
            .arg(command)
            .envs(&self.variables)
            .env("LINKKIT_ADMIN_ADDR", "127.0.0.1:0")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .kill_on_drop(true)
            .spawn()
            .expect("the linkkit binary starts")
    }

    /// Publishes an event straight onto the events exchange, as any service may.
    pub async fn publish_events(&self, workspace_id: &str, events: &[linkkit_core::Envelope]) {
        let workspace = linkkit_core::WorkspaceId::parse(workspace_id).unwrap();
        let messages: Vec<linkkit_bus::Outgoing> = events
            .iter()
            .map(|event| {
                linkkit_bus::Outgoing::event(
                    &self.config.namespace,
                    &workspace,
                    event,
                    event.timestamp,
                )
            })
            .collect();
        self.publish(&messages).await;
    }

    /// A connection to the environment's Redis, to look at the workers' keys.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.variables["LINKKIT_REDIS_URL"].as_str())
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("Redis answers")
    }

    /// Publishes messages as they are, once the broker confirms them all.
    pub async fn publish(&self, messages: &[linkkit_bus::Outgoing]) {
        let broker = Broker::new(self.config.amqp_url.expose());
        let publisher = linkkit_bus::Publisher::new(broker.clone(), self.topology());
        publisher
            .publish_all(messages)
            .await
            .expect("the broker confirms");
        broker.close().await;
    }

    pub async fn create_workspace(&self, name: &str) -> TestWorkspace {
        let (id, key) = linkkit_store::workspaces::create_workspace(&self.pool, name)
            .await
            .expect("workspace");
        TestWorkspace {
            id: id.to_string(),
            key: key.expose().to_owned(),
            api: ApiClient::new(&self.api_url, key.expose()),
        }
    }

    /// Visits a short link like a browser would (redirects are not followed).
    pub async fn visit(&self, path: &str, user_agent: &str) -> reqwest::Response {
        self.visit_at(&self.redirect_url, path, user_agent, &[])
            .await
    }

    /// Visits a short link on one redirect process, with extra headers.
    pub async fn visit_at(
        &self,
        redirect_url: &str,
        path: &str,
        user_agent: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = client
            .get(format!("{redirect_url}/{path}"))
            .header("user-agent", user_agent);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    pub fn topology(&self) -> Topology {
        self.config.topology()
    }

    /// Messages waiting in a queue of this environment.
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        self.declare_passive(queue)
            .await
            .expect("the queue exists")
            .message_count()
    }

    /// Consumers of `queue` right now, as the broker reports them (0 before it is declared).
    pub async fn queue_consumers(&self, queue: &str) -> u32 {
        self.declare_passive(queue)
            .await
            .map_or(0, |declared| declared.consumer_count())
    }

    /// The value of one series (`name{labels}` as Prometheus prints it) on this environment's
    /// admin address, 0 while it is absent. The parts run in this process share its metrics.
    pub async fn metric(&self, series: &str) -> u64 {
        let metrics = reqwest::get(format!("{}/metrics", self.admin_url))
            .await
            .expect("the admin address answers")
            .text()
            .await
            .expect("metrics are text");
        let prefix = format!("{series} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// True while the broker has `queue`.
    pub async fn queue_exists(&self, queue: &str) -> bool {
        self.declare_passive(queue).await.is_some()
    }

    /// The queue as the broker has it, or `None` if nobody declared it yet.
    async fn declare_passive(&self, queue: &str) -> Option<lapin::Queue> {
        let broker = Broker::new(self.config.amqp_url.expose());
        let channel = broker.channel().await.unwrap();
        let declared = channel
            .queue_declare(
                queue,
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .ok();
        let _ = channel.close(200, "").await;
        broker.close().await;
        declared
    }

    pub fn amqp_url() -> &'static str {
        AMQP_URL
    }

    /// Takes every message out of the dead-letter queue.
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let broker = Broker::new(self.config.amqp_url.expose());
        let channel = broker.channel().await.unwrap();
        let mut letters = Vec::new();
        let queue = self.config.namespace.dead_queue();
        while let Some(message) = channel.basic_get(&queue, Default::default()).await.unwrap() {
            let headers = message.delivery.properties.headers().as_ref();
            letters.push(DeadLetter {
                body: message.delivery.data.clone(),
                reason: linkkit_bus::header_string(headers, linkkit_bus::REASON_HEADER)
                    .unwrap_or_default(),
                source_queue: linkkit_bus::header_string(headers, linkkit_bus::SOURCE_QUEUE_HEADER)
                    .unwrap_or_default(),
            });
            message.delivery.ack(Default::default()).await.unwrap();
        }
        let _ = channel.close(200, "").await;
        broker.close().await;
        letters
    }

    /// Stops every part, then deletes the queues, exchanges, Redis keys and database.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let topology = self.topology();
        for running in self.running {
            let stopped = running.await.expect("linkkit::run does not panic");
            stopped.expect("linkkit::run stops cleanly");
        }
        let broker = Broker::new(self.config.amqp_url.expose());
        if let Ok(channel) = broker.channel().await {
            let _ = topology.delete(&channel).await;
        }
        broker.close().await;
        if let Ok(redis) = linkkit_cache::Redis::connect(REDIS_URL) {
            forget_keys(&redis, &self.config.namespace.redis_key(&["*"])).await;
        }
        self.pool.close().await;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres")).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database
            ))
            .execute(&mut admin)
            .await;
        }
    }
}

/// Removes the keys matching `pattern` a page at a time (`SCAN`, then `UNLINK`), never with
/// `KEYS`: on a Redis holding millions of keys (after a benchmark, say) `KEYS` blocks the server
/// for seconds and every other test's Redis calls time out meanwhile.
async fn forget_keys(redis: &linkkit_cache::Redis, pattern: &str) {
    let mut cursor = 0u64;
    loop {
        let page: Result<(u64, Vec<String>), _> = redis
            .query(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000),
            )
            .await;
        let Ok((next, keys)) = page else { return };
        if !keys.is_empty() {
            let _: Result<(), _> = redis.query(redis::cmd("UNLINK").arg(&keys)).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("a free port")
}

fn url_of(listener: &TcpListener) -> String {
    format!("http://{}", listener.local_addr().unwrap())
}

/// The `linkkit` binary of the same build as this program: beside it (a binary such as
/// `linkkit-bench` in `target/<profile>/`) or one folder up (a test in `target/<profile>/deps/`).
/// `cargo test --workspace` builds it before running the tests.
pub fn linkkit_binary() -> std::path::PathBuf {
    let this = std::env::current_exe().expect("this program has a path");
    let beside = this.with_file_name("linkkit");
    if beside.exists() {
        return beside;
    }
    let profile_dir = this
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let binary = profile_dir.join("linkkit");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        binary.display()
    );
    binary
}

/// Logs of the services under test, shown for failing tests; `RUST_LOG` picks the level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
