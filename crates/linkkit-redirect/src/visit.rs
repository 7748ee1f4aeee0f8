//! A visit as the buffer holds it between the redirect and the broker.
//!
//! The redirect answers first and publishes later, so what it keeps per click should be small
//! and cheap to make: the cached link is shared (`Arc`), not copied, and the event's JSON is
//! written once, when the publisher takes the visit, straight from typed fields (no
//! intermediate `serde_json::Value`). A burst that outruns the broker then costs a few hundred
//! bytes per waiting click instead of a kilobyte or more.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use linkkit_bus::Outgoing;
use linkkit_core::event::VisitData;
use linkkit_core::{Envelope, EventId, EventType, LinkId, Namespace, WorkspaceId};

use crate::lookup::Target;

/// One human visit of a link, stamped when it happened.
#[derive(Debug)]
pub struct Visit {
    pub id: EventId,
    /// `link.clicked` or `qr.scanned`.
    pub event: EventType,
    pub at: DateTime<Utc>,
    pub link: Arc<Target>,
    pub click_location: String,
    pub device: &'static str,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub referrer: Option<String>,
}

impl Visit {
    /// The message for the events exchange, or `None` if the cached link's ids are malformed
    /// (never the case for a link that came from the database).
    pub fn to_outgoing(&self, namespace: &Namespace, public_base_url: &str) -> Option<Outgoing> {
        let link = &*self.link;
        let workspace_id = WorkspaceId::parse(&link.workspace_id).ok()?;
        let data = VisitData {
            link_id: LinkId::parse(&link.link_id).ok()?,
            short_url: format!("{}/{}", public_base_url.trim_end_matches('/'), link.slug),
            destination_url: link.destination_url.clone(),
            segment: link.segment.clone(),
            campaign: link.campaign.clone(),
            click_location: self.click_location.clone(),
            device: self.device.to_owned(),
            browser: self.browser.clone(),
            os: self.os.clone(),
            referrer: self.referrer.clone(),
        };
        let body = Envelope::body_of(&self.id, self.event, self.at, &data);
        Some(Outgoing::event_body(
            namespace,
            &workspace_id,
            self.event,
            body,
            self.at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkkit_bus::WORKSPACE_HEADER;

    fn target() -> Arc<Target> {
        Arc::new(Target {
            link_id: LinkId::generate().to_string(),
            workspace_id: WorkspaceId::generate().to_string(),
            slug: "summer-sale".into(),
            destination_url: "https://example.com/product".into(),
            segment: Some("Black Friday 2026".into()),
            campaign: None,
            expires_at: None,
            deleted: false,
        })
    }

    #[test]
    fn a_visit_becomes_the_envelope_of_the_contract_routed_by_its_type() {
        let link = target();
        let visit = Visit {
            id: EventId::generate(),
            event: EventType::QrScanned,
            at: Utc::now(),
            link: link.clone(),
            click_location: "India".into(),
            device: "Mobile",
            browser: Some("Safari".into()),
            os: Some("iOS".into()),
            referrer: None,
        };
        let message = visit
            .to_outgoing(&Namespace::parse("linkkit").unwrap(), "https://lkkt.in/")
            .unwrap();
        assert_eq!(message.routing_key, "qr.scanned");
        assert!(message
            .headers
            .contains(&(WORKSPACE_HEADER, link.workspace_id.clone())));
        let envelope: Envelope = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(envelope.id, visit.id);
        assert_eq!(envelope.event, EventType::QrScanned);
        let data: VisitData = serde_json::from_value(envelope.data).unwrap();
        assert_eq!(data.link_id.as_str(), link.link_id);
        assert_eq!(data.short_url, "https://lkkt.in/summer-sale");
        assert_eq!(data.segment.as_deref(), Some("Black Friday 2026"));
        assert_eq!(data.campaign, None);
        assert_eq!(
            (data.click_location.as_str(), data.device.as_str()),
            ("India", "Mobile")
        );
        assert_eq!(data.os.as_deref(), Some("iOS"));
    }
}
