//! Configuration: every `LINKKIT_*` variable, its default, and its validation, in one place.
//!
//! Parsed once at start and shared as `Arc<Config>`. A variable that is set but invalid stops
//! the process with a message naming the variable and the bad value. Connection URLs may hold
//! passwords, so they live in `Redacted` and never reach a log line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use linkkit_bus::{QueueType, Topology};
use linkkit_core::duration::parse_duration;
use linkkit_core::net::TargetPolicy;
use linkkit_core::retry::{RetrySchedule, DEFAULT_SCHEDULE};
use linkkit_core::Namespace;

/// Defaults, as documented in SPEC §2 and the README.
pub mod defaults {
    pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/linkkit";
    pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/0";
    pub const NAMESPACE: &str = "linkkit";
    pub const API_ADDR: &str = "127.0.0.1:8080";
    pub const REDIRECT_ADDR: &str = "127.0.0.1:8081";
    pub const ADMIN_ADDR: &str = "127.0.0.1:9464";
    pub const PUBLIC_BASE_URL: &str = "http://127.0.0.1:8081";
    pub const DELIVERY_TIMEOUT: &str = "15s";
    pub const DISABLE_AFTER: &str = "5d";
    /// Visit events the redirect holds while the broker is away.
    pub const EVENT_BUFFER: usize = 100_000;
    pub const SENDER_CONCURRENCY: usize = 1024;
    pub const FANOUT_CONCURRENCY: usize = 1024;
    /// Jobs waiting in the deliveries queue before fan-out workers wait for room.
    pub const FANOUT_MAX_QUEUED_JOBS: u32 = 1000;
    pub const ENDPOINT_CONCURRENCY: usize = 32;
    /// Where reverse proxies and load balancers usually sit.
    pub const TRUSTED_PROXIES: &str =
        "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";
    /// API requests per second per key.
    pub const API_RATE_LIMIT: &str = "100";
}

/// A value that must not be printed (URLs with passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Redacted,
    pub amqp_url: Redacted,
    pub redis_url: Redacted,
    pub namespace: Namespace,
    /// `LINKKIT_QUEUE_TYPE`: `classic` (default) or `quorum` for every durable queue.
    pub queue_type: QueueType,
    pub api_addr: SocketAddr,
    pub redirect_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub public_base_url: String,
    /// `LINKKIT_API_BASE_URL`: where clients reach the API (default `http://` + the API address).
    pub api_base_url: String,
    pub allow_private_targets: bool,
    /// `LINKKIT_ALLOWED_TARGET_CIDRS`: private ranges webhooks may go to anyway.
    pub allowed_target_ranges: Vec<IpNet>,
    pub retry_schedule: RetrySchedule,
    pub delivery_timeout: Duration,
    pub disable_after: Duration,
    pub event_buffer: usize,
    pub track_bots: bool,
    /// `LINKKIT_GEOIP_DB`: a GeoLite2/GeoIP2 Country or City `.mmdb` file.
    pub geoip_db: Option<PathBuf>,
    /// `LINKKIT_TRUST_PROXY_HEADERS`: believe `X-Forwarded-For` and CDN country headers from
    /// `LINKKIT_TRUSTED_PROXIES`.
    pub trust_proxy_headers: bool,
    pub trusted_proxies: Vec<IpNet>,
    pub sender_concurrency: usize,
    pub endpoint_concurrency: usize,
    pub fanout_concurrency: usize,
    /// `LINKKIT_FANOUT_MAX_QUEUED_JOBS`: jobs that may wait in the deliveries queue before the
    /// fan-out workers wait for room; 0 for no bound.
    pub fanout_max_queued_jobs: u32,
    /// `LINKKIT_API_RATE_LIMIT`: requests per second per API key; `None` (set to 0) for no limit.
    pub api_rate_limit: Option<u32>,
}

