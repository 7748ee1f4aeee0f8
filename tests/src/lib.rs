//! The end-to-end test harness: the real services' code, on port 0, against the real RabbitMQ,
//! Redis and Postgres of the machine.
//!
//! Every [`TestEnv`] gets its own database, its own namespace of exchanges, queues and Redis
//! keys, and its own ports, so tests run in parallel without seeing each other, and `stop`
//! removes all of it afterwards.

mod api;
mod env;
mod proxy;
mod receiver;

pub use api::ApiClient;
pub use env::{linkkit_binary, DeadLetter, TestEnv, TestWorkspace};
pub use proxy::FaultProxy;
pub use receiver::{Received, Receiver};

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it returns `Some` or `deadline` passes; panics with `what` on timeout.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// User-Agents of real devices, as the redirect sees them.
pub mod user_agents {
    pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    pub const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    pub const SLACKBOT: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
}
