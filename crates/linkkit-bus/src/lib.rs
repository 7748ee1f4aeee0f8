//! Linkkit's RabbitMQ seam: the topology of SPEC §7, a connection that fails over and comes
//! back, a publisher that waits for confirms, and the consume → handle → ack loop every worker
//! runs. It makes no business decisions: handlers say what a message caused, the loop acks.

mod acks;
mod broker;
mod consume;
mod headers;
pub mod metrics;
mod publisher;
mod queue_depth;
mod room;
pub mod topology;

pub use broker::{Broker, BusError};
pub use consume::{run_consumer, ConsumerSettings, Handled, Handler, Message};
pub use headers::{
    header_string, header_table, OCCURRED_AT_HEADER, REASON_HEADER, SOURCE_QUEUE_HEADER,
    WORKSPACE_HEADER,
};
pub use publisher::{message_properties, publish_confirmed, Outgoing, Publication, Publisher};
pub use queue_depth::run_queue_depth_exporter;
pub use room::{QueueRoom, Reservation};
pub use topology::{QueueType, Topology};
