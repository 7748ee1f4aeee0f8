//! The delivery job: one event on its way to one endpoint, as it travels on
//! `linkkit.deliveries` and its retry queues.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Envelope;
use crate::ids::{DeliveryId, EndpointId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
    pub workspace_id: WorkspaceId,
    pub endpoint_id: EndpointId,
    /// The number of the attempt this message asks for, starting at 1. A retry is a new message
    /// with `attempt + 1`, never a broker redelivery.
    pub attempt: u32,
    /// 0 for the delivery fan-out made, one more for each resend or replay. It is part of the
    /// idempotency key: the system never sends a generation twice, but an explicit resend is a
    /// new generation and is sent again.
    #[serde(default)]
    pub generation: u32,
    /// When the event entered the system, to the millisecond: the start of the
    /// event-to-delivery lag.
    pub event_time: DateTime<Utc>,
    pub event: Envelope,
}

impl DeliveryJob {
    pub fn next_attempt(&self) -> DeliveryJob {
        DeliveryJob {
            attempt: self.attempt + 1,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn the_job_json_is_pinned() {
        let mut event = Envelope::at(
            EventType::LinkCreated,
            Utc.with_ymd_and_hms(2026, 2, 27, 12, 45, 0).unwrap(),
            json!({"link_id": "lnk_x"}),
        );
        event.id = crate::ids::EventId::parse("evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70").unwrap();
        let job = DeliveryJob {
            delivery_id: DeliveryId::parse("dlv_0192f0c7e9a47c3e8f1a2b3c4d5e6f70").unwrap(),
            workspace_id: WorkspaceId::parse("ws_0192f0c7e9a47c3e8f1a2b3c4d5e6f70").unwrap(),
            endpoint_id: EndpointId::parse("ep_0192f0c7e9a47c3e8f1a2b3c4d5e6f70").unwrap(),
            attempt: 2,
            generation: 0,
            event_time: Utc.with_ymd_and_hms(2026, 2, 27, 12, 45, 0).unwrap(),
            event,
        };
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            json!({
                "delivery_id": "dlv_0192f0c7e9a47c3e8f1a2b3c4d5e6f70",
                "workspace_id": "ws_0192f0c7e9a47c3e8f1a2b3c4d5e6f70",
                "endpoint_id": "ep_0192f0c7e9a47c3e8f1a2b3c4d5e6f70",
                "attempt": 2,
                "generation": 0,
                "event_time": "2026-02-27T12:45:00Z",
                "event": {
                    "id": "evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70",
                    "event": "link.created",
                    "timestamp": "2026-02-27T12:45:00Z",
                    "data": {"link_id": "lnk_x"}
                }
            })
        );
        assert_eq!(job.next_attempt().attempt, 3);
    }
}
