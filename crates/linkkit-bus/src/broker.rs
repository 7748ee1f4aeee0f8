//! One shared AMQP connection per process, re-established on demand.
//!
//! `LINKKIT_AMQP_URL` may list several brokers separated by commas; a new connection tries them
//! in turn, so losing a node means reconnecting to the next one.

use std::sync::Arc;

use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use crate::metrics;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no broker could be reached: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused to confirm a published message")]
    Nacked,
}

#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    urls: Vec<String>,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may hold a password: show only how many there are.
        f.debug_struct("Broker")
            .field("urls", &self.inner.urls.len())
            .finish()
    }
}

impl Broker {
    /// `urls` is the value of `LINKKIT_AMQP_URL`: one URL or several separated by commas.
    pub fn new(urls: &str) -> Self {
        let urls = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        Self {
            inner: Arc::new(Inner {
                urls,
                connection: Mutex::new(None),
            }),
        }
    }

    /// A fresh channel on the shared connection, connecting (or reconnecting) first if needed.
    pub async fn channel(&self) -> Result<Channel, BusError> {
        let mut guard = self.inner.connection.lock().await;
        if let Some(connection) = guard.as_ref() {
            if connection.status().connected() {
                return Ok(connection.create_channel().await?);
            }
            metrics::BROKER_RECONNECTS.inc();
        }
        let connection = self.connect().await?;
        let channel = connection.create_channel().await?;
        *guard = Some(connection);
        Ok(channel)
    }

    /// A broker of the same URLs with a connection of its own, for work whose failures must
    /// not close the connection the consumers share (housekeeping); close it when done.
    pub fn with_own_connection(&self) -> Self {
        Self {
            inner: Arc::new(Inner {
                urls: self.inner.urls.clone(),
                connection: Mutex::new(None),
            }),
        }
    }

    /// True while the shared connection is open.
    pub async fn is_connected(&self) -> bool {
        let guard = self.inner.connection.lock().await;
        guard.as_ref().is_some_and(|c| c.status().connected())
    }

    /// Closes the shared connection (graceful shutdown, and fault tests).
    pub async fn close(&self) {
        if let Some(connection) = self.inner.connection.lock().await.take() {
            let _ = connection.close(200, "linkkit closing").await;
        }
    }

    async fn connect(&self) -> Result<Connection, BusError> {
        let mut failures = Vec::new();
        for url in &self.inner.urls {
            let properties = ConnectionProperties::default()
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio)
                .with_connection_name("linkkit".into());
            match Connection::connect(url, properties).await {
                Ok(connection) => return Ok(connection),
                Err(error) => failures.push(error.to_string()),
            }
        }
        Err(BusError::Unreachable(failures.join("; ")))
    }
}
