//! Linkkit's domain core: the vocabulary every other crate speaks.
//!
//! Everything here is pure: ids and their prefixes, the event envelope and its JSON, the delivery
//! job that travels between fan-out and sender, Standard Webhooks signing, the retry schedule and
//! the decision taken after each attempt, and the rules for slugs and URLs. No crate of ours is a
//! dependency and nothing here touches the network, a clock other than `Utc::now`, or a file.

pub mod api_key;
pub mod duration;
pub mod event;
pub mod ids;
pub mod job;
pub mod namespace;
pub mod net;
pub mod retry;
pub mod session_token;
pub mod signing;
pub mod slug;
pub mod url_rules;

pub use event::{Envelope, EventType};
pub use ids::{DeliveryId, EndpointId, EventId, LinkId, WorkspaceId};
pub use job::DeliveryJob;
pub use namespace::Namespace;
