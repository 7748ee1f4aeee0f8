//! The HTTP client every attempt uses: one pooled keep-alive client per process, no redirects
//! followed, a hard timeout, and — unless private targets are allowed — a resolver that only
//! ever hands out public addresses, so the address that was checked is the one connected to
//! (a DNS answer that changes between check and connect cannot slip through).

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use linkkit_core::net::TargetPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::Client;

use crate::SenderSettings;

/// Refused because no address of the host is one the policy permits.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` resolves only to non-public addresses")]
pub struct NonPublicHost(pub String);

/// Resolves names and keeps only the addresses the policy permits.
struct PolicyResolver(Arc<TargetPolicy>);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| policy.permits(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(NonPublicHost(host)) as Box<dyn Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

pub fn build_client(settings: &SenderSettings) -> Client {
    let mut builder = Client::builder()
        .redirect(Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(std::time::Duration::from_secs(10)))
        .pool_max_idle_per_host(32)
        .user_agent(crate::USER_AGENT);
    if !settings.target_policy.allow_private {
        builder = builder.dns_resolver(Arc::new(PolicyResolver(Arc::new(
            settings.target_policy.clone(),
        ))));
    }
    builder
        .build()
        .expect("the HTTP client configuration is valid")
}
