//! Message headers Linkkit reads and writes.

use lapin::types::{AMQPValue, FieldTable};

/// The workspace an event belongs to, on every message of the events exchange.
pub const WORKSPACE_HEADER: &str = "linkkit-workspace";
/// When an event happened, in Unix milliseconds (optional; the envelope's timestamp is the
/// fallback).
pub const OCCURRED_AT_HEADER: &str = "linkkit-occurred-at-ms";
/// Why a message was dead-lettered.
pub const REASON_HEADER: &str = "linkkit-dead-reason";
/// The queue a dead-lettered message was taken from.
pub const SOURCE_QUEUE_HEADER: &str = "linkkit-source-queue";

/// A header's value as text, when it is a string.
pub fn header_string(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(text) => Some(String::from_utf8_lossy(text.as_bytes()).into_owned()),
        AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
        _ => None,
    }
}

/// Headers as AMQP long strings, in the table lapin takes.
pub fn header_table(pairs: &[(&str, String)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in pairs {
        table.insert((*name).into(), AMQPValue::LongString(value.clone().into()));
    }
    table
}
