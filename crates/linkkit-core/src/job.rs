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
    /// The delivery may have been sent already: the fan-out published this job again for a
    /// copy of its event, or a sender parked it. The sender reads the delivery's status in
    /// Postgres before sending such a job (as it does a retry's), so its Redis key need
    /// remember a sent delivery only for as long as the job it first published can still be on
    /// its way. Left out of the JSON when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub maybe_sent: bool,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

impl DeliveryJob {
    /// The first attempt of a delivery's `generation`, as the fan-out, a resend or a replay
    /// publishes it; `event_time` starts its lag.
    pub fn first_attempt(
        delivery_id: DeliveryId,
        workspace_id: WorkspaceId,
        endpoint_id: EndpointId,
        generation: u32,
        event_time: DateTime<Utc>,
        event: Envelope,
    ) -> DeliveryJob {
        DeliveryJob {
            delivery_id,
            workspace_id,
            endpoint_id,
            attempt: 1,
            generation,
            event_time,
            event,
            maybe_sent: false,
        }
    }

    pub fn next_attempt(&self) -> DeliveryJob {
        DeliveryJob {
            attempt: self.attempt + 1,
            ..self.clone()
        }
    }

    /// This job as it is parked or published again: one whose delivery may have been sent.
    pub fn maybe_sent(&self) -> DeliveryJob {
        DeliveryJob {
            maybe_sent: true,
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
            maybe_sent: false,
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

    #[test]
    fn a_job_that_may_have_been_sent_says_so_and_a_job_without_the_field_has_not() {
        let job = DeliveryJob::first_attempt(
            DeliveryId::generate(),
            WorkspaceId::generate(),
            EndpointId::generate(),
            0,
            Utc::now(),
            Envelope::new(EventType::LinkClicked, json!({})),
        );
        let parked = job.maybe_sent();
        let json = serde_json::to_value(&parked).unwrap();
        assert_eq!(json["maybe_sent"], true);
        let back: DeliveryJob = serde_json::from_value(json).unwrap();
        assert!(back.maybe_sent);
        assert!(back.next_attempt().maybe_sent, "a retry keeps the flag");
        // A job published by an older release has no field: it was not flagged.
        let unflagged = serde_json::to_value(&job).unwrap();
        assert!(unflagged.get("maybe_sent").is_none());
        let back: DeliveryJob = serde_json::from_value(unflagged).unwrap();
        assert!(!back.maybe_sent);
    }
}