/// A variable that is set to something unusable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// The broker topology every process declares.
    pub fn topology(&self) -> Topology {
        Topology::new(self.namespace.clone(), self.retry_schedule.tiers())
            .with_queue_type(self.queue_type)
    }

    pub fn target_policy(&self) -> TargetPolicy {
        TargetPolicy {
            allow_private: self.allow_private_targets,
            allowed_ranges: self.allowed_target_ranges.clone(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every variable through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let read = Reader { lookup: &lookup };
        Ok(Config {
            database_url: Redacted(read.url(
                "LINKKIT_DATABASE_URL",
                defaults::DATABASE_URL,
                &["postgres", "postgresql"],
            )?),
            amqp_url: Redacted(read.amqp_urls("LINKKIT_AMQP_URL", defaults::AMQP_URL)?),
            redis_url: Redacted(read.url(
                "LINKKIT_REDIS_URL",
                defaults::REDIS_URL,
                &["redis", "rediss"],
            )?),
            queue_type: read.parsed("LINKKIT_QUEUE_TYPE", "classic", |v| {
                QueueType::parse(v).ok_or_else(|| "expected classic or quorum".to_owned())
            })?,
            namespace: read.parsed("LINKKIT_NAMESPACE", defaults::NAMESPACE, |v| {
                Namespace::parse(v).map_err(|e| e.to_string())
            })?,
            api_addr: read.parsed("LINKKIT_API_ADDR", defaults::API_ADDR, socket_addr)?,
            redirect_addr: read.parsed(
                "LINKKIT_REDIRECT_ADDR",
                defaults::REDIRECT_ADDR,
                socket_addr,
            )?,
            admin_addr: read.parsed("LINKKIT_ADMIN_ADDR", defaults::ADMIN_ADDR, socket_addr)?,
            api_base_url: {
                let api_addr: SocketAddr =
                    read.parsed("LINKKIT_API_ADDR", defaults::API_ADDR, socket_addr)?;
                read.url(
                    "LINKKIT_API_BASE_URL",
                    &format!("http://{api_addr}"),
                    &["http", "https"],
                )?
            },
            public_base_url: read.url(
                "LINKKIT_PUBLIC_BASE_URL",
                defaults::PUBLIC_BASE_URL,
                &["http", "https"],
            )?,
            allow_private_targets: read.parsed(
                "LINKKIT_ALLOW_PRIVATE_TARGETS",
                "false",
                boolean,
            )?,
            allowed_target_ranges: read.parsed("LINKKIT_ALLOWED_TARGET_CIDRS", "", |v| {
                TargetPolicy::parse_ranges(v).map_err(|e| e.to_string())
            })?,
            retry_schedule: read.parsed("LINKKIT_RETRY_SCHEDULE", DEFAULT_SCHEDULE, |v| {
                RetrySchedule::parse(v).map_err(|e| e.to_string())
            })?,
            delivery_timeout: read.parsed(
                "LINKKIT_DELIVERY_TIMEOUT",
                defaults::DELIVERY_TIMEOUT,
                positive_duration,
            )?,
            disable_after: read.parsed(
                "LINKKIT_DISABLE_AFTER",
                defaults::DISABLE_AFTER,
                positive_duration,
            )?,
            event_buffer: read.parsed(
                "LINKKIT_EVENT_BUFFER",
                &defaults::EVENT_BUFFER.to_string(),
                positive_count,
            )?,
            track_bots: read.parsed("LINKKIT_TRACK_BOTS", "false", boolean)?,
            geoip_db: read.parsed("LINKKIT_GEOIP_DB", "", |v| {
                if v.is_empty() {
                    return Ok(None);
                }
                let path = PathBuf::from(v);
                if path.is_file() {
                    Ok(Some(path))
                } else {
                    Err("no such file".into())
                }
            })?,
            trust_proxy_headers: read.parsed("LINKKIT_TRUST_PROXY_HEADERS", "false", boolean)?,
            trusted_proxies: read.parsed(
                "LINKKIT_TRUSTED_PROXIES",
                defaults::TRUSTED_PROXIES,
                |v| TargetPolicy::parse_ranges(v).map_err(|e| e.to_string()),
            )?,
            sender_concurrency: read.parsed(
                "LINKKIT_SENDER_CONCURRENCY",
                &defaults::SENDER_CONCURRENCY.to_string(),
                positive_count,
            )?,
            endpoint_concurrency: read.parsed(
                "LINKKIT_ENDPOINT_CONCURRENCY",
                &defaults::ENDPOINT_CONCURRENCY.to_string(),
                positive_count,
            )?,
            fanout_concurrency: read.parsed(
                "LINKKIT_FANOUT_CONCURRENCY",
                &defaults::FANOUT_CONCURRENCY.to_string(),
                positive_count,
            )?,
            fanout_max_queued_jobs: read.parsed(
                "LINKKIT_FANOUT_MAX_QUEUED_JOBS",
                &defaults::FANOUT_MAX_QUEUED_JOBS.to_string(),
                |v| {
                    v.parse::<u32>()
                        .map_err(|_| "expected a whole number (0 for no bound)".into())
                },
            )?,
            api_rate_limit: read.parsed(
                "LINKKIT_API_RATE_LIMIT",
                defaults::API_RATE_LIMIT,
                |v| {
                    v.parse::<u32>()
                        .map(|n| (n > 0).then_some(n))
                        .map_err(|_| "expected a whole number (0 for no limit)".into())
                },
            )?,
        })
    }
}

struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn parsed<T>(
        &self,
        variable: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let value = (self.lookup)(variable).unwrap_or_else(|| default.to_owned());
        parse(value.trim()).map_err(|reason| ConfigError {
            variable,
            value,
            reason,
        })
    }

    fn url(
        &self,
        variable: &'static str,
        default: &str,
        schemes: &[&str],
    ) -> Result<String, ConfigError> {
        self.parsed(variable, default, |value| check_url(value, schemes))
    }

    /// One AMQP URL, or several separated by commas (tried in turn).
    fn amqp_urls(&self, variable: &'static str, default: &str) -> Result<String, ConfigError> {
        self.parsed(variable, default, |value| {
            let urls: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            if urls.is_empty() {
                return Err("no broker URL given".into());
            }
            for url in &urls {
                check_url(url, &["amqp", "amqps"])?;
            }
            Ok(urls.join(","))
        })
    }
}

