//! A TCP proxy in front of RabbitMQ or Redis that a test can switch off and on: switched off, it
//! cuts every open connection and refuses new ones, which is what the services see when the
//! dependency goes away — without disturbing the real one other tests use.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// The URL the services should use instead of the real one.
    pub url: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl FaultProxy {
    /// A proxy to the local RabbitMQ, switched on.
    pub async fn rabbitmq() -> Self {
        Self::start(5672, |address| format!("amqp://guest:guest@{address}/%2f")).await
    }

    /// A proxy to the local Redis, switched on.
    pub async fn redis() -> Self {
        Self::start(6379, |address| format!("redis://{address}/0")).await
    }

    async fn start(target_port: u16, url: impl Fn(SocketAddr) -> String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url(listener.local_addr().unwrap());
        let proxy = Self {
            url,
            up: Arc::new(AtomicBool::new(true)),
            connections: Default::default(),
        };
        let accepting = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accepting.up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                accepting
                    .connections
                    .lock()
                    .await
                    .spawn(forward(client, target_port));
            }
        });
        proxy
    }

    /// Cuts every connection and refuses new ones until [`FaultProxy::restore`].
    pub async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn forward(mut client: TcpStream, target_port: u16) {
    if let Ok(mut target) = TcpStream::connect(("127.0.0.1", target_port)).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut target).await;
    }
}
