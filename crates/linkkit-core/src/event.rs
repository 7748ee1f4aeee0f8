//! The event envelope every webhook carries, and the data of each event type.
//!
//! The JSON is part of the public contract (SPEC §3): tests below pin it against literals, so a
//! change to a field name or format fails here before it reaches a customer.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{EventId, LinkId};

/// The five event types, spelled exactly as customers subscribe to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "link.clicked")]
    LinkClicked,
    #[serde(rename = "link.created")]
    LinkCreated,
    #[serde(rename = "link.updated")]
    LinkUpdated,
    #[serde(rename = "link.deleted")]
    LinkDeleted,
    #[serde(rename = "qr.scanned")]
    QrScanned,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::LinkClicked,
        EventType::LinkCreated,
        EventType::LinkUpdated,
        EventType::LinkDeleted,
        EventType::QrScanned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::LinkClicked => "link.clicked",
            EventType::LinkCreated => "link.created",
            EventType::LinkUpdated => "link.updated",
            EventType::LinkDeleted => "link.deleted",
            EventType::QrScanned => "qr.scanned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event type (expected one of link.clicked, link.created, link.updated, link.deleted, qr.scanned)")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|event_type| event_type.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"id", "event", "timestamp", "data"}`: the body of every webhook and every message on
/// the events exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: EventId,
    pub event: EventType,
    #[serde(with = "rfc3339_seconds")]
    pub timestamp: DateTime<Utc>,
    pub data: Value,
}

impl Envelope {
    /// A new event with a fresh id, stamped now.
    pub fn new(event: EventType, data: impl Serialize) -> Self {
        Self::at(event, Utc::now(), data)
    }

    pub fn at(event: EventType, timestamp: DateTime<Utc>, data: impl Serialize) -> Self {
        let data = serde_json::to_value(data).expect("event data always serializes to JSON");
        Self {
            id: EventId::generate(),
            event,
            timestamp,
            data,
        }
    }

    /// The exact bytes that are signed and sent.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// The body of an envelope written straight from typed `data`, without building the
    /// `Envelope` and its `Value` first: the same JSON object, for the redirect's hot path.
    pub fn body_of(
        id: &EventId,
        event: EventType,
        timestamp: DateTime<Utc>,
        data: &impl Serialize,
    ) -> Vec<u8> {
        #[derive(Serialize)]
        struct Borrowed<'a, D> {
            id: &'a EventId,
            event: EventType,
            #[serde(with = "rfc3339_seconds")]
            timestamp: DateTime<Utc>,
            data: &'a D,
        }
        let envelope = Borrowed {
            id,
            event,
            timestamp,
            data,
        };
        serde_json::to_vec(&envelope).expect("event data always serializes to JSON")
    }
}

/// `data` of `link.clicked` and `qr.scanned`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitData {
    pub link_id: LinkId,
    pub short_url: String,
    pub destination_url: String,
    pub segment: Option<String>,
    pub campaign: Option<String>,
    /// A country name, or `Unknown`.
    pub click_location: String,
    /// `Mobile`, `Desktop`, `Tablet` or `Unknown` (`Bot` only when bots are tracked).
    pub device: String,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub referrer: Option<String>,
}

/// `data` of `link.created`, `link.updated` and `link.deleted`: the link as it now is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkState {
    pub link_id: LinkId,
    pub slug: String,
    pub short_url: String,
    pub destination_url: String,
    pub segment: Option<String>,
    pub campaign: Option<String>,
    pub tags: Vec<String>,
    #[serde(with = "rfc3339_seconds::option")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_seconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339_seconds")]
    pub updated_at: DateTime<Utc>,
}

/// `data` of `link.updated`: the new state, the names of the fields that changed and what each
/// held before (in the manner of Stripe's `previous_attributes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkUpdate {
    #[serde(flatten)]
    pub link: LinkState,
    pub changed_fields: Vec<String>,
    pub previous_attributes: serde_json::Map<String, Value>,
}

/// A realistic example of `event_type`, sent by "Send test event" so receivers can be built
/// before real traffic arrives. Its link id is fixed and marks it as a sample.
pub fn sample(event_type: EventType) -> Envelope {
    let link_id = LinkId::parse("lnk_00000000000070008000000000000000").expect("a valid sample id");
    let now = Utc::now();
    let state = LinkState {
        link_id: link_id.clone(),
        slug: "summer-sale".into(),
        short_url: "https://lkkt.in/summer-sale".into(),
        destination_url: "https://example.com/product".into(),
        segment: Some("Black Friday 2026".into()),
        campaign: Some("Q4 Sales".into()),
        tags: vec!["sample".into()],
        expires_at: None,
        created_at: now,
        updated_at: now,
    };
    match event_type {
        EventType::LinkClicked | EventType::QrScanned => Envelope::new(
            event_type,
            VisitData {
                link_id,
                short_url: state.short_url,
                destination_url: state.destination_url,
                segment: state.segment,
                campaign: state.campaign,
                click_location: "India".into(),
                device: "Mobile".into(),
                browser: Some("Safari".into()),
                os: Some("iOS".into()),
                referrer: None,
            },
        ),
        EventType::LinkUpdated => {
            let mut previous = serde_json::Map::new();
            previous.insert(
                "destination_url".into(),
                "https://example.com/old-product".into(),
            );
            Envelope::new(
                event_type,
                LinkUpdate {
                    link: state,
                    changed_fields: vec!["destination_url".into()],
                    previous_attributes: previous,
                },
            )
        }
        EventType::LinkCreated | EventType::LinkDeleted => Envelope::new(event_type, state),
    }
}