fn check_url(value: &str, schemes: &[&str]) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("the scheme must be one of {}", schemes.join(", ")));
    }
    Ok(value.to_owned())
}

fn socket_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| "expected an address and port such as 127.0.0.1:8080".to_owned())
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn positive_duration(value: &str) -> Result<Duration, String> {
    match parse_duration(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be longer than zero".into()),
        Err(error) => Err(error.to_string()),
    }
}

fn positive_count(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "expected a whole number above zero".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn the_defaults_are_those_of_the_contract() {
        let config = config_with(&[]).unwrap();
        assert_eq!(config.namespace.as_str(), "linkkit");
        assert_eq!(config.api_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.redirect_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(config.admin_addr.to_string(), "127.0.0.1:9464");
        assert_eq!(config.public_base_url, "http://127.0.0.1:8081");
        assert!(!config.allow_private_targets);
        assert_eq!(config.retry_schedule.max_attempts(), 8);
        assert_eq!(config.delivery_timeout, Duration::from_secs(15));
        assert_eq!(config.disable_after, Duration::from_secs(5 * 86_400));
        assert_eq!(config.fanout_max_queued_jobs, 1000);
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_value() {
        for (variable, value) in [
            ("LINKKIT_DELIVERY_TIMEOUT", "soon"),
            ("LINKKIT_RETRY_SCHEDULE", "5s,never"),
            ("LINKKIT_API_ADDR", "localhost"),
            ("LINKKIT_ALLOW_PRIVATE_TARGETS", "maybe"),
            ("LINKKIT_NAMESPACE", "Has Spaces"),
            ("LINKKIT_AMQP_URL", "http://broker"),
            ("LINKKIT_PUBLIC_BASE_URL", "lkkt.in"),
            ("LINKKIT_ALLOWED_TARGET_CIDRS", "10.0.0.0/8,nonsense"),
            ("LINKKIT_GEOIP_DB", "/nonexistent/GeoLite2-Country.mmdb"),
            ("LINKKIT_QUEUE_TYPE", "stream"),
            ("LINKKIT_FANOUT_MAX_QUEUED_JOBS", "-1"),
        ] {
            let error = config_with(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable, variable);
            let message = error.to_string();
            assert!(
                message.contains(variable) && message.contains(value),
                "{message}"
            );
        }
    }

    #[test]
    fn connection_urls_never_show_in_debug_output() {
        let config =
            config_with(&[("LINKKIT_DATABASE_URL", "postgres://app:hunter2@db/linkkit")]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn several_brokers_may_be_listed() {
        let config =
            config_with(&[("LINKKIT_AMQP_URL", "amqp://a:5672/%2f, amqp://b:5672/%2f")]).unwrap();
        assert_eq!(
            config.amqp_url.expose(),
            "amqp://a:5672/%2f,amqp://b:5672/%2f"
        );
    }
}
