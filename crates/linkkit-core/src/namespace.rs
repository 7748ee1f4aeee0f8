//! Every exchange, queue and Redis key Linkkit creates, named under one prefix
//! (`LINKKIT_NAMESPACE`), so two deployments or two test runs never see each other.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid namespace (use 1-64 characters of a-z, 0-9, `_`, `-`)")]
pub struct InvalidNamespace(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    pub fn parse(value: &str) -> Result<Self, InvalidNamespace> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidNamespace(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Topic exchange of raw domain events; routing key = event type.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.0)
    }

    /// Queue of the fan-out workers, bound to the events exchange with `#`.
    pub fn fanout_queue(&self) -> String {
        format!("{}.fanout", self.0)
    }

    /// The queue that counted clicks and scans before the fan-out did; now only retired (see
    /// `linkkit-fanout`'s `legacy_counters`).
    pub fn legacy_counters_queue(&self) -> String {
        format!("{}.counters", self.0)
    }

    /// Exchange and queue of delivery jobs (they share the name).
    pub fn deliveries(&self) -> String {
        format!("{}.deliveries", self.0)
    }

    /// The retry queue whose messages wait `delay` before returning to the deliveries queue.
    pub fn retry_queue(&self, delay: Duration) -> String {
        format!(
            "{}.deliveries.retry.{}",
            self.0,
            crate::duration::format_duration(delay)
        )
    }

    /// Exhausted jobs and unparseable messages.
    pub fn dead_queue(&self) -> String {
        format!("{}.deliveries.dead", self.0)
    }

    /// A Redis key under this namespace: `linkkit:{part}:{part}…`.
    pub fn redis_key(&self, parts: &[&str]) -> String {
        let mut key = self.0.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_namespace_gives_the_names_of_the_contract() {
        let ns = Namespace::parse("linkkit").unwrap();
        assert_eq!(ns.events_exchange(), "linkkit.events");
        assert_eq!(ns.fanout_queue(), "linkkit.fanout");
        assert_eq!(ns.deliveries(), "linkkit.deliveries");
        assert_eq!(
            ns.retry_queue(Duration::from_secs(300)),
            "linkkit.deliveries.retry.5m"
        );
        assert_eq!(ns.dead_queue(), "linkkit.deliveries.dead");
        assert_eq!(
            ns.redis_key(&["delivery", "dlv_1"]),
            "linkkit:delivery:dlv_1"
        );
    }

    #[test]
    fn names_with_spaces_or_capitals_are_refused() {
        assert!(Namespace::parse("Link Kit").is_err());
        assert!(Namespace::parse("").is_err());
    }
}