/// Timestamps as `2026-02-27T12:45:00Z`: UTC, whole seconds, a `Z`.
pub mod rfc3339_seconds {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn format(timestamp: &DateTime<Utc>) -> String {
        timestamp.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    pub fn serialize<S: Serializer>(timestamp: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(timestamp))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            timestamp: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match timestamp {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|raw| {
                    DateTime::parse_from_rfc3339(&raw)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn the_click_envelope_matches_the_contract() {
        let envelope = Envelope {
            id: EventId::parse("evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70").unwrap(),
            event: EventType::LinkClicked,
            timestamp: Utc.with_ymd_and_hms(2026, 2, 27, 12, 45, 0).unwrap(),
            data: serde_json::to_value(VisitData {
                link_id: LinkId::parse("lnk_0192f0c7e9a47c3e8f1a2b3c4d5e6f71").unwrap(),
                short_url: "https://lkkt.in/summer-sale".into(),
                destination_url: "https://example.com/product".into(),
                segment: Some("Black Friday 2026".into()),
                campaign: None,
                click_location: "India".into(),
                device: "Mobile".into(),
                browser: None,
                os: None,
                referrer: None,
            })
            .unwrap(),
        };
        assert_eq!(
            serde_json::to_value(&envelope).unwrap(),
            json!({
                "id": "evt_0192f0c7e9a47c3e8f1a2b3c4d5e6f70",
                "event": "link.clicked",
                "timestamp": "2026-02-27T12:45:00Z",
                "data": {
                    "link_id": "lnk_0192f0c7e9a47c3e8f1a2b3c4d5e6f71",
                    "short_url": "https://lkkt.in/summer-sale",
                    "destination_url": "https://example.com/product",
                    "segment": "Black Friday 2026",
                    "campaign": null,
                    "click_location": "India",
                    "device": "Mobile",
                    "browser": null,
                    "os": null,
                    "referrer": null
                }
            })
        );
    }

    #[test]
    fn a_body_written_from_typed_data_is_the_envelope_s_json() {
        let data = VisitData {
            link_id: LinkId::generate(),
            short_url: "https://lkkt.in/a".into(),
            destination_url: "https://example.com/\u{e9}?q=\"x\"".into(),
            segment: None,
            campaign: Some("Q4".into()),
            click_location: "Unknown".into(),
            device: "Desktop".into(),
            browser: Some("Firefox".into()),
            os: None,
            referrer: Some("https://news.example/".into()),
        };
        let envelope = Envelope::new(EventType::QrScanned, &data);
        let direct = Envelope::body_of(&envelope.id, envelope.event, envelope.timestamp, &data);
        let as_json = |body: &[u8]| serde_json::from_slice::<Value>(body).unwrap();
        assert_eq!(as_json(&direct), as_json(&envelope.to_body()));
    }

    proptest::proptest! {
        #[test]
        fn only_the_five_names_parse_as_event_types(input in "[a-z.]{0,16}") {
            let parsed = input.parse::<EventType>();
            let known = EventType::ALL.iter().any(|e| e.as_str() == input);
            proptest::prop_assert_eq!(parsed.is_ok(), known);
        }
    }

    #[test]
    fn event_type_names_round_trip() {
        for event_type in EventType::ALL {
            let json = serde_json::to_string(&event_type).unwrap();
            assert_eq!(json, format!("\"{}\"", event_type.as_str()));
            assert_eq!(
                event_type.as_str().parse::<EventType>().unwrap(),
                event_type
            );
        }
        assert!("link.exploded".parse::<EventType>().is_err());
    }

    #[test]
    fn samples_carry_the_fields_of_their_type() {
        let click = sample(EventType::LinkClicked);
        assert_eq!(click.data["device"], "Mobile");
        assert_eq!(click.data["click_location"], "India");
        let update = sample(EventType::LinkUpdated);
        assert_eq!(update.data["changed_fields"], json!(["destination_url"]));
        assert!(update.data["previous_attributes"]["destination_url"].is_string());
        assert_eq!(sample(EventType::LinkDeleted).data["slug"], "summer-sale");
    }

    #[test]
    fn an_envelope_parses_back_from_its_body() {
        let envelope = Envelope::new(EventType::QrScanned, json!({"x": 1}));
        let parsed: Envelope = serde_json::from_slice(&envelope.to_body()).unwrap();
        assert_eq!(parsed.id, envelope.id);
        assert_eq!(parsed.event, EventType::QrScanned);
    }
}
