//! A TCP proxy in front of RabbitMQ that a test can switch off and on: switched off, it cuts
//! every open connection and refuses new ones, which is what the services see when the broker
//! goes away — without disturbing the real broker other tests use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct BrokerProxy {
    pub amqp_url: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl BrokerProxy {
    /// A proxy to the local RabbitMQ, switched on.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let amqp_url = format!("amqp://guest:guest@{}/%2f", listener.local_addr().unwrap());
        let proxy = Self {
            amqp_url,
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
                accepting.connections.lock().await.spawn(forward(client));
            }
        });
        proxy
    }

    /// Cuts every connection and refuses new ones until [`BrokerProxy::restore`].
    pub async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn forward(mut client: TcpStream) {
    if let Ok(mut broker) = TcpStream::connect("127.0.0.1:5672").await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
    }
}
