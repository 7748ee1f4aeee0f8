//! Prefixed, time-ordered identifiers (`lnk_…`, `ep_…`, `evt_…`, `dlv_…`, `ws_…`).
//!
//! The body is a UUIDv7 in lowercase hex, so ids sort by creation time: list endpoints order and
//! paginate on the id alone. Each kind is its own type, so an endpoint id can never be passed
//! where a link id is expected, and `parse` rejects a string with the wrong prefix or body.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` followed by 32 hex digits)")]
pub struct InvalidId {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, ordered after every id made earlier on this clock.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                let body = value.strip_prefix($prefix).filter(|body| {
                    body.len() == 32 && body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                });
                match body {
                    Some(_) => Ok(Self(value.to_owned())),
                    None => Err(InvalidId { kind: $kind, prefix: $prefix, value: value.to_owned() }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// A workspace: the tenant every link, endpoint, key and delivery belongs to.
    WorkspaceId, "ws_", "workspace"
);
prefixed_id!(
    /// A short link.
    LinkId, "lnk_", "link"
);
prefixed_id!(
    /// A webhook endpoint.
    EndpointId, "ep_", "endpoint"
);
prefixed_id!(
    /// An event; it is also the `webhook-id` header, the same on every retry.
    EventId, "evt_", "event"
);
prefixed_id!(
    /// One event on its way to one endpoint.
    DeliveryId, "dlv_", "delivery"
);
prefixed_id!(
    /// An API key's public handle (never the key itself).
    ApiKeyId, "key_", "API key"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_creation() {
        let first = LinkId::generate();
        let second = LinkId::generate();
        assert_eq!(LinkId::parse(first.as_str()).unwrap(), first);
        assert!(first < second, "{first} should sort before {second}");
    }

    #[test]
    fn an_id_with_another_kinds_prefix_is_rejected() {
        let endpoint = EndpointId::generate();
        let error = LinkId::parse(endpoint.as_str()).unwrap_err();
        assert_eq!(error.kind, "link");
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = EventId::parse("evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70\""
        );
        assert!(serde_json::from_str::<EventId>("\"evt_nothex\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_only_accepts_the_exact_shape(input in ".{0,48}") {
            if let Ok(id) = LinkId::parse(&input) {
                prop_assert!(id.as_str().starts_with("lnk_"));
                prop_assert_eq!(id.as_str().len(), 36);
            }
        }
    }
}
